package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/controlplane"
)

const testKey = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"

// sampleFor writes the repository's sample configuration with its state
// dir moved under dir, as the Windows package's sample has its own.
func sampleFor(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "poolagent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err = config.SetKeys(b, config.Setting{Key: "state_dir", Value: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "poolagent.sample.toml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	sample := sampleFor(t, dir)
	cfgPath := filepath.Join(dir, "etc", "poolagent.toml")
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"configure", "--config", cfgPath}, args...), &out, &out)
		return out.String(), err
	}

	// No configuration and no sample: an error naming the file.
	if out, err := cli("--server", "https://a.example"); err == nil || !strings.Contains(err.Error(), cfgPath) {
		t.Fatalf("configure without config or sample = %v (%s), want an error naming %s", err, out, cfgPath)
	}

	// Created from the sample, with every setting, as the MSI passes them
	// (empty ones left alone).
	out, err := cli("--sample", sample, "--server", "https://pool.example.net", "--trusted-keys", testKey+", "+strings.Replace(testKey, "RWQ", "RWR", 1),
		"--server-ca", "", "--allow-insecure-http", "1")
	if err != nil {
		t.Fatalf("configure: %v\n%s", err, out)
	}
	if !strings.Contains(out, "created from "+sample) {
		t.Errorf("output %q does not say the sample was used", out)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerURL != "https://pool.example.net" || len(cfg.Artifacts.TrustedKeys) != 2 || cfg.Artifacts.TrustedKeys[0] != testKey ||
		!cfg.Artifacts.AllowInsecureHTTP || cfg.ServerCA != "" {
		t.Errorf("configured %+v", cfg)
	}
	if fi, err := os.Stat(cfg.StateDir); err != nil || !fi.IsDir() {
		t.Errorf("state dir %s not created: %v", cfg.StateDir, err)
	}

	// An existing configuration is kept: only the given keys change, and the
	// sample is not used again.
	b, _ := os.ReadFile(cfgPath)
	edited := bytes.Replace(b, []byte(`log_level = "info"`), []byte(`log_level = "debug" # mine`), 1)
	if err := os.WriteFile(cfgPath, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cli("--sample", sample, "--server", "", "--trusted-keys", "", "--allow-insecure-http", ""); err != nil {
		t.Fatalf("configure with nothing to set: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(cfgPath); !bytes.Equal(b, edited) {
		t.Errorf("configure with nothing to set changed the file:\n%s", b)
	}
	if out, err := cli("--server", "https://other.example.net:8443/"); err != nil {
		t.Fatalf("configure: %v\n%s", err, out)
	}
	want := bytes.Replace(edited, []byte(`server_url = "https://pool.example.net"`), []byte(`server_url = "https://other.example.net:8443/"`), 1)
	if b, _ := os.ReadFile(cfgPath); !bytes.Equal(b, want) {
		t.Errorf("configure --server changed more than server_url:\n%s", b)
	}

	// Bad values: refused, the file left as it was.
	for _, args := range [][]string{
		{"--server", "ftp://x"},
		{"--trusted-keys", "not-a-key"},
		{"--trusted-keys", " , "},
		{"--allow-insecure-http", "maybe"},
		{"--server-ca", "relative.pem"},
	} {
		if _, err := cli(args...); err == nil {
			t.Errorf("configure %q succeeded, want an error", args)
		}
		if b, _ := os.ReadFile(cfgPath); !bytes.Equal(b, want) {
			t.Errorf("configure %q changed the file", args)
		}
	}
	var ee *exitError
	if _, err := cli("--allow-insecure-http", "maybe"); !errors.As(err, &ee) || ee.code != exitUsage {
		t.Errorf("a bad flag value = %v, want a usage error", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(cfgPath))
	if len(entries) != 1 {
		t.Errorf("leftover files next to the configuration: %v", entries)
	}
}

// TestEnrollIfNotEnrolled: an installer runs enroll --if-not-enrolled on
// every install and upgrade; the host keeps the identity it has.
func TestEnrollIfNotEnrolled(t *testing.T) {
	f := newFleet(t, nil)
	h := f.newHost(hostOpts{})
	if out, code := h.cli("enroll", "--if-not-enrolled"); code == 0 || !strings.Contains(out, "ENROLL_TOKEN") {
		t.Fatalf("enroll --if-not-enrolled without a token on a new host: %d %s, want an error naming ENROLL_TOKEN", code, out)
	}
	tok := func() string {
		tok, err := controlplane.CreateEnrollToken(context.Background(), f.st, f.pool.ID, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	first := tok()
	if out, code := h.cli("enroll", "--if-not-enrolled", "--token", first); code != 0 || !strings.Contains(out, "enrolled as client") {
		t.Fatalf("first enroll: %d %s", code, out)
	}
	creds := filepath.Join(h.dir, "state", "client.json")
	before, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	// The same (spent) token, a fresh one, or none: the credentials stay.
	for _, token := range []string{first, tok(), ""} {
		out, code := h.cli("enroll", "--if-not-enrolled", "--token", token)
		if code != 0 || !strings.Contains(out, "already enrolled") {
			t.Fatalf("enroll --if-not-enrolled on an enrolled host: %d %s", code, out)
		}
		if after, _ := os.ReadFile(creds); !bytes.Equal(after, before) {
			t.Fatal("enroll --if-not-enrolled replaced the credentials")
		}
	}
	// Unreadable credentials are not silently replaced.
	if err := os.WriteFile(creds, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := h.cli("enroll", "--if-not-enrolled", "--token", tok()); code == 0 || !strings.Contains(out, "not replacing") {
		t.Fatalf("enroll --if-not-enrolled over corrupt credentials: %d %s", code, out)
	}
}
