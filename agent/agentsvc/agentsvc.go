// Package agentsvc is the one definition of poolagent's own service: the
// daemon.Config that `poolagent install` registers with the host's service
// manager and that the .deb and .rpm ship as
// packaging/systemd/poolagent.service (rendered by daemon.SystemdUnit from
// Packaged; a test keeps the file equal to it). The two units differ only
// in the paths they are given.
package agentsvc

import (
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/poolagent/poolagent/platform/daemon"
)

// Name is the service's name: poolagent.service, the Windows service, the
// launchd label.
const Name = "poolagent"

// ExitRestart is the exit status with which poolagent asks to be started
// again (agent.ExitRestart); systemd restarts it whatever Restart= says.
const ExitRestart = 10

// ServiceFlag is the flag of `poolagent run` that the registered command
// line carries: it declares that the service manager started poolagent, so
// that on Windows it talks to the Service Control Manager without guessing
// (kardianos/service's guess, svc.IsWindowsService, fails under Wine and in
// other unusual sessions). `poolagent run` without it runs in the foreground.
const ServiceFlag = "--service"

// StopTimeout is how long the daemon has to stop its jobs and agents.
const StopTimeout = 60 * time.Second

// defaultStateDir is the Linux state dir that systemd's StateDirectory=
// creates and keeps writable.
const defaultStateDir = "/var/lib/poolagent"

// Options are the host-specific paths of the service.
type Options struct {
	// Executable is poolagent's absolute path (its directory stays
	// writable under ProtectSystem, for self-updates).
	Executable string
	// ConfigPath is the configuration file given to `poolagent run`.
	ConfigPath string
	// StateDir is the config's state_dir.
	StateDir string
	// WritablePaths are further directories poolagent writes: the config's
	// install_roots and a local API socket outside the state dir.
	WritablePaths []string
	// GOOS is the target OS; empty: this one. Only Linux gets the systemd
	// sandbox paths.
	GOOS string
}

// Packaged are the paths of the Linux packages.
var Packaged = Options{
	Executable: "/usr/bin/poolagent",
	ConfigPath: "/etc/poolagent/poolagent.toml",
	StateDir:   defaultStateDir,
	GOOS:       "linux",
}

// baseWritable are left writable on every host (a leading '-' ignores a
// missing one): where agents usually live.
var baseWritable = []string{"/opt", "/usr/local"}

// notes head the systemd unit.
var notes = []string{
	"poolagent: keeps this host's managed agents up to date.",
	"",
	"The .deb and .rpm install this unit as /usr/lib/systemd/system/poolagent.service;",
	"`poolagent install` writes the same unit, with its own paths, as",
	"/etc/systemd/system/poolagent.service, which overrides the package's: use one",
	"or the other. Local changes belong in a drop-in (`systemctl edit poolagent`):",
	"a package upgrade or a reinstall replaces this file.",
	"",
	"Hardening, and its trade-off. poolagent runs as root because it stops,",
	"replaces and starts other programs: it writes their binaries under its",
	"install_roots and its own binary (self-update), and talks to systemd to stop",
	"and start their units. So:",
	"",
	"- ProtectSystem=strict makes the whole file system read-only except the",
	"  ReadWritePaths=. They MUST cover every install_roots entry of the",
	"  configuration: a swap outside them fails with EROFS (\"read-only file",
	"  system\") and is rolled back. They cover /opt, /usr/local and poolagent's own",
	"  directory; `poolagent install` adds the install_roots and a state_dir",
	"  other than /var/lib/poolagent. A leading \"-\" ignores a path that does not",
	"  exist. Add others in a drop-in:",
	"      [Service]",
	"      ReadWritePaths=/srv/agents",
	"  Hosts where agents are updated by running package installers (scriptlets",
	"  writing all over /usr and /etc) need ProtectSystem=no in a drop-in instead.",
	"- NoNewPrivileges is off: package scriptlets may need setuid helpers and",
	"  SELinux domain transitions, which it would block.",
	"- Agents that poolagent supervises as child processes (an agent's `command`)",
	"  inherit this sandbox, including the read-only file system and the private",
	"  /tmp; agents run as their own systemd units (`service`) do not.",
	"- ProtectHome and PrivateTmp: managed agents do not live in /home, and",
	"  poolagent stages downloads in its state directory, not /tmp.",
	"",
	"After replacing its own binary poolagent exits with status 10, and a new",
	"binary that must roll back exits non-zero: the restart starts whichever",
	"binary is then in place. Status 10 restarts even if Restart= is changed.",
	"TimeoutStopSec= is the daemon's 60 s stop budget plus 10 s; then SIGKILL",
	"reaches leftovers (e.g. a supervised agent).",
}

// Hardening is poolagent's systemd sandbox, with ReadWritePaths set by
// Config.
func Hardening() daemon.SystemdHardening {
	h := daemon.DefaultSystemdHardening()
	h.ProtectSystem = "strict"
	h.ProtectHome = "yes"
	h.PrivateTmp = true
	return h
}

// Config returns poolagent's service definition for o, and the writable
// paths it could not list in the unit (a space, '%' or a control character:
// ReadWritePaths= is a space-separated list), which the operator must add
// in a drop-in.
func Config(o Options) (daemon.Config, []string) {
	goos := o.GOOS
	if goos == "" {
		goos = runtime.GOOS
	}
	c := daemon.Config{
		Name:                   Name,
		DisplayName:            Name,
		Description:            "poolagent: keeps this host's managed agents up to date",
		Documentation:          "https://github.com/poolagent/poolagent/blob/main/docs/install.md",
		Executable:             o.Executable,
		Arguments:              []string{"run", ServiceFlag, "--config", o.ConfigPath},
		Restart:                daemon.RestartOnFailure,
		RestartForceExitStatus: []int{ExitRestart},
		StopTimeout:            StopTimeout,
		SystemdNotes:           notes,
	}
	h := Hardening()
	var skipped []string
	if goos == "linux" {
		if o.StateDir == "" || o.StateDir == defaultStateDir {
			c.StateDirectory = "poolagent"
		}
		var paths []string
		add := func(p string, optional bool) {
			p = filepath.Clean(p)
			if covered(p, paths) {
				return
			}
			if strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == '%' || r == 0x7f }) || strings.Contains(p, "{{") {
				skipped = append(skipped, p)
				return
			}
			if optional {
				p = "-" + p
			}
			paths = append(paths, p)
		}
		for _, p := range baseWritable {
			add(p, true)
		}
		if o.Executable != "" {
			add(filepath.Dir(o.Executable), true)
		}
		if c.StateDirectory == "" && o.StateDir != "" {
			add(o.StateDir, false)
		}
		for _, p := range o.WritablePaths {
			add(p, true)
		}
		h.ReadWritePaths = paths
	}
	c.Hardening = &h
	return c, skipped
}

// covered reports whether p is one of paths (with or without the leading
// '-') or below one.
func covered(p string, paths []string) bool {
	return slices.ContainsFunc(paths, func(q string) bool {
		q = strings.TrimPrefix(q, "-")
		return p == q || strings.HasPrefix(p, strings.TrimSuffix(q, "/")+"/")
	})
}
