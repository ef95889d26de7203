package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/poolagent/poolagent/"

// leaves are the shared packages both programs import: they import no
// project package but other leaves.
var leaves = []string{"api", "api/okta", "api/sailpoint", "api/appliance", "signing",
	"internal/atomicfile", "internal/logging", "internal/tomlconf", "internal/vercmp", "internal/version", "internal/sdnotify", "internal/bsdiff"}

// forbidden maps a package prefix to the project packages (prefixes) its
// non-test code must not import.
var forbidden = []struct{ from, to string }{
	{"controlplane/store", "controlplane/rollout"},
	{"controlplane/rollout", "controlplane/ui"},
	{"agent", "controlplane"},
	{"updater", "controlplane"},
	{"updater", "agent"},
	{"platform", "controlplane"},
	{"platform", "agent"},
	{"platform", "updater"},
}

func under(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }

// TestImportRules reads every package's imports (go list, this OS's
// files) and checks the rules of docs/architecture.md.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	isLeaf := map[string]bool{}
	for _, l := range leaves {
		isLeaf[l] = true
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], mod) {
			continue
		}
		seen++
		pkg := strings.TrimPrefix(f[0], mod)
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			dep := strings.TrimPrefix(imp, mod)
			if isLeaf[pkg] && !isLeaf[dep] {
				t.Errorf("%s is a shared leaf but imports %s", pkg, dep)
			}
			// The root controlplane package is the HTTP server: nothing
			// below it imports it.
			if strings.HasPrefix(pkg, "controlplane/") && dep == "controlplane" {
				t.Errorf("%s imports the HTTP server package controlplane", pkg)
			}
			for _, r := range forbidden {
				if under(pkg, r.from) && under(dep, r.to) {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
	if seen < 20 {
		t.Fatalf("go list listed %d packages of the module; want them all", seen)
	}
}
