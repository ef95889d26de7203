package updater

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/signing"
)

// Config is the updater's part of the agent's config. The zero value of
// every duration and limit means its default.
type Config struct {
	// StateDir holds downloads and the journal. It must survive reboots.
	StateDir string
	// TrustedKeys are minisign public keys (the base64 line of a .pub
	// file). Several keys allow rotation.
	TrustedKeys []string
	// RevokedKeyIDs are key ids (hex, as minisign prints them) whose
	// signatures are refused even when the key is still pinned.
	RevokedKeyIDs []string
	// AllowInsecureHTTP permits plain http:// artifact URLs (tests, labs).
	AllowInsecureHTTP bool
	// MinSpeed (bytes/s) and StallTimeout: a download slower than MinSpeed
	// over a StallTimeout window is abandoned with ErrStalled.
	// Defaults: 1 KiB/s over 60 s.
	MinSpeed     int64
	StallTimeout time.Duration
	// RateLimit bounds every download in bytes per second (0: unbounded);
	// a job's own Job.RateLimit may lower it further. A limit below
	// 2*MinSpeed lowers the stall threshold to half the limit.
	RateLimit int64
	// RequestTimeout bounds connecting, the TLS handshake, the wait for
	// response headers and small requests such as a signature. Default 30 s.
	RequestTimeout time.Duration
	// Retries is how many times an interrupted download is resumed within
	// one Fetch. Default 3; negative means none.
	Retries int
	// BusyMaxWait caps one wait after a busy reply (503 or 429) to the
	// server's Retry-After (a missing one counts as 5 s; at least 1 s);
	// up to half of the wait again is added as jitter. BusyTimeout bounds
	// the waits of one download in all: busy replies do not use up
	// Retries, and only a server still busy after BusyTimeout fails the
	// download. Defaults: 2 min, 1 h.
	BusyMaxWait time.Duration
	BusyTimeout time.Duration
	// SelfConfirmTimeout is how long a new poolagent binary has to call
	// ConfirmSelf, and SelfMaxAttempts how many starts it gets, before
	// RecoverSelf restores the previous binary. Defaults: 10 min, 3.
	SelfConfirmTimeout time.Duration
	SelfMaxAttempts    int
	// Transport overrides the HTTP transport (tests). Proxy settings
	// (HTTPS_PROXY, NO_PROXY) are honoured by the default one.
	Transport http.RoundTripper
	// TLSConfig, if set, is used by the default transport (private CAs).
	TLSConfig *tls.Config
	// Logger receives structured logs; nil means zap.NewNop().
	Logger *zap.Logger
}

func (c *Config) setDefaults() {
	if c.MinSpeed <= 0 {
		c.MinSpeed = 1 << 10
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 60 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 3
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.BusyMaxWait <= 0 {
		c.BusyMaxWait = 2 * time.Minute
	}
	if c.BusyTimeout <= 0 {
		c.BusyTimeout = time.Hour
	}
	if c.SelfConfirmTimeout <= 0 {
		c.SelfConfirmTimeout = 10 * time.Minute
	}
	if c.SelfMaxAttempts <= 0 {
		c.SelfMaxAttempts = 3
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Updater runs update jobs. Its methods are safe for one job per target
// at a time; the daemon serialises jobs per target.
type Updater struct {
	cfg    Config
	keys   *signing.Keyring
	client *http.Client
	log    *zap.Logger
	jnl    *journal
	now    func() time.Time
	// phaseHook, if set, runs at each phase boundary of this updater's
	// jobs: tests kill the process there.
	phaseHook func(Phase)
}

// hook runs the phase hook, if any.
func (u *Updater) hook(p Phase) {
	if u.phaseHook != nil {
		u.phaseHook(p)
	}
}

// New checks cfg and prepares the state dir.
func New(cfg Config) (*Updater, error) {
	cfg.setDefaults()
	if cfg.StateDir == "" {
		return nil, errors.New("updater: state dir not set")
	}
	keys, err := signing.NewKeyring(cfg.TrustedKeys, cfg.RevokedKeyIDs)
	if err != nil {
		return nil, fmt.Errorf("updater: %w", err)
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "downloads"), filepath.Join(cfg.StateDir, "journal")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("updater: state dir: %w", err)
		}
	}
	rt := cfg.Transport
	if rt == nil {
		d := &net.Dialer{Timeout: cfg.RequestTimeout, KeepAlive: 30 * time.Second}
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           d.DialContext,
			TLSClientConfig:       cfg.TLSConfig,
			TLSHandshakeTimeout:   cfg.RequestTimeout,
			ResponseHeaderTimeout: cfg.RequestTimeout,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
			// Ranges and ETags must be the server's, not a transparent
			// decompression's.
			DisableCompression: true,
		}
	}
	u := &Updater{
		cfg:  cfg,
		keys: keys,
		log:  cfg.Logger,
		jnl:  &journal{dir: filepath.Join(cfg.StateDir, "journal")},
		now:  time.Now,
	}
	u.client = &http.Client{Transport: rt, CheckRedirect: u.checkRedirect}
	return u, nil
}

func (u *Updater) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	return u.checkURL(req.URL.Scheme)
}

func (u *Updater) checkURL(scheme string) error {
	switch scheme {
	case "https":
		return nil
	case "http":
		if u.cfg.AllowInsecureHTTP {
			return nil
		}
		return errors.New("plain http refused: use https or set allow_insecure_http")
	}
	return fmt.Errorf("unsupported URL scheme %q", scheme)
}
