package controlplane

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/store"
)

// metrics are poolserver's Prometheus metrics (docs/metrics.md), on a
// registry of the Server's own so several Servers may live in one process.
type metrics struct {
	reg          *prometheus.Registry
	heartbeats   *prometheus.CounterVec
	hbDuration   prometheus.Histogram
	apiRequests  *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
	jobsDispatch prometheus.Counter
	jobsFinished *prometheus.CounterVec
	jobsRollback prometheus.Counter
	fleetReverts *prometheus.CounterVec
	storeLatency *prometheus.HistogramVec
	clockSkew    prometheus.Histogram

	// Artifact downloads poolserver serves itself (admission.go).
	artifactBytes    *prometheus.CounterVec
	artifactInFlight prometheus.Gauge
	artifactRejected prometheus.Counter

	// seenMu guards seenJobs: the terminal job reports counted, so a report
	// repeated in later heartbeats is counted once (bounded: cleared when
	// full, so a rare repeat after a clear counts twice).
	seenMu   sync.Mutex
	seenJobs map[string]struct{}
}

// maxSeenJobs bounds metrics.seenJobs.
const maxSeenJobs = 1 << 16

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "poolserver_heartbeats_total",
			Help: "Heartbeats received, by the HTTP status of the reply."}, []string{"status"}),
		hbDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "poolserver_heartbeat_duration_seconds",
			Help: "Time to answer a heartbeat, store write included.", Buckets: prometheus.DefBuckets}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "poolserver_http_requests_total",
			Help: "HTTP requests, by route pattern, method and status code."}, []string{"route", "code"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "poolserver_rate_limited_total",
			Help: "Requests refused with 429, by limiter (api: per token; heartbeat: per client)."}, []string{"limiter"}),
		jobsDispatch: prometheus.NewCounter(prometheus.CounterOpts{Name: "poolserver_jobs_dispatched_total",
			Help: "Update jobs handed to hosts by the rollout engine."}),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "poolserver_jobs_finished_total",
			Help: "Update jobs hosts reported ended, by outcome (succeeded, failed, cancelled)."}, []string{"outcome"}),
		jobsRollback: prometheus.NewCounter(prometheus.CounterOpts{Name: "poolserver_jobs_rolled_back_total",
			Help: "Failed update jobs after which the host rolled back to the previous version."}),
		fleetReverts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "poolserver_fleet_reverts_total",
			Help: "Revert jobs of fleet rollbacks hosts reported ended, by outcome (succeeded, failed, cancelled)."}, []string{"outcome"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "poolserver_store_duration_seconds",
			Help: "Latency of store operations, by operation.", Buckets: prometheus.DefBuckets}, []string{"op"}),
		clockSkew: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "poolserver_heartbeat_clock_skew_seconds",
			Help:    "Absolute clock skew of each timestamped heartbeat: the server's receive time minus the host's timestamp.",
			Buckets: []float64{0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400}}),
		artifactBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "poolserver_artifact_bytes_total",
			Help: "Artifact bytes written to clients, by kind (full: a whole artifact; patch: a binary patch)."}, []string{"kind"}),
		artifactInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "poolserver_artifact_downloads_in_flight",
			Help: "Artifact downloads being served now (each holds a slot of artifacts.max_concurrent_downloads)."}),
		artifactRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "poolserver_artifact_downloads_rejected_total",
			Help: "Artifact downloads refused with 503 because every slot of artifacts.max_concurrent_downloads was taken."}),
		seenJobs: map[string]struct{}{},
	}
	for _, k := range []string{"full", "patch"} {
		m.artifactBytes.WithLabelValues(k)
	}
	for _, o := range []string{"succeeded", "failed", "cancelled"} {
		m.jobsFinished.WithLabelValues(o)
		m.fleetReverts.WithLabelValues(o)
	}
	for _, l := range []string{"api", "heartbeat"} {
		m.rateLimited.WithLabelValues(l)
	}
	m.reg.MustRegister(m.heartbeats, m.hbDuration, m.apiRequests, m.rateLimited, m.jobsDispatch, m.jobsFinished,
		m.jobsRollback, m.fleetReverts, m.storeLatency, m.clockSkew, m.artifactBytes, m.artifactInFlight, m.artifactRejected, &fleetCollector{s: s},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "poolserver_hosts_clock_skew_max_seconds",
			Help: "The largest absolute clock skew among the hosts heard from since this server started, at their last heartbeat."},
			func() float64 { return s.notes.maxSkew().Seconds() }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeStore records the latency of a store operation started at start.
func (m *metrics) observeStore(op string, start time.Time) {
	m.storeLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// jobReported counts a host's job report once when it is terminal.
func (m *metrics) jobReported(j sailpoint.JobReport) {
	if !j.State.Terminal() {
		return
	}
	m.seenMu.Lock()
	_, dup := m.seenJobs[j.UUID]
	if !dup {
		if len(m.seenJobs) >= maxSeenJobs {
			clear(m.seenJobs)
		}
		m.seenJobs[j.UUID] = struct{}{}
	}
	m.seenMu.Unlock()
	if dup {
		return
	}
	if strings.HasPrefix(j.UUID, rollout.RevertJobPrefix) {
		switch j.State {
		case sailpoint.JobFinished:
			m.fleetReverts.WithLabelValues("succeeded").Inc()
		case sailpoint.JobFailed:
			m.fleetReverts.WithLabelValues("failed").Inc()
		case sailpoint.JobCancelled:
			m.fleetReverts.WithLabelValues("cancelled").Inc()
		}
	}
	switch j.State {
	case sailpoint.JobFinished:
		m.jobsFinished.WithLabelValues("succeeded").Inc()
	case sailpoint.JobFailed:
		m.jobsFinished.WithLabelValues("failed").Inc()
		if strings.Contains(j.UpdateMessage, "rolled back") {
			m.jobsRollback.Inc()
		}
	case sailpoint.JobCancelled:
		m.jobsFinished.WithLabelValues("cancelled").Inc()
	}
}

// instrument counts every request by the route pattern that served it
// (ServeMux sets r.Pattern), never by its raw path (ids would explode the
// label set).
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.apiRequests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
	})
}

// handleMetrics serves /metrics in Prometheus' text format.
func (s *Server) handleMetrics() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(s.log.Named("metrics"))})
}

// fleetCollector reports the gauges that need the store, computed at
// scrape time with bounded queries (a timeout, and at most one query per
// fleetCacheFor).
type fleetCollector struct {
	s *Server

	mu      sync.Mutex
	at      time.Time
	metrics []prometheus.Metric
}

var (
	hostsDesc = prometheus.NewDesc("poolserver_hosts", "Managed agents, by operationalStatus and version.",
		[]string{"operational_status", "version"}, nil)
	updatesDesc = prometheus.NewDesc("poolserver_updates", "Updates that are not over (Scheduled, InProgress, Paused, Failed), by status.",
		[]string{"status"}, nil)
	scrapeErrDesc = prometheus.NewDesc("poolserver_fleet_scrape_error", "1 when the last store query for the fleet gauges failed.", nil, nil)
)

// fleetCacheFor is how long the fleet gauges are reused between scrapes.
const fleetCacheFor = 5 * time.Second

// Describe implements prometheus.Collector.
func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hostsDesc
	ch <- updatesDesc
	ch <- scrapeErrDesc
	ch <- poolHostsDesc
}

// Collect implements prometheus.Collector.
func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.metrics == nil || time.Since(c.at) > fleetCacheFor {
		c.metrics, c.at = c.query(), time.Now()
	}
	for _, m := range c.metrics {
		ch <- m
	}
}

func (c *fleetCollector) query() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := c.s
	var out []prometheus.Metric
	failed := 0.0
	pools, agents, err := c.allAgents(ctx)
	if err != nil {
		s.log.Warn("metrics: list agents", zap.Error(err))
		failed = 1
	} else {
		type key struct{ status, version string }
		n := map[key]int{}
		now := s.clock.Now()
		for _, a := range agents {
			n[key{string(s.operational(a, now)), a.Version}]++
		}
		for k, v := range n {
			out = append(out, prometheus.MustNewConstMetric(hostsDesc, prometheus.GaugeValue, float64(v), k.status, k.version))
		}
		out = append(out, s.complianceMetrics(ctx, pools, agents, now)...) // the same agents: no query of its own
	}
	active := []okta.AgentUpdateJobStatus{okta.JobScheduled, okta.JobInProgress, okta.JobPaused, okta.JobFailed}
	start := time.Now()
	updates, err := s.store.ListActiveUpdates(ctx, active...)
	s.metrics.observeStore("ListActiveUpdates", start)
	if err != nil {
		s.log.Warn("metrics: list updates", zap.Error(err))
		failed = 1
	} else {
		n := map[okta.AgentUpdateJobStatus]int{}
		for _, u := range updates {
			n[u.Status]++
		}
		for _, st := range active {
			out = append(out, prometheus.MustNewConstMetric(updatesDesc, prometheus.GaugeValue, float64(n[st]), string(st)))
		}
	}
	return append(out, prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, failed))
}

// heartbeat counts heartbeats by reply status and times them.
func (m *metrics) heartbeat(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.hbDuration.Observe(time.Since(start).Seconds())
		m.heartbeats.WithLabelValues(strconv.Itoa(rec.status)).Inc()
	})
}

// maxMetricsPools bounds the pools the fleet gauges read.
const maxMetricsPools = 10000

// allAgents lists the pools (at most maxMetricsPools of each type) and
// their agents.
func (c *fleetCollector) allAgents(ctx context.Context) ([]*store.Pool, []*store.Agent, error) {
	s := c.s
	var ids []string
	var all []*store.Pool
	for _, typ := range okta.AgentTypes {
		start := time.Now()
		pools, err := s.store.ListPools(ctx, store.PoolQuery{Type: typ, Limit: maxMetricsPools})
		s.metrics.observeStore("ListPools", start)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range pools {
			ids = append(ids, p.ID)
		}
		all = append(all, pools...)
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	start := time.Now()
	agents, err := s.store.ListAgents(ctx, ids...)
	s.metrics.observeStore("ListAgents", start)
	return all, agents, err
}
