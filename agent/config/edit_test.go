package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestSetKeys(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		settings []Setting
		want     string
	}{
		{"replace top-level, keep comments",
			"# head\nserver_url = \"https://old\" # old\nstate_dir = \"/x\"\n\n[artifacts]\nserver_url = 1\n",
			[]Setting{{Key: "server_url", Value: "https://new.example.com"}},
			"# head\nserver_url = \"https://new.example.com\"\nstate_dir = \"/x\"\n\n[artifacts]\nserver_url = 1\n"},
		{"replace in a table, not the top-level key of that name",
			"trusted_keys = 1\n[artifacts]\n  trusted_keys = [\"a\"]\nallowed_urls = []\n",
			[]Setting{{Table: "artifacts", Key: "trusted_keys", Value: []string{"k1", "k2"}}},
			"trusted_keys = 1\n[artifacts]\n  trusted_keys = [\"k1\", \"k2\"]\nallowed_urls = []\n"},
		{"multi-line array replaced whole",
			"[artifacts]\ntrusted_keys = [\n  \"a\", # first\n  \"b]\",\n]\nrevoked_key_ids = []\n",
			[]Setting{{Table: "artifacts", Key: "trusted_keys", Value: []string{"c"}}},
			"[artifacts]\ntrusted_keys = [\"c\"]\nrevoked_key_ids = []\n"},
		{"a table's key, not a sub-table's",
			"[artifacts]\nx = 1\n[artifacts.more]\nallow_insecure_http = false\n",
			[]Setting{{Table: "artifacts", Key: "allow_insecure_http", Value: true}},
			"[artifacts]\nallow_insecure_http = true\nx = 1\n[artifacts.more]\nallow_insecure_http = false\n"},
		{"missing key added at the start of its table",
			"[artifacts]\nstall_timeout = \"60s\"\n",
			[]Setting{{Table: "artifacts", Key: "allow_insecure_http", Value: true}},
			"[artifacts]\nallow_insecure_http = true\nstall_timeout = \"60s\"\n"},
		{"missing top-level key added before the first table's comments",
			"# file\nstate_dir = \"/x\"\n\n# artifacts\n[artifacts]\n",
			[]Setting{{Key: "server_ca", Value: `C:\ProgramData\ca.pem`}},
			"# file\nstate_dir = \"/x\"\n\nserver_ca = \"C:\\\\ProgramData\\\\ca.pem\"\n\n# artifacts\n[artifacts]\n"},
		{"CRLF kept",
			"server_url = \"\"\r\n[artifacts]\r\n",
			[]Setting{{Key: "server_url", Value: "https://s"}},
			"server_url = \"https://s\"\r\n[artifacts]\r\n"},
		{"quotes escaped",
			"server_url = \"\"\n",
			[]Setting{{Key: "server_url", Value: `a"b\c`}},
			"server_url = \"a\\\"b\\\\c\"\n"},
		{"empty document",
			"",
			[]Setting{{Key: "server_url", Value: "https://s"}, {Table: "artifacts", Key: "trusted_keys", Value: []string{"k"}}},
			"server_url = \"https://s\"\n\n[artifacts]\ntrusted_keys = [\"k\"]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SetKeys([]byte(tt.doc), tt.settings...)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			var v map[string]any
			if _, err := toml.Decode(string(got), &v); err != nil {
				t.Errorf("result is not TOML: %v", err)
			}
		})
	}
}

func TestSetKeysErrors(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"unclosed array", "[artifacts]\ntrusted_keys = [\n\"a\",\n"},
		{"array of tables", "[[artifacts]]\ntrusted_keys = []\n"},
	}
	for _, tt := range tests {
		_, err := SetKeys([]byte(tt.doc), Setting{Table: "artifacts", Key: "trusted_keys", Value: []string{"b"}})
		if err == nil || !strings.Contains(err.Error(), "artifacts.trusted_keys") {
			t.Errorf("%s: SetKeys = %v, want an error naming the key", tt.name, err)
		}
	}
}

// TestSetKeysSample writes every key the Windows installer sets into the
// sample configuration and loads the result.
func TestSetKeysSample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "configs", "poolagent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	const key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"
	ca := filepath.Join(t.TempDir(), "ca.pem")
	doc, err = SetKeys(doc,
		Setting{Key: "server_url", Value: "https://pool.example.net:8443"},
		Setting{Key: "server_ca", Value: ca},
		Setting{Table: "artifacts", Key: "trusted_keys", Value: []string{key}},
		Setting{Table: "artifacts", Key: "allow_insecure_http", Value: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "poolagent.toml")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerURL != "https://pool.example.net:8443" || cfg.ServerCA != ca ||
		len(cfg.Artifacts.TrustedKeys) != 1 || cfg.Artifacts.TrustedKeys[0] != key || !cfg.Artifacts.AllowInsecureHTTP {
		t.Errorf("loaded %+v %+v", cfg, cfg.Artifacts)
	}
	if len(cfg.Agents) != 1 || cfg.Agents[0].Name != "ad-agent" {
		t.Errorf("the sample's agent is gone: %+v", cfg.Agents)
	}
}
