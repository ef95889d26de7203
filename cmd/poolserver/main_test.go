package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolagent/poolagent/signing"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "poolserver-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "poolserver")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build poolserver: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// cli runs the binary and returns its stdout; it fails the test on a
// non-zero exit.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("poolserver %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// TestScriptingInterface drives the commands outside tests use, against a
// running server on the same data dir, and stops it with SIGTERM.
func TestScriptingInterface(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	var logs bytes.Buffer
	srv := exec.Command(binary, "serve", "--data-dir", dir, "--listen", addr)
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill() //nolint:errcheck // best effort on failure paths

	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	token := cli(t, "token", "create", "--data-dir", dir, "--scope", "okta.agentPools.read", "--scope", "okta.agentPools.manage", "--name", "ci")
	if !regexp.MustCompile(`^00[A-Za-z0-9]{40}\n$`).MatchString(token) {
		t.Fatalf("token create printed %q, want the token alone", token)
	}
	poolID := cli(t, "pool", "create", "--data-dir", dir, "--name", "LDAP west", "--type", "LDAP")
	if !regexp.MustCompile(`^pol[A-Za-z0-9]{17}\n$`).MatchString(poolID) {
		t.Fatalf("pool create printed %q, want the id alone", poolID)
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/agentPools", nil)
	req.Header.Set("Authorization", "SSWS "+strings.TrimSpace(token))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pools []struct {
		ID, Name, Type string
		Agents         []any
	}
	err = json.NewDecoder(resp.Body).Decode(&pools)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(pools) != 1 || pools[0].ID != strings.TrimSpace(poolID) ||
		pools[0].Type != "LDAP" || pools[0].Name != "LDAP west" || pools[0].Agents == nil {
		t.Fatalf("list pools = %d %+v %v", resp.StatusCode, pools, err)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "poolserver stopped") {
		t.Errorf("no clean stop in the log:\n%s", logs.String())
	}
}

func TestCommandLineErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "missing command"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"token", "create", "--data-dir", dir}, 2, "scope"},
		{[]string{"token", "create", "--data-dir", dir, "--scope", "admin"}, 2, "unknown scope"},
		{[]string{"token", "create", "--scope", "okta.agentPools.read"}, 2, "--data-dir"},
		{[]string{"pool", "create", "--data-dir", dir, "--name", "x", "--type", "SAML"}, 2, "--type"},
		{[]string{"pool", "create", "--data-dir", dir, "--type", "AD"}, 2, "--name"},
		{[]string{"serve", "--bogus"}, 2, "bogus"},
		{[]string{"serve", "--config", filepath.Join(dir, "missing.toml")}, 1, "missing.toml"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(context.Background(), binary, tt.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tt.code {
			t.Errorf("%v: err %v, want exit %d", tt.args, err, tt.code)
			continue
		}
		if !strings.Contains(stderr.String(), tt.msg) {
			t.Errorf("%v: stderr %q does not mention %q", tt.args, stderr.String(), tt.msg)
		}
	}
	// "pool create" accepts the type in any case.
	if out := cli(t, "pool", "create", "--data-dir", dir, "--name", "r", "--type", "radius"); !strings.HasPrefix(out, "pol") {
		t.Errorf("pool create --type radius = %q", out)
	}
}

// TestSignAndPublish drives key generate, release sign and release publish
// and checks the signature verifies with the agent's keyring.
func TestSignAndPublish(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	pubLine := strings.TrimSpace(cli(t, "key", "generate", "--out", filepath.Join(dir, "release"), "--password-file", pw))
	if st, err := os.Stat(filepath.Join(dir, "release.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st, err)
	}
	art := filepath.Join(dir, "ad-agent")
	os.WriteFile(art, []byte("#!/bin/sh\necho 1.1.0\n"), 0o755)
	cli(t, "release", "sign", "--key", filepath.Join(dir, "release.key"), "--password-file", pw,
		"--name", "AD", "--version", "1.1.0", "--os", "linux", "--arch", "amd64", "--file", art)
	sig, err := os.ReadFile(art + ".minisig")
	if err != nil || !strings.Contains(string(sig), "trusted comment: poolagent-artifact name=AD version=1.1.0 os=linux arch=amd64 sha256=") {
		t.Fatalf("signature: %s %v", sig, err)
	}
	out := cli(t, "release", "publish", "--data-dir", dir, "--name", "AD", "--version", "1.1.0", "--os", "linux", "--arch", "amd64",
		"--channel", "GA", "--file", art, "--signature", art+".minisig")
	if !strings.Contains(out, "AD 1.1.0 linux/amd64 GA sha256=") {
		t.Errorf("publish printed %q", out)
	}
	// The agent's keyring accepts the key line generate printed.
	if _, err := signing.NewKeyring([]string{pubLine}, nil); err != nil {
		t.Errorf("pinning the printed key: %v", err)
	}
	// Refusals: an encrypted key without its password; overwriting keys; a bad name.
	for _, args := range [][]string{
		{"release", "sign", "--key", filepath.Join(dir, "release.key"), "--name", "AD", "--version", "1", "--os", "linux", "--arch", "amd64", "--file", art},
		{"key", "generate", "--out", filepath.Join(dir, "release")},
		{"release", "publish", "--data-dir", dir, "--name", "SAML", "--version", "1", "--os", "linux", "--arch", "amd64", "--file", art, "--signature", art + ".minisig"},
		{"release", "publish", "--data-dir", dir, "--name", "AD", "--version", "1.1.0", "--os", "linux", "--arch", "amd64", "--file", art, "--signature", art + ".minisig"},
	} {
		if err := exec.Command(binary, args...).Run(); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
}

// TestPublishDeltas: release publish builds patches from the previous
// releases of the same name and platform, keeps those at most half the
// artifact, stores them content-addressed and prints them; --deltas 0
// builds none.
func TestPublishDeltas(t *testing.T) {
	dir := t.TempDir()
	rnd := func(seed uint64, n int) []byte {
		r := rand.New(rand.NewPCG(seed, 9))
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	base := rnd(1, 64<<10)
	minor := bytes.Clone(base)
	copy(minor[1000:], "a small change")
	files := map[string][]byte{"1.0.0": base, "1.1.0": minor, "2.0.0": rnd(2, 64<<10)}
	publish := func(version string, extra ...string) string {
		art := filepath.Join(dir, "ad-"+version)
		os.WriteFile(art, files[version], 0o755)
		os.WriteFile(art+".minisig", []byte("untrusted comment: test\nRWQ...\n"), 0o644)
		return cli(t, append([]string{"release", "publish", "--data-dir", dir, "--name", "AD", "--version", version, "--os", "linux", "--arch", "amd64",
			"--file", art, "--signature", art + ".minisig"}, extra...)...)
	}
	if out := publish("1.0.0"); strings.Contains(out, "patch") {
		t.Errorf("the first release printed %q", out)
	}
	out := publish("1.1.0")
	m := regexp.MustCompile(`(?m)^patch from 1\.0\.0 sha256=([0-9a-f]{64}) size=(\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("publish 1.1.0 printed %q; want its patch from 1.0.0", out)
	}
	if st, err := os.Stat(filepath.Join(dir, "artifacts", "patches", m[1])); err != nil || strconv.FormatInt(st.Size(), 10) != m[2] {
		t.Errorf("patch file: %v %v", st, err)
	}
	// Unrelated bytes: both patches are larger than half the artifact.
	out = publish("2.0.0")
	if regexp.MustCompile(`(?m)^patch from`).MatchString(out) || strings.Count(out, "note: no patch from") != 2 {
		t.Errorf("publish 2.0.0 printed %q; want two patches dropped as too large", out)
	}
	files["2.1.0"] = bytes.Clone(files["2.0.0"])
	if out := publish("2.1.0", "--deltas", "0"); strings.Contains(out, "patch") {
		t.Errorf("--deltas 0 printed %q", out)
	}
	if err := exec.Command(binary, "release", "publish", "--data-dir", dir, "--name", "AD", "--version", "3", "--os", "linux", "--arch", "amd64",
		"--file", filepath.Join(dir, "ad-1.0.0"), "--signature", filepath.Join(dir, "ad-1.0.0.minisig"), "--deltas", "-1").Run(); err == nil {
		t.Error("--deltas -1 was accepted")
	}
}
