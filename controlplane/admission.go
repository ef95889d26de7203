package controlplane

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// downloadRetryAfter is the Retry-After poolserver sends with a 503 when
// every download slot is taken. Hosts add up to half of it again as
// jitter (docs/agent.md), so refused hosts come back spread out.
const downloadRetryAfter = 10 * time.Second

// patchPathPrefix is where binary patches are served; every other path
// under /artifacts/ serves a full artifact.
const patchPathPrefix = "/artifacts/patches/"

// artifactKind labels a download in the metrics: "patch" or "full".
func artifactKind(path string) string {
	if strings.HasPrefix(path, patchPathPrefix) {
		return "patch"
	}
	return "full"
}

// downloadGate is admission control for the artifact downloads poolserver
// serves itself: at most a fixed number at once, each holding its slot
// for the whole body transfer. A download above the cap is refused at
// once with 503 and Retry-After rather than queued: a queued request
// holds a connection and a goroutine, and the host waits as cheaply.
// It also counts the bytes written to clients and the downloads in
// flight. The zero slot count means no cap.
type downloadGate struct {
	slots    chan struct{} // nil: unlimited
	bytes    *prometheus.CounterVec
	inFlight prometheus.Gauge
	rejected prometheus.Counter
}

func newDownloadGate(max int, m *metrics) *downloadGate {
	g := &downloadGate{bytes: m.artifactBytes, inFlight: m.artifactInFlight, rejected: m.artifactRejected}
	if max > 0 {
		g.slots = make(chan struct{}, max)
	}
	return g
}

// wrap admits next's requests through the gate.
func (g *downloadGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.slots != nil {
			select {
			case g.slots <- struct{}{}:
				defer func() { <-g.slots }()
			default:
				g.rejected.Inc()
				w.Header().Set("Retry-After", strconv.Itoa(int(downloadRetryAfter/time.Second)))
				writeSPError(w, http.StatusServiceUnavailable, "503 Service Unavailable",
					"The server is temporarily unable to handle the request.",
					"every artifact download slot is taken (artifacts.max_concurrent_downloads): retry after the Retry-After delay")
				return
			}
		}
		g.inFlight.Inc()
		defer g.inFlight.Dec()
		next.ServeHTTP(&byteCountingWriter{ResponseWriter: w, n: g.bytes.WithLabelValues(artifactKind(r.URL.Path))}, r)
	})
}

// byteCountingWriter adds the body bytes written to a counter as they go, so
// a long transfer shows in the metrics before it ends.
type byteCountingWriter struct {
	http.ResponseWriter
	n prometheus.Counter
}

func (c *byteCountingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(float64(n))
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (c *byteCountingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Flush sends what is buffered, when the underlying writer can.
func (c *byteCountingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
