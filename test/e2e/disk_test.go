//go:build linux

package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/e2e"
)

// mountTmpfs mounts a tmpfs of size at a new directory, or skips the test
// where mounting is not permitted (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("this test needs to mount a tmpfs (root with CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

func remount(t *testing.T, dir, mode string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, mode, err, out)
	}
}

// hostOn starts a host whose state dir is stateDir.
func (f *fleet) hostOn(name, stateDir string) *e2e.Host {
	f.t.Helper()
	h, err := e2e.NewHost(bins, f.t.TempDir(), e2e.HostOptions{Name: name, AgentType: "AD", SampleAgent: samples["1.0.0"],
		TrustedKey: f.keys.Public, ServerURL: f.srv.URL, ServerCA: f.srv.CA, StateDir: stateDir})
	if err != nil {
		f.t.Fatal(err)
	}
	tok, err := f.srv.CLI(f.ctx, "enroll-token", "create", "--pool", f.pool)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := h.Enroll(f.ctx, f.srv.URL, tok); err != nil {
		f.t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.hosts = append(f.hosts, h)
	return h
}

// TestDiskFullKeepsTheOldBinary fills the agent's state dir (a 2 MiB
// tmpfs, smaller than the artifact): the download fails, the host reports
// it, and the old binary stays, runnable.
func TestDiskFullKeepsTheOldBinary(t *testing.T) {
	state := mountTmpfs(t, "2m")
	f := newFleet(t, 0)
	f.hostOn("full", state)
	f.waitAgents(1)
	id := f.create(`{"targetVersion":"1.1.0"}`)
	u := f.waitStatus(id, okta.JobFailed)
	if u.Agents[0].UpdateStatus != okta.InstanceFailed || u.Agents[0].UpdateMessage == "" {
		t.Errorf("agent = %+v", u.Agents[0])
	}
	t.Logf("reported: %s", u.Agents[0].UpdateMessage)
	if v := f.versions()[0]; v != "1.0.0" {
		t.Errorf("installed %s after a failed download", v)
	}
}

// TestReadOnlyStateDirKeepsTheOldBinary makes the state dir read-only
// after enrollment: the job fails and is reported, the old binary stays;
// once writable again a retry succeeds.
func TestReadOnlyStateDirKeepsTheOldBinary(t *testing.T) {
	state := mountTmpfs(t, "64m")
	f := newFleet(t, 0)
	f.hostOn("ro", state)
	f.waitAgents(1)
	remount(t, state, "ro")
	id := f.create(`{"targetVersion":"1.1.0"}`)
	u := f.waitStatus(id, okta.JobFailed)
	t.Logf("reported: %s", u.Agents[0].UpdateMessage)
	if v := f.versions()[0]; v != "1.0.0" {
		t.Errorf("installed %s with a read-only state dir", v)
	}
	remount(t, state, "rw")
	time.Sleep(time.Second)
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/"+id+"/retry", "", nil)
	f.waitStatus(id, okta.JobSuccess)
	if v := f.versions()[0]; v != "1.1.0" {
		t.Errorf("after the retry: %s", v)
	}
}
