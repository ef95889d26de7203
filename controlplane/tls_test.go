package controlplane_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/internal/devpki"
)

// tlsEnv is a poolserver serving HTTPS through Server.Serve, as
// `poolserver serve --tls-cert --tls-key` does.
type tlsEnv struct {
	url      string
	certs    *controlplane.CertReloader
	certFile string
	keyFile  string
	roots    *x509.CertPool
	manage   string
	client   string // a managed client's id
	secret   string // its secret
}

func newTLSEnv(t *testing.T, ca *devpki.CA, clientCA string) *tlsEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	pair, err := ca.Server("server")
	if err != nil {
		t.Fatal(err)
	}
	st, err := openTestStore(ctx, t, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := controlplane.DefaultConfig()
	cfg.DataDir, cfg.TLSCert, cfg.TLSKey, cfg.ClientCA = dir, pair.CertFile, pair.KeyFile, clientCA
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	certs, err := controlplane.NewCertReloader(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := controlplane.TLSConfig(cfg, certs)
	if err != nil {
		t.Fatal(err)
	}
	srv := controlplane.New(cfg, st, nil, controlplane.WithTLS(tc))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	e := &tlsEnv{url: "https://" + l.Addr().String(), certs: certs, certFile: pair.CertFile, keyFile: pair.KeyFile, roots: x509.NewCertPool()}
	b, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	e.roots.AppendCertsFromPEM(b)
	now := time.Now()
	e.manage, _, err = controlplane.CreateToken(ctx, st, "manage", []store.Scope{store.ScopeManage}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	p := &store.Pool{ID: store.NewID("pol"), Name: "ad", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := st.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	secret, c, err := controlplane.CreateClient(ctx, st, p.ID, "", now)
	if err != nil {
		t.Fatal(err)
	}
	e.client, e.secret = c.ID, secret
	return e
}

// httpClient trusts the env's CA and presents certs[0] whatever CAs the
// server asks for.
func (e *tlsEnv) httpClient(certs ...tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: e.roots}
	if len(certs) > 0 {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
}

func (e *tlsEnv) get(t *testing.T, c *http.Client, path, auth string) (*http.Response, error) {
	t.Helper()
	return e.send(t, c, "GET", path, auth, "")
}

func (e *tlsEnv) send(t *testing.T, c *http.Client, method, path, auth, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func leafSerial(resp *http.Response) string {
	return resp.TLS.PeerCertificates[0].SerialNumber.String()
}

// TestTLSReloadServesTheNewCertificate: after Reload (what SIGHUP does) new
// connections get the new certificate while a kept-alive connection made
// before keeps working.
func TestTLSReloadServesTheNewCertificate(t *testing.T) {
	ca, err := devpki.NewCA(t.TempDir(), "ca")
	if err != nil {
		t.Fatal(err)
	}
	e := newTLSEnv(t, ca, "")
	old := e.httpClient()
	r1, err := e.get(t, old, "/healthz", "")
	if err != nil {
		t.Fatal(err)
	}
	next, err := ca.Server("next")
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{next.CertFile: e.certFile, next.KeyFile: e.keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.certs.Reload(); err != nil {
		t.Fatal(err)
	}
	r2, err := e.get(t, e.httpClient(), "/healthz", "")
	if err != nil {
		t.Fatal(err)
	}
	if leafSerial(r2) == leafSerial(r1) {
		t.Errorf("a new connection after Reload got the old certificate (serial %s)", leafSerial(r1))
	}
	r3, err := e.get(t, old, "/healthz", "")
	if err != nil {
		t.Fatalf("the kept-alive connection broke on Reload: %v", err)
	}
	if !r3.TLS.DidResume && leafSerial(r3) != leafSerial(r1) {
		t.Errorf("the kept-alive connection was replaced: serial %s, want the old %s", leafSerial(r3), leafSerial(r1))
	}
	// A bad pair keeps the old certificate in use.
	if err := os.WriteFile(e.keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.certs.Reload(); err == nil {
		t.Error("Reload accepted a garbage key")
	}
	r4, err := e.get(t, e.httpClient(), "/healthz", "")
	if err != nil {
		t.Fatalf("after a failed Reload: %v", err)
	}
	if leafSerial(r4) != leafSerial(r2) {
		t.Errorf("a failed Reload changed the certificate")
	}
}

// TestMutualTLSRequiredForHeartbeats: with client_ca set, a heartbeat needs
// a client certificate signed by it besides the secret; other routes do not.
func TestMutualTLSRequiredForHeartbeats(t *testing.T) {
	dir := t.TempDir()
	ca, err := devpki.NewCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := devpki.NewCA(t.TempDir(), "clients")
	if err != nil {
		t.Fatal(err)
	}
	rogueCA, err := devpki.NewCA(t.TempDir(), "rogue")
	if err != nil {
		t.Fatal(err)
	}
	e := newTLSEnv(t, ca, clientCA.CertFile)
	load := func(ca *devpki.CA) tls.Certificate {
		p, err := ca.Client("host1")
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good, rogue := load(clientCA), load(rogueCA)
	body := `{"status":"NORMAL","timestamp":"` + time.Now().UTC().Format(time.RFC3339) + `","body":{"hostname":"h1","os":"linux","arch":"amd64","internalIp":"10.0.0.1","agents":[]}}`
	hb := "/beta/managed-clients/" + e.client + "/status"
	tests := []struct {
		name   string
		client *http.Client
		method string
		path   string
		auth   string
		body   string
		want   int // 0: the TLS handshake fails
	}{
		{"heartbeat without a client certificate", e.httpClient(), "POST", hb, "Bearer " + e.secret, body, http.StatusUnauthorized},
		{"heartbeat with a certificate of another CA", e.httpClient(rogue), "POST", hb, "Bearer " + e.secret, body, 0},
		{"heartbeat with a certificate but no secret", e.httpClient(good), "POST", hb, "", body, http.StatusUnauthorized},
		{"heartbeat with a certificate and the secret", e.httpClient(good), "POST", hb, "Bearer " + e.secret, body, http.StatusOK},
		{"API without a client certificate", e.httpClient(), "GET", "/api/v1/agentPools", "SSWS " + e.manage, "", http.StatusOK},
		{"healthz without a client certificate", e.httpClient(), "GET", "/healthz", "", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.send(t, tt.client, tt.method, tt.path, tt.auth, tt.body)
			if tt.want == 0 {
				if err == nil {
					t.Fatalf("got HTTP %d, want the handshake refused", resp.StatusCode)
				}
				var alert tls.AlertError
				if !errors.As(err, &alert) && !strings.Contains(err.Error(), "certificate") {
					t.Errorf("refused, but not for the certificate: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("HTTP %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

// TestPlainHTTPNeedsLoopbackOrTheFlag: without a certificate poolserver
// serves plain HTTP on loopback only, unless insecure_plain_http.
func TestPlainHTTPNeedsLoopbackOrTheFlag(t *testing.T) {
	tests := []struct {
		listen   string
		insecure bool
		cert     bool
		ok       bool
	}{
		{"127.0.0.1:8080", false, false, true},
		{"[::1]:8080", false, false, true},
		{"localhost:8080", false, false, true},
		{"0.0.0.0:8080", false, false, false},
		{"10.1.2.3:8080", false, false, false},
		{"0.0.0.0:8080", true, false, true},
		{"0.0.0.0:8443", false, true, true},
	}
	for _, tt := range tests {
		cfg := controlplane.DefaultConfig()
		cfg.Listen, cfg.InsecurePlainHTTP = tt.listen, tt.insecure
		if tt.cert {
			cfg.TLSCert, cfg.TLSKey = filepath.Join("x", "c.pem"), filepath.Join("x", "k.pem")
		}
		if err := cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("listen %s insecure=%v cert=%v: Validate() = %v, want ok=%v", tt.listen, tt.insecure, tt.cert, err, tt.ok)
		}
	}
}

func TestIdleTimeoutAboveTwoHeartbeats(t *testing.T) {
	tests := []struct{ idle, interval, want time.Duration }{
		{3 * time.Minute, 30 * time.Second, 3 * time.Minute},
		{time.Minute, 30 * time.Second, 90 * time.Second},
		{50 * time.Second, 30 * time.Second, 90 * time.Second},
		{61 * time.Second, 30 * time.Second, 61 * time.Second},
	}
	for _, tt := range tests {
		cfg := controlplane.DefaultConfig()
		cfg.IdleTimeout.Duration, cfg.Heartbeat.Interval.Duration = tt.idle, tt.interval
		if got := cfg.EffectiveIdleTimeout(); got != tt.want {
			t.Errorf("idle %s, interval %s: %s, want %s", tt.idle, tt.interval, got, tt.want)
		}
	}
}
