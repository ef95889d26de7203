// Package windows_test runs poolagent.exe (windows/amd64) under Wine against
// a real poolserver on Linux: enrollment, heartbeats, rollouts and
// rollbacks of a signed Windows release, the local API and its token file,
// the Windows service under Wine's Service Control Manager, a self-update,
// and the protected DACLs of platform/fsacl. docs/platform.md says what Wine
// cannot show.
//
// The suite runs only with POOLAGENT_TEST_WINE=1 (`make test-windows` sets
// it): plain `go test ./...` skips it. Enabled, it fails when Wine or
// mingw-w64 is missing and CI=true, and skips otherwise.
package windows_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/poolagent/poolagent/internal/e2e"
	"github.com/poolagent/poolagent/internal/winetest"
)

// suite is what every test shares: one Wine prefix (creating one takes
// half a minute) and the binaries.
var suite struct {
	skip   string // why the suite is skipped; "" when it runs
	fail   string // why the suite cannot run although required
	root   string // the module root
	dir    string
	wine   *winetest.Wine
	bins   *e2e.Bins // poolserver (Linux)
	agent  string    // poolagent.exe
	sample map[string]string
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv(winetest.EnvEnable) != "1" {
		suite.skip = winetest.EnvEnable + " is not 1 (run make test-windows)"
		return m.Run()
	}
	tools, err := winetest.FindTools()
	if err != nil {
		if os.Getenv("CI") == "true" {
			suite.fail = err.Error()
		} else {
			suite.skip = err.Error()
		}
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "poolagent-wine-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := setup(tools, dir); err != nil {
		if suite.wine != nil {
			suite.wine.Close()
		}
		suite.fail = err.Error()
		return m.Run()
	}
	code := m.Run()
	suite.wine.Close()
	return code
}

// setup creates the Wine prefix and builds the binaries, concurrently.
func setup(tools winetest.Tools, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := e2e.ModuleRoot()
	if err != nil {
		return err
	}
	suite.root, suite.dir = root, dir
	prefix := make(chan error, 1)
	go func() {
		w, err := winetest.NewPrefix(ctx, tools, filepath.Join(dir, "wine"), filepath.Join(root, "test", "windows", "testdata", "bcryptprimitives.c"))
		suite.wine = w
		prefix <- err
	}()
	bins := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bins, 0o755); err != nil {
		return err
	}
	b, err := e2e.Build(ctx, bins, "1.0.0")
	if err != nil {
		<-prefix
		return err
	}
	suite.bins = b
	suite.agent = filepath.Join(bins, "poolagent.exe")
	if err := buildAgent(ctx, suite.agent, "1.0.0"); err != nil {
		<-prefix
		return err
	}
	suite.sample = map[string]string{}
	for _, s := range []struct {
		version string
		healthy bool
	}{{"1.0.0", true}, {"1.1.0", true}, {"1.2.0", false}} {
		out := filepath.Join(bins, "sampleagent-"+s.version+".exe")
		ld := "-X main.version=" + s.version
		if !s.healthy {
			ld += " -X main.healthy=false"
		}
		if err := winetest.GoBuild(ctx, root, out, "./examples/sampleagent", ld); err != nil {
			<-prefix
			return err
		}
		suite.sample[s.version] = out
	}
	return <-prefix
}

// buildAgent cross-compiles poolagent.exe stamped with version.
func buildAgent(ctx context.Context, out, version string) error {
	return winetest.GoBuild(ctx, suite.root, out, "./cmd/poolagent", "-X github.com/poolagent/poolagent/internal/version.Version="+version)
}

// needWine skips or fails t when the suite cannot run.
func needWine(t *testing.T) *winetest.Wine {
	t.Helper()
	if suite.fail != "" {
		t.Fatalf("the Windows suite cannot run: %s", suite.fail)
	}
	if suite.skip != "" {
		t.Skip(suite.skip)
	}
	return suite.wine
}

// tempDir is a fresh directory for one test. Not t.TempDir: the programs
// under Wine may keep files open until the prefix is shut down.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp(suite.dir, sanitizeName(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
