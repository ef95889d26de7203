// Package config is poolagent's configuration (configs/poolagent.toml):
// the control plane to talk to, the state dir, the managed agents with
// their binaries, services and health checks, the install roots the agent
// may write to, the pinned minisign keys, the downgrade policy and the
// maintenance-window policy.
//
// Load reads a TOML file over the defaults; an unknown key or a bad value
// is an error naming the key.
package config

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
	// The timezone key is checked against this copy of the zone database:
	// Windows hosts have none of their own.
	_ "time/tzdata"

	"github.com/poolagent/poolagent/internal/logging"
	"github.com/poolagent/poolagent/internal/tomlconf"
	"github.com/poolagent/poolagent/signing"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// SelfName is the managed-process name and type of poolagent itself in a
// job's managedProcessConfiguration.
const SelfName = "poolagent"

// Duration is a time.Duration written in TOML as a string ("30s", "2m").
type Duration = tomlconf.Duration

// Config is poolagent's configuration.
type Config struct {
	// ServerURL is poolserver's base URL, e.g. https://poolserver.example.com;
	// empty: the URL `poolagent enroll --server` saved with the credentials.
	ServerURL string `toml:"server_url"`
	// CredentialsFile holds the client id and secret (written by
	// `poolagent enroll`); empty: <state_dir>/client.json.
	CredentialsFile string `toml:"credentials_file"`
	// StateDir holds the credentials, the agent's state, the updater's
	// journal and downloads, and the local API socket.
	StateDir string `toml:"state_dir"`
	// HeartbeatInterval is the default interval; the server's
	// configuration.heartbeatInterval overrides it.
	HeartbeatInterval Duration `toml:"heartbeat_interval"`
	// Type is the managed client's type: VA, CCG, INTERNAL, IIQ_HARVESTER.
	Type string `toml:"type"`
	// PlatformVersion is reported as platform_version (an appliance's
	// platform generation); empty: not reported.
	PlatformVersion string `toml:"platform_version"`
	// Hostname is the name the host reports (and its agents are listed
	// under); empty: the operating system's host name.
	Hostname string `toml:"hostname"`
	// Timezone is the IANA time zone the host reports, e.g. "Europe/Paris",
	// for maintenance windows in each host's local time; empty: the
	// operating system's zone.
	Timezone string `toml:"timezone"`
	// LogLevel is debug, info, warn or error; LogFormat auto, console or json.
	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`
	// ServerCA is a PEM CA bundle to verify the server's certificate
	// with instead of the system roots.
	ServerCA string `toml:"server_ca"`
	// ServerPubkeySHA256 pins the server's public key: the SHA-256 of its
	// certificate's SubjectPublicKeyInfo, base64 or hex. Checked besides
	// the chain.
	ServerPubkeySHA256 string `toml:"server_pubkey_sha256"`
	// ClientCert and ClientKey are a PEM client certificate and key
	// presented to the server (its client_ca, mutual TLS).
	ClientCert string `toml:"client_cert"`
	ClientKey  string `toml:"client_key"`
	// Proxy is an http(s) proxy URL for every request; empty: HTTPS_PROXY,
	// HTTP_PROXY and NO_PROXY from the environment.
	Proxy string `toml:"proxy"`
	// InstallRoots are the directories under which managed binaries may
	// be replaced.
	InstallRoots []string `toml:"install_roots"`
	// Artifacts configures downloads.
	Artifacts ArtifactsConfig `toml:"artifacts"`
	// Maintenance is the maintenance-window policy.
	Maintenance MaintenanceConfig `toml:"maintenance"`
	// LocalAPI is the local API `poolagent status` talks to.
	LocalAPI LocalAPIConfig `toml:"local_api"`
	// SelfUpdate configures poolagent's own updates.
	SelfUpdate SelfUpdateConfig `toml:"self_update"`
	// Agents are the managed agents.
	Agents []Agent `toml:"agents"`
}

// ArtifactsConfig configures how artifacts are fetched and trusted.
type ArtifactsConfig struct {
	// TrustedKeys are the pinned minisign public keys (the base64 line of
	// a .pub file). Nothing the server sends can add one.
	TrustedKeys []string `toml:"trusted_keys"`
	// RevokedKeyIDs are key ids (hex, as minisign prints them) refused
	// even while still pinned.
	RevokedKeyIDs []string `toml:"revoked_key_ids"`
	// AllowedURLs are extra origins (scheme://host[:port]) artifacts may be
	// downloaded from besides server_url's. The client secret is only sent
	// to server_url's origin.
	AllowedURLs []string `toml:"allowed_urls"`
	// AllowInsecureHTTP permits plain http:// (labs and tests only).
	AllowInsecureHTTP bool `toml:"allow_insecure_http"`
	// Mirrors are this host's own (site) mirrors: base URLs tried first, in
	// order, each serving an artifact at <base>/<sha256>. The client
	// secret is never sent to them.
	Mirrors []string `toml:"mirrors"`
	// UseServerMirrors (default on) lets the server add sources: the
	// pool's artifactMirrors and the object store's presigned URL, each
	// still only on server_url's origin or one in AllowedURLs. Off, this
	// host downloads from its own Mirrors and server_url's artifact URL
	// only.
	UseServerMirrors bool `toml:"use_server_mirrors"`
	// StallTimeout: a download below 1 KiB/s for this long is abandoned
	// (the partial file is kept for the next attempt).
	StallTimeout Duration `toml:"stall_timeout"`
	// DownloadRateLimit caps every download in bytes per second (0: no
	// cap). A job's downloadRateLimit may lower it; the smaller wins.
	DownloadRateLimit int64 `toml:"download_rate_limit"`
	// AllowDowngrade lets a job install a version below the installed
	// one when the job also says allowDowngrade. Off (the default), the
	// server's allowDowngrade alone never downgrades this host: the job
	// is refused with DOWNGRADE_REFUSED before anything is downloaded.
	AllowDowngrade bool `toml:"allow_downgrade"`
	// AllowRevert (default on) permits one downgrade without
	// AllowDowngrade: back to exactly the release (version and SHA-256)
	// this host ran before its last update of that agent, within
	// RevertWindow of that update, when the job says allowDowngrade.
	AllowRevert bool `toml:"allow_revert"`
}

// RevertWindow is how long after an update artifacts.allow_revert lets a
// job go back to the release that update replaced.
const RevertWindow = 30 * 24 * time.Hour

// Maintenance policies.
const (
	// PolicyWindow swaps inside the server's maintenance window.
	PolicyWindow = "window"
	// PolicyManual also waits for an operator's install action on the
	// local API (the appliance flow), still inside the window.
	PolicyManual = "manual"
)

// MaintenanceConfig is the maintenance-window policy. The window itself
// comes from the server with every job and is judged by the server's clock.
type MaintenanceConfig struct {
	// Policy is "window" (install inside the server's window) or "manual"
	// (download, then wait for POST .../actions/install on the local API).
	Policy string `toml:"policy"`
	// DownloadEarly fetches and verifies an artifact as soon as a job
	// arrives, before the window opens.
	DownloadEarly bool `toml:"download_early"`
	// MinRemaining: a swap does not start when less than this is left of
	// the window.
	MinRemaining Duration `toml:"min_remaining"`
}

// LocalAPIConfig configures the local API.
type LocalAPIConfig struct {
	// Socket is the unix socket (mode 0600, owned by the daemon's user);
	// empty: <state_dir>/poolagent.sock. Not used on Windows.
	Socket string `toml:"socket"`
	// Listen is the loopback address on Windows.
	Listen string `toml:"listen"`
	// TokenFile holds the bearer token on Windows; empty:
	// <state_dir>/localapi.token.
	TokenFile string `toml:"token_file"`
}

// SelfUpdateConfig configures poolagent's own updates.
type SelfUpdateConfig struct {
	// Enabled accepts jobs for the managed process "poolagent".
	Enabled bool `toml:"enabled"`
	// ConfirmTimeout: a new binary that has not had a good heartbeat
	// within this is rolled back at its next start.
	ConfirmTimeout Duration `toml:"confirm_timeout"`
}

// Agent is one managed agent.
type Agent struct {
	// Name is unique on the host: the key of managedProcessConfiguration.
	Name string `toml:"name"`
	// Type is its Okta agent type, the pool's type: AD, IWA, LDAP, MFA,
	// OPP, RUM or Radius. Load accepts any case and normalises it
	// ("RADIUS" is Radius).
	Type string `toml:"type"`
	// Binary is the absolute path of the file an update replaces; it must
	// be inside an install root.
	Binary string `toml:"binary"`
	// Version is the installed version when known; empty: run
	// `<binary> --version` at start (and remember what poolagent installs).
	Version string `toml:"version"`
	// Service is the host service running it (systemd unit, Windows
	// service, launchd label). Exclusive with Command.
	Service string `toml:"service"`
	// Command is the argv poolagent runs and supervises as its child
	// (first element: the program). Exclusive with Service. Neither:
	// nothing is stopped or started around a swap.
	Command []string `toml:"command"`
	// Env is extra environment (NAME=value) for a supervised Command.
	Env []string `toml:"env"`
	// Health is the check after a new version starts.
	Health HealthConfig `toml:"health"`
}

// HealthConfig is a managed agent's health check.
type HealthConfig struct {
	// Grace: the process must stay up this long.
	Grace Duration `toml:"grace"`
	// URL, if set, must answer GET with 2xx.
	URL string `toml:"url"`
	// Command, if set, must exit 0 (argv, no shell).
	Command []string `toml:"command"`
	// Timeout for URL and Command; Interval between their polls.
	Timeout  Duration `toml:"timeout"`
	Interval Duration `toml:"interval"`
	// WatchInterval is how often the same check runs after the install,
	// for as long as poolagent runs (its result goes in every heartbeat);
	// nil: DefaultWatchInterval, 0: no watch. Read it with Watch.
	WatchInterval *Duration `toml:"watch_interval"`
}

// DefaultWatchInterval is health.watch_interval when the config gives
// none.
const DefaultWatchInterval = time.Minute

// MinWatchInterval is the shortest health.watch_interval other than 0.
const MinWatchInterval = time.Second

// Watch returns how often the agent's health is watched (0: not watched).
func (h HealthConfig) Watch() time.Duration {
	if h.WatchInterval == nil {
		return DefaultWatchInterval
	}
	return h.WatchInterval.Duration
}

// Default returns the defaults every key starts from.
func Default() Config {
	c := Config{
		StateDir:          "/var/lib/poolagent",
		HeartbeatInterval: Duration{Duration: 30 * time.Second},
		Type:              string(sailpoint.TypeVA),
		LogLevel:          "info",
		LogFormat:         "auto",
		Maintenance:       MaintenanceConfig{Policy: PolicyWindow, DownloadEarly: true, MinRemaining: Duration{Duration: 0}},
		LocalAPI:          LocalAPIConfig{Listen: "127.0.0.1:8731"},
		SelfUpdate:        SelfUpdateConfig{Enabled: true, ConfirmTimeout: Duration{Duration: 10 * time.Minute}},
		Artifacts:         ArtifactsConfig{StallTimeout: Duration{Duration: 60 * time.Second}, AllowRevert: true, UseServerMirrors: true},
	}
	if runtime.GOOS == "windows" {
		c.StateDir = `C:\ProgramData\poolagent`
	}
	return c
}

// Load reads a TOML file over the defaults and validates it.
func Load(path string) (Config, error) {
	cfg := Default()
	if err := tomlconf.Decode(path, &cfg); err != nil {
		return cfg, err
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Normalize rewrites values that have one canonical spelling: an agent's
// type in any case becomes Okta's ("RADIUS", "radius" -> "Radius"). A
// value it does not recognise is left for Validate to name.
func (c *Config) Normalize() {
	for i, a := range c.Agents {
		if t, ok := okta.ParseAgentType(a.Type); ok {
			c.Agents[i].Type = string(t)
		}
	}
}

// agentTypes lists Okta's agent types for an error message.
func agentTypes() string {
	names := make([]string, len(okta.AgentTypes))
	for i, t := range okta.AgentTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks every value and names the first bad key.
func (c Config) Validate() error {
	if c.ServerURL != "" {
		if err := checkOrigin(c.ServerURL); err != nil {
			return fmt.Errorf("server_url: %w", err)
		}
	}
	for _, f := range []struct{ key, path string }{{"server_ca", c.ServerCA}, {"client_cert", c.ClientCert}, {"client_key", c.ClientKey}} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			return fmt.Errorf("%s: %q must be an absolute path", f.key, f.path)
		}
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		return errors.New("client_cert, client_key: set both or neither")
	}
	if c.ServerPubkeySHA256 != "" {
		if _, err := ParsePin(c.ServerPubkeySHA256); err != nil {
			return fmt.Errorf("server_pubkey_sha256: %w", err)
		}
	}
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("state_dir: %q must be an absolute path", c.StateDir)
	}
	if c.CredentialsFile != "" && !filepath.IsAbs(c.CredentialsFile) {
		return fmt.Errorf("credentials_file: %q must be an absolute path", c.CredentialsFile)
	}
	if c.HeartbeatInterval.Duration < 100*time.Millisecond {
		return fmt.Errorf("heartbeat_interval: must be at least 100ms, got %s", c.HeartbeatInterval.Duration)
	}
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "Local" || len(c.Timezone) > 64 {
			return fmt.Errorf("timezone: %q is not an IANA time zone name such as \"Europe/Paris\" or \"UTC\"", c.Timezone)
		}
	}
	if !sailpoint.ClientType(c.Type).Valid() {
		return fmt.Errorf("type: %q: want VA, CCG, INTERNAL or IIQ_HARVESTER", c.Type)
	}
	if err := logging.Validate(c.LogLevel, c.LogFormat); err != nil {
		return err
	}
	if c.Proxy != "" {
		if u, err := url.Parse(c.Proxy); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") || u.Host == "" {
			return fmt.Errorf("proxy: %q is not an http, https or socks5 URL", c.Proxy)
		}
	}
	for i, r := range c.InstallRoots {
		if !filepath.IsAbs(r) || filepath.Clean(r) != r || r == string(filepath.Separator) {
			return fmt.Errorf("install_roots[%d]: %q must be a clean absolute directory other than the root", i, r)
		}
	}
	if len(c.Artifacts.TrustedKeys) == 0 && (len(c.Agents) > 0 || c.SelfUpdate.Enabled) {
		return errors.New("artifacts.trusted_keys: pin at least one minisign public key")
	}
	if len(c.Artifacts.TrustedKeys) > 0 {
		if _, err := signing.NewKeyring(c.Artifacts.TrustedKeys, c.Artifacts.RevokedKeyIDs); err != nil {
			return fmt.Errorf("artifacts.trusted_keys: %w", err)
		}
	}
	for i, u := range c.Artifacts.AllowedURLs {
		if err := checkOrigin(u); err != nil {
			return fmt.Errorf("artifacts.allowed_urls[%d]: %w", i, err)
		}
	}
	for i, u := range c.Artifacts.Mirrors {
		if err := checkOrigin(u); err != nil {
			return fmt.Errorf("artifacts.mirrors[%d]: %w", i, err)
		}
		if strings.HasPrefix(u, "http:") && !c.Artifacts.AllowInsecureHTTP {
			return fmt.Errorf("artifacts.mirrors[%d]: %q: plain http refused: use https or set artifacts.allow_insecure_http", i, u)
		}
	}
	if c.Artifacts.DownloadRateLimit < 0 {
		return fmt.Errorf("artifacts.download_rate_limit: bytes per second, 0 or more, got %d", c.Artifacts.DownloadRateLimit)
	}
	if c.Artifacts.StallTimeout.Duration < time.Second {
		return fmt.Errorf("artifacts.stall_timeout: must be at least 1s, got %s", c.Artifacts.StallTimeout.Duration)
	}
	switch c.Maintenance.Policy {
	case PolicyWindow, PolicyManual:
	default:
		return fmt.Errorf("maintenance.policy: %q: want window or manual", c.Maintenance.Policy)
	}
	if c.Maintenance.MinRemaining.Duration < 0 {
		return errors.New("maintenance.min_remaining: must not be negative")
	}
	if c.LocalAPI.Socket != "" && !filepath.IsAbs(c.LocalAPI.Socket) {
		return fmt.Errorf("local_api.socket: %q must be an absolute path", c.LocalAPI.Socket)
	}
	if c.LocalAPI.TokenFile != "" && !filepath.IsAbs(c.LocalAPI.TokenFile) {
		return fmt.Errorf("local_api.token_file: %q must be an absolute path", c.LocalAPI.TokenFile)
	}
	if !strings.HasPrefix(c.LocalAPI.Listen, "127.0.0.1:") && !strings.HasPrefix(c.LocalAPI.Listen, "[::1]:") {
		return fmt.Errorf("local_api.listen: %q must be a loopback address (127.0.0.1:PORT)", c.LocalAPI.Listen)
	}
	if c.SelfUpdate.ConfirmTimeout.Duration < time.Second {
		return fmt.Errorf("self_update.confirm_timeout: must be at least 1s, got %s", c.SelfUpdate.ConfirmTimeout.Duration)
	}
	seen := map[string]bool{}
	for i, a := range c.Agents {
		key := fmt.Sprintf("agents[%d]", i)
		if err := c.validateAgent(a); err != nil {
			return fmt.Errorf("%s.%w", key, err)
		}
		if seen[a.Name] {
			return fmt.Errorf("%s.name: %q is used twice", key, a.Name)
		}
		seen[a.Name] = true
	}
	return nil
}

func (c Config) validateAgent(a Agent) error {
	if !nameRE.MatchString(a.Name) {
		return fmt.Errorf("name: %q: letters, digits, '.', '_' and '-' only, 1-64 characters", a.Name)
	}
	if a.Name == SelfName {
		return fmt.Errorf("name: %q is reserved for poolagent itself", a.Name)
	}
	if t, ok := okta.ParseAgentType(a.Type); !ok {
		return fmt.Errorf("type: %q (agent %q) is not an Okta agent type; want one of %s (any case)", a.Type, a.Name, agentTypes())
	} else if string(t) != a.Type {
		return fmt.Errorf("type: %q (agent %q) is spelled %q by Okta (Load normalises it; call Config.Normalize)", a.Type, a.Name, t)
	}
	if !filepath.IsAbs(a.Binary) || filepath.Clean(a.Binary) != a.Binary {
		return fmt.Errorf("binary: %q must be a clean absolute path", a.Binary)
	}
	if !c.InRoots(a.Binary) {
		return fmt.Errorf("binary: %q is outside every install_roots entry", a.Binary)
	}
	if a.Service != "" && len(a.Command) > 0 {
		return errors.New("service: set service or command, not both")
	}
	for _, e := range a.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("env: %q is not NAME=value", e)
		}
	}
	h := a.Health
	switch {
	case h.Grace.Duration < 0:
		return errors.New("health.grace: must not be negative")
	case h.Timeout.Duration < 0:
		return errors.New("health.timeout: must not be negative")
	case h.Interval.Duration < 0:
		return errors.New("health.interval: must not be negative")
	case h.Watch() < 0 || (h.Watch() > 0 && h.Watch() < MinWatchInterval):
		return fmt.Errorf("health.watch_interval: must be 0s (no watch) or at least %s, got %s", MinWatchInterval, h.Watch())
	}
	if h.URL != "" {
		if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("health.url: %q is not an http(s) URL", h.URL)
		}
	}
	return nil
}

// InRoots reports whether the clean absolute path p lies strictly inside
// one of the install roots.
func (c Config) InRoots(p string) bool {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return false
	}
	return slices.ContainsFunc(c.InstallRoots, func(root string) bool {
		rel, err := filepath.Rel(root, p)
		return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
	})
}

// Agent returns the managed agent named name.
func (c Config) Agent(name string) (Agent, bool) {
	for _, a := range c.Agents {
		if a.Name == name {
			return a, true
		}
	}
	return Agent{}, false
}

// Credentials returns the credentials file's path.
func (c Config) Credentials() string {
	if c.CredentialsFile != "" {
		return c.CredentialsFile
	}
	return filepath.Join(c.StateDir, "client.json")
}

// Socket returns the local API socket's path.
func (c Config) Socket() string {
	if c.LocalAPI.Socket != "" {
		return c.LocalAPI.Socket
	}
	return filepath.Join(c.StateDir, "poolagent.sock")
}

// TokenFile returns the Windows local API token file's path.
func (c Config) TokenFile() string {
	if c.LocalAPI.TokenFile != "" {
		return c.LocalAPI.TokenFile
	}
	return filepath.Join(c.StateDir, "localapi.token")
}

// checkOrigin accepts an http(s) URL with a host and no query or fragment.
func checkOrigin(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an http(s) URL such as https://poolserver.example.com", s)
	}
	return nil
}

// ParsePin decodes a server_pubkey_sha256 value: 32 bytes in hex (colons
// allowed) or standard base64.
func ParsePin(v string) ([]byte, error) {
	h := strings.ReplaceAll(v, ":", "")
	if b, err := hex.DecodeString(h); err == nil && len(b) == sha256.Size {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == sha256.Size {
		return b, nil
	}
	return nil, fmt.Errorf("%q is not a SHA-256 in hex or base64 (openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)", v)
}
