package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/internal/s3test"
)

// storeProxy stands between everyone and the S3 server: poolserver's
// endpoint is the proxy, so the presigned URLs agents get point at it. It
// records every request's Authorization header, and cuts the first
// presigned GET of an object halfway through its body.
type storeProxy struct {
	*httptest.Server
	mu       sync.Mutex
	auth     []string // every Authorization header seen
	presign  []string // "<status> <range>" of each presigned GET
	cutFirst bool
}

func newStoreProxy(t *testing.T, backend string) *storeProxy {
	target, _ := url.Parse(backend)
	p := &storeProxy{cutFirst: true}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.auth = append(p.auth, r.Header.Get("Authorization"))
		presigned := r.Method == http.MethodGet && r.URL.Query().Get("X-Amz-Signature") != ""
		cut := presigned && p.cutFirst && r.Header.Get("Range") == ""
		if cut {
			p.cutFirst = false
		}
		p.mu.Unlock()
		if !presigned {
			rp.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		if cut {
			rec.cutAfter = -1 // set from Content-Length below
		}
		defer func() { // also when the cut aborts the handler
			p.mu.Lock()
			p.presign = append(p.presign, fmt.Sprintf("%d %s", rec.status, r.Header.Get("Range")))
			p.mu.Unlock()
		}()
		rp.ServeHTTP(rec, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// statusRecorder keeps the status; with cutAfter set it aborts the
// connection once half of the announced body is written.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	cutAfter int64
	written  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	if s.cutAfter < 0 {
		n, _ := strconv.ParseInt(s.Header().Get("Content-Length"), 10, 64)
		s.cutAfter = n / 2
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.cutAfter > 0 && s.written+int64(len(b)) > s.cutAfter {
		b = b[:s.cutAfter-s.written]
		_, _ = s.ResponseWriter.Write(b)
		s.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection is cut mid-body
	}
	n, err := s.ResponseWriter.Write(b)
	s.written += int64(n)
	return n, err
}

// recordingMirror answers every artifact with handler, and records the
// paths and Authorization headers it saw.
type recordingMirror struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
	auth  []string
}

func newMirror(t *testing.T, handler func(w http.ResponseWriter, r *http.Request)) *recordingMirror {
	m := &recordingMirror{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.paths = append(m.paths, r.URL.Path)
		m.auth = append(m.auth, r.Header.Get("Authorization"))
		m.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *recordingMirror) seen() ([]string, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.paths...), append([]string(nil), m.auth...)
}

// TestObjectStoreMirrorsAndResume: poolserver keeps its releases in a
// real S3 server (SeaweedFS). A real poolagent tries its own site mirror
// (which does not have the file), then the pool's mirror (which serves a
// tampered file: refused), then the store's presigned URL, whose first GET
// is cut halfway and resumed with Range. The update succeeds with the
// right binary, and the host's secret never reaches the store or a
// mirror.
func TestObjectStoreMirrorsAndResume(t *testing.T) {
	s3 := s3test.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s3.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3.SecretKey)
	proxy := newStoreProxy(t, s3.Endpoint)
	f := newFleet(t, []release{{"AD", "1.1.0", sampleBins["1.1.0"]}}, func(c *controlplane.Config) {
		c.Artifacts.Store = controlplane.StoreS3
		c.Artifacts.Endpoint = proxy.URL
		c.Artifacts.Bucket = s3.Bucket
		c.Artifacts.Prefix = "releases"
	})
	site := newMirror(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	good, err := os.ReadFile(sampleBins["1.1.0"])
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)/2] ^= 0xff
	evil := newMirror(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(tampered)))
		_, _ = w.Write(tampered)
	})
	if code := f.api("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", fmt.Sprintf(`{"artifactMirrors":[%q]}`, evil.URL+"/pool-mirror/"), nil); code != 201 {
		t.Fatalf("set the pool's artifactMirrors: %d", code)
	}

	h := f.newHost(hostOpts{artifacts: fmt.Sprintf("mirrors = [%q]\nallowed_urls = [%q, %q]", site.URL+"/site", evil.URL, proxy.URL)})
	h.enroll()
	h.start()
	u := f.createUpdate(`{"targetVersion":"1.1.0","name":"to 1.1.0 from the store"}`)
	f.waitUpdate(u.ID, "the update to succeed", func(u okta.AgentPoolUpdate) bool {
		return u.Status == okta.JobSuccess && len(u.Agents) == 1 && u.Agents[0].Version == "1.1.0"
	})
	if v := h.binaryVersion(); v != "1.1.0" {
		t.Errorf("installed binary says %q", v)
	}

	sitePaths, siteAuth := site.seen()
	evilPaths, evilAuth := evil.seen()
	if len(sitePaths) == 0 || !strings.HasPrefix(sitePaths[0], "/site/") {
		t.Errorf("the host's own mirror was not tried first: %q", sitePaths)
	}
	if len(evilPaths) == 0 || !strings.HasPrefix(evilPaths[0], "/pool-mirror/") {
		t.Errorf("the pool's mirror was not tried: %q", evilPaths)
	}
	proxy.mu.Lock()
	presigned, storeAuth := append([]string(nil), proxy.presign...), append([]string(nil), proxy.auth...)
	proxy.mu.Unlock()
	if len(presigned) < 2 || !strings.HasPrefix(presigned[0], "200 ") || !strings.HasPrefix(presigned[len(presigned)-1], "206 bytes=") {
		t.Errorf("presigned GETs through the store = %q; want a cut 200, then a 206 resume", presigned)
	}
	log := h.log.String()
	if !strings.Contains(log, "artifact source failed; trying the next") || !strings.Contains(log, "sha256 mismatch") {
		t.Errorf("no log of the tampered mirror's refusal:\n%s", log)
	}

	// The secret went nowhere but poolserver.
	var creds struct {
		Secret string `json:"secret"`
	}
	b, err := os.ReadFile(filepath.Join(h.dir, "state", "client.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &creds); err != nil || creds.Secret == "" {
		t.Fatalf("read the host's secret: %v %s", err, b)
	}
	for _, a := range append(append(siteAuth, evilAuth...), storeAuth...) {
		if strings.Contains(a, creds.Secret) || strings.HasPrefix(a, "Bearer") {
			t.Fatalf("a store or mirror request carried the host's credentials: %q", a)
		}
	}
}

// TestServerMirrorsRefusedByTheHost: a control plane that lists a pool
// mirror cannot make a host use it when the host's config says no: with
// artifacts.use_server_mirrors = false, or with the mirror's origin
// missing from artifacts.allowed_urls, the mirror gets no request at all
// and the host downloads from poolserver.
func TestServerMirrorsRefusedByTheHost(t *testing.T) {
	f := newFleet(t, []release{{"AD", "1.1.0", sampleBins["1.1.0"]}})
	evil := newMirror(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusTeapot) })
	if code := f.api("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", fmt.Sprintf(`{"artifactMirrors":[%q],"maxUnavailable":2}`, evil.URL), nil); code != 201 {
		t.Fatalf("set the pool's artifactMirrors: %d", code)
	}
	off := f.newHost(hostOpts{artifacts: fmt.Sprintf("use_server_mirrors = false\nallowed_urls = [%q]", evil.URL)})
	unlisted := f.newHost(hostOpts{})
	for _, h := range []*host{off, unlisted} {
		h.enroll()
		h.start()
	}
	u := f.createUpdate(`{"targetVersion":"1.1.0","name":"to 1.1.0"}`)
	f.waitUpdate(u.ID, "the update to succeed on both hosts", func(u okta.AgentPoolUpdate) bool {
		return u.Status == okta.JobSuccess && len(u.Agents) == 2 && u.Agents[0].Version == "1.1.0" && u.Agents[1].Version == "1.1.0"
	})
	if paths, _ := evil.seen(); len(paths) != 0 {
		t.Errorf("the refused mirror was contacted: %q", paths)
	}
	if !strings.Contains(unlisted.log.String(), "ignoring an artifact mirror from the server") {
		t.Errorf("the host with the mirror off its allow-list did not log why it ignored it:\n%s", unlisted.log.String())
	}
}
