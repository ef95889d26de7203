package windows_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/internal/winetest"
)

// TestWindowsPackageTests runs the Windows-only tests of packages with
// Windows code paths, cross-compiled with `go test -c`, under Wine: among
// them platform/fsacl's, which apply the protected DACL to a directory and
// a file (the Win32 calls must succeed) and read it back with
// GetNamedSecurityInfo. Wine 8 does not keep DACLs (it makes one up from the
// Unix mode), so the read-back comparison runs on real Windows only.
func TestWindowsPackageTests(t *testing.T) {
	w := needWine(t)
	for _, pkg := range []string{"./platform/fsacl"} {
		t.Run(strings.TrimPrefix(pkg, "./"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			exe := filepath.Join(tempDir(t), sanitizeName(pkg)+".test.exe")
			if err := winetest.GoTestBinary(ctx, suite.root, exe, pkg); err != nil {
				t.Fatal(err)
			}
			res, err := w.Run(ctx, exe, "-test.v", "-test.count=1")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s under Wine:\n%s", pkg, res.Stdout)
			if res.Code != 0 || !strings.Contains(res.Stdout, "\nPASS") {
				t.Fatalf("%s failed under Wine: %s", pkg, res)
			}
			// Wine 8 does not store DACLs: TestAppliedDACL applies them
			// (the calls must succeed) and skips the read-back there.
			if pkg == "./platform/fsacl" && !strings.Contains(res.Stdout, "--- PASS: TestAppliedDACL") &&
				!strings.Contains(res.Stdout, "--- SKIP: TestAppliedDACL") {
				t.Fatalf("TestAppliedDACL did not run: %s", res)
			}
		})
	}
}
