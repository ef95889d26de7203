package daemon

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kardianos/service"
)

// toKardianos maps a validated Config with defaults applied to kardianos's
// configuration for goos. It is pure so that every platform's mapping can be
// tested anywhere.
func toKardianos(c Config, goos string) *service.Config {
	k := &service.Config{
		Name:             c.Name,
		DisplayName:      c.DisplayName,
		Description:      c.Description,
		UserName:         c.User,
		Arguments:        append([]string(nil), c.Arguments...),
		Executable:       c.Executable,
		WorkingDirectory: c.WorkingDirectory,
		Option:           service.KeyValue{},
	}
	if len(c.Env) > 0 {
		k.EnvVars = make(map[string]string, len(c.Env))
		for name, v := range c.Env {
			k.EnvVars[name] = v
		}
	}
	switch goos {
	case "windows":
		k.Dependencies = append([]string(nil), c.Dependencies...)
		k.Option["StartType"] = "automatic"
		k.Option["DelayedAutoStart"] = c.DelayedAutoStart
		if c.Restart == RestartNever {
			k.Option["OnFailure"] = "noaction"
		} else {
			k.Option["OnFailure"] = "restart"
		}
		k.Option["OnFailureDelayDuration"] = c.RestartDelay.String()
		// With a single recovery action Windows repeats it on every later
		// failure; the reset period only clears the failure count.
		k.Option["OnFailureResetPeriod"] = int((24 * time.Hour) / time.Second)
	case "darwin":
		// launchd's boolean KeepAlive restarts after any exit; it cannot
		// express "on failure" without a custom plist.
		k.Option["KeepAlive"] = c.Restart != RestartNever
		k.Option["RunAtLoad"] = true
		// kardianos always sends output to /var/log/<Name>.out.log and
		// .err.log on launchd.
	default:
		// Linux (and other Unix): our own systemd unit. SysV, upstart and
		// OpenRC hosts get kardianos's built-in scripts.
		k.Option["SystemdScript"] = systemdUnitTemplate(c)
		if c.LimitNOFILE > 0 {
			k.Option["LimitNOFILE"] = c.LimitNOFILE
		}
		k.Option["Restart"] = string(c.Restart)
	}
	return k
}

// unitVars are the parts of the systemd unit that kardianos fills in at
// install time. For the template handed to kardianos they are template
// actions (templateVars); for a unit rendered here they are the values
// themselves, quoted as kardianos quotes them (literalVars).
type unitVars struct {
	description, path, arguments, workingDirectory, user, name string
}

// templateVars are kardianos's SystemdScript actions: kardianos resolves
// the executable and quotes paths and arguments itself.
var templateVars = unitVars{
	description:      "{{Description}}",
	path:             "{{Path | cmdEscape}}",
	arguments:        "{{range Arguments}} {{. | cmd}}{{end}}",
	workingDirectory: "{{if WorkingDirectory}}WorkingDirectory={{WorkingDirectory | cmdEscape}}\n{{end}}",
	user:             "{{if UserName}}User={{UserName}}\n{{end}}",
	name:             "{{Name}}",
}

// literalVars renders what kardianos would substitute for c with its
// executable at path (kardianos's cmd and cmdEscape functions).
func literalVars(c Config, path string) unitVars {
	cmdQuote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
	cmdEscape := func(s string) string { return strings.ReplaceAll(s, " ", `\x20`) }
	v := unitVars{description: c.Description, path: cmdEscape(path), name: c.Name}
	for _, a := range c.Arguments {
		v.arguments += " " + cmdQuote(a)
	}
	if c.WorkingDirectory != "" {
		v.workingDirectory = "WorkingDirectory=" + cmdEscape(c.WorkingDirectory) + "\n"
	}
	if c.User != "" {
		v.user = "User=" + c.User + "\n"
	}
	return v
}

// systemdUnitTemplate returns the unit template handed to kardianos as its
// SystemdScript option. Values known now are written literally; the keys
// kardianos fills in at install time (Description, Path, Arguments,
// WorkingDirectory, UserName, Name) stay template actions. Every literal
// value has been checked by validate to hold no newline and no "{{".
func systemdUnitTemplate(c Config) string { return systemdUnit(c, templateVars) }

// SystemdUnit renders the systemd unit that Install writes for cfg on a
// systemd host, with Executable (required here) as the binary: the same
// text kardianos renders from the template. Packages use it to ship the
// very unit `install` writes (packaging/systemd).
func SystemdUnit(cfg Config) (string, error) {
	cfg = withDefaults(cfg)
	if err := cfg.validate(); err != nil {
		return "", fmt.Errorf("daemon config: %w", err)
	}
	if cfg.Executable == "" {
		return "", errors.New("daemon config: render the systemd unit: executable not set")
	}
	return systemdUnit(cfg, literalVars(cfg, cfg.Executable)), nil
}

// systemdUnit is the one systemd unit: kardianos's template or a rendered
// unit, depending on v.
func systemdUnit(c Config, v unitVars) string {
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }

	for _, n := range c.SystemdNotes {
		if n == "" {
			line("#")
		} else {
			line("# %s", n)
		}
	}
	if len(c.SystemdNotes) > 0 {
		line("")
	}
	line("[Unit]")
	line("Description=%s", v.description)
	if c.Documentation != "" {
		line("Documentation=%s", c.Documentation)
	}
	line("ConditionFileIsExecutable=%s", v.path)
	deps := append([]string{"network-online.target"}, c.Dependencies...)
	line("Wants=%s", strings.Join(deps, " "))
	line("After=%s", strings.Join(deps, " "))
	// Never stop retrying: a fleet agent that gives up cannot be reached
	// again without someone logging in to the host.
	line("StartLimitIntervalSec=0")
	line("")
	line("[Service]")
	line("Type=simple")
	line("ExecStart=%s%s", v.path, v.arguments)
	b.WriteString(v.workingDirectory)
	b.WriteString(v.user)
	line("Restart=%s", c.Restart)
	if len(c.RestartForceExitStatus) > 0 {
		codes := make([]string, len(c.RestartForceExitStatus))
		for i, code := range c.RestartForceExitStatus {
			codes[i] = strconv.Itoa(code)
		}
		line("RestartForceExitStatus=%s", strings.Join(codes, " "))
	}
	line("RestartSec=%d", seconds(c.RestartDelay))
	line("TimeoutStopSec=%d", seconds(c.StopTimeout)+10)
	// SIGTERM goes to the daemon only; it stops what it started, and
	// whatever is left gets SIGKILL when TimeoutStopSec runs out.
	line("KillMode=mixed")
	if c.LimitNOFILE > 0 {
		line("LimitNOFILE=%d", c.LimitNOFILE)
	}
	line("EnvironmentFile=-/etc/default/%s", v.name)
	line("EnvironmentFile=-/etc/sysconfig/%s", v.name)
	names := make([]string, 0, len(c.Env))
	for name := range c.Env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		line("Environment=%s", systemdQuote(name+"="+c.Env[name]))
	}
	if c.StateDirectory != "" {
		line("StateDirectory=%s", c.StateDirectory)
		line("StateDirectoryMode=0700")
	}
	for _, d := range hardeningDirectives(c.Hardening) {
		line("%s", d)
	}
	line("")
	line("[Install]")
	line("WantedBy=multi-user.target")
	return b.String()
}

// hardeningDirectives returns the unit lines for h, in a fixed order.
func hardeningDirectives(h *SystemdHardening) []string {
	if h == nil {
		return nil
	}
	var d []string
	flag := func(name string, on bool) {
		if on {
			d = append(d, name+"=yes")
		}
	}
	flag("NoNewPrivileges", h.NoNewPrivileges)
	if h.ProtectSystem != "" {
		d = append(d, "ProtectSystem="+h.ProtectSystem)
	}
	if h.ProtectHome != "" {
		d = append(d, "ProtectHome="+h.ProtectHome)
	}
	if len(h.ReadWritePaths) > 0 {
		d = append(d, "ReadWritePaths="+strings.Join(h.ReadWritePaths, " "))
	}
	flag("PrivateTmp", h.PrivateTmp)
	flag("ProtectKernelModules", h.ProtectKernelModules)
	flag("ProtectKernelLogs", h.ProtectKernelLogs)
	flag("ProtectKernelTunables", h.ProtectKernelTunables)
	flag("ProtectControlGroups", h.ProtectControlGroups)
	flag("ProtectClock", h.ProtectClock)
	flag("ProtectHostname", h.ProtectHostname)
	flag("RestrictRealtime", h.RestrictRealtime)
	flag("LockPersonality", h.LockPersonality)
	return d
}

// systemdQuote double-quotes s for a unit file: backslashes and quotes are
// escaped and '%' (systemd's specifier character) doubled.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`)
	return `"` + r.Replace(s) + `"`
}

// seconds rounds d up to whole seconds, at least 1.
func seconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
