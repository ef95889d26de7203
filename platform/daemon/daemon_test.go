package daemon

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kardianos/service"
)

func TestToKardianos(t *testing.T) {
	base := Config{
		Name:         "poolagent",
		Description:  "poolagent keeps agents up to date",
		Executable:   "/opt/poolagent/bin/poolagent",
		Arguments:    []string{"run", "--config", "/etc/poolagent/poolagent.toml"},
		User:         "",
		Env:          map[string]string{"POOLAGENT_LOG": "info"},
		Dependencies: []string{"Tcpip"},
	}
	tests := []struct {
		name        string
		cfg         Config
		goos        string
		wantDeps    []string
		wantOptions service.KeyValue // SystemdScript is checked separately
	}{
		{
			name: "linux", cfg: base, goos: "linux",
			wantOptions: service.KeyValue{"Restart": "on-failure"},
		},
		{
			name: "linux with open files limit and restart always", goos: "linux",
			cfg:         func() Config { c := base; c.LimitNOFILE = 65536; c.Restart = RestartAlways; return c }(),
			wantOptions: service.KeyValue{"Restart": "always", "LimitNOFILE": 65536},
		},
		{
			name: "windows", cfg: base, goos: "windows", wantDeps: []string{"Tcpip"},
			wantOptions: service.KeyValue{"StartType": "automatic", "DelayedAutoStart": false, "OnFailure": "restart",
				"OnFailureDelayDuration": "5s", "OnFailureResetPeriod": 86400},
		},
		{
			name: "windows never restart, delayed start", goos: "windows", wantDeps: []string{"Tcpip"},
			cfg: func() Config {
				c := base
				c.Restart, c.DelayedAutoStart, c.RestartDelay = RestartNever, true, time.Minute
				return c
			}(),
			wantOptions: service.KeyValue{"StartType": "automatic", "DelayedAutoStart": true, "OnFailure": "noaction",
				"OnFailureDelayDuration": "1m0s", "OnFailureResetPeriod": 86400},
		},
		{
			name: "darwin", cfg: base, goos: "darwin",
			wantOptions: service.KeyValue{"KeepAlive": true, "RunAtLoad": true},
		},
		{
			name: "darwin never restart", goos: "darwin",
			cfg:         func() Config { c := base; c.Restart = RestartNever; return c }(),
			wantOptions: service.KeyValue{"KeepAlive": false, "RunAtLoad": true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := withDefaults(tt.cfg)
			if err := cfg.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			k := toKardianos(cfg, tt.goos)
			if k.Name != "poolagent" || k.DisplayName != "poolagent" || k.Description != cfg.Description ||
				k.Executable != cfg.Executable || k.UserName != cfg.User {
				t.Errorf("identity fields not mapped: %+v", k)
			}
			if !reflect.DeepEqual(k.Arguments, cfg.Arguments) {
				t.Errorf("Arguments = %q, want %q", k.Arguments, cfg.Arguments)
			}
			if !reflect.DeepEqual(k.EnvVars, cfg.Env) {
				t.Errorf("EnvVars = %v, want %v", k.EnvVars, cfg.Env)
			}
			if !reflect.DeepEqual(k.Dependencies, tt.wantDeps) {
				t.Errorf("Dependencies = %q, want %q", k.Dependencies, tt.wantDeps)
			}
			opts := service.KeyValue{}
			for key, v := range k.Option {
				if key != "SystemdScript" {
					opts[key] = v
				}
			}
			if !reflect.DeepEqual(opts, tt.wantOptions) {
				t.Errorf("Option = %v, want %v", opts, tt.wantOptions)
			}
			_, hasScript := k.Option["SystemdScript"]
			if hasScript != (tt.goos == "linux") {
				t.Errorf("SystemdScript present = %v on %s", hasScript, tt.goos)
			}
			// The mapping must not alias the caller's slices.
			if len(k.Arguments) > 0 {
				k.Arguments[0] = "changed"
				if cfg.Arguments[0] == "changed" {
					t.Error("Arguments alias the Config's slice")
				}
			}
		})
	}
}

// kardianosSystemdKeys are the keys kardianos's systemd backend passes to a
// SystemdScript template (service_systemd_linux.go, Install), and
// kardianosFuncs its pipeline functions. An unknown key fails the install.
var (
	kardianosSystemdKeys = map[string]bool{
		"Description": true, "Path": true, "Name": true, "Dependencies": true, "Arguments": true,
		"ChRoot": true, "WorkingDirectory": true, "UserName": true, "ReloadSignal": true, "PIDFile": true,
		"LogDirectory": true, "OutputFileSupport": true, "LimitNOFILE": true, "Restart": true,
		"SuccessExitStatus": true, "EnvVars": true, ".": true,
	}
	kardianosFuncs = map[string]bool{"cmd": true, "cmdEscape": true}
	actionRE       = regexp.MustCompile(`\{\{-?\s*(.*?)\s*-?\}\}`)
)

// checkTemplateActions fails t if script uses a key or function kardianos
// does not provide, or has unbalanced blocks.
func checkTemplateActions(t *testing.T, script string) {
	t.Helper()
	depth := 0
	for _, m := range actionRE.FindAllStringSubmatch(script, -1) {
		action := m[1]
		switch {
		case action == "end":
			depth--
			continue
		case action == "else":
			continue
		case strings.HasPrefix(action, "if "), strings.HasPrefix(action, "range "):
			depth++
			action = strings.Fields(action)[1]
		}
		parts := strings.Split(action, "|")
		if key := strings.TrimSpace(parts[0]); !kardianosSystemdKeys[key] {
			t.Errorf("template uses key %q that kardianos does not provide", key)
		}
		for _, f := range parts[1:] {
			if fn := strings.TrimSpace(f); !kardianosFuncs[fn] {
				t.Errorf("template uses function %q that kardianos does not provide", fn)
			}
		}
	}
	if depth != 0 {
		t.Errorf("template blocks unbalanced (depth %d)", depth)
	}
	if n := strings.Count(script, "{{"); n != strings.Count(script, "}}") {
		t.Errorf("template has unbalanced delimiters")
	}
}

func TestSystemdUnitTemplate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		want    []string
		notWant []string
	}{
		{
			name: "defaults",
			cfg:  Config{Name: "poolagent"},
			want: []string{
				"[Unit]\n", "Wants=network-online.target\n", "After=network-online.target\n",
				"StartLimitIntervalSec=0\n",
				"ExecStart={{Path | cmdEscape}}{{range Arguments}} {{. | cmd}}{{end}}\n",
				"Restart=on-failure\n", "RestartSec=5\n", "TimeoutStopSec=40\n", "KillMode=mixed\n",
				"ProtectKernelModules=yes\n", "ProtectKernelLogs=yes\n", "ProtectControlGroups=yes\n",
				"ProtectClock=yes\n", "ProtectHostname=yes\n", "RestrictRealtime=yes\n", "LockPersonality=yes\n",
				"[Install]\nWantedBy=multi-user.target\n",
			},
			notWant: []string{"NoNewPrivileges", "ProtectSystem", "ProtectKernelTunables", "LimitNOFILE", "Environment=", "RestartSec=120"},
		},
		{
			name: "strict sandbox with extra dependencies, env and limits",
			cfg: Config{
				Name: "poolagent", Dependencies: []string{"systemd-resolved.service"},
				Env:          map[string]string{"B": `say "hi" 100%`, "A": "1"},
				RestartDelay: 1500 * time.Millisecond, StopTimeout: 5 * time.Second, LimitNOFILE: 4096,
				Restart: RestartAlways,
				Hardening: &SystemdHardening{
					NoNewPrivileges: true, ProtectSystem: "strict", ProtectHome: "read-only",
					ReadWritePaths: []string{"/var/lib/poolagent", "/opt/connectors"}, PrivateTmp: true,
				},
			},
			want: []string{
				"Wants=network-online.target systemd-resolved.service\n",
				"After=network-online.target systemd-resolved.service\n",
				"Restart=always\n", "RestartSec=2\n", "TimeoutStopSec=15\n", "LimitNOFILE=4096\n",
				"Environment=\"A=1\"\nEnvironment=\"B=say \\\"hi\\\" 100%%\"\n",
				"NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "ProtectHome=read-only\n",
				"ReadWritePaths=/var/lib/poolagent /opt/connectors\n", "PrivateTmp=yes\n",
			},
			notWant: []string{"ProtectKernelModules", "LockPersonality"},
		},
		{
			name:    "hardening switched off",
			cfg:     Config{Name: "poolagent", Hardening: &SystemdHardening{}},
			notWant: []string{"Protect", "NoNewPrivileges", "Restrict", "LockPersonality", "PrivateTmp"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := withDefaults(tt.cfg)
			if err := cfg.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			script, ok := toKardianos(cfg, "linux").Option["SystemdScript"].(string)
			if !ok {
				t.Fatal("no SystemdScript option")
			}
			for _, w := range tt.want {
				if !strings.Contains(script, w) {
					t.Errorf("unit lacks %q\n%s", w, script)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(script, nw) {
					t.Errorf("unit unexpectedly has %q\n%s", nw, script)
				}
			}
			checkTemplateActions(t, script)
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Name: "poolagent"}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // substring; "" means valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"windows executable", func(c *Config) { c.Executable = `C:\Program Files\poolagent\poolagent.exe` }, ""},
		{"empty name", func(c *Config) { c.Name = "" }, "name"},
		{"name with space", func(c *Config) { c.Name = "pool agent" }, "name"},
		{"name with slash", func(c *Config) { c.Name = "../x" }, "name"},
		{"relative executable", func(c *Config) { c.Executable = "bin/poolagent" }, "absolute path"},
		{"newline in description injects a unit line", func(c *Config) { c.Description = "x\nExecStartPre=/bin/sh" }, "description"},
		{"template action in argument", func(c *Config) { c.Arguments = []string{"{{Path}}"} }, "argument 0"},
		{"bad env name", func(c *Config) { c.Env = map[string]string{"A-B": "1"} }, "environment variable name"},
		{"newline in env value", func(c *Config) { c.Env = map[string]string{"A": "1\n2"} }, "environment variable A"},
		{"dependency with space", func(c *Config) { c.Dependencies = []string{"a.service b.service"} }, "dependency"},
		{"unknown restart policy", func(c *Config) { c.Restart = "sometimes" }, "restart policy"},
		{"negative stop timeout", func(c *Config) { c.StopTimeout = -time.Second }, "negative"},
		{"negative open files", func(c *Config) { c.LimitNOFILE = -1 }, "open files"},
		{"bad ProtectSystem", func(c *Config) { c.Hardening = &SystemdHardening{ProtectSystem: "very"} }, "ProtectSystem"},
		{"bad ProtectHome", func(c *Config) { c.Hardening = &SystemdHardening{ProtectHome: "no-way"} }, "ProtectHome"},
		{"relative read-write path", func(c *Config) { c.Hardening = &SystemdHardening{ReadWritePaths: []string{"var/lib"}} }, "read-write path"},
		{"optional read-write path", func(c *Config) { c.Hardening = &SystemdHardening{ReadWritePaths: []string{"-/opt"}} }, ""},
		{"optional relative read-write path", func(c *Config) { c.Hardening = &SystemdHardening{ReadWritePaths: []string{"-opt"}} }, "read-write path"},
		{"forced-restart status 0", func(c *Config) { c.RestartForceExitStatus = []int{0} }, "forced-restart exit status"},
		{"forced-restart status 256", func(c *Config) { c.RestartForceExitStatus = []int{256} }, "forced-restart exit status"},
		{"state directory escaping /var/lib", func(c *Config) { c.StateDirectory = "../etc" }, "state directory"},
		{"state directory path", func(c *Config) { c.StateDirectory = "/var/lib/x" }, "state directory"},
		{"documentation with a space", func(c *Config) { c.Documentation = "https://x y" }, "documentation"},
		{"note with a newline", func(c *Config) { c.SystemdNotes = []string{"ok", "a\nExecStartPre=/bin/sh"} }, "systemd note 1"},
		{"read-write path with space", func(c *Config) {
			c.Hardening = &SystemdHardening{ReadWritePaths: []string{"/opt/a b"}}
		}, "read-write path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			_, err := New(c, nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("New accepted an invalid config %+v", c)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("New error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	c := withDefaults(Config{Name: "poolagent"})
	if c.DisplayName != "poolagent" || c.Restart != RestartOnFailure || c.RestartDelay != DefaultRestartDelay ||
		c.StopTimeout != DefaultStopTimeout || c.Hardening == nil || !reflect.DeepEqual(*c.Hardening, DefaultSystemdHardening()) {
		t.Errorf("defaults not applied: %+v", c)
	}
	explicit := withDefaults(Config{Name: "x", DisplayName: "X", Restart: RestartNever, RestartDelay: time.Minute,
		StopTimeout: time.Second, Hardening: &SystemdHardening{}})
	if explicit.DisplayName != "X" || explicit.Restart != RestartNever || explicit.RestartDelay != time.Minute ||
		explicit.StopTimeout != time.Second || !reflect.DeepEqual(*explicit.Hardening, SystemdHardening{}) {
		t.Errorf("explicit values overridden: %+v", explicit)
	}
}

func TestMapStatus(t *testing.T) {
	other := errors.New("systemctl: connection refused")
	tests := []struct {
		name    string
		st      service.Status
		err     error
		want    Status
		wantErr error
	}{
		{"running", service.StatusRunning, nil, StatusRunning, nil},
		{"stopped", service.StatusStopped, nil, StatusStopped, nil},
		{"unknown", service.StatusUnknown, nil, StatusUnknown, nil},
		{"not installed", service.StatusUnknown, service.ErrNotInstalled, StatusNotInstalled, nil},
		{"wrapped not installed", service.StatusUnknown, errors.Join(service.ErrNotInstalled), StatusNotInstalled, nil},
		{"systemd failed", service.StatusUnknown, errors.New("service in failed state"), StatusFailed, nil},
		{"query error", service.StatusUnknown, other, StatusUnknown, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mapStatus(tt.st, tt.err)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("mapStatus(%v, %v) = %v, %v; want %v, %v", tt.st, tt.err, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	want := map[Status]string{StatusUnknown: "unknown", StatusNotInstalled: "not installed", StatusStopped: "stopped",
		StatusRunning: "running", StatusFailed: "failed", Status(99): "unknown"}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("Status(%d).String() = %q, want %q", int(s), s.String(), w)
		}
	}
}

func TestSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int64
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {time.Minute, 60}}
	for _, tt := range tests {
		if got := seconds(tt.d); got != tt.want {
			t.Errorf("seconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestManagerOperationsHonourCancelledContext(t *testing.T) {
	// A cancelled context must stop an operation before it reaches the
	// service manager, so this test cannot install anything.
	m, err := New(Config{Name: "poolagent-test-never-installed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ops := map[string]func(context.Context) error{
		"Install": m.Install, "Uninstall": m.Uninstall, "Start": m.Start, "Stop": m.Stop, "Restart": m.Restart,
		"Status": func(ctx context.Context) error { _, err := m.Status(ctx); return err },
	}
	for name, op := range ops {
		if err := op(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
}
