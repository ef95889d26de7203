//go:build unix

package updater

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// TestRevertUsesTheKeptBinary: after 1.0.0 -> 1.1.0 commits, the 1.0.0
// binary is kept in the state dir, and a job back to 1.0.0 installs it
// without a download (the artifact server is never asked for it); a
// damaged kept copy is downloaded instead.
func TestRevertUsesTheKeptBinary(t *testing.T) {
	s := newSigner(t)
	srv := newArtifactServer(t)
	oldBin, newBin := readFixture(t, "agent-1.0.0.sh"), readFixture(t, "agent-1.1.0.sh")
	up := srv.job(t, s, "/new", newBin, meta("1.1.0"))
	path, svc := installed(t, "agent-1.0.0.sh")
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer health.Close()
	h := quickHealth()
	h.URL = health.URL
	u := newTestUpdater(t, []string{s.pubText()}, nil)
	if _, err := fetchAndApply(t.Context(), u, up, Target{Name: "AD", Path: path, Version: "1.0.0", Service: svc, Health: h}, nil); err != nil {
		t.Fatal(err)
	}
	assertClean(t, u, path, newBin)
	kept, err := os.ReadFile(u.keptPath("AD"))
	if err != nil || string(kept) != string(oldBin) {
		t.Fatalf("kept %q (%v), want the 1.0.0 binary", kept, err)
	}

	revert := srv.job(t, s, "/old", oldBin, meta("1.0.0"))
	revert.AllowDowngrade = true
	f, err := u.Fetch(t.Context(), revert, Target{Name: "AD", Path: path, Version: "1.1.0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Kept || srv.count("/old") != 0 {
		t.Fatalf("kept %t, %d downloads: want the kept binary and none", f.Kept, srv.count("/old"))
	}
	if _, err := u.Apply(t.Context(), f, Target{Name: "AD", Path: path, Version: "1.1.0", Service: svc, Health: h}, nil); err != nil {
		t.Fatal(err)
	}
	assertClean(t, u, path, oldBin)
	// Now 1.1.0 is kept; damage it: a job back to 1.1.0 downloads.
	if err := os.WriteFile(u.keptPath("AD"), append([]byte("x"), newBin[1:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	up.ID = "job-again"
	f, err = u.Fetch(t.Context(), up, Target{Name: "AD", Path: path, Version: "1.0.0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Kept {
		t.Error("a damaged kept binary was used")
	}
}
