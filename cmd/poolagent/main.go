// Command poolagent is the on-host daemon that keeps a host's managed agents
// up to date: it heartbeats to poolserver, receives update jobs and installs
// them inside the maintenance window (see docs/agent.md).
//
// Usage:
//
//	poolagent run       [--config FILE]   run in the foreground (headless, tests, containers)
//	poolagent run --service [--config FILE]   run as the service (the command line install registers)
//	poolagent install   [--config FILE]   register the systemd unit, Windows service or launchd job
//	poolagent uninstall | start | stop | restart [--config FILE]
//	poolagent status    [--config FILE] [--json]
//	poolagent enroll    [--config FILE] --server URL --token TOKEN [--if-not-enrolled]
//	poolagent configure [--config FILE] [--sample FILE] [--server URL] [--trusted-keys K1,K2]
//	                    [--server-ca FILE] [--allow-insecure-http BOOL]
//	poolagent version
//
// Exit codes: 0 success; 1 failure; 2 usage; 3 `status` found no running
// daemon; 10 restart requested (poolagent replaced its own binary).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent"
	"github.com/poolagent/poolagent/agent/agentsvc"
	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/localapi"
	"github.com/poolagent/poolagent/internal/logging"
	"github.com/poolagent/poolagent/internal/version"
	"github.com/poolagent/poolagent/platform/daemon"
	"github.com/poolagent/poolagent/platform/fsacl"
)

// Exit codes.
const (
	exitOK         = 0
	exitFailure    = 1
	exitUsage      = 2
	exitNotRunning = 3
)

// exitError carries an exit code other than exitFailure.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

const usage = `usage: poolagent COMMAND [flags]

commands:
  run        run the daemon in the foreground (--service: as the service; install registers that)
  install    register poolagent with the service manager (systemd, Windows SCM, launchd)
  uninstall  remove the service
  start      start the service
  stop       stop the service
  restart    restart the service
  status     show the daemon's state (--json for scripts)
  enroll     exchange an enrollment token for this host's credentials (--server URL --token T)
  configure  write settings into the configuration, creating it from --sample if missing
             (--server URL --trusted-keys K1,K2 --server-ca FILE --allow-insecure-http BOOL)
  version    print the version

flags:
  --config FILE   configuration (default %s)
`

func defaultConfigPath() string {
	if runtime.GOOS == "windows" {
		return `C:\ProgramData\poolagent\poolagent.toml`
	}
	return "/etc/poolagent/poolagent.toml"
}

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	code := exitOK
	if err != nil {
		code = exitFailure
		var ee *exitError
		switch {
		case errors.As(err, &ee):
			code = ee.code
		case errors.Is(err, agent.ErrRestart):
			code = agent.ExitRestart
		}
		if ee == nil || ee.err != nil && ee.code != exitNotRunning {
			fmt.Fprintln(os.Stderr, "poolagent:", err)
		}
	}
	os.Exit(code)
}

// run executes one command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, defaultConfigPath())
		return &exitError{code: exitUsage, err: errors.New("no command given")}
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("poolagent "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfigPath(), "configuration file (TOML)")
	var jsonOut, asService *bool
	var server, token *string
	var ifNotEnrolled *bool
	var cf configureFlags
	switch cmd {
	case "status":
		jsonOut = fs.Bool("json", false, "print JSON for scripts")
	case "enroll":
		server = fs.String("server", "", "poolserver's URL (default: server_url of the config)")
		token = fs.String("token", "", "one-time enrollment token (poolserver enroll-token create)")
		ifNotEnrolled = fs.Bool("if-not-enrolled", false, "keep the credentials if this host is already enrolled (installers, upgrades)")
	case "configure":
		fs.StringVar(&cf.sample, "sample", "", "sample configuration to start from when --config does not exist")
		fs.StringVar(&cf.server, "server", "", "server_url")
		fs.StringVar(&cf.trustedKeys, "trusted-keys", "", "artifacts.trusted_keys: minisign public keys, comma-separated")
		fs.StringVar(&cf.serverCA, "server-ca", "", "server_ca: PEM CA bundle for poolserver's certificate")
		fs.StringVar(&cf.insecure, "allow-insecure-http", "", "artifacts.allow_insecure_http: true or false (labs and tests only)")
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "poolagent", version.String())
		return nil
	case "run":
		asService = fs.Bool("service", false, "run as the service: the service manager starts poolagent so (install registers it)")
	case "install", "uninstall", "start", "stop", "restart":
	case "help", "-h", "--help":
		fmt.Fprintf(stdout, usage, defaultConfigPath())
		return nil
	default:
		fmt.Fprintf(stderr, usage, defaultConfigPath())
		return &exitError{code: exitUsage, err: fmt.Errorf("unknown command %q", cmd)}
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: exitUsage, err: fmt.Errorf("%s: unexpected argument %q", cmd, fs.Arg(0))}
	}
	path, err := filepath.Abs(*cfgPath)
	if err != nil {
		return err
	}
	if cmd == "configure" {
		return configure(path, cf, stdout)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	switch cmd {
	case "status":
		return status(ctx, cfg, *jsonOut, stdout)
	case "enroll":
		if *ifNotEnrolled {
			c, ok, err := alreadyEnrolled(cfg)
			if err != nil {
				return err
			}
			if ok {
				fmt.Fprintf(stdout, "already enrolled as client %s in pool %s (%s); keeping these credentials\n", c.ClientID, c.ClusterID, cfg.Credentials())
				return nil
			}
			if *token == "" {
				return fmt.Errorf("enroll: this host is not enrolled (no %s) and no enrollment token was given (--token, the installer's ENROLL_TOKEN)", cfg.Credentials())
			}
		}
		c, err := agent.Enroll(ctx, cfg, *server, *token)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enrolled as client %s in pool %s; credentials written to %s\n", c.ClientID, c.ClusterID, cfg.Credentials())
		return nil
	}
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	svc, unlisted, err := serviceConfig(cfg, path)
	if err != nil {
		return err
	}
	mgr, err := daemon.New(svc, log)
	if err != nil {
		return err
	}
	switch cmd {
	case "run":
		return runDaemon(ctx, mgr, cfg, log, *asService)
	case "install":
		// The state dir will hold the secret: create it now with its
		// protected ACL on Windows (0700 on Unix), before anything runs.
		if err := fsacl.MkdirPrivate(cfg.StateDir); err != nil {
			return fmt.Errorf("install: state dir: %w", err)
		}
		if err := mgr.Install(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "installed the poolagent service (%s); start it with: poolagent start\n", daemon.ServiceManager())
		if len(unlisted) > 0 && daemon.ServiceManager() == "linux-systemd" {
			fmt.Fprintf(stdout, "warning: the unit's ProtectSystem=strict leaves these paths read-only (they cannot be written in ReadWritePaths=); "+
				"add them quoted in a drop-in (systemctl edit poolagent): %q\n", unlisted)
		}
	case "uninstall":
		if err := mgr.Uninstall(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "removed the poolagent service")
	case "start":
		return mgr.Start(ctx)
	case "stop":
		return mgr.Stop(ctx)
	case "restart":
		return mgr.Restart(ctx)
	}
	return nil
}

// serviceConfig is poolagent's service definition for this binary and
// configuration: the unit `install` writes is the packages' unit with these
// paths (agent/agentsvc).
// The paths it could not write into the unit are returned too.
func serviceConfig(cfg config.Config, cfgPath string) (daemon.Config, []string, error) {
	exe, err := os.Executable()
	if err != nil {
		return daemon.Config{}, nil, fmt.Errorf("find own executable: %w", err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	writable := append([]string(nil), cfg.InstallRoots...)
	if sock := filepath.Dir(cfg.Socket()); sock != filepath.Clean(cfg.StateDir) {
		writable = append(writable, sock)
	}
	svc, skipped := agentsvc.Config(agentsvc.Options{
		Executable:    exe,
		ConfigPath:    cfgPath,
		StateDir:      cfg.StateDir,
		WritablePaths: writable,
	})
	return svc, skipped, nil
}

// runDaemon runs the daemon until it is stopped: as the service when
// asService (`run --service`, the command line install registers), else
// in the foreground or under a service manager that kardianos/service
// detects.
func runDaemon(ctx context.Context, mgr *daemon.Manager, cfg config.Config, log *zap.Logger, asService bool) error {
	deps, err := agent.NewDeps(cfg, log)
	if err != nil {
		return err
	}
	d, err := agent.New(cfg, log, deps)
	if err != nil {
		return err
	}
	if asService {
		err = mgr.RunService(ctx, d.Run)
	} else {
		err = mgr.Run(ctx, d.Run)
	}
	switch {
	case errors.Is(err, agent.ErrRestart):
		log.Info("exiting so that the service manager starts poolagent again", zap.Int("exit_code", agent.ExitRestart))
		return err
	case err == nil || errors.Is(err, context.Canceled):
		log.Info("poolagent stopped")
		return nil
	}
	return err
}

// status prints the running daemon's state from its local API.
func status(ctx context.Context, cfg config.Config, jsonOut bool, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var st localapi.Status
	c, err := localapi.Dial(localapi.Endpoint{Socket: cfg.Socket(), Listen: cfg.LocalAPI.Listen, TokenFile: cfg.TokenFile()})
	if err == nil {
		err = c.Get(ctx, "/status", &st)
	}
	if err != nil {
		msg := notRunningMessage(ctx, err)
		if jsonOut {
			writeJSON(w, map[string]any{"running": false, "error": msg})
		} else {
			fmt.Fprintln(w, msg)
		}
		return &exitError{code: exitNotRunning, err: errors.New(msg)}
	}
	if jsonOut {
		writeJSON(w, struct {
			Running bool `json:"running"`
			localapi.Status
		}{true, st})
		return nil
	}
	printStatus(w, st, time.Now())
	return nil
}

// notRunningMessage explains why the daemon could not be reached, with
// the service manager's view when there is one.
func notRunningMessage(ctx context.Context, err error) string {
	msg := "poolagent is not running: " + err.Error()
	if mgr, merr := daemon.New(daemon.Config{Name: "poolagent"}, nil); merr == nil {
		if s, serr := mgr.Status(ctx); serr == nil {
			msg += fmt.Sprintf("\nservice: %s", s)
		}
	}
	return msg
}
