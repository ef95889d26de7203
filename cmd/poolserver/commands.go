package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/postgres"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
	"github.com/poolagent/poolagent/internal/logging"
	"github.com/poolagent/poolagent/internal/sdnotify"
	"github.com/poolagent/poolagent/internal/version"
	"go.uber.org/zap"
)

func cmdVersion(w io.Writer) error {
	_, err := fmt.Fprintln(w, "poolserver", version.String())
	return err
}

// openStore opens the PostgreSQL database db when it is set, else the
// SQLite database in dataDir; it creates dataDir (the artifacts live there
// with either store).
func openStore(ctx context.Context, dataDir, db string) (store.Store, error) {
	if dataDir == "" && db == "" {
		return nil, usageError{"--data-dir (or --db) is required"}
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
	}
	if db != "" {
		return postgres.Open(ctx, db)
	}
	return sqlite.Open(ctx, dataDir)
}

// dbUsage is the help of every command's --db flag.
const dbUsage = "PostgreSQL URL postgres://USER@HOST:PORT/DB to keep the state in (default: SQLite in the data directory)"

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fs.String("config", "", "TOML config file")
	listen := fs.String("listen", "", "address to listen on (overrides the config)")
	dataDir := fs.String("data-dir", "", "data directory (overrides the config)")
	db := fs.String("db", "", dbUsage+" (overrides the config)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (overrides the config)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate (chain) to serve HTTPS with (overrides the config)")
	tlsKey := fs.String("tls-key", "", "PEM key of --tls-cert (overrides the config)")
	insecure := fs.Bool("insecure-plain-http", false, "allow plain HTTP on a non-loopback address (behind a TLS proxy)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := controlplane.DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = controlplane.LoadConfig(*configPath); err != nil {
			return err
		}
	}
	// Flags override the file.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = *listen
		case "data-dir":
			cfg.DataDir = *dataDir
		case "db":
			cfg.DB = *db
		case "log-level":
			cfg.LogLevel = *logLevel
		case "tls-cert":
			cfg.TLSCert = *tlsCert
		case "tls-key":
			cfg.TLSKey = *tlsKey
		case "insecure-plain-http":
			cfg.InsecurePlainHTTP = *insecure
		}
	})
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable

	var opts []controlplane.Option
	scheme := "http"
	if cfg.TLSCert != "" {
		certs, err := controlplane.NewCertReloader(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return err
		}
		tc, err := controlplane.TLSConfig(cfg, certs)
		if err != nil {
			return err
		}
		opts = append(opts, controlplane.WithTLS(tc))
		scheme = "https"
		stopReload := reloadOnSIGHUP(ctx, certs, log)
		defer stopReload()
	} else if cfg.InsecurePlainHTTP {
		log.Warn("SERVING PLAIN HTTP: API tokens, client secrets and jobs cross the network unencrypted; "+
			"only run this way behind a TLS-terminating proxy", zap.String("listen", cfg.Listen))
	}

	arts, err := controlplane.OpenArtifactStore(ctx, cfg)
	if err != nil {
		return err
	}
	opts = append(opts, controlplane.WithArtifactStore(arts))
	st, err := openStore(ctx, cfg.DataDir, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	log.Info("poolserver serving", zap.String("version", version.String()), zap.String("listen", l.Addr().String()),
		zap.String("scheme", scheme), zap.String("dataDir", cfg.DataDir), zap.String("store", storeKind(cfg.DB)), zap.String("artifacts", cfg.Artifacts.Store))
	srv := controlplane.New(cfg, st, log, opts...)
	if err := sdnotify.Ready(); err != nil {
		log.Warn("tell systemd the service is ready", zap.Error(err))
	}
	go func() { <-ctx.Done(); _ = sdnotify.Stopping() }()
	if err := srv.Serve(ctx, l); err != nil {
		return err
	}
	log.Info("poolserver stopped")
	return nil
}

func cmdTokenCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory")
	db := fs.String("db", "", dbUsage)
	name := fs.String("name", "", "a name for the token (shown in logs and the audit trail)")
	ttl := fs.Duration("ttl", 0, "lifetime of the token (0: no expiry)")
	var scopes stringList
	fs.Var(&scopes, "scope", "okta.agentPools.read or okta.agentPools.manage (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sc, err := controlplane.ParseScopes(scopes)
	if err != nil {
		return usageError{err.Error()}
	}
	if *ttl < 0 {
		return usageError{"--ttl must not be negative"}
	}
	if *name == "" {
		*name = "token-" + time.Now().UTC().Format("20060102T150405Z")
	}
	st, err := openStore(ctx, *dataDir, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	secret, tok, err := controlplane.CreateToken(ctx, st, *name, sc, *ttl, time.Now())
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if err := controlplane.AuditCLI(ctx, st, store.AuditEntry{Action: controlplane.AuditTokenCreate, Target: tok.ID,
		Detail: fmt.Sprintf("name=%q scopes=%v", tok.Name, tok.Scopes)}, time.Now()); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, secret)
	return err
}

func cmdPoolCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pool create", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory")
	db := fs.String("db", "", dbUsage)
	name := fs.String("name", "", "pool name")
	typ := fs.String("type", "", "agent type: AD, IWA, LDAP, MFA, OPP, RUM or Radius")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return usageError{"--name is required"}
	}
	t := okta.AgentType(*typ)
	if !t.Valid() {
		// Accept any capitalisation ("radius", "ldap").
		for _, v := range okta.AgentTypes {
			if strings.EqualFold(string(v), *typ) {
				t = v
			}
		}
	}
	if !t.Valid() {
		return usageError{fmt.Sprintf("--type %q: want one of AD, IWA, LDAP, MFA, OPP, RUM, Radius", *typ)}
	}
	st, err := openStore(ctx, *dataDir, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	p := &store.Pool{ID: store.NewID("pol"), Name: *name, Type: t, CreatedAt: time.Now().UTC()}
	if err := st.CreatePool(ctx, p); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("create pool: id collision, try again: %w", err)
		}
		return fmt.Errorf("create pool: %w", err)
	}
	if err := controlplane.AuditCLI(ctx, st, store.AuditEntry{Action: controlplane.AuditPoolCreate, PoolID: p.ID,
		Detail: fmt.Sprintf("name=%q type=%s", p.Name, p.Type)}, time.Now()); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, p.ID)
	return err
}

func cmdClientCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("client create", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory")
	db := fs.String("db", "", dbUsage)
	pool := fs.String("pool", "", "the pool the client's host belongs to")
	id := fs.String("id", "", "the client id (default: a new one)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pool == "" {
		return usageError{"--pool is required"}
	}
	st, err := openStore(ctx, *dataDir, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	secret, c, err := controlplane.CreateClient(ctx, st, *pool, *id, time.Now())
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	if err := controlplane.AuditCLI(ctx, st, store.AuditEntry{Action: controlplane.AuditClientCreate, PoolID: c.PoolID, Target: c.ID}, time.Now()); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, secret)
	return err
}

func cmdEnrollTokenCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("enroll-token create", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory")
	db := fs.String("db", "", dbUsage)
	pool := fs.String("pool", "", "the pool hosts enrolled with the token join")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token stays valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pool == "" {
		return usageError{"--pool is required"}
	}
	if *ttl <= 0 {
		return usageError{"--ttl must be positive"}
	}
	st, err := openStore(ctx, *dataDir, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	tok, err := controlplane.CreateEnrollToken(ctx, st, *pool, *ttl, time.Now())
	if err != nil {
		return fmt.Errorf("create enrollment token: %w", err)
	}
	if err := controlplane.AuditCLI(ctx, st, store.AuditEntry{Action: controlplane.AuditEnrollCreate, PoolID: *pool,
		Detail: "ttl " + ttl.String()}, time.Now()); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func cmdReleasePublish(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("release publish", flag.ContinueOnError)
	configPath := fs.String("config", "", "poolserver.toml: its [artifacts] store (an S3 bucket) receives the file; data_dir and db too unless given")
	dataDir := fs.String("data-dir", "", "data directory (overrides the config)")
	db := fs.String("db", "", dbUsage+" (overrides the config)")
	var p controlplane.Publish
	var channel string
	fs.StringVar(&p.Name, "name", "", "an agent type (AD, LDAP, ...) or poolagent")
	fs.StringVar(&p.Version, "version", "", "the release's version")
	fs.StringVar(&p.OS, "os", "", "GOOS the artifact runs on (linux, windows, darwin)")
	fs.StringVar(&p.Arch, "arch", "", "GOARCH the artifact runs on (amd64, arm64)")
	fs.StringVar(&channel, "channel", "GA", "GA, EA, BETA or TEST")
	fs.StringVar(&p.File, "file", "", "the artifact")
	fs.StringVar(&p.SignatureFile, "signature", "", "its minisign signature (FILE.minisig)")
	fs.IntVar(&p.Deltas, "deltas", controlplane.DefaultDeltas, "build binary patches from this many earlier releases of the same name and platform (0: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if p.File == "" || p.SignatureFile == "" {
		return usageError{"--file and --signature are required"}
	}
	if p.Deltas < 0 {
		return usageError{"--deltas must be 0 (no patches) or more"}
	}
	p.Warn = func(msg string) { fmt.Fprintln(stdout, "note:", msg) }
	cfg := controlplane.DefaultConfig()
	cfg.DataDir = ""
	if *configPath != "" {
		var err error
		if cfg, err = controlplane.LoadConfig(*configPath); err != nil {
			return err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "data-dir":
			cfg.DataDir = *dataDir
		case "db":
			cfg.DB = *db
		}
	})
	if cfg.DataDir == "" {
		return usageError{"--data-dir (or --config) is required: the catalog lives there (or in --db), and the artifacts unless [artifacts] names an object store"}
	}
	p.PatchDir = cfg.DataDir
	p.Channel = okta.ReleaseChannel(strings.ToUpper(channel))
	arts, err := controlplane.OpenArtifactStore(ctx, cfg)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.DataDir, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := controlplane.PublishReleaseTo(ctx, st, arts, p, time.Now())
	if err != nil {
		return err
	}
	if err := controlplane.AuditCLI(ctx, st, store.AuditEntry{Action: controlplane.AuditReleasePublish,
		Target: fmt.Sprintf("%s %s %s/%s", r.Name, r.Version, r.OS, r.Arch), Detail: fmt.Sprintf("channel=%s sha256=%s", r.Channel, r.SHA256)}, time.Now()); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s %s %s/%s %s sha256=%s size=%d\n", r.Name, r.Version, r.OS, r.Arch, r.Channel, r.SHA256, r.Size); err != nil {
		return err
	}
	for _, p := range r.Patches {
		if _, err := fmt.Fprintf(stdout, "patch from %s sha256=%s size=%d\n", p.FromVersion, p.SHA256, p.Size); err != nil {
			return err
		}
	}
	return nil
}

// storeKind names the store for the log, never the URL (it may carry a
// password).
func storeKind(db string) string {
	if db != "" {
		return "postgres"
	}
	return "sqlite"
}
