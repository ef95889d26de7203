package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSampleConfig keeps configs/poolagent.toml loadable and equal to the
// defaults where it says so.
func TestSampleConfig(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "configs", "poolagent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if cfg.HeartbeatInterval != def.HeartbeatInterval || cfg.Type != def.Type || cfg.LogLevel != def.LogLevel ||
		cfg.Maintenance != def.Maintenance || cfg.SelfUpdate != def.SelfUpdate || cfg.Artifacts.StallTimeout != def.Artifacts.StallTimeout ||
		cfg.Artifacts.AllowDowngrade != def.Artifacts.AllowDowngrade || cfg.Artifacts.AllowRevert != def.Artifacts.AllowRevert {
		t.Errorf("sample differs from the defaults: %+v", cfg)
	}
	if len(cfg.Agents) != 1 || cfg.Agents[0].Health.Grace.Duration != 5*time.Second || cfg.Agents[0].Service == "" {
		t.Errorf("agents = %+v", cfg.Agents)
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	const key = "RWToP03U6r2QQUpQcU+hkJOjz6O2XmRUAxgeHPJBtRWHyTM2LBLC34L0"
	base := "server_url = \"https://ps.example.com\"\nstate_dir = \"/var/lib/pa\"\ninstall_roots = [\"/opt/okta\"]\n" +
		"[artifacts]\ntrusted_keys = [\"" + key + "\"]\n"
	agent := "[[agents]]\nname = \"ad\"\ntype = \"AD\"\nbinary = \"/opt/okta/ad/agent\"\n"
	tests := []struct {
		name, toml, want string
	}{
		{"ok", base + agent, ""},
		{"unknown key", base + "colour = \"red\"\n", "unknown key artifacts.colour"},
		{"unknown nested", base + agent + "[agents.health]\ngrase = \"1s\"\n", "unknown key agents.health.grase"},
		{"timezone", "timezone = \"Europe/Paris\"\n" + base + agent, ""},
		{"bad timezone", "timezone = \"Mars/Olympus_Mons\"\n", "timezone: \"Mars/Olympus_Mons\" is not an IANA time zone"},
		{"local timezone", "timezone = \"Local\"\n", "timezone:"},
		{"bad url", "server_url = \"ftp://x\"\n", "server_url:"},
		{"bad interval", "heartbeat_interval = \"soon\"\n", "heartbeat_interval"},
		{"short interval", "heartbeat_interval = \"1ms\"\n", "heartbeat_interval: must be at least"},
		{"bad type", "type = \"ROBOT\"\n", "type:"},
		{"relative state", "state_dir = \"state\"\n", "state_dir:"},
		{"bad level", "log_level = \"loud\"\n", "log_level:"},
		{"no keys", "install_roots = [\"/opt/okta\"]\n" + agent, "artifacts.trusted_keys: pin"},
		{"bad key", "[artifacts]\ntrusted_keys = [\"nope\"]\n", "artifacts.trusted_keys:"},
		{"bad policy", base + "[maintenance]\npolicy = \"never\"\n", "maintenance.policy:"},
		{"outside roots", base + "[[agents]]\nname = \"ad\"\ntype = \"AD\"\nbinary = \"/usr/bin/ad\"\n", "agents[0].binary: \"/usr/bin/ad\" is outside"},
		{"dotdot binary", base + "[[agents]]\nname = \"ad\"\ntype = \"AD\"\nbinary = \"/opt/okta/../usr/ad\"\n", "agents[0].binary:"},
		{"duplicate name", base + agent + agent, "agents[1].name: \"ad\" is used twice"},
		{"reserved name", base + "[[agents]]\nname = \"poolagent\"\ntype = \"AD\"\nbinary = \"/opt/okta/x\"\n", "agents[0].name:"},
		{"service and command", base + agent + "service = \"x\"\ncommand = [\"y\"]\n", "agents[0].service:"},
		{"bad health url", base + agent + "[agents.health]\nurl = \"localhost\"\n", "agents[0].health.url:"},
		{"root as install root", "install_roots = [\"/\"]\n", "install_roots[0]:"},
		{"remote local api", base + "[local_api]\nlisten = \"0.0.0.0:1\"\n", "local_api.listen:"},
		{"bad allowed url", base + "allowed_urls = [\"x\"]\n", "artifacts.allowed_urls[0]:"},
		{"bad mirror", base + "mirrors = [\"https://m.example.com\", \"ftp://m\"]\n", "artifacts.mirrors[1]:"},
		{"http mirror", base + "mirrors = [\"http://m.example.com\"]\n", "artifacts.mirrors[0]: \"http://m.example.com\": plain http refused"},
		{"negative rate limit", base + "download_rate_limit = -1\n", "artifacts.download_rate_limit:"},
		{"watch off", base + agent + "[agents.health]\nwatch_interval = \"0s\"\n", ""},
		{"watch short", base + agent + "[agents.health]\nwatch_interval = \"1s\"\n", ""},
		{"watch too short", base + agent + "[agents.health]\nwatch_interval = \"10ms\"\n", "agents[0].health.watch_interval: must be 0s (no watch) or at least 1s, got 10ms"},
		{"watch negative", base + agent + "[agents.health]\nwatch_interval = \"-1m\"\n", "agents[0].health.watch_interval:"},
		{"watch not a duration", base + agent + "[agents.health]\nwatch_interval = \"often\"\n", "watch_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "poolagent.toml")
			if err := os.WriteFile(p, []byte(tt.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestDowngradePolicy: downgrades are off and reverts on unless the host's
// own config says otherwise.
func TestDowngradePolicy(t *testing.T) {
	const key = "RWToP03U6r2QQUpQcU+hkJOjz6O2XmRUAxgeHPJBtRWHyTM2LBLC34L0"
	for _, tt := range []struct {
		artifacts                 string
		wantDowngrade, wantRevert bool
	}{
		{"", false, true},
		{"allow_downgrade = true\n", true, true},
		{"allow_revert = false\n", false, false},
		{"allow_downgrade = true\nallow_revert = false\n", true, false},
	} {
		p := filepath.Join(t.TempDir(), "poolagent.toml")
		toml := "state_dir = \"/var/lib/pa\"\n[artifacts]\ntrusted_keys = [\"" + key + "\"]\n" + tt.artifacts
		if err := os.WriteFile(p, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Artifacts.AllowDowngrade != tt.wantDowngrade || cfg.Artifacts.AllowRevert != tt.wantRevert {
			t.Errorf("%q: allow_downgrade %v, allow_revert %v; want %v, %v", tt.artifacts,
				cfg.Artifacts.AllowDowngrade, cfg.Artifacts.AllowRevert, tt.wantDowngrade, tt.wantRevert)
		}
	}
}

func TestInRoots(t *testing.T) {
	c := Config{InstallRoots: []string{"/opt/okta", "/srv/agents"}}
	tests := []struct {
		path string
		want bool
	}{
		{"/opt/okta/ad/agent", true},
		{"/srv/agents/x", true},
		{"/opt/okta", false},
		{"/opt/oktafoo/x", false},
		{"/opt/okta/../etc/passwd", false},
		{"opt/okta/x", false},
		{"/etc/passwd", false},
	}
	for _, tt := range tests {
		if got := c.InRoots(tt.path); got != tt.want {
			t.Errorf("InRoots(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestAgentType accepts Okta's agent types in any case, normalises them to
// Okta's spelling, and refuses anything else naming the key and the
// allowed values.
func TestAgentType(t *testing.T) {
	const key = "RWToP03U6r2QQUpQcU+hkJOjz6O2XmRUAxgeHPJBtRWHyTM2LBLC34L0"
	base := "server_url = \"https://ps.example.com\"\nstate_dir = \"/var/lib/pa\"\ninstall_roots = [\"/opt/okta\"]\n" +
		"[artifacts]\ntrusted_keys = [\"" + key + "\"]\n"
	tests := []struct {
		typ, want, wantErr string
	}{
		{"Radius", "Radius", ""},
		{"RADIUS", "Radius", ""},
		{"radius", "Radius", ""},
		{"AD", "AD", ""},
		{"ad", "AD", ""},
		{"Ldap", "LDAP", ""},
		{"iwa", "IWA", ""},
		{"mfa", "MFA", ""},
		{"Opp", "OPP", ""},
		{"rum", "RUM", ""},
		{"RADIUS-agent", "", `agents[0].type: "RADIUS-agent" (agent "x") is not an Okta agent type; want one of AD, IWA, LDAP, MFA, OPP, RUM, Radius`},
		{"poolagent", "", "agents[0].type:"},
		{"", "", "agents[0].type:"},
		{" AD", "", "agents[0].type:"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "poolagent.toml")
			toml := base + "[[agents]]\nname = \"x\"\ntype = \"" + tt.typ + "\"\nbinary = \"/opt/okta/x/agent\"\n"
			if err := os.WriteFile(p, []byte(toml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := cfg.Agents[0].Type; got != tt.want {
				t.Errorf("type %q loaded as %q, want %q", tt.typ, got, tt.want)
			}
		})
	}
}

// TestValidateWantsOktaSpelling: a Config built in code is not normalised
// behind its back; Validate says how Okta spells the type.
func TestValidateWantsOktaSpelling(t *testing.T) {
	c := Default()
	c.InstallRoots = []string{"/opt/okta"}
	c.SelfUpdate.Enabled = false
	c.Artifacts.TrustedKeys = []string{"RWToP03U6r2QQUpQcU+hkJOjz6O2XmRUAxgeHPJBtRWHyTM2LBLC34L0"}
	c.Agents = []Agent{{Name: "r", Type: "RADIUS", Binary: "/opt/okta/r/agent"}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `agents[0].type: "RADIUS" (agent "r") is spelled "Radius"`) {
		t.Fatalf("Validate() = %v, want the Okta spelling named", err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil || c.Agents[0].Type != "Radius" {
		t.Fatalf("after Normalize: type %q, Validate() = %v", c.Agents[0].Type, err)
	}
}

// TestWatchInterval: the watch runs every minute unless the agent's
// health table says otherwise; "0s" turns it off.
func TestWatchInterval(t *testing.T) {
	const key = "RWToP03U6r2QQUpQcU+hkJOjz6O2XmRUAxgeHPJBtRWHyTM2LBLC34L0"
	base := "state_dir = \"/var/lib/pa\"\ninstall_roots = [\"/opt/okta\"]\n[artifacts]\ntrusted_keys = [\"" + key + "\"]\n" +
		"[[agents]]\nname = \"ad\"\ntype = \"AD\"\nbinary = \"/opt/okta/ad/agent\"\n"
	for _, tt := range []struct {
		health string
		want   time.Duration
	}{
		{"", time.Minute},
		{"[agents.health]\nurl = \"http://127.0.0.1:1/healthz\"\n", time.Minute},
		{"[agents.health]\nwatch_interval = \"0s\"\n", 0},
		{"[agents.health]\nwatch_interval = \"5s\"\n", 5 * time.Second},
	} {
		p := filepath.Join(t.TempDir(), "poolagent.toml")
		if err := os.WriteFile(p, []byte(base+tt.health), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Agents[0].Health.Watch(); got != tt.want {
			t.Errorf("%q: watch every %s, want %s", tt.health, got, tt.want)
		}
	}
}
