package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, content := range []string{"first", "second, longer than the first", "3"} {
		if err := Write(p, []byte(content), 0o600); err != nil {
			t.Fatalf("Write %q: %v", content, err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Fatalf("content = %q, want %q", got, content)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file (no temporary left)", len(ents))
	}
}

func TestWriteMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permission bits")
	}
	p := filepath.Join(t.TempDir(), "conf.toml")
	for _, mode := range []os.FileMode{0o600, 0o644, 0o755} {
		if err := Write(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("mode = %v, want %v", fi.Mode().Perm(), mode)
		}
	}
}

func TestWriteWithPrepare(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "client.json")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen string
	err := WriteWith(p, []byte("new"), 0o600, func(tmp string) error {
		seen = tmp
		if fi, err := os.Stat(tmp); err != nil || fi.Size() != 0 {
			t.Errorf("prepare saw %v, %v: want an empty temporary file", fi, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(seen) != dir {
		t.Errorf("temporary file %s is not in %s", seen, dir)
	}

	refused := errors.New("acl refused")
	err = WriteWith(p, []byte("newer"), 0o600, func(string) error { return refused })
	if !errors.Is(err, refused) {
		t.Fatalf("WriteWith = %v, want the prepare error", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "new" {
		t.Errorf("a failed prepare changed the file to %q", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("a failed prepare left %d entries, want 1", len(ents))
	}
}

func TestWriteMissingDir(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing", "state.json")
	if err := Write(p, []byte("x"), 0o600); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Write into a missing directory = %v, want ErrNotExist", err)
	}
}
