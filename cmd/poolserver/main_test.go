package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
