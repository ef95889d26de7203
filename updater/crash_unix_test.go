//go:build unix

package updater

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolagent/poolagent/platform/process"
)

// crashEnv selects the child mode of the test binary: run one update and
// SIGKILL itself at a phase boundary or after a delay.
const crashEnv = "POOLAGENT_UPDATER_CRASH_CHILD"

type crashSpec struct {
	StateDir  string
	Path      string
	Job       Job
	PubKey    string
	KillAt    Phase
	KillAfter time.Duration
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashEnv); spec != "" {
		os.Exit(crashChild(spec))
	}
	os.Exit(m.Run())
}

func crashChild(raw string) int {
	var spec crashSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	die := func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	u, err := New(Config{StateDir: spec.StateDir, TrustedKeys: []string{spec.PubKey}, AllowInsecureHTTP: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if spec.KillAt != "" {
		u.phaseHook = func(p Phase) {
			if p == spec.KillAt {
				die()
			}
		}
	}
	ctx := context.Background()
	svc := process.NewSupervised(spec.Path) // dies with us (parent-death signal)
	if err := svc.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if spec.KillAfter > 0 {
		time.AfterFunc(spec.KillAfter, die)
	}
	_, err = fetchAndApply(ctx, u, spec.Job, Target{Name: "AD", Path: spec.Path, Version: "1.0.0", Service: svc, Health: crashHealth()}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	return 0
}

func crashHealth() HealthCheck {
	return HealthCheck{Grace: 150 * time.Millisecond, Interval: 20 * time.Millisecond, Timeout: time.Second}
}

// TestCrashMatrix kills the updater with SIGKILL at every phase boundary
// and at random instants, then checks the invariant (the target is the old
// or the new binary, whole and runnable) and that Recover and one more run
// converge.
func TestCrashMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary for each case")
	}
	type tc struct {
		name   string
		newBin string // fixture of the release being installed
		killAt Phase
		after  time.Duration
	}
	var cases []tc
	for _, p := range []Phase{PhaseDownload, PhaseVerify, PhaseStaging, PhaseStopping, PhaseSwapping, phaseLinked, PhaseSwapped, PhaseHealth, PhaseCommitting} {
		cases = append(cases, tc{"good release/at " + string(p), "agent-1.1.0.sh", p, 0})
	}
	for _, p := range []Phase{PhaseSwapped, PhaseHealth, PhaseRollingBack} {
		cases = append(cases, tc{"crashing release/at " + string(p), "agent-1.1.0-crash.sh", p, 0})
	}
	// Random instants are drawn over the length of an uninterrupted child
	// run (the "no kill" case, measured first), so they land mid-phase on
	// a slow machine as on a fast one.
	cases = append(cases, tc{"good release/no kill", "agent-1.1.0.sh", "", 0})
	seed := uint64(time.Now().UnixNano())
	t.Logf("random kill points from seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var span time.Duration
	const randomRuns = 8

	s := newSigner(t)
	oldBin := readFixture(t, "agent-1.0.0.sh")
	for i := 0; i < len(cases); i++ {
		c := cases[i]
		if c.name == "good release/no kill" {
			for j := range randomRuns {
				bin := "agent-1.1.0.sh"
				if j%2 == 1 {
					bin = "agent-1.1.0-crash.sh"
				}
				cases = append(cases, tc{fmt.Sprintf("%s/random %d", strings.TrimSuffix(bin, ".sh"), j), bin, "", -1})
			}
		}
		if c.after < 0 {
			c.after = time.Duration(rng.Int64N(int64(max(span, time.Millisecond)))) + 1
		}
		t.Run(c.name, func(t *testing.T) {
			newBin := readFixture(t, c.newBin)
			srv := newArtifactServer(t)
			job := srv.job(t, s, "/a", newBin, meta("1.1.0"))
			state := t.TempDir()
			path := filepath.Join(t.TempDir(), "agent")
			if err := os.WriteFile(path, oldBin, 0o755); err != nil {
				t.Fatal(err)
			}
			spec, _ := json.Marshal(crashSpec{StateDir: state, Path: path, Job: job, PubKey: s.pubText(), KillAt: c.killAt, KillAfter: c.after})
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashEnv+"="+string(spec))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			err := cmd.Run()
			if c.name == "good release/no kill" {
				if err != nil {
					t.Fatalf("uninterrupted child: %v; stderr: %s", err, stderr.String())
				}
				span = time.Since(start)
			}
			killed := false
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
					killed = true
				}
			}
			if c.killAt != "" && !killed {
				t.Fatalf("child was not killed at %s: %v; stderr: %s", c.killAt, err, stderr.String())
			}

			// The invariant, right after the kill.
			got := assertRunnable(t, path, oldBin, newBin)
			t.Logf("kill after %s: killed=%v; target holds %s", c.after, killed, got)

			// Recover finishes or undoes the job.
			u := newTestUpdater(t, []string{s.pubText()}, func(cfg *Config) { cfg.StateDir = state })
			svc := process.NewSupervised(path)
			t.Cleanup(func() { svc.Stop(context.Background()) })
			target := Target{Name: "AD", Path: path, Version: "1.0.0", Service: svc, Health: crashHealth()}
			results, err := u.Recover(t.Context(), func(name string) (Target, bool) { return target, name == "AD" })
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			want := readTarget(t, path)
			for _, r := range results {
				switch r.Outcome {
				case OutcomeCommitted:
					want = newBin
				default:
					want = oldBin
				}
			}
			assertClean(t, u, path, want)
			if !bytes.Equal(want, oldBin) && !bytes.Equal(want, newBin) {
				t.Fatal("after Recover the target is neither version")
			}
			assertRunnable(t, path, oldBin, newBin)

			// The next run converges: a good release ends installed, a
			// crashing one ends rolled back.
			if err := svc.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			target.Version = versionOf(t, path)
			res, err := fetchAndApply(t.Context(), u, job, target, nil)
			if c.newBin == "agent-1.1.0.sh" {
				if err != nil || res.Outcome != OutcomeCommitted {
					t.Fatalf("next run: %+v, %v", res, err)
				}
				assertClean(t, u, path, newBin)
			} else {
				if !errors.Is(err, ErrHealthCheck) {
					t.Fatalf("next run: %+v, %v; want a health-check rollback", res, err)
				}
				assertClean(t, u, path, oldBin)
			}
		})
	}
}

func readTarget(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertRunnable checks that path is exactly one of the two versions and
// that it runs and reports the version its bytes say.
func assertRunnable(t *testing.T, path string, oldBin, newBin []byte) string {
	t.Helper()
	b := readTarget(t, path)
	var want string
	switch sum(b) {
	case sum(oldBin):
		want = "1.0.0"
	case sum(newBin):
		want = "1.1.0"
	default:
		t.Fatalf("target holds neither version (sha256 %s, %d bytes)", sum(b), len(b))
	}
	if got := versionOf(t, path); got != want {
		t.Fatalf("target runs as %q, want %q", got, want)
	}
	return want
}

func versionOf(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(path, "version").Output()
	if err != nil {
		t.Fatalf("run %s version: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}
