package e2e_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/e2e"
)

// sample130 builds the sample agent 1.3.0 once, for the patch tests.
var sample130 = sync.OnceValues(func() (string, error) {
	return bins.BuildSample(context.Background(), "1.3.0", true)
})

// publishWithPatches publishes AD 1.3.0 with patches from the three
// releases before it and returns the patch from 1.0.0 (what the hosts
// run).
func publishWithPatches(f *fleet) okta.ReleasePatch {
	f.t.Helper()
	bin, err := sample130()
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.srv.Publish(f.ctx, f.keys, "AD", "1.3.0", runtime.GOOS, runtime.GOARCH, bin, "GA", "--deltas", "3"); err != nil {
		f.t.Fatal(err)
	}
	var rs []okta.Release
	f.api("GET", "/api/v1/releases?name=AD", "", &rs)
	for _, r := range rs {
		if r.Version != "1.3.0" {
			if len(r.Patches) != 0 {
				f.t.Errorf("release %s has patches %+v; published without --deltas", r.Version, r.Patches)
			}
			continue
		}
		var from []string
		for _, p := range r.Patches {
			from = append(from, p.FromVersion)
			if p.Size > r.Size/2 || !strings.HasSuffix(p.URL, "/artifacts/patches/"+p.SHA256) {
				f.t.Errorf("patch %+v of a %d-byte release was kept or is served elsewhere", p, r.Size)
			}
		}
		if strings.Join(from, ",") != "1.0.0,1.1.0,1.2.0" {
			f.t.Fatalf("release 1.3.0 has patches from %v, want 1.0.0, 1.1.0 and 1.2.0", from)
		}
		f.t.Logf("release 1.3.0: %d bytes; patch from 1.0.0: %d bytes", r.Size, r.Patches[0].Size)
		return r.Patches[0]
	}
	f.t.Fatal("release 1.3.0 is not in the catalog")
	return okta.ReleasePatch{}
}

// installedIs fails unless every host's binary is exactly want's bytes.
func (f *fleet) installedIs(want string) {
	f.t.Helper()
	wb, err := os.ReadFile(want)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, h := range f.hosts {
		if got, err := os.ReadFile(h.Binary); err != nil || !bytes.Equal(got, wb) {
			f.t.Errorf("%s: the installed binary is not the release's bytes (%v)", h.Name, err)
		}
	}
}

// TestRolloutTakesPatch: hosts on 1.0.0 are offered the patch from the
// binary they reported, download it instead of the full artifact, and end
// up with the release's exact bytes.
func TestRolloutTakesPatch(t *testing.T) {
	t.Parallel()
	f := newFleetWith(t, 2, e2e.ServerOptions{LogLevel: "debug"})
	publishWithPatches(f)
	id := f.create(`{"targetVersion":"1.3.0","schedule":` + openNow() + `}`)
	u := f.waitStatus(id, okta.JobSuccess)
	for _, a := range u.Agents {
		if a.UpdateStatus != okta.InstanceSuccess || a.UpdateMessage != "" {
			t.Errorf("agent %s: %s %q", a.Name, a.UpdateStatus, a.UpdateMessage)
		}
	}
	if got := strings.Join(f.versions(), ","); got != "1.3.0,1.3.0" {
		t.Errorf("installed = %s", got)
	}
	bin, _ := sample130()
	f.installedIs(bin)
	patches, err := f.srv.Requests("/artifacts/patches/")
	if err != nil {
		t.Fatal(err)
	}
	full, err := f.srv.Requests("/artifacts/AD/1.3.0/")
	if err != nil {
		t.Fatal(err)
	}
	if patches < len(f.hosts) || full != 0 {
		t.Errorf("served %d patch and %d full downloads; want a patch per host (%d) and no full artifact", patches, full, len(f.hosts))
	}
	for _, h := range f.hosts {
		if !strings.Contains(h.LogTail(1<<20), "artifact built from a binary patch") {
			t.Errorf("%s did not log building the artifact from the patch", h.Name)
		}
	}
}

// TestCorruptPatchFallsBack: a patch damaged in the data dir fails its
// check on the host, which downloads the full artifact, installs it and
// reports the job a success with a PATCH warning the server shows.
func TestCorruptPatchFallsBack(t *testing.T) {
	t.Parallel()
	f := newFleetWith(t, 2, e2e.ServerOptions{LogLevel: "debug"})
	p := publishWithPatches(f)
	path := filepath.Join(f.srv.DataDir, "artifacts", "patches", p.SHA256)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+16 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	id := f.create(`{"targetVersion":"1.3.0","schedule":` + openNow() + `}`)
	u := f.waitStatus(id, okta.JobSuccess)
	for _, a := range u.Agents {
		if a.UpdateStatus != okta.InstanceSuccess || !strings.HasPrefix(a.UpdateMessage, "PATCH: ") {
			t.Errorf("agent %s: %s %q; want SUCCESS with a PATCH warning", a.Name, a.UpdateStatus, a.UpdateMessage)
		}
	}
	bin, _ := sample130()
	f.installedIs(bin)
	patches, _ := f.srv.Requests("/artifacts/patches/")
	full, _ := f.srv.Requests("/artifacts/AD/1.3.0/")
	if patches < len(f.hosts) || full < len(f.hosts) {
		t.Errorf("served %d patch and %d full downloads; want each host to try the patch, then take the full artifact", patches, full)
	}
}
