// Package daemon manages poolagent's own service: installing it with the
// host's service manager (systemd, the Windows Service Control Manager,
// launchd), starting, stopping and querying it, and running the daemon's
// main loop under that manager or in the foreground.
//
// It wraps github.com/kardianos/service behind typed structs: kardianos's
// untyped KeyValue options never leave this package. On systemd the unit is
// rendered from this package's own template (see [Config] and
// [SystemdHardening]) because kardianos's built-in unit cannot carry
// sandboxing directives and restarts only after 120 s; on Windows and launchd
// kardianos's own service definitions are used with typed options mapped
// onto them. docs/platform.md describes what each platform gets.
//
// The main loop is a [Program], a func(ctx) error. [Manager.Run] calls it
// once and cancels its context when the service manager asks the service to
// stop, or on SIGTERM or SIGINT (Ctrl-C) in the foreground. Run returns the
// program's error, so main can exit non-zero and let the service manager
// restart the daemon.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/kardianos/service"
	"go.uber.org/zap"
)

// Defaults applied by [New] to zero fields of [Config].
const (
	DefaultRestartDelay = 5 * time.Second
	DefaultStopTimeout  = 30 * time.Second
)

// Errors an operator or a caller may need to tell apart.
var (
	// ErrNotInstalled is returned when the service is not installed.
	ErrNotInstalled = errors.New("service is not installed")
	// ErrAlreadyInstalled is returned by Install when the service exists.
	ErrAlreadyInstalled = errors.New("service is already installed")
	// ErrNoServiceManager is returned when no supported service manager
	// was found on this host (e.g. in a container without systemd).
	ErrNoServiceManager = errors.New("no supported service manager found (systemd, upstart, SysV init, OpenRC, Windows SCM, launchd)")
	// ErrStopTimeout is returned by Run when the program did not return
	// within Config.StopTimeout after its context was cancelled.
	ErrStopTimeout = errors.New("program did not stop in time")
)

// RestartPolicy says when the service manager restarts the daemon.
type RestartPolicy string

// Restart policies. Not every service manager can express every policy:
// Windows restarts only after a failure (a clean stop is final), and
// launchd's KeepAlive restarts after any exit. See docs/platform.md.
const (
	// RestartOnFailure restarts after a non-zero exit or a crash. Default.
	RestartOnFailure RestartPolicy = "on-failure"
	// RestartAlways restarts after any exit except an explicit stop.
	RestartAlways RestartPolicy = "always"
	// RestartNever never restarts the service.
	RestartNever RestartPolicy = "no"
)

// Config describes the daemon's service. Zero values take the documented
// defaults; Name is required.
type Config struct {
	// Name is the service name: the systemd unit "<Name>.service", the
	// Windows service name, the launchd label. Letters, digits, '.', '_'
	// and '-' only.
	Name string
	// DisplayName is the human-readable name (Windows); defaults to Name.
	DisplayName string
	// Description is shown by the service manager.
	Description string
	// Executable is the absolute path of the binary to run; empty means
	// the currently running executable.
	Executable string
	// Arguments are passed to Executable.
	Arguments []string
	// User runs the service as this account; empty means root on Unix and
	// LocalSystem on Windows. On Windows it must be an account that needs
	// no password (e.g. "NT AUTHORITY\LocalService" or a gMSA "DOMAIN\svc$");
	// passwords are not supported.
	User string
	// WorkingDirectory is the initial directory (not used on Windows).
	WorkingDirectory string
	// Env holds extra environment variables for the service. Names must be
	// identifiers; values must not contain control characters.
	Env map[string]string
	// Dependencies are services to start before this one: systemd unit
	// names (rendered as After= and Wants=) or Windows service names.
	// Ignored by launchd. On systemd "network-online.target" is always
	// added, since the daemon must reach its control plane.
	Dependencies []string
	// Restart is when the service manager restarts the daemon;
	// empty means RestartOnFailure.
	Restart RestartPolicy
	// RestartDelay is how long the manager waits before a restart;
	// zero means DefaultRestartDelay. Whole seconds on systemd.
	RestartDelay time.Duration
	// StopTimeout is how long Run waits for the program to return after
	// cancelling its context; zero means DefaultStopTimeout. systemd's
	// TimeoutStopSec is set 10 s beyond it.
	StopTimeout time.Duration
	// LimitNOFILE sets the open-files limit on systemd; zero leaves the
	// system default.
	LimitNOFILE int
	// Hardening selects systemd sandboxing; nil means
	// DefaultSystemdHardening(). Ignored elsewhere.
	Hardening *SystemdHardening
	// RestartForceExitStatus are exit codes after which systemd restarts
	// the daemon whatever Restart says (e.g. "restart me" after a
	// self-update). Ignored elsewhere.
	RestartForceExitStatus []int
	// StateDirectory, on systemd, has systemd create /var/lib/<it> (mode
	// 0700) and keep it writable under ProtectSystem. Ignored elsewhere.
	StateDirectory string
	// Documentation is a URL for the unit's Documentation= (systemd only).
	Documentation string
	// SystemdNotes are comment lines written at the top of the systemd
	// unit, for the operator who reads it ("" is an empty comment line).
	SystemdNotes []string
	// DelayedAutoStart starts the service a little after boot on Windows,
	// so that it does not slow the boot down.
	DelayedAutoStart bool
}

// SystemdHardening selects sandboxing directives for the systemd unit. The
// daemon runs as root, replaces other programs' binaries, writes their unit
// files and runs their installers, so the defaults only remove abilities it
// never needs; tighter settings (ProtectSystem, NoNewPrivileges) must be
// matched with ReadWritePaths for every directory the agents live in.
type SystemdHardening struct {
	// NoNewPrivileges=yes: no privilege gain through setuid binaries or
	// file capabilities, for the daemon and everything it runs (including
	// installers and their SELinux transitions).
	NoNewPrivileges bool
	// ProtectSystem is "", "yes", "full" or "strict" (systemd's values).
	ProtectSystem string
	// ProtectHome is "", "yes", "read-only" or "tmpfs".
	ProtectHome string
	// ReadWritePaths are absolute paths left writable under ProtectSystem;
	// a leading '-' ignores a path that does not exist.
	ReadWritePaths []string
	// PrivateTmp gives the daemon and its children a private /tmp.
	PrivateTmp bool
	// ProtectKernelModules, ProtectKernelLogs, ProtectKernelTunables,
	// ProtectControlGroups, ProtectClock and ProtectHostname forbid
	// loading modules, reading the kernel log, writing /proc/sys and
	// /sys, writing cgroupfs, setting the clock and the hostname.
	ProtectKernelModules  bool
	ProtectKernelLogs     bool
	ProtectKernelTunables bool
	ProtectControlGroups  bool
	ProtectClock          bool
	ProtectHostname       bool
	// RestrictRealtime forbids realtime scheduling.
	RestrictRealtime bool
	// LockPersonality locks the execution domain (personality(2)).
	LockPersonality bool
}

// DefaultSystemdHardening is the sandboxing applied when Config.Hardening is
// nil: what a root updater never needs. ProtectKernelTunables is off because
// package installers the daemon runs may apply sysctl settings.
func DefaultSystemdHardening() SystemdHardening {
	return SystemdHardening{
		ProtectKernelModules: true,
		ProtectKernelLogs:    true,
		ProtectControlGroups: true,
		ProtectClock:         true,
		ProtectHostname:      true,
		RestrictRealtime:     true,
		LockPersonality:      true,
	}
}

// Status is the state of the installed service.
type Status int

// Service states.
const (
	// StatusUnknown means the state could not be determined.
	StatusUnknown Status = iota
	// StatusNotInstalled means the service manager does not know the service.
	StatusNotInstalled
	// StatusStopped means the service is installed and not running.
	StatusStopped
	// StatusRunning means the service is running (or starting).
	StatusRunning
	// StatusFailed means the service is installed, not running, and the
	// service manager recorded a failure (systemd's "failed" state).
	StatusFailed
)

// String returns the status in lower case, e.g. "not installed".
func (s Status) String() string {
	switch s {
	case StatusNotInstalled:
		return "not installed"
	case StatusStopped:
		return "stopped"
	case StatusRunning:
		return "running"
	case StatusFailed:
		return "failed"
	default:
		return "unknown"
	}
}

// Manager manages one service. Its methods talk to the host's service
// manager and need root or Administrator rights, except Status and Run.
type Manager struct {
	cfg  Config
	kcfg *service.Config
	log  *zap.Logger

	// interactive reports whether the process runs outside a service
	// manager; tests replace it.
	interactive func() bool
}

// New validates cfg, applies defaults and returns a Manager. It does not
// touch the system. log may be nil.
func New(cfg Config, log *zap.Logger) (*Manager, error) {
	cfg = withDefaults(cfg)
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("daemon config: %w", err)
	}
	kcfg := toKardianos(cfg, runtime.GOOS)
	if log == nil {
		log = zap.NewNop()
	}
	return &Manager{cfg: cfg, kcfg: kcfg, log: log.Named("daemon"), interactive: service.Interactive}, nil
}

// Interactive reports whether this process runs outside a service manager
// (from a terminal, a script or a container entrypoint).
func Interactive() bool {
	return service.Interactive()
}

// ServiceArguments returns the arguments that Install registers for c with
// goos's service manager (kardianos's Config.Arguments): what the service
// manager passes to Config.Executable.
func ServiceArguments(c Config, goos string) []string {
	return toKardianos(withDefaults(c), goos).Arguments
}

// ServiceManager names the service manager kardianos detected, e.g.
// "linux-systemd", "windows-service", "darwin-launchd"; empty if none.
func ServiceManager() string {
	return service.Platform()
}

func withDefaults(c Config) Config {
	if c.DisplayName == "" {
		c.DisplayName = c.Name
	}
	if c.Restart == "" {
		c.Restart = RestartOnFailure
	}
	if c.RestartDelay == 0 {
		c.RestartDelay = DefaultRestartDelay
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Hardening == nil {
		h := DefaultSystemdHardening()
		c.Hardening = &h
	}
	return c
}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	unitRE   = regexp.MustCompile(`^[A-Za-z0-9@._:\\-]+$`)
)

// validate checks a Config with defaults applied. Values that end up in the
// systemd unit are checked so that none can inject a line or a template
// action into it.
func (c Config) validate() error {
	var errs []error
	if !nameRE.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name %q: want letters, digits, '.', '_' or '-'", c.Name))
	}
	for field, v := range map[string]string{
		"display name": c.DisplayName, "description": c.Description, "executable": c.Executable,
		"user": c.User, "working directory": c.WorkingDirectory,
	} {
		if err := checkText(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	for i, a := range c.Arguments {
		if err := checkText(a); err != nil {
			errs = append(errs, fmt.Errorf("argument %d: %w", i, err))
		}
	}
	if c.Executable != "" && !isAbs(c.Executable) {
		errs = append(errs, fmt.Errorf("executable %q: want an absolute path", c.Executable))
	}
	for k, v := range c.Env {
		if !envKeyRE.MatchString(k) {
			errs = append(errs, fmt.Errorf("environment variable name %q: want letters, digits and '_'", k))
		}
		if err := checkText(v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s: %w", k, err))
		}
	}
	for _, d := range c.Dependencies {
		if !unitRE.MatchString(d) {
			errs = append(errs, fmt.Errorf("dependency %q: want a unit or service name", d))
		}
	}
	for _, code := range c.RestartForceExitStatus {
		if code < 1 || code > 255 {
			errs = append(errs, fmt.Errorf("forced-restart exit status %d: want 1 to 255", code))
		}
	}
	if c.StateDirectory != "" && (!unitRE.MatchString(c.StateDirectory) || strings.Contains(c.StateDirectory, "..")) {
		errs = append(errs, fmt.Errorf("state directory %q: want a name under /var/lib", c.StateDirectory))
	}
	if err := checkText(c.Documentation); err != nil || strings.ContainsAny(c.Documentation, " %") {
		errs = append(errs, fmt.Errorf("documentation %q: want a URL without spaces or '%%'", c.Documentation))
	}
	for i, n := range c.SystemdNotes {
		if err := checkText(n); err != nil {
			errs = append(errs, fmt.Errorf("systemd note %d: %w", i, err))
		}
	}
	switch c.Restart {
	case RestartOnFailure, RestartAlways, RestartNever:
	default:
		errs = append(errs, fmt.Errorf("restart policy %q: want %q, %q or %q", c.Restart, RestartOnFailure, RestartAlways, RestartNever))
	}
	if c.RestartDelay < 0 || c.StopTimeout < 0 {
		errs = append(errs, errors.New("restart delay and stop timeout must not be negative"))
	}
	if c.LimitNOFILE < 0 {
		errs = append(errs, fmt.Errorf("open files limit %d: must not be negative", c.LimitNOFILE))
	}
	if h := c.Hardening; h != nil {
		if !oneOf(h.ProtectSystem, "", "yes", "true", "full", "strict") {
			errs = append(errs, fmt.Errorf("ProtectSystem %q: want yes, full or strict", h.ProtectSystem))
		}
		if !oneOf(h.ProtectHome, "", "yes", "true", "read-only", "tmpfs") {
			errs = append(errs, fmt.Errorf("ProtectHome %q: want yes, read-only or tmpfs", h.ProtectHome))
		}
		for _, p := range h.ReadWritePaths {
			if err := checkText(p); err != nil || !strings.HasPrefix(strings.TrimPrefix(p, "-"), "/") || strings.ContainsAny(p, " \t%") {
				errs = append(errs, fmt.Errorf("read-write path %q: want an absolute path without spaces or '%%'", p))
			}
		}
	}
	return errors.Join(errs...)
}

// checkText rejects characters that could break a service definition:
// control characters (newlines end a unit line) and template delimiters.
func checkText(s string) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("contains a control character")
		}
	}
	if strings.Contains(s, "{{") || strings.Contains(s, "}}") {
		return errors.New(`contains "{{" or "}}"`)
	}
	return nil
}

// isAbs accepts Unix and Windows absolute paths whatever the build OS, so
// that a Config can be validated anywhere.
func isAbs(p string) bool {
	if strings.HasPrefix(p, "/") {
		return true
	}
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

func oneOf(s string, vals ...string) bool {
	for _, v := range vals {
		if s == v {
			return true
		}
	}
	return false
}

// Install registers the service with the service manager, enabled to start
// at boot. It does not start it. It returns ErrAlreadyInstalled if the
// service exists.
func (m *Manager) Install(ctx context.Context) error {
	st, err := m.Status(ctx)
	if err == nil && st != StatusNotInstalled {
		return fmt.Errorf("install service %q: %w (status %s); uninstall it first", m.cfg.Name, ErrAlreadyInstalled, st)
	}
	return m.do(ctx, "install", func(s service.Service) error { return s.Install() })
}

// Uninstall removes the service definition. A running service should be
// stopped first; systemd keeps running a removed unit until it stops.
func (m *Manager) Uninstall(ctx context.Context) error {
	if st, err := m.Status(ctx); err == nil && st == StatusNotInstalled {
		return fmt.Errorf("uninstall service %q: %w", m.cfg.Name, ErrNotInstalled)
	}
	return m.do(ctx, "uninstall", func(s service.Service) error { return s.Uninstall() })
}

// Start asks the service manager to start the service.
func (m *Manager) Start(ctx context.Context) error {
	return m.do(ctx, "start", func(s service.Service) error { return s.Start() })
}

// Stop asks the service manager to stop the service.
func (m *Manager) Stop(ctx context.Context) error {
	return m.do(ctx, "stop", func(s service.Service) error { return s.Stop() })
}

// Restart asks the service manager to restart the service. Called from the
// daemon itself (after a self-update) the call may not return: the manager
// stops this process as part of the restart.
func (m *Manager) Restart(ctx context.Context) error {
	return m.do(ctx, "restart", func(s service.Service) error { return s.Restart() })
}

// Status asks the service manager for the service's state. A service that is
// not installed is StatusNotInstalled with a nil error.
func (m *Manager) Status(ctx context.Context) (Status, error) {
	var st Status
	err := m.do(ctx, "query status of", func(s service.Service) error {
		var err error
		st, err = mapStatus(s.Status())
		return err
	})
	if err != nil {
		return StatusUnknown, err
	}
	return st, nil
}

// do runs one kardianos operation. kardianos offers no cancellation: when
// ctx ends first, do returns at once and the operation (a systemctl or SCM
// call) finishes in the background.
func (m *Manager) do(ctx context.Context, op string, f func(service.Service) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s service %q: %w", op, m.cfg.Name, err)
	}
	s, err := m.newService(&program{})
	if err != nil {
		return fmt.Errorf("%s service %q: %w", op, m.cfg.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- f(s) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s service %q with %s: %w%s", op, m.cfg.Name, service.Platform(), err, permissionHint(err))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s service %q: gave up waiting for the service manager (the operation may still complete): %w", op, m.cfg.Name, ctx.Err())
	}
}

func (m *Manager) newService(i service.Interface) (service.Service, error) {
	kcfg := *m.kcfg
	kcfg.Option = make(service.KeyValue, len(m.kcfg.Option)+1)
	for k, v := range m.kcfg.Option {
		kcfg.Option[k] = v
	}
	if p, ok := i.(*program); ok && p.runWait != nil {
		kcfg.Option["RunWait"] = p.runWait
	}
	s, err := service.New(i, &kcfg)
	if errors.Is(err, service.ErrNoServiceSystemDetected) {
		return nil, ErrNoServiceManager
	}
	return s, err
}

func permissionHint(err error) string {
	if errors.Is(err, os.ErrPermission) {
		return " (run as root, or as Administrator on Windows)"
	}
	return ""
}

// mapStatus maps kardianos's status and error to a Status. kardianos reports
// "not installed" and systemd's "failed" state as errors.
func mapStatus(st service.Status, err error) (Status, error) {
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		return StatusNotInstalled, nil
	case err != nil && err.Error() == "service in failed state":
		// kardianos's systemd backend has no sentinel for this.
		return StatusFailed, nil
	case err != nil:
		return StatusUnknown, err
	}
	switch st {
	case service.StatusRunning:
		return StatusRunning, nil
	case service.StatusStopped:
		return StatusStopped, nil
	default:
		return StatusUnknown, nil
	}
}
