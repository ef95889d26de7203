//go:build unix

package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// helperEnv selects the child's behaviour when the test binary re-executes
// itself; see TestHelperProcess. "clean" and "fail-on-stop" run in the
// foreground; "service-clean" and "service-fail-on-stop" take the path used
// under a service manager.
const helperEnv = "POOLAGENT_DAEMON_TEST_HELPER"

// TestHelperProcess is not a test: it is the child process of
// TestRunSignal. It runs Manager.Run with a
// program that prints "ready", waits for cancellation, prints "stopping"
// and returns, and exits with 0 if Run returned nil, 1 otherwise.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for TestRunSignal")
	}
	m, err := New(Config{Name: "poolagent-test"}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// "service-*" modes take the path used under a service manager:
	// kardianos's Run with the RunWait hook (no service is installed).
	m.interactive = func() bool { return !strings.HasPrefix(mode, "service-") }
	err = m.Run(context.Background(), func(ctx context.Context) error {
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Println("stopping")
		if strings.HasSuffix(mode, "fail-on-stop") {
			return errors.New("could not flush the journal")
		}
		return ctx.Err()
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func TestRunSignal(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		sig      syscall.Signal
		wantCode int
	}{
		{"SIGTERM stops cleanly", "clean", syscall.SIGTERM, 0},
		{"SIGINT stops cleanly", "clean", syscall.SIGINT, 0},
		{"failure while stopping exits non-zero", "fail-on-stop", syscall.SIGTERM, 1},
		{"service mode: SIGTERM stops cleanly", "service-clean", syscall.SIGTERM, 0},
		{"service mode: failure while stopping exits non-zero", "service-fail-on-stop", syscall.SIGTERM, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			// atexit_sleep_ms: the race detector otherwise sleeps 1 s at exit.
			cmd.Env = append(os.Environ(), helperEnv+"="+tt.mode, "GORACE=atexit_sleep_ms=0")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stdout)
			// The signal handler is installed before the program
			// runs, so once "ready" is printed the signal is caught.
			if !lines.Scan() || lines.Text() != "ready" {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("child did not become ready: %q, stderr: %s", lines.Text(), stderr.String())
			}
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			var rest []string
			for lines.Scan() {
				rest = append(rest, lines.Text())
			}
			err = cmd.Wait()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					t.Fatalf("child was killed by %v instead of stopping", ws.Signal())
				}
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d; stderr: %s", code, tt.wantCode, stderr.String())
			}
			if len(rest) == 0 || rest[0] != "stopping" {
				t.Errorf("program did not see its context cancelled; output after ready: %q", rest)
			}
		})
	}
}

// TestRunServiceMode runs the service-manager path in process: kardianos's
// Unix Run calls program.Start, waits in the RunWait hook and calls
// program.Stop; nothing is installed.
func TestRunServiceMode(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name             string
		prog             Program
		cancelAfterStart bool
		wantErr          error
	}{
		{"fails by itself", func(context.Context) error { return errBoom }, false, errBoom},
		{"returns nil by itself", func(context.Context) error { return nil }, false, nil},
		{"parent context cancelled", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(Config{Name: "poolagent-test"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			m.interactive = func() bool { return false }
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := make(chan struct{})
			if tt.cancelAfterStart {
				go func() { <-started; cancel() }()
			}
			err = m.Run(ctx, func(ctx context.Context) error { close(started); return tt.prog(ctx) })
			if errors.Is(err, ErrNoServiceManager) {
				t.Skip("kardianos found no service system on this host")
			}
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want an error wrapping %v", err, tt.wantErr)
			}
		})
	}
}
