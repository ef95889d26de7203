package process

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fakeSystemctl puts a systemctl that prints out first on PATH.
func fakeSystemctl(t *testing.T, out string) {
	t.Helper()
	bin := t.TempDir()
	script := "#!/bin/sh\nprintf '%s\\n' '" + out + "'\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// TestRestarts reads systemd's NRestarts; a systemd without the property
// is ErrUnsupported.
func TestRestarts(t *testing.T) {
	fakeSystemctl(t, "4")
	if n, err := NewSystemService("okta-ad.service").Restarts(t.Context()); err != nil || n != 4 {
		t.Fatalf("Restarts = %d, %v", n, err)
	}
	fakeSystemctl(t, "")
	if _, err := NewSystemService("okta-ad.service").Restarts(t.Context()); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("no NRestarts: %v", err)
	}
}
