package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	tests := []struct {
		name     string
		healthy  bool
		path     string
		wantCode int
		wantBody string
	}{
		{"healthy", true, "/healthz", http.StatusOK, "ok"},
		{"unhealthy", false, "/healthz", http.StatusServiceUnavailable, "unhealthy"},
		{"version", false, "/version", http.StatusOK, version + "\n"},
		{"unknown path", true, "/nope", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			newHandler(tt.healthy).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Errorf("status %d, want %d", rec.Code, tt.wantCode)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body %q, want %q", rec.Body.String(), tt.wantBody)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		args    []string
		want    options
		wantErr bool
	}{
		{"default", "", nil, options{listen: defaultListen}, false},
		{"env", "127.0.0.1:9001", nil, options{listen: "127.0.0.1:9001"}, false},
		{"flag beats env", "127.0.0.1:9001", []string{"--listen", "127.0.0.1:9002"}, options{listen: "127.0.0.1:9002"}, false},
		{"pidfile and version", "", []string{"--pidfile", "p", "--version"}, options{listen: defaultListen, pidfile: "p", showVersion: true}, false},
		{"stray argument", "", []string{"serve"}, options{}, true},
		{"unknown flag", "", []string{"--bogus"}, options{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SAMPLEAGENT_LISTEN", tt.env)
			got, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %t", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestIsHealthy(t *testing.T) {
	old := healthy
	t.Cleanup(func() { healthy = old })
	for in, want := range map[string]bool{"true": true, "": true, "false": false, "FALSE": false, " false ": false, "no": true} {
		healthy = in
		if got := isHealthy(); got != want {
			t.Errorf("healthy=%q: isHealthy() = %t, want %t", in, got, want)
		}
	}
}

// build links the sample agent with ldflags into dir and returns its path.
func build(t *testing.T, dir, ldflags string) string {
	t.Helper()
	exe := filepath.Join(dir, "sampleagent")
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", exe, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags %q: %v\n%s", ldflags, err, out)
	}
	return exe
}

// TestBinary builds a good and a bad release from the same source and
// checks --version, /healthz, the pidfile and a clean exit on SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM is not deliverable on Windows")
	}
	tests := []struct {
		name       string
		ldflags    string
		wantVer    string
		wantStatus int
	}{
		{"good release", "-X main.version=1.1.0", "1.1.0", http.StatusOK},
		{"bad release", "-X main.version=1.2.0 -X main.healthy=false", "1.2.0", http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			exe := build(t, dir, tt.ldflags)

			out, err := exec.Command(exe, "--version").Output()
			if err != nil {
				t.Fatalf("--version: %v", err)
			}
			if string(out) != tt.wantVer+"\n" {
				t.Errorf("--version printed %q, want %q", out, tt.wantVer+"\n")
			}

			pidfile := filepath.Join(dir, "sampleagent.pid")
			cmd := exec.Command(exe, "--listen", "127.0.0.1:0", "--pidfile", pidfile)
			cmd.Env = append(os.Environ(), "SAMPLEAGENT_LISTEN=")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill() //nolint:errcheck // best effort on failure paths

			var logs bytes.Buffer
			addrc := make(chan string, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					line := sc.Text()
					logs.WriteString(line + "\n")
					if _, rest, ok := strings.Cut(line, " listening on "); ok {
						addrc <- strings.Fields(rest)[0]
					}
				}
			}()
			var addr string
			select {
			case addr = <-addrc:
			case <-time.After(30 * time.Second):
				t.Fatal("no 'listening on' log line")
			}

			pid, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatalf("pidfile: %v", err)
			}
			if got := strings.TrimSpace(string(pid)); got != strconv.Itoa(cmd.Process.Pid) {
				t.Errorf("pidfile holds %q, want %d", got, cmd.Process.Pid)
			}

			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("/healthz: %d, want %d", resp.StatusCode, tt.wantStatus)
			}

			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			<-done
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			waitErr := make(chan error, 1)
			go func() { waitErr <- cmd.Wait() }()
			select {
			case err := <-waitErr:
				if err != nil {
					t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
				}
			case <-ctx.Done():
				t.Fatal("did not exit after SIGTERM")
			}
			if !strings.Contains(logs.String(), "stopped") {
				t.Errorf("no 'stopped' log line:\n%s", logs.String())
			}
			if _, err := os.Stat(pidfile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pidfile not removed at exit: %v", err)
			}
		})
	}
}

// TestFailAfter: the failAfter stamp parses as a duration (anything else
// is never), and /healthz follows the health it is given at each request.
func TestFailAfter(t *testing.T) {
	old := failAfter
	t.Cleanup(func() { failAfter = old })
	for in, want := range map[string]time.Duration{"": 0, "20s": 20 * time.Second, " 1m ": time.Minute, "soon": 0, "-5s": 0} {
		failAfter = in
		if got := failsAfter(); got != want {
			t.Errorf("failAfter=%q: %s, want %s", in, got, want)
		}
	}
	ok := true
	h := healthHandler(func() bool { return ok })
	for _, want := range []int{http.StatusOK, http.StatusServiceUnavailable} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		if rec.Code != want {
			t.Errorf("healthy %v: /healthz %d, want %d", ok, rec.Code, want)
		}
		ok = false
	}
}
