// Command sampleagent is a small managed agent for poolagent's demo and
// end-to-end tests: an operator can picture it as "the AD connector".
//
// It serves GET /healthz and GET /version on --listen (or SAMPLEAGENT_LISTEN),
// prints its version with --version, writes an optional --pidfile, and exits 0
// on SIGTERM or SIGINT after closing its listener.
//
// Two variables are set at link time, so that a good and a bad release come
// from the same source:
//
//	go build -ldflags "-X main.version=1.1.0" ./examples/sampleagent
//	go build -ldflags "-X main.version=1.2.0 -X main.healthy=false" ./examples/sampleagent
//
// A build with healthy=false starts and stays up like a good one, but its
// /healthz answers 503, so poolagent's health check fails and rolls it back.
// A build with failAfter (a Go duration) is healthy for that long after
// it starts, then answers 503: it passes the install's check and fails
// poolagent's health watch afterwards (a regression):
//
//	go build -ldflags "-X main.version=1.3.0 -X main.failAfter=20s" ./examples/sampleagent
//
// A build with -X main.unhealthyIf=NAME is unhealthy only where the
// environment variable NAME is set: a release that fails on some hosts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Link-time stamps (strings, as -ldflags -X requires).
var (
	version   = "dev"
	healthy   = "true"
	failAfter = ""
	// unhealthyIf names an environment variable that, when set, makes
	// the build unhealthy (empty: none).
	unhealthyIf = ""
)

// defaultListen is used when neither --listen nor SAMPLEAGENT_LISTEN is set.
const defaultListen = "127.0.0.1:8089"

// shutdownTimeout bounds how long SIGTERM waits for in-flight requests.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sampleagent:", err)
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	listen      string
	pidfile     string
	showVersion bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{listen: defaultListen}
	if env := os.Getenv("SAMPLEAGENT_LISTEN"); env != "" {
		o.listen = env
	}
	fs := flag.NewFlagSet("sampleagent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", o.listen, "address for /healthz and /version (env SAMPLEAGENT_LISTEN)")
	fs.StringVar(&o.pidfile, "pidfile", "", "write the process id to this file, removed at exit")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}

// failsAfter is the failAfter stamp: how long after its start the build
// turns unhealthy (0: never).
func failsAfter() time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(failAfter))
	if err != nil || d < 0 {
		return 0
	}
	return d
}

// isHealthy reports the link-time health stamp: only "false" (any case)
// makes a build unhealthy, or the variable unhealthyIf names being set.
func isHealthy() bool {
	if unhealthyIf != "" && os.Getenv(unhealthyIf) != "" {
		return false
	}
	return !strings.EqualFold(strings.TrimSpace(healthy), "false")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.showVersion {
		_, err := fmt.Fprintln(stdout, version)
		return err
	}
	logger := log.New(stderr, "sampleagent: ", log.LstdFlags)

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if o.pidfile != "" {
		if err := os.WriteFile(o.pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			ln.Close()
			return fmt.Errorf("write pidfile: %w", err)
		}
		defer os.Remove(o.pidfile)
	}

	ok := isHealthy()
	health := func() bool { return ok }
	if d := failsAfter(); d > 0 {
		start := time.Now()
		health = func() bool { return ok && time.Since(start) < d }
		logger.Printf("/healthz answers 503 from %s after the start on (failAfter)", d)
	}
	srv := &http.Server{Handler: healthHandler(health), ReadHeaderTimeout: 10 * time.Second}
	logger.Printf("version %s listening on %s (healthy=%t, pid %d)", version, ln.Addr(), ok, os.Getpid())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Printf("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Printf("stopped")
	return nil
}

// newHandler serves /healthz (200 "ok", or 503 when unhealthy) and /version.
func newHandler(ok bool) http.Handler { return healthHandler(func() bool { return ok }) }

// healthHandler is newHandler whose health healthy tells at each request.
func healthHandler(healthy func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !healthy() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "unhealthy")
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, version)
	})
	return mux
}
