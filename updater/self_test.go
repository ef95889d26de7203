package updater

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func selfFixture(t *testing.T, aside bool) (u *Updater, exe string, oldBin, newBin []byte, f *Fetched) {
	t.Helper()
	prevAside := selfRenameAside
	selfRenameAside = aside
	t.Cleanup(func() { selfRenameAside = prevAside })
	s := newSigner(t)
	srv := newArtifactServer(t)
	oldBin, newBin = []byte("poolagent 1.0.0 binary\n"), []byte("poolagent 1.1.0 binary, a little longer\n")
	m := Meta{Name: "poolagent", Version: "1.1.0", OS: "linux", Arch: "amd64"}
	job := srv.job(t, s, "/poolagent", newBin, m)
	exe = filepath.Join(t.TempDir(), "poolagent")
	if err := os.WriteFile(exe, oldBin, 0o755); err != nil {
		t.Fatal(err)
	}
	u = newTestUpdater(t, []string{s.pubText()}, func(c *Config) { c.SelfMaxAttempts = 2 })
	f, err := u.Fetch(t.Context(), job, Target{Name: SelfName, Path: exe, Version: "1.0.0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u, exe, oldBin, newBin, f
}

func fileIs(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q", filepath.Base(path), got, want)
	}
}

// commits covers both ways of replacing the running binary: rename(2) over
// it (Unix) and minio/selfupdate's rename-aside (the Windows path, which
// works on any OS and so is tested everywhere).
var commits = []struct {
	name  string
	aside bool
}{{"atomic rename", false}, {"rename aside", true}}

func TestSelfUpdateConfirmed(t *testing.T) {
	for _, c := range commits {
		t.Run(c.name, func(t *testing.T) {
			u, exe, oldBin, newBin, f := selfFixture(t, c.aside)
			if err := u.ApplySelf(t.Context(), f, exe); err != nil {
				t.Fatal(err)
			}
			fileIs(t, exe, newBin)
			_, prev := siblings(exe)
			fileIs(t, prev, oldBin)
			// The daemon restarts into the new binary.
			st, err := u.RecoverSelf(t.Context(), exe)
			if err != nil || !st.Pending || st.Attempts != 1 || st.Version != "1.1.0" || st.ConfirmBy.IsZero() {
				t.Fatalf("RecoverSelf = %+v, %v; want pending", st, err)
			}
			if err := u.ConfirmSelf(t.Context(), exe); err != nil {
				t.Fatal(err)
			}
			fileIs(t, exe, newBin)
			if exists(prev) {
				t.Fatal("previous binary kept after confirmation")
			}
			if st, err := u.RecoverSelf(t.Context(), exe); err != nil || st.Pending || st.RolledBack {
				t.Fatalf("RecoverSelf after confirm = %+v, %v; want nothing to do", st, err)
			}
		})
	}
}

func TestSelfUpdateNeverConfirmed(t *testing.T) {
	for _, c := range commits {
		for _, why := range []string{"too many starts", "deadline passed"} {
			t.Run(c.name+"/"+why, func(t *testing.T) {
				u, exe, oldBin, newBin, f := selfFixture(t, c.aside)
				if err := u.ApplySelf(t.Context(), f, exe); err != nil {
					t.Fatal(err)
				}
				var err error
				if why == "deadline passed" {
					u.now = func() time.Time { return time.Now().Add(time.Hour) }
					_, err = u.RecoverSelf(t.Context(), exe)
				} else {
					for i := range 3 { // SelfMaxAttempts is 2: the third start rolls back
						fileIs(t, exe, newBin)
						var st SelfState
						st, err = u.RecoverSelf(t.Context(), exe)
						if i < 2 && (err != nil || !st.Pending) {
							t.Fatalf("start %d: %+v, %v", i+1, st, err)
						}
					}
				}
				if !errors.Is(err, ErrSelfRolledBack) {
					t.Fatalf("RecoverSelf: %v, want ErrSelfRolledBack", err)
				}
				fileIs(t, exe, oldBin)
				// The restored binary starts and clears the journal.
				st, err := u.RecoverSelf(t.Context(), exe)
				if err != nil || !st.RolledBack || st.Reason == "" {
					t.Fatalf("RecoverSelf in the restored binary = %+v, %v", st, err)
				}
				if e, _ := u.jnl.get(SelfName); e != nil {
					t.Fatalf("journal still holds %+v", e)
				}
			})
		}
	}
}

// TestSelfUpdateKilledBetweenRenames covers the one window of the
// rename-aside commit: the running binary moved aside, the new one not yet
// in place.
func TestSelfUpdateKilledBetweenRenames(t *testing.T) {
	u, exe, oldBin, _, f := selfFixture(t, true)
	_, prev := siblings(exe)
	if err := u.jnl.put(&entry{JobID: f.Job.ID, Name: SelfName, Self: true, Target: exe, Staged: selfNewPath(exe), Prev: prev,
		To: "1.1.0", OldSHA256: sum(oldBin), NewSHA256: f.SHA256, Phase: PhaseSelfSwapping}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(exe, prev); err != nil {
		t.Fatal(err)
	}
	st, err := u.RecoverSelf(t.Context(), exe)
	if err != nil || !st.RolledBack {
		t.Fatalf("RecoverSelf = %+v, %v", st, err)
	}
	fileIs(t, exe, oldBin)
}

func TestSelfUpdateBusyAndConfirmWithoutPending(t *testing.T) {
	u, exe, _, _, f := selfFixture(t, false)
	if err := u.ConfirmSelf(t.Context(), exe); err != nil {
		t.Fatalf("ConfirmSelf with nothing pending: %v", err)
	}
	if err := u.ApplySelf(t.Context(), f, exe); err != nil {
		t.Fatal(err)
	}
	if err := u.ApplySelf(t.Context(), f, exe); !errors.Is(err, ErrBusy) {
		t.Fatalf("second ApplySelf: %v, want ErrBusy", err)
	}
}
