package controlplane_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/controlplane"
)

func TestSampleConfigIsTheDefault(t *testing.T) {
	cfg, err := controlplane.LoadConfig(filepath.Join("..", "configs", "poolserver.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg != controlplane.DefaultConfig() {
		t.Errorf("configs/poolserver.toml = %+v, want the defaults %+v", cfg, controlplane.DefaultConfig())
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct{ body, key string }{
		{`lisen = "1.2.3.4:80"`, "lisen"},
		{"[rate_limit]\nrequests_per_minute = 5", "rate_limit.requests_per_minute"},
		{`listen = "nope"`, "listen"},
		{`log_level = "loud"`, "log_level"},
		{`idle_timeout = "soon"`, "idle_timeout"},
		{"[rate_limit]\nrequests_per_window = 0", "rate_limit.requests_per_window"},
		{"[rate_limit]\nwindow = \"1ms\"", "rate_limit.window"},
		{`external_url = "ftp://x"`, "external_url"},
		{`listen = 80`, "listen"},
		{`db = "mysql://db.example.com/poolserver"`, "db:"},
		{"[artifacts]\nmax_concurrent_downloads = -1", "artifacts.max_concurrent_downloads"},
		{"[artifacts]\nmax_concurrent_downloads = \"ten\"", "artifacts.max_concurrent_downloads"},
		{"[artifacts]\nstore = \"gcs\"", "artifacts.store"},
		{"[artifacts]\nstore = \"s3\"\nbucket = \"b\"", "artifacts.endpoint: required"},
		{"[artifacts]\nstore = \"s3\"\nendpoint = \"https://s3.example.com\"", "artifacts.bucket"},
		{"[artifacts]\nstore = \"s3\"\nendpoint = \"s3.example.com\"\nbucket = \"b\"", "artifacts.endpoint: \"s3.example.com\""},
		{"[artifacts]\nbucket = \"b\"", "artifacts.endpoint, artifacts.bucket: set only with store"},
		{"[artifacts]\npresign_expiry = \"10s\"", "artifacts.presign_expiry"},
		{"[artifacts]\npresign_expiry = \"200h\"", "artifacts.presign_expiry"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := controlplane.LoadConfig(path)
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%q: error %v does not name %s", tt.body, err, tt.key)
		}
	}
}
