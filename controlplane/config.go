package controlplane

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/poolagent/poolagent/controlplane/artifacts"
	"github.com/poolagent/poolagent/internal/logging"
	"github.com/poolagent/poolagent/internal/tomlconf"
)

// Duration is a time.Duration written in TOML as a string ("30s", "2m").
type Duration = tomlconf.Duration

// RateLimitConfig bounds each API token's requests, as Okta does.
type RateLimitConfig struct {
	// RequestsPerWindow is how many requests one token may make per window.
	RequestsPerWindow int `toml:"requests_per_window"`
	// Window is the length of a rate limit window.
	Window Duration `toml:"window"`
}

// Config is poolserver's configuration (configs/poolserver.toml).
type Config struct {
	// Listen is the address to serve on.
	Listen string `toml:"listen"`
	// DataDir holds the SQLite database and the artifacts.
	DataDir string `toml:"data_dir"`
	// DB is a PostgreSQL URL (postgres://user@host:5432/db?sslmode=...)
	// to keep the state in instead of SQLite in DataDir; empty: SQLite.
	// Artifacts stay in DataDir either way unless [artifacts] names an
	// object store.
	DB string `toml:"db"`
	// ExternalURL is the base URL clients reach the server at, for the
	// absolute URLs in Link headers and _links; empty: from each request.
	ExternalURL string `toml:"external_url"`
	// DebugListen, when set, serves Go's profiler (/debug/pprof/) on this
	// address: keep it on loopback.
	DebugListen string `toml:"debug_listen"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// LogFormat is auto (console on a terminal, else JSON), console or json.
	LogFormat string `toml:"log_format"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// IdleTimeout closes kept-alive connections idle this long; keep it
	// above twice the agents' heartbeat interval.
	IdleTimeout Duration `toml:"idle_timeout"`
	// RateLimit bounds each token's API requests.
	RateLimit RateLimitConfig `toml:"rate_limit"`
	// Heartbeat configures the heartbeat endpoint.
	Heartbeat HeartbeatConfig `toml:"heartbeat"`
	// Rollout configures the rollout engine.
	Rollout RolloutConfig `toml:"rollout"`
	// Artifacts says where release files are kept and how agents reach
	// them.
	Artifacts ArtifactsConfig `toml:"artifacts"`
	// TLSCert and TLSKey are the PEM certificate (chain) and key to serve
	// HTTPS with; reloaded on SIGHUP. Empty: plain HTTP, on a loopback
	// address only unless InsecurePlainHTTP.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// ClientCA is a PEM CA bundle; when set, heartbeats must present a
	// client certificate signed by it (besides the client secret).
	ClientCA string `toml:"client_ca"`
	// InsecurePlainHTTP allows plain HTTP on a non-loopback address.
	InsecurePlainHTTP bool `toml:"insecure_plain_http"`
}

// HeartbeatConfig configures the heartbeat endpoint.
type HeartbeatConfig struct {
	// Interval is the heartbeat interval agents are told to use.
	Interval Duration `toml:"interval"`
	// InactiveAfter is how many intervals an agent may miss before it is
	// INACTIVE.
	InactiveAfter int `toml:"inactive_after"`
	// RateLimit is how many heartbeats one client may send per minute.
	RateLimit int `toml:"rate_limit"`
	// FlushInterval is how often the last-seen times of heartbeats that
	// changed nothing else are written (coalesced). A host's time is
	// written at most once per FlushInterval or heartbeat Interval,
	// whichever is longer.
	FlushInterval Duration `toml:"flush_interval"`
}

// RolloutConfig configures the rollout engine.
type RolloutConfig struct {
	// Tick is how often the engine re-plans every active update (it also
	// runs at once after an operator's change).
	Tick Duration `toml:"tick"`
	// JobTTL is how long a job in a heartbeat reply stays valid; an agent
	// ignores a job past its expiry.
	JobTTL Duration `toml:"job_ttl"`
	// SelfUpdate offers every host the newest poolagent release on its
	// pool's channel when its poolagent is older.
	SelfUpdate bool `toml:"self_update"`
}

// Artifact stores.
const (
	// StoreDataDir keeps artifacts in data_dir/artifacts.
	StoreDataDir = "datadir"
	// StoreS3 keeps them in an S3-compatible bucket.
	StoreS3 = "s3"
)

// ArtifactsConfig says where release files live (docs/install.md, "Object
// store"). With the S3 store, jobs carry presigned GET URLs besides
// poolserver's own /artifacts URL, which keeps working.
type ArtifactsConfig struct {
	// Store is "datadir" (default) or "s3".
	Store string `toml:"store"`
	// Endpoint is the S3 base URL, e.g. https://s3.eu-west-1.amazonaws.com.
	Endpoint string `toml:"endpoint"`
	// Bucket (required with s3) and Prefix (optional) of the objects.
	Bucket string `toml:"bucket"`
	Prefix string `toml:"prefix"`
	// Region signs requests; empty: us-east-1.
	Region string `toml:"region"`
	// CredentialsFile is an AWS shared credentials file read for
	// CredentialsProfile (default "default"); empty: AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY from the environment.
	CredentialsFile    string `toml:"credentials_file"`
	CredentialsProfile string `toml:"credentials_profile"`
	// PresignExpiry is how long a presigned URL in a job is valid. Each
	// heartbeat reply refreshes it once less than half is left, so it
	// must exceed the longest single download request, not the job.
	PresignExpiry Duration `toml:"presign_expiry"`
	// MaxConcurrentDownloads caps the artifact downloads (full artifacts
	// and patches) poolserver serves at once; a download above it gets
	// 503 with Retry-After and the host comes back later. 0 (the
	// default): no cap. Downloads from the object store or a mirror do
	// not count.
	MaxConcurrentDownloads int `toml:"max_concurrent_downloads"`
}

// S3 returns the object store's settings.
func (a ArtifactsConfig) S3() artifacts.S3Config {
	return artifacts.S3Config{Endpoint: a.Endpoint, Bucket: a.Bucket, Prefix: a.Prefix, Region: a.Region,
		CredentialsFile: a.CredentialsFile, Profile: a.CredentialsProfile}
}

// validate checks the keys that need no credentials nor network.
func (a ArtifactsConfig) validate() error {
	switch a.Store {
	case StoreDataDir:
		if a.Endpoint != "" || a.Bucket != "" {
			return errors.New("artifacts.endpoint, artifacts.bucket: set only with store = \"s3\"")
		}
	case StoreS3:
		if a.Endpoint == "" {
			return errors.New("artifacts.endpoint: required with store = \"s3\" (e.g. https://s3.eu-west-1.amazonaws.com)")
		}
		if a.Bucket == "" {
			return errors.New("artifacts.bucket: required with store = \"s3\"")
		}
		if u, err := url.Parse(a.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("artifacts.endpoint: %q is not an http(s) base URL such as https://s3.eu-west-1.amazonaws.com", a.Endpoint)
		}
	default:
		return fmt.Errorf("artifacts.store: %q: want %q or %q", a.Store, StoreDataDir, StoreS3)
	}
	// S3 (SigV4) refuses presigned URLs valid longer than 7 days.
	if d := a.PresignExpiry.Duration; d < time.Minute || d > 7*24*time.Hour {
		return fmt.Errorf("artifacts.presign_expiry: must be between 1m and 168h, got %s", d)
	}
	return nil
}

// loopback reports whether the host of the host:port address addr is a
// loopback address ("localhost" included).
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// EffectiveIdleTimeout is idle_timeout, raised to three heartbeat
// intervals when it is not above twice the interval, so agents keep their
// kept-alive connections between heartbeats.
func (c Config) EffectiveIdleTimeout() time.Duration {
	if c.IdleTimeout.Duration <= 2*c.Heartbeat.Interval.Duration {
		return 3 * c.Heartbeat.Interval.Duration
	}
	return c.IdleTimeout.Duration
}

// DefaultConfig returns the defaults every key starts from.
func DefaultConfig() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		DataDir:         "/var/lib/poolserver",
		LogLevel:        "info",
		LogFormat:       "auto",
		ShutdownTimeout: Duration{Duration: 10 * time.Second},
		IdleTimeout:     Duration{Duration: 3 * time.Minute},
		RateLimit:       RateLimitConfig{RequestsPerWindow: 600, Window: Duration{Duration: time.Minute}},
		Heartbeat:       HeartbeatConfig{Interval: Duration{Duration: 30 * time.Second}, InactiveAfter: 3, RateLimit: 120, FlushInterval: Duration{Duration: 5 * time.Second}},
		Rollout:         RolloutConfig{Tick: Duration{Duration: time.Second}, JobTTL: Duration{Duration: 10 * time.Minute}, SelfUpdate: true},
		Artifacts:       ArtifactsConfig{Store: StoreDataDir, PresignExpiry: Duration{Duration: time.Hour}},
	}
}

// LoadConfig reads a TOML file over the defaults. An unknown key or a bad
// value is an error naming the key.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if err := tomlconf.Decode(path, &cfg); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks every value and names the first bad key.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port", c.Listen)
	}
	if c.DataDir == "" {
		return errors.New("data_dir: must not be empty")
	}
	if c.DB != "" {
		// Never echo the value: it may carry a password.
		u, err := url.Parse(c.DB)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return errors.New("db: not a PostgreSQL URL: want postgres://USER@HOST:PORT/DATABASE (empty: SQLite in data_dir)")
		}
	}
	if c.ExternalURL != "" {
		u, err := url.Parse(c.ExternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("external_url: %q is not an http(s) URL", c.ExternalURL)
		}
	}
	if err := logging.Validate(c.LogLevel, c.LogFormat); err != nil {
		return err
	}
	if c.ShutdownTimeout.Duration <= 0 {
		return errors.New("shutdown_timeout: must be positive")
	}
	if c.IdleTimeout.Duration <= 0 {
		return errors.New("idle_timeout: must be positive")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls_cert, tls_key: set both (HTTPS) or neither (plain HTTP)")
	}
	if c.ClientCA != "" && c.TLSCert == "" {
		return errors.New("client_ca: needs tls_cert and tls_key (client certificates need HTTPS)")
	}
	if c.TLSCert == "" && !c.InsecurePlainHTTP && !loopback(c.Listen) {
		return fmt.Errorf("listen: plain HTTP on %s, which is not a loopback address: set tls_cert and tls_key (--tls-cert, --tls-key), or insecure_plain_http = true (--insecure-plain-http) behind a TLS proxy", c.Listen)
	}
	if c.RateLimit.RequestsPerWindow < 1 {
		return fmt.Errorf("rate_limit.requests_per_window: must be at least 1, got %d", c.RateLimit.RequestsPerWindow)
	}
	if c.RateLimit.Window.Duration < time.Second {
		return fmt.Errorf("rate_limit.window: must be at least 1s, got %s", c.RateLimit.Window.Duration)
	}
	switch {
	case c.Heartbeat.Interval.Duration < 100*time.Millisecond:
		return fmt.Errorf("heartbeat.interval: must be at least 100ms, got %s", c.Heartbeat.Interval.Duration)
	case c.Heartbeat.InactiveAfter < 1:
		return fmt.Errorf("heartbeat.inactive_after: must be at least 1 interval, got %d", c.Heartbeat.InactiveAfter)
	case c.Heartbeat.RateLimit < 1:
		return fmt.Errorf("heartbeat.rate_limit: must be at least 1 per minute, got %d", c.Heartbeat.RateLimit)
	case c.Heartbeat.FlushInterval.Duration <= 0:
		return errors.New("heartbeat.flush_interval: must be positive")
	case c.Rollout.Tick.Duration < 10*time.Millisecond:
		return fmt.Errorf("rollout.tick: must be at least 10ms, got %s", c.Rollout.Tick.Duration)
	case c.Rollout.JobTTL.Duration < time.Second:
		return fmt.Errorf("rollout.job_ttl: must be at least 1s, got %s", c.Rollout.JobTTL.Duration)
	case c.Artifacts.MaxConcurrentDownloads < 0:
		return fmt.Errorf("artifacts.max_concurrent_downloads: must be 0 (no cap) or more, got %d", c.Artifacts.MaxConcurrentDownloads)
	}
	return c.Artifacts.validate()
}
