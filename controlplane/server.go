// Package controlplane is poolserver: the Agent Pools management API
// (/api/v1/agentPools/...), authentication and rate limits, and the update
// lifecycle, over a store.Store.
//
// All routes live in one table (Server.routes). Errors on /api/v1 use
// Okta's error object.
package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/poolagent/poolagent/controlplane/artifacts"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/poolagent/poolagent/api"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/ui"
	"go.uber.org/zap"
)

// Clock tells the time; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

// Server is the control plane's HTTP API.
type Server struct {
	cfg     Config
	store   store.Store
	log     *zap.Logger
	clock   Clock
	limiter *rateLimiter
	tokens  ttlCache[*store.Token]
	handler http.Handler
	tls     *tls.Config // nil: plain HTTP
	metrics *metrics
	// downloads admits the artifact downloads (admission.go).
	downloads *downloadGate

	// ipLimiter counts the heartbeat path's unauthenticated requests
	// (enrollments, failed authentications) by client address, apart from
	// hbLimiter's per-client counts, so no client id shares an address's.
	ipLimiter *rateLimiter

	// The heartbeat path.
	hbLimiter   *rateLimiter
	clients     ttlCache[authedClient] // identities, without expiry: hbstate.go
	hbState     hbState
	seen        seenCoalescer
	writer      *hbWriter
	engine      *rollout.Engine
	cat         catalogCache
	arts        ArtifactStore
	presigns    presignCache
	mirrors     mirrorCache
	poolTypesMu sync.Mutex
	poolTypes   map[string]okta.AgentType
	// idleConfig holds, per pool id, the configuration of a heartbeat
	// reply with no job and no hint (replyConfiguration); read-only.
	idleConfig sync.Map
	notes      hostNotes

	bgCancel context.CancelFunc
	bgDone   sync.WaitGroup
	closed   sync.Once
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock (tests use a fake one).
func WithClock(c Clock) Option { return func(s *Server) { s.clock = c } }

// New returns a Server over st. cfg must be valid (see Config.Validate).
func New(cfg Config, st store.Store, log *zap.Logger, opts ...Option) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{cfg: cfg, store: st, log: log, clock: SystemClock,
		poolTypes: map[string]okta.AgentType{},
		notes:     newHostNotes()}
	for _, o := range opts {
		o(s)
	}
	if s.arts == nil {
		s.arts = artifacts.NewDataDir(cfg.DataDir)
	}
	s.tokens.init(tokenCacheTTL, maxTokens, s.clock.Now)
	s.clients.init(0, maxHosts, nil)
	// A host's keep-alive time is written at most once per heartbeat
	// interval: at 300,000 hosts writing every keep-alive would be 10,000
	// rows a second for a time judged against inactive_after intervals.
	s.seen.init(max(cfg.Heartbeat.FlushInterval.Duration, cfg.Heartbeat.Interval.Duration))
	s.limiter = newRateLimiter(cfg.RateLimit.RequestsPerWindow, cfg.RateLimit.Window.Duration, s.clock.Now)
	s.hbLimiter = newRateLimiter(cfg.Heartbeat.RateLimit, time.Minute, s.clock.Now)
	s.ipLimiter = newRateLimiter(cfg.Heartbeat.RateLimit, time.Minute, s.clock.Now)
	s.metrics = newMetrics(s)
	s.downloads = newDownloadGate(cfg.Artifacts.MaxConcurrentDownloads, s.metrics)
	s.engine = rollout.New(rollout.Deps{
		Store: st, Now: s.clock.Now, Log: log.Named("rollout"),
		Config: rollout.Config{Tick: cfg.Rollout.Tick.Duration, InactiveAfter: s.inactiveAfter(), SelfUpdate: cfg.Rollout.SelfUpdate,
			HeartbeatInterval: cfg.Heartbeat.Interval.Duration},
		Catalog: func(ctx context.Context) (rollout.Catalog, error) {
			c, err := s.loadCatalog(ctx, true)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Dispatched: func(n int) { s.metrics.jobsDispatch.Add(float64(n)) },
	})
	s.writer = newHBWriter(st, log, s.metrics)
	s.handler = s.routes()
	ctx, cancel := context.WithCancel(context.Background())
	s.bgCancel = cancel
	s.bgDone.Add(1)
	go func() {
		defer s.bgDone.Done()
		t := time.NewTicker(cfg.Heartbeat.FlushInterval.Duration)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.flushSeen(ctx)
			}
		}
	}()
	return s
}

// Engine returns the rollout engine (tests drive its Tick by hand).
func (s *Server) Engine() *rollout.Engine { return s.engine }

// flushSeen writes the coalesced last-seen times that are due (see
// seenCoalescer).
func (s *Server) flushSeen(ctx context.Context) {
	s.writeSeen(ctx, s.seen.take(s.clock.Now(), false))
}

func (s *Server) writeSeen(ctx context.Context, m map[string]time.Time) {
	if m == nil {
		return
	}
	if err := s.store.TouchClients(ctx, m); err != nil {
		s.seen.untake(m)
		if ctx.Err() != nil {
			return // shutting down: Close writes them
		}
		s.log.Error("write last-seen times", zap.Int("clients", len(m)), zap.Error(err))
	}
}

// Close stops the background writers and flushes what they hold. Call it
// after the HTTP server has drained, before closing the store.
func (s *Server) Close() {
	s.closed.Do(func() {
		s.bgCancel()
		s.bgDone.Wait()
		s.writer.close()
		s.writeSeen(context.Background(), s.seen.take(s.clock.Now(), true))
	})
}

// inactiveAfter is how long an agent may be silent before it is INACTIVE.
func (s *Server) inactiveAfter() time.Duration {
	return time.Duration(s.cfg.Heartbeat.InactiveAfter) * s.cfg.Heartbeat.Interval.Duration
}

// notify tells the engine an operator changed poolID's updates or
// settings: it ticks soon, and the pool's hosts that check in meanwhile
// are told to come back soon (rollout.Engine.Expect).
func (s *Server) notify(poolID string) {
	s.engine.Expect(poolID)
	s.engine.Kick()
}

// baseURL is the absolute URL prefix for links: the configured
// external_url, else the scheme and host the request came in on.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.ExternalURL != "" {
		return strings.TrimSuffix(s.cfg.ExternalURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Route is one route poolserver serves: a method and a net/http pattern
// path (e.g. "/api/v1/agentPools/{poolId}/updates").
type Route struct {
	Method, Path string
}

// Routes lists every route poolserver serves, from the same table its
// router is built from (the OpenAPI document is tested against it).
func Routes() []Route {
	s := &Server{metrics: &metrics{}, log: zap.NewNop()}
	tab, extra := s.routeTable()
	out := make([]Route, 0, len(tab)+len(extra))
	for _, rt := range tab {
		out = append(out, Route{rt.method, rt.path})
	}
	for _, rt := range extra {
		out = append(out, Route{rt.method, rt.path})
	}
	return out
}

type route struct {
	method, path string
	h            http.Handler
}

// routes is the one route table of poolserver.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	routes, extra := s.routeTable()
	// Every other method on a known path answers 405 in Okta's format
	// (ServeMux's own 405 is plain text).
	served := map[string]map[string]bool{}
	for _, rt := range routes {
		if rt.method == "GET" && strings.HasPrefix(rt.path, "/api/v1/") {
			rt.h = withETag(rt.h) // ETag and 304 for pollers (docs/api.md)
		}
		if strings.HasPrefix(rt.path, "/artifacts/") {
			// Every artifact route, full or patch, shares the download cap.
			rt.h = s.downloads.wrap(rt.h)
		}
		mux.Handle(rt.method+" "+rt.path, rt.h)
		if served[rt.path] == nil {
			served[rt.path] = map[string]bool{}
		}
		served[rt.path][rt.method] = true
	}
	for path, methods := range served {
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			if !methods[m] && !(m == "GET" && methods["HEAD"]) {
				mux.HandleFunc(m+" "+path, s.methodNotAllowed)
			}
		}
	}
	for _, rt := range extra {
		mux.Handle(rt.method+" "+rt.path, rt.h)
	}
	mux.HandleFunc("/beta/", func(w http.ResponseWriter, r *http.Request) {
		spNotFound(w, "no such endpoint: "+r.URL.Path)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeOktaError(w, errNotFound(r.URL.Path))
	})
	return s.recoverer(s.logRequests(s.metrics.instrument(mux)))
}

// routeTable returns the API routes (with Okta's 405 for other methods)
// and the plain ones (health, metrics, the dashboard, the OpenAPI document).
func (s *Server) routeTable() (routes, extra []route) {
	read, manage := store.ScopeRead, store.ScopeManage
	const pools = "/api/v1/agentPools"
	const upd = pools + "/{poolId}/updates/{updateId}"
	routes = []route{
		{"GET", pools, s.oktaAPI(read, s.handleListPools)},
		{"GET", pools + "/{poolId}/updates", s.oktaAPI(read, s.handleListUpdates)},
		{"POST", pools + "/{poolId}/updates", s.oktaAPI(manage, s.handleCreateUpdate)},
		{"GET", pools + "/{poolId}/updates/settings", s.oktaAPI(read, s.handleGetSettings)},
		{"GET", pools + "/{poolId}/compliance", s.oktaAPI(read, s.handleCompliance)}, // extension: compliance.go
		{"POST", pools + "/{poolId}/updates/settings", s.oktaAPI(manage, s.handleSetSettings)},
		{"GET", upd, s.oktaAPI(read, s.handleGetUpdate)},
		{"POST", upd, s.oktaAPI(manage, s.handleModifyUpdate)},
		{"DELETE", upd, s.oktaAPI(manage, s.handleDeleteUpdate)},
	}
	routes = append(routes, []route{
		{"GET", "/api/v1/releases", s.oktaAPI(read, s.handleListReleases)},
		{"GET", "/api/v1/auditLog", s.oktaAPI(read, s.handleAuditLog)},
		{"GET", upd + "/agents/{agentId}/diagnostics", s.oktaAPI(read, s.handleDiagnostics)},
		{"POST", "/beta/managed-clients/{clientId}/status", s.metrics.heartbeat(http.HandlerFunc(s.handleHeartbeat))},
		{"POST", "/beta/managed-clients", http.HandlerFunc(s.handleEnroll)},
		{"GET", "/artifacts/{name}/{version}/{os}/{arch}", http.HandlerFunc(s.handleArtifact)},
		{"GET", "/artifacts/patches/{sha256}", http.HandlerFunc(s.handlePatch)},
	}...)
	for _, a := range []okta.UpdateAction{okta.ActionActivate, okta.ActionDeactivate, okta.ActionPause, okta.ActionResume, okta.ActionRetry, okta.ActionStop} {
		routes = append(routes, route{"POST", upd + "/" + string(a), s.oktaAPI(manage, s.handleAction(a))})
	}
	extra = []route{
		{"GET", "/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		{"GET", "/readyz", http.HandlerFunc(s.handleReady)},
		{"GET", "/metrics", s.handleMetrics()}, // Prometheus (docs/metrics.md)
		{"GET", "/ui/", ui.Handler()},          // the dashboard (docs/dashboard.md)
		{"GET", "/openapi.yaml", http.HandlerFunc(serveOpenAPI)},
	}
	return routes, extra
}

// serveOpenAPI serves the OpenAPI document of this API (api/openapi.yaml).
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(api.OpenAPI)
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeOktaError(w, newOktaError(http.StatusMethodNotAllowed, okta.CodeMethodNotAllowed,
		fmt.Sprintf("The endpoint does not support the provided HTTP method: %s", r.Method)))
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := s.store.Ping(ctx)
	s.metrics.observeStore("Ping", start)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// logRequests logs every request at debug level and failures at info. It
// never logs headers (they carry secrets).
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		lvl := zap.DebugLevel
		// A 503 with Retry-After is load shedding (the download cap),
		// counted in /metrics, not a fault: at fleet scale it would flood
		// the log.
		if rec.status >= 500 && !(rec.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") != "") {
			lvl = zap.WarnLevel
		}
		if ce := s.log.Check(lvl, "request"); ce != nil {
			ce.Write(zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", rec.status),
				zap.Duration("took", time.Since(start)), zap.String("remote", clientAddr(r)))
		}
	})
}

// recoverer turns a panic in a handler into a 500 in Okta's format.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", zap.Any("panic", v), zap.String("path", r.URL.Path), zap.Stack("stack"))
				writeOktaError(w, newOktaError(http.StatusInternalServerError, okta.CodeInternal, "Internal Server Error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Serve serves HTTP on l until ctx is cancelled, then drains in-flight
// requests for up to cfg.ShutdownTimeout.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if s.cfg.DebugListen != "" {
		dl, err := net.Listen("tcp", s.cfg.DebugListen)
		if err != nil {
			return fmt.Errorf("debug listener %s: %w", s.cfg.DebugListen, err)
		}
		dbg := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = dbg.Serve(dl) }()
		defer dbg.Close()
		s.log.Info("profiler serving", zap.String("listen", dl.Addr().String()))
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      5 * time.Minute, // artifact downloads
		IdleTimeout:       s.cfg.EffectiveIdleTimeout(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	if idle := s.cfg.EffectiveIdleTimeout(); idle != s.cfg.IdleTimeout.Duration {
		s.log.Warn("idle_timeout raised to three heartbeat intervals so agents keep their connections",
			zap.Duration("idle_timeout", s.cfg.IdleTimeout.Duration), zap.Duration("used", idle))
	}
	errc := make(chan error, 1)
	if s.tls != nil {
		srv.TLSConfig = s.tls
		go func() { errc <- srv.ServeTLS(l, "", "") }()
	} else {
		go func() { errc <- srv.Serve(l) }()
	}
	ectx, stopEngine := context.WithCancel(context.Background())
	engineDone := make(chan struct{})
	go func() { defer close(engineDone); s.engine.Run(ectx) }()
	defer func() { stopEngine(); <-engineDone; s.Close() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: draining in-flight requests", zap.Duration("timeout", s.cfg.ShutdownTimeout.Duration))
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.Duration)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain requests: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// updateFields are the log fields of an update.
func updateFields(u *store.Update) []zap.Field {
	return []zap.Field{zap.String("pool", u.PoolID), zap.String("update", u.ID), zap.String("status", string(u.Status)),
		zap.String("targetVersion", u.TargetVersion), zap.Bool("enabled", u.Enabled)}
}

func statusField(key string, s okta.AgentUpdateJobStatus) zap.Field {
	return zap.String(key, string(s))
}

// debugMux serves Go's profiler.
func debugMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
