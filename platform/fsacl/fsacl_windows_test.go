package fsacl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

// readDACL returns path's DACL as SDDL and whether it is protected.
func readDACL(t *testing.T, path string) (string, bool) {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("GetNamedSecurityInfo %s: %v", path, err)
	}
	ctl, _, err := sd.Control()
	if err != nil {
		t.Fatal(err)
	}
	return sd.String(), ctl&windows.SE_DACL_PROTECTED != 0
}

// underWine reports whether the test runs under Wine, whose ntdll exports
// wine_get_version.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// tempDir is t.TempDir, except that its removal falls back to removing
// file by file: os.RemoveAll fails under Wine 8 ("Invalid function"),
// where test/windows runs this test.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fsacl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err == nil {
			return
		}
		var paths []string
		_ = filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
			paths = append(paths, p)
			return nil
		})
		for i := len(paths) - 1; i >= 0; i-- {
			if err := os.Remove(paths[i]); err != nil {
				t.Errorf("remove %s: %v", paths[i], err)
			}
		}
	})
	return dir
}

// aces returns the ACE strings "(...)" of an SDDL string.
func aces(sddl string) []string {
	var out []string
	for _, part := range strings.Split(sddl, "(")[1:] {
		out = append(out, "("+strings.TrimSuffix(part, ")")+")")
	}
	return out
}

func TestAppliedDACL(t *testing.T) {
	extra := extraTrustees()
	dir := filepath.Join(tempDir(t), "poolagent")
	if err := MkdirPrivate(dir); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "client.json")
	if err := os.WriteFile(file, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RestrictFile(file); err != nil {
		t.Fatal(err)
	}
	if underWine() {
		got, _ := readDACL(t, dir)
		t.Skipf("Wine does not store DACLs (it reports %s, made from the Unix mode): "+
			"MkdirPrivate and RestrictFile succeeded; the ACEs can only be checked on Windows", got)
	}
	for _, tt := range []struct {
		path, want string
	}{{dir, DirSDDL(extra...)}, {file, FileSDDL(extra...)}} {
		got, protected := readDACL(t, tt.path)
		if !protected {
			t.Errorf("%s: DACL not protected: %s", tt.path, got)
		}
		gotACEs, wantACEs := aces(got), aces(tt.want)
		if len(gotACEs) != len(wantACEs) {
			t.Errorf("%s: ACEs %q, want exactly %q", tt.path, gotACEs, wantACEs)
			continue
		}
		for i := range wantACEs {
			if gotACEs[i] != wantACEs[i] {
				t.Errorf("%s: ACE %d = %s, want %s (DACL %s)", tt.path, i, gotACEs[i], wantACEs[i], got)
			}
		}
	}
	// A file created later inside the directory inherits its ACEs only.
	later := filepath.Join(dir, "localapi.token")
	if err := os.WriteFile(later, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := readDACL(t, later)
	for _, ace := range aces(got) {
		if !strings.Contains(ace, ";FA;;;SY)") && !strings.Contains(ace, ";FA;;;BA)") &&
			(len(extra) == 0 || !strings.HasSuffix(ace, ";;;"+extra[0]+")")) {
			t.Errorf("file created in the private dir has a foreign ACE %s (DACL %s)", ace, got)
		}
	}
}
