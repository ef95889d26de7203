package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the agent's update machinery out of the server:
// signing releases needs the signing package, not the updater and the
// self-update library it links.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/poolagent/poolagent/updater" || strings.HasPrefix(dep, "github.com/poolagent/poolagent/updater/") ||
			dep == "github.com/minio/selfupdate" || strings.HasPrefix(dep, "github.com/minio/selfupdate/") {
			t.Errorf("poolserver links %s", dep)
		}
	}
}
