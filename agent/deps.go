package agent

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/platform/fsacl"
	"github.com/poolagent/poolagent/platform/hostinfo"
	"github.com/poolagent/poolagent/platform/process"
	"github.com/poolagent/poolagent/updater"
)

// Deps are the daemon's collaborators, which New takes from its caller:
// NewDeps builds poolagent's own from the config, tests pass their own.
type Deps struct {
	// Creds are the client's credentials and Server poolserver's URL.
	Creds  state.Credentials
	Server *url.URL
	// Transport carries the heartbeats.
	Transport http.RoundTripper
	// Updater downloads and installs the jobs.
	Updater *updater.Updater
	// Facts collects the host facts (nil: the default collector).
	Facts *hostinfo.Collector
	// Services are the managed agents' service controls by name (an
	// agent without one is neither stopped nor started); Outputs hold
	// what a supervised agent prints, for the diagnostics of a failed
	// update.
	Services map[string]updater.Service
	Outputs  map[string]*process.Ring
	// FreeSpace tells the free bytes of a directory's file system for the
	// disk precheck (nil: disk.Free).
	FreeSpace func(dir string) (uint64, error)
	// Exe is poolagent's own binary, which a self-update replaces.
	Exe string
}

// NewDeps builds poolagent's collaborators from cfg: reads the
// credentials, checks the server URL, sets up the transport, the private
// state dir, the updater and the service control of the managed agents.
func NewDeps(cfg config.Config, log *zap.Logger) (Deps, error) {
	creds, err := state.ReadCredentials(cfg.Credentials())
	if err != nil {
		return Deps{}, err
	}
	srv := cfg.ServerURL
	if srv == "" {
		srv = creds.ServerURL
	}
	if srv == "" {
		return Deps{}, errors.New("no server: set server_url in the config or enroll with --server")
	}
	su, err := url.Parse(strings.TrimSuffix(srv, "/"))
	if err != nil {
		return Deps{}, fmt.Errorf("server_url: %w", err)
	}
	if su.Scheme == "http" && !cfg.Artifacts.AllowInsecureHTTP {
		return Deps{}, fmt.Errorf("server_url %s: plain http refused: use https or set artifacts.allow_insecure_http", srv)
	}
	exe, err := os.Executable()
	if err != nil {
		return Deps{}, fmt.Errorf("find own executable: %w", err)
	}
	tr, err := newTransport(cfg)
	if err != nil {
		return Deps{}, err
	}
	// The state dir holds the secret, the local API token and the
	// downloads: SYSTEM and Administrators only on Windows (0700 on Unix).
	if err := fsacl.MkdirPrivate(cfg.StateDir); err != nil {
		return Deps{}, fmt.Errorf("state dir: %w", err)
	}
	upd, err := updater.New(updater.Config{
		StateDir:           cfg.StateDir,
		TrustedKeys:        cfg.Artifacts.TrustedKeys,
		RevokedKeyIDs:      cfg.Artifacts.RevokedKeyIDs,
		AllowInsecureHTTP:  cfg.Artifacts.AllowInsecureHTTP,
		StallTimeout:       cfg.Artifacts.StallTimeout.Duration,
		RateLimit:          cfg.Artifacts.DownloadRateLimit,
		SelfConfirmTimeout: cfg.SelfUpdate.ConfirmTimeout.Duration,
		// Downloads share the heartbeat's connections; the bearer
		// secret goes to the server's origin only.
		Transport: &bearerTransport{base: tr, origin: origin(su), secret: creds.Secret},
		Logger:    log.Named("updater"),
	})
	if err != nil {
		return Deps{}, err
	}
	deps := Deps{Creds: creds, Server: su, Transport: tr, Updater: upd, Exe: exe,
		Facts:    hostinfo.NewCollector(hostinfo.CollectorOptions{}),
		Services: map[string]updater.Service{}, Outputs: map[string]*process.Ring{}}
	for _, a := range cfg.Agents {
		switch {
		case a.Service != "":
			deps.Services[a.Name] = process.NewSystemService(a.Service)
		case len(a.Command) > 0:
			p := process.NewSupervised(a.Command[0], a.Command[1:]...)
			if len(a.Env) > 0 {
				p.Env = append(os.Environ(), a.Env...)
			}
			p.Logger = log.Named(a.Name)
			// Its output is kept for the diagnostics of a failed update.
			ring := process.NewRing(outputRingSize)
			p.Stdout, p.Stderr = ring, ring
			deps.Services[a.Name], deps.Outputs[a.Name] = p, ring
		}
	}
	return deps, nil
}
