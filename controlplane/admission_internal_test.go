package controlplane

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// value reads one sample of the gate's metrics (label: the kind, or "").
func value(t *testing.T, m *metrics, name, kind string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.artifactBytes, m.artifactInFlight, m.artifactRejected)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			if kind != "" && (len(s.GetLabel()) != 1 || s.GetLabel()[0].GetValue() != kind) {
				continue
			}
			if s.GetCounter() != nil {
				return s.GetCounter().GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	t.Fatalf("no sample %s %s", name, kind)
	return 0
}

func TestArtifactKind(t *testing.T) {
	for _, tt := range []struct{ path, want string }{
		{"/artifacts/patches/" + strings.Repeat("ab", 32), "patch"},
		{"/artifacts/patches/", "patch"},
		{"/artifacts/AD/1.1.0/linux/amd64", "full"},
		{"/artifacts/patchesX/1/linux/amd64", "full"},
		{"/artifacts/poolagent/2.0.0/windows/arm64", "full"},
	} {
		if got := artifactKind(tt.path); got != tt.want {
			t.Errorf("artifactKind(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

// TestDownloadGateCountsByKind serves a patch and a full artifact through
// the gate over real HTTP: each kind's counter gets exactly the bytes its
// client received, and a refused download writes nothing to either.
func TestDownloadGateCountsByKind(t *testing.T) {
	m := newMetrics(&Server{log: zap.NewNop(), notes: newHostNotes()})
	g := newDownloadGate(1, m)
	release := make(chan struct{})
	srv := httptest.NewServer(g.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("hold") {
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			<-release
			return
		}
		if strings.HasPrefix(r.URL.Path, patchPathPrefix) {
			w.Write([]byte(strings.Repeat("p", 300)))
			return
		}
		w.Write([]byte(strings.Repeat("f", 5000)))
	})))
	defer srv.Close()
	get := func(path string) (int, int) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, len(b)
	}
	if code, n := get("/artifacts/patches/abc"); code != 200 || n != 300 {
		t.Fatalf("patch: %d, %d bytes", code, n)
	}
	if code, n := get("/artifacts/AD/1/linux/amd64"); code != 200 || n != 5000 {
		t.Fatalf("full: %d, %d bytes", code, n)
	}
	// One download holds the only slot: the next is refused.
	resp, err := http.Get(srv.URL + "/artifacts/patches/abc?hold")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get("/artifacts/AD/1/linux/amd64"); code != http.StatusServiceUnavailable {
		t.Fatalf("second download while the slot is held: HTTP %d, want 503", code)
	}
	if v := value(t, m, "poolserver_artifact_downloads_in_flight", ""); v != 1 {
		t.Errorf("in flight = %v, want 1", v)
	}
	close(release)
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if v := value(t, m, "poolserver_artifact_bytes_total", "patch"); v != 301 {
		t.Errorf("patch bytes = %v, want 301", v)
	}
	if v := value(t, m, "poolserver_artifact_bytes_total", "full"); v != 5000 {
		t.Errorf("full bytes = %v, want 5000 (the refused download's error body is not an artifact's)", v)
	}
	if v := value(t, m, "poolserver_artifact_downloads_rejected_total", ""); v != 1 {
		t.Errorf("rejected = %v, want 1", v)
	}
}
