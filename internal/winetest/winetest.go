// Package winetest runs Windows programs under Wine for the Windows test
// suite (test/windows): it creates a throwaway Wine prefix, installs the
// bcryptprimitives.dll shim that Go programs need on Wine 8, runs programs
// with their output in files, drives the Service Control Manager with sc,
// and cross-compiles Go programs for windows/amd64.
//
// Wine's helper processes (wineserver, services.exe) inherit the standard
// streams of the first program of a prefix and keep them open: a caller
// waiting on a pipe would wait for ever. So every program runs with its
// standard input closed and its output in files, never pipes.
package winetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// EnvEnable is the environment variable that enables the Windows suite
// ("1"); without it the suite skips, unless EnvRequire is set.
const EnvEnable = "POOLAGENT_TEST_WINE"

// EnvRequire, set to "1" (by `make test-windows` in CI), makes the suite
// fail rather than skip when Wine or mingw-w64 is missing.
const EnvRequire = "POOLAGENT_TEST_WINE_REQUIRED"

// Tools are the programs the suite needs.
type Tools struct {
	Wine       string // the 64-bit loader (wine64)
	Wineserver string
	MinGW      string // x86_64-w64-mingw32-gcc, builds the shim
}

// FindTools looks the programs up, preferring Debian's 64-bit loader
// (/usr/lib/wine/wine64) to the `wine` wrapper script, which warns about a
// missing wine32 on every call.
func FindTools() (Tools, error) {
	var t Tools
	var missing []string
	find := func(names ...string) string {
		for _, n := range names {
			if filepath.IsAbs(n) {
				if st, err := os.Stat(n); err == nil && !st.IsDir() {
					return n
				}
				continue
			}
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
		}
		missing = append(missing, names[len(names)-1])
		return ""
	}
	t.Wine = find("/usr/lib/wine/wine64", "wine64", "wine")
	t.Wineserver = find("/usr/lib/wine/wineserver64", "/usr/lib/wine/wineserver", "wineserver")
	t.MinGW = find("x86_64-w64-mingw32-gcc")
	if len(missing) > 0 {
		return t, fmt.Errorf("not installed: %s (Debian: apt-get install wine wine64 gcc-mingw-w64-x86-64)", strings.Join(missing, ", "))
	}
	return t, nil
}

// Wine is one Wine prefix: a fresh Windows installation in a directory.
type Wine struct {
	Tools
	// Prefix is WINEPREFIX.
	Prefix string
	// Dir holds the output files of the programs run.
	Dir string
	seq int
}

// NewPrefix creates a Wine prefix in dir/prefix (wineboot; half a minute
// or more), and installs the bcryptprimitives.dll shim built from shimSrc
// (a C file) into its system32. Close ends its processes.
func NewPrefix(ctx context.Context, t Tools, dir, shimSrc string) (*Wine, error) {
	w := &Wine{Tools: t, Prefix: filepath.Join(dir, "prefix"), Dir: filepath.Join(dir, "out")}
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		return nil, err
	}
	if res, err := w.Run(ctx, "wineboot", "--init"); err != nil {
		return nil, fmt.Errorf("create the Wine prefix: %w\n%s", err, res)
	}
	dll := filepath.Join(w.Prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll")
	if err := BuildShim(ctx, t.MinGW, shimSrc, dll); err != nil {
		w.Close()
		return nil, err
	}
	// Let the first boot finish (its services, then the wineserver) so
	// that the Service Control Manager of the tests starts idle.
	w.wait()
	return w, nil
}

// BuildShim compiles the C source of bcryptprimitives.dll (exporting
// ProcessPrng, which Go >= 1.22 loads and Wine 8 lacks) into out.
func BuildShim(ctx context.Context, mingw, src, out string) error {
	cmd := exec.CommandContext(ctx, mingw, "-shared", "-O2", "-o", out, src, "-ladvapi32")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the bcryptprimitives.dll shim: %w: %s", err, b)
	}
	return nil
}

// Env is the environment of programs run in the prefix.
func (w *Wine) Env() []string {
	return append(os.Environ(), "WINEPREFIX="+w.Prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=")
}

// Result is a finished program's exit code and output.
type Result struct {
	Code   int
	Stdout string
	Stderr string
}

// String shows the result for a failure message.
func (r Result) String() string {
	return fmt.Sprintf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// outFiles opens two fresh output files named after name.
func (w *Wine) outFiles(name string) (stdout, stderr *os.File, err error) {
	w.seq++
	base := filepath.Join(w.Dir, fmt.Sprintf("%03d-%s", w.seq, sanitize(name)))
	if stdout, err = os.Create(base + ".out"); err != nil {
		return nil, nil, err
	}
	if stderr, err = os.Create(base + ".err"); err != nil {
		stdout.Close()
		return nil, nil, err
	}
	return stdout, stderr, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func sanitize(s string) string {
	s = unsafeName.ReplaceAllString(filepath.Base(s), "_")
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

// Command returns a command running program (a Windows path, a Unix path
// of a .exe, or a builtin such as "sc") under Wine, with the prefix's
// environment and no standard input. The caller sets Stdout and Stderr to
// files.
func (w *Wine) Command(ctx context.Context, program string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, w.Wine, append([]string{program}, args...)...)
	cmd.Env = w.Env()
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Run runs program under Wine to completion. A non-zero exit code is not
// an error: it is in the Result.
func (w *Wine) Run(ctx context.Context, program string, args ...string) (Result, error) {
	stdout, stderr, err := w.outFiles(program)
	if err != nil {
		return Result{}, err
	}
	defer stdout.Close()
	defer stderr.Close()
	cmd := w.Command(ctx, program, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	res := Result{Code: -1}
	if cmd.ProcessState != nil {
		res.Code = cmd.ProcessState.ExitCode()
	}
	o, _ := os.ReadFile(stdout.Name())
	e, _ := os.ReadFile(stderr.Name())
	res.Stdout, res.Stderr = string(o), string(e)
	var exitErr *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exitErr) {
		return res, fmt.Errorf("wine %s: %w", program, runErr)
	}
	return res, nil
}

// Process is a program started in the background under Wine.
type Process struct {
	Cmd *exec.Cmd
	// Log holds its standard output and error.
	Log  string
	done chan struct{}
}

// Start starts program under Wine in the background, its standard output
// and error appended to logPath.
func (w *Wine) Start(program, logPath string, args ...string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := w.Command(context.Background(), program, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s under Wine: %w", program, err)
	}
	p := &Process{Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode is the exit code once Done is closed.
func (p *Process) ExitCode() int { return p.Cmd.ProcessState.ExitCode() }

// Kill kills the process and waits for it.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Close kills every process of the prefix (wineserver -k) and waits for
// the wineserver to go.
func (w *Wine) Close() {
	cmd := exec.Command(w.Wineserver, "-k")
	cmd.Env = w.Env()
	_ = cmd.Run()
	w.wait()
}

// wait waits, at most a minute, until the prefix's wineserver has exited:
// every program and service of the prefix has ended.
func (w *Wine) wait() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.Wineserver, "-w")
	cmd.Env = w.Env()
	cmd.WaitDelay = 5 * time.Second
	_ = cmd.Run()
}

// WindowsPath is the path of a Unix file as Wine's programs see it, on
// drive Z: (the Unix root).
func WindowsPath(unixPath string) string {
	p, err := filepath.Abs(unixPath)
	if err != nil {
		p = unixPath
	}
	return `Z:` + strings.ReplaceAll(p, "/", `\`)
}

// SC runs Wine's sc.exe with args.
func (w *Wine) SC(ctx context.Context, args ...string) (Result, error) {
	return w.Run(ctx, "sc", args...)
}

var stateRE = regexp.MustCompile(`STATE\s*:\s*\d+\s+(\w+)`)

// ServiceState returns the state `sc query name` shows, e.g. "RUNNING",
// "STOPPED", "START_PENDING"; "" with an error when the service is unknown.
func (w *Wine) ServiceState(ctx context.Context, name string) (string, Result, error) {
	res, err := w.SC(ctx, "query", name)
	if err != nil {
		return "", res, err
	}
	m := stateRE.FindStringSubmatch(res.Stdout)
	if m == nil {
		return "", res, fmt.Errorf("sc query %s: no state in the output (%s)", name, res)
	}
	return m[1], res, nil
}

var imagePathRE = regexp.MustCompile(`ImagePath\s+REG_\w+\s+(.*)`)

// ServiceCommandLine returns the command line registered for the service
// name (its ImagePath; Wine's sc has no qc).
func (w *Wine) ServiceCommandLine(ctx context.Context, name string) (string, error) {
	res, err := w.Run(ctx, "reg", "query", `HKLM\System\CurrentControlSet\Services\`+name, "/v", "ImagePath")
	if err != nil {
		return "", err
	}
	m := imagePathRE.FindStringSubmatch(res.Stdout)
	if res.Code != 0 || m == nil {
		return "", fmt.Errorf("reg query the ImagePath of service %s: %s", name, res)
	}
	return strings.TrimSpace(m[1]), nil
}

// WaitServiceState polls `sc query name` until the service is in state,
// or timeout passes.
func (w *Wine) WaitServiceState(ctx context.Context, name, state string, timeout time.Duration) (Result, error) {
	deadline := time.Now().Add(timeout)
	for {
		got, res, err := w.ServiceState(ctx, name)
		if err == nil && got == state {
			return res, nil
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("service %s is %q, not %s, after %s (%v)", name, got, state, timeout, err)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// GoBuild cross-compiles the Go package pkg (e.g. "./cmd/poolagent") of the
// module in root for windows/amd64 without cgo into out, with ldflags.
func GoBuild(ctx context.Context, root, out, pkg, ldflags string) error {
	args := []string{"build", "-trimpath", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	var out2 bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out2, &out2
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for windows/amd64: %w\n%s", pkg, err, out2.String())
	}
	return nil
}

// GoTestBinary compiles the tests of the Go package pkg for windows/amd64
// into out (go test -c), to be run under Wine.
func GoTestBinary(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go test -c %s for windows/amd64: %w\n%s", pkg, err, b.String())
	}
	return nil
}

// WaitProgramGone polls /proc until no process of this prefix runs the
// program whose Windows file name is exe (e.g. "poolagent.exe"), or timeout
// passes. A service reports STOPPED to the Service Control Manager a moment
// before its process exits, and Windows keeps a running program's file
// locked until then.
func (w *Wine) WaitProgramGone(ctx context.Context, exe string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := w.programPIDs(exe)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still runs in the Wine prefix after %s (pids %v)", exe, timeout, pids)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// programPIDs lists the processes whose command line names exe and whose
// WINEPREFIX is this prefix's (other tests run their own prefixes).
func (w *Wine) programPIDs(exe string) ([]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	lowExe := strings.ToLower(exe)
	prefixVar := []byte("WINEPREFIX=" + w.Prefix + "\x00")
	var pids []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(strings.ToLower(string(cmdline)), lowExe) {
			continue // gone, or another program
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append(env, 0), prefixVar) {
			continue
		}
		pids = append(pids, e.Name())
	}
	return pids, nil
}
