//go:build unix

package updater

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/poolagent/poolagent/platform/process"
)

var (
	_ Service = (*process.Supervised)(nil)
	_ Service = (*process.SystemService)(nil)
)

// installed puts fixture at <dir>/agent and runs it supervised.
func installed(t *testing.T, fixture string) (path string, svc *process.Supervised) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "agent")
	if err := os.WriteFile(path, readFixture(t, fixture), 0o755); err != nil {
		t.Fatal(err)
	}
	svc = process.NewSupervised(path)
	svc.StopTimeout = 5 * time.Second
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop(t.Context()) })
	return path, svc
}

func quickHealth() HealthCheck {
	return HealthCheck{Grace: 300 * time.Millisecond, Interval: 20 * time.Millisecond, Timeout: 2 * time.Second}
}

// assertClean checks the target holds want, nothing is left beside it and
// the journal is empty.
func assertClean(t *testing.T, u *Updater, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("target holds %q, want %q", got, want)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm()&0o100 == 0 {
		t.Fatalf("target mode %v is not executable", st.Mode())
	}
	staged, prev := siblings(path)
	for _, p := range []string{staged, prev} {
		if exists(p) {
			t.Errorf("left beside the target: %s", p)
		}
	}
	if names, _ := u.jnl.names(); len(names) != 0 {
		t.Errorf("journal not empty: %v", names)
	}
}

func TestApplySwapsAndCommits(t *testing.T) {
	s := newSigner(t)
	srv := newArtifactServer(t)
	newBin := readFixture(t, "agent-1.1.0.sh")
	job := srv.job(t, s, "/a", newBin, meta("1.1.0"))
	path, svc := installed(t, "agent-1.0.0.sh")
	oldPid := svc.Pid()
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer health.Close()
	h := quickHealth()
	h.URL = health.URL
	h.Command = []string{path, "version"}
	u := newTestUpdater(t, []string{s.pubText()}, nil)

	var phases []Phase
	res, err := fetchAndApply(t.Context(), u, job, Target{Name: "AD", Path: path, Version: "1.0.0", Service: svc, Health: h},
		func(p Phase) { phases = append(phases, p) })
	if err != nil {
		t.Fatalf("Fetch and Apply: %v", err)
	}
	if want := []Phase{PhaseStaging, PhaseStopping, PhaseSwapping, PhaseSwapped, PhaseHealth, PhaseCommitting}; !slices.Equal(phases, want) {
		t.Errorf("Apply reported phases %v, want %v", phases, want)
	}
	if res.Outcome != OutcomeCommitted || res.Version != "1.1.0" || res.Err != nil {
		t.Fatalf("result %+v", res)
	}
	// What the commit replaced: the daemon remembers it for a revert.
	if res.PrevVersion != "1.0.0" || res.PrevSHA256 != sum(readFixture(t, "agent-1.0.0.sh")) {
		t.Errorf("replaced %q %q, want 1.0.0 and the old binary's SHA-256", res.PrevVersion, res.PrevSHA256)
	}
	assertClean(t, u, path, newBin)
	if up, _ := svc.Running(t.Context()); !up || svc.Pid() == oldPid {
		t.Fatalf("service running=%v pid %d (old %d): want the new version running", up, svc.Pid(), oldPid)
	}
}

func TestApplyRollsBack(t *testing.T) {
	s := newSigner(t)
	oldBin := readFixture(t, "agent-1.0.0.sh")
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	for _, tc := range []struct {
		name   string
		newBin string
		health func(h *HealthCheck)
	}{
		{"new version crashes on start", "agent-1.1.0-crash.sh", nil},
		{"health URL fails", "agent-1.1.0.sh", func(h *HealthCheck) { h.URL = failing.URL; h.Timeout = 200 * time.Millisecond }},
		{"health command fails", "agent-1.1.0.sh", func(h *HealthCheck) { h.Command = []string{"false"}; h.Timeout = 200 * time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtifactServer(t)
			job := srv.job(t, s, "/a", readFixture(t, tc.newBin), meta("1.1.0"))
			path, svc := installed(t, "agent-1.0.0.sh")
			h := quickHealth()
			if tc.health != nil {
				tc.health(&h)
			}
			u := newTestUpdater(t, []string{s.pubText()}, nil)
			var phases []Phase
			res, err := fetchAndApply(t.Context(), u, job, Target{Name: "AD", Path: path, Version: "1.0.0", Service: svc, Health: h},
				func(p Phase) { phases = append(phases, p) })
			if !errors.Is(err, ErrHealthCheck) || errors.Is(err, ErrRollback) {
				t.Fatalf("Fetch and Apply: %v, want ErrHealthCheck and a good rollback", err)
			}
			if len(phases) < 2 || phases[len(phases)-2] != PhaseHealth || phases[len(phases)-1] != PhaseRollingBack {
				t.Errorf("Apply reported phases %v, want health then rolling-back last", phases)
			}
			if res.Outcome != OutcomeRolledBack || res.Version != "1.0.0" || Code(err) != "health-check" {
				t.Fatalf("result %+v code %s", res, Code(err))
			}
			assertClean(t, u, path, oldBin)
			if up, _ := svc.Running(t.Context()); !up {
				t.Fatal("the restored version is not running")
			}
		})
	}
}

func TestApplyRefusesWhileJournalBusy(t *testing.T) {
	s := newSigner(t)
	srv := newArtifactServer(t)
	job := srv.job(t, s, "/a", readFixture(t, "agent-1.1.0.sh"), meta("1.1.0"))
	path, svc := installed(t, "agent-1.0.0.sh")
	u := newTestUpdater(t, []string{s.pubText()}, nil)
	if err := u.jnl.put(&entry{JobID: "earlier", Name: "AD", Target: path, Phase: PhaseSwapped}); err != nil {
		t.Fatal(err)
	}
	if _, err := fetchAndApply(t.Context(), u, job, Target{Name: "AD", Path: path, Service: svc, Health: quickHealth()}, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("Fetch and Apply: %v, want ErrBusy", err)
	}
}

func TestPatch(t *testing.T) {
	s := newSigner(t)
	newBin := readFixture(t, "agent-1.1.0.sh")
	good := readFixture(t, "agent-1.0.0-to-1.1.0.bsdiff")
	lying := append([]byte(nil), good...)
	copy(lying[24:32], offtout(int64(len(newBin)+1)))
	oldBin := readFixture(t, "agent-1.0.0.sh")
	oldSum := sha256Hex(oldBin)
	for _, tc := range []struct {
		name        string
		installed   []byte // what the patch is applied to
		patch       []byte
		fromVersion string // the patch's source version; "" means 1.0.0
		fromSHA256  string // the patch's source SHA-256
		wantPatched bool
		wantFetches int // of the patch
	}{
		{"patch applies", oldBin, good, "", oldSum, true, 1},
		{"patch applies without a source hash", oldBin, good, "", "", true, 1},
		{"installed binary differs: fall back", bytes.Replace(oldBin, []byte("1.0.0"), []byte("1.0.1"), 1), good, "", "", false, 1},
		{"installed binary is not the source: fall back before downloading", bytes.Replace(oldBin, []byte("1.0.0"), []byte("1.0.1"), 1), good, "", oldSum, false, 0},
		{"installed version is not the source: fall back before downloading", oldBin, good, "0.9.0", oldSum, false, 0},
		{"corrupt patch: fall back", oldBin, good[:len(good)-20], "", oldSum, false, 1},
		{"header lies about the size: fall back", oldBin, lying, "", oldSum, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtifactServer(t)
			job := srv.job(t, s, "/full", newBin, meta("1.1.0"))
			job.Patch = &Patch{FromVersion: cmp.Or(tc.fromVersion, "1.0.0"), FromSHA256: tc.fromSHA256, URL: srv.put("/patch", tc.patch), Size: int64(len(tc.patch))}
			path := filepath.Join(t.TempDir(), "agent")
			if err := os.WriteFile(path, tc.installed, 0o755); err != nil {
				t.Fatal(err)
			}
			u := newTestUpdater(t, []string{s.pubText()}, nil)
			f, err := u.Fetch(t.Context(), job, Target{Name: "AD", Path: path, Version: "1.0.0"}, nil)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if f.Patched != tc.wantPatched {
				t.Fatalf("Patched = %v, want %v", f.Patched, tc.wantPatched)
			}
			if (f.PatchErr == nil) != tc.wantPatched || (f.PatchErr != nil && !errors.Is(f.PatchErr, ErrPatch)) {
				t.Fatalf("PatchErr = %v; want an ErrPatch exactly when the patch was not used", f.PatchErr)
			}
			if got, _ := os.ReadFile(f.Path); !bytes.Equal(got, newBin) {
				t.Fatal("fetched file is not the artifact")
			}
			wantFull := 1
			if tc.wantPatched {
				wantFull = 0
			}
			if n := srv.count("/full"); n != wantFull {
				t.Fatalf("full artifact requested %d times, want %d", n, wantFull)
			}
			if n := srv.count("/patch"); n != tc.wantFetches {
				t.Fatalf("patch requested %d times, want %d", n, tc.wantFetches)
			}
		})
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
