package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/okta/okta-sdk-golang/v5/okta"
	wire "github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// harness is one poolserver over a SQLite store in a temporary directory,
// served on 127.0.0.1, with a manage and a read-only token.
type harness struct {
	t      *testing.T
	srv    *httptest.Server
	st     store.Store
	manage string // okta.agentPools.manage
	read   string // okta.agentPools.read only
}

func newHarness(t *testing.T, mutate ...func(*controlplane.Config)) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := controlplane.DefaultConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(controlplane.New(cfg, st, nil).Handler())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	h := &harness{t: t, srv: srv, st: st}
	now := time.Now()
	if h.manage, _, err = controlplane.CreateToken(ctx, st, "conformance-manage", []store.Scope{store.ScopeManage}, 0, now); err != nil {
		t.Fatal(err)
	}
	if h.read, _, err = controlplane.CreateToken(ctx, st, "conformance-read", []store.Scope{store.ScopeRead}, 0, now); err != nil {
		t.Fatal(err)
	}
	return h
}

// agentSpec describes an agent to put into a pool.
type agentSpec struct {
	name     string
	status   wire.OperationalStatus
	lastSeen time.Time // zero: never connected
	hidden   bool
}

// lastSeen is a fixed time with millisecond precision (the store keeps
// milliseconds), so a decoded lastConnection can be compared exactly.
// lastSeen is recent: an agent silent for heartbeat.inactive_after
// intervals is served as INACTIVE.
var lastSeen = time.Now().UTC().Truncate(time.Millisecond).Add(-10 * time.Second)

// pool creates a pool and its agents directly in the store.
func (h *harness) pool(typ wire.AgentType, name string, agents ...agentSpec) (*store.Pool, []*store.Agent) {
	h.t.Helper()
	ctx := context.Background()
	p := &store.Pool{ID: store.NewID("pol"), Name: name, Type: typ, CreatedAt: time.Now()}
	if err := h.st.CreatePool(ctx, p); err != nil {
		h.t.Fatal(err)
	}
	var out []*store.Agent
	for _, s := range agents {
		a := &store.Agent{
			ID: store.NewID("agt"), PoolID: p.ID, ClientID: store.NewID("cli"), Name: s.name, Type: typ,
			Version: "3.19.0", LastConnection: s.lastSeen, OperationalStatus: s.status, IsHidden: s.hidden,
			CreatedAt: time.Now(),
		}
		if err := h.st.CreateAgent(ctx, a); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, a)
	}
	return p, out
}

// up is an operational agent seen at lastSeen.
func up(name string) agentSpec {
	return agentSpec{name: name, status: wire.OperationalStatusOperational, lastSeen: lastSeen}
}

// selfHref is the `_links.self.href` poolserver must give an update.
func (h *harness) selfHref(poolID, updateID string) string {
	return h.srv.URL + "/api/v1/agentPools/" + poolID + "/updates/" + updateID
}

// sdk is an Okta Go SDK client for the harness's server, with a recorder
// that sees every HTTP exchange the SDK makes.
type sdk struct {
	api okta.AgentPoolsAPI
	rec *recorder
}

// client builds the official SDK client the way an operator would, with
// the adjustments the SDK needs to reach a plain-HTTP server on a port.
func (h *harness) client(token string, opts ...okta.ConfigSetter) sdk {
	h.t.Helper()
	base := []okta.ConfigSetter{
		okta.WithOrgUrl(h.srv.URL),
		okta.WithToken(token),
		okta.WithAuthorizationMode("SSWS"),
		okta.WithCache(false),
		okta.WithTestingDisableHttpsCheck(true),
		okta.WithRateLimitMaxRetries(0),
		okta.WithRequestTimeout(30),
	}
	cfg, err := okta.NewConfiguration(append(base, opts...)...)
	if err != nil {
		h.t.Fatal(err)
	}
	// The SDK keeps only the host name of the org URL (it drops the port)
	// and overrides every request's host and scheme with these.
	u, err := url.Parse(h.srv.URL)
	if err != nil {
		h.t.Fatal(err)
	}
	cfg.Host = u.Host
	cfg.Scheme = u.Scheme
	rec := &recorder{base: &http.Transport{Proxy: nil, DisableCompression: true}}
	h.t.Cleanup(rec.base.(*http.Transport).CloseIdleConnections)
	cfg.HTTPClient = &http.Client{Transport: rec}
	return sdk{api: okta.NewAPIClient(cfg).AgentPoolsAPI, rec: rec}
}

// exchange is one request the SDK sent and the reply it got.
type exchange struct {
	method    string
	url       *url.URL
	reqHeader http.Header
	status    int
	header    http.Header
	body      []byte
}

// recorder is an http.RoundTripper that records every exchange, so the
// wire can be checked where the SDK hides it (a 429 the SDK turns into a
// bare error, the retries it makes).
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	log  []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.log = append(r.log, exchange{method: req.Method, url: req.URL, reqHeader: req.Header.Clone(),
		status: resp.StatusCode, header: resp.Header.Clone(), body: body})
	r.mu.Unlock()
	return resp, nil
}

// since returns the exchanges after the first n.
func (r *recorder) since(n int) []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.log[n:]...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

// sdkError asserts that err is the SDK's GenericOpenAPIError.
func sdkError(t *testing.T, err error) *okta.GenericOpenAPIError {
	t.Helper()
	if err == nil {
		t.Fatal("the call succeeded; want an error")
	}
	var ge *okta.GenericOpenAPIError
	if !errors.As(err, &ge) {
		t.Fatalf("error %T (%v) is not the SDK's *okta.GenericOpenAPIError", err, err)
	}
	return ge
}

// sdkModel asserts that the SDK decoded the error body into its okta.Error
// model (it does so for the statuses an operation declares).
func sdkModel(t *testing.T, err error) okta.Error {
	t.Helper()
	ge := sdkError(t, err)
	m, ok := ge.Model().(okta.Error)
	if !ok {
		t.Fatalf("error model is %T, want okta.Error (error %q, body %s)", ge.Model(), ge.Error(), ge.Body())
	}
	return m
}

// bodyModel decodes the raw error body the SDK kept into its okta.Error
// type, for statuses the SDK does not declare for an operation (it then
// leaves the model nil).
func bodyModel(t *testing.T, err error) okta.Error {
	t.Helper()
	ge := sdkError(t, err)
	if m, ok := ge.Model().(okta.Error); ok {
		return m
	}
	if ge.Model() != nil {
		t.Fatalf("error model is %T, want okta.Error or nil", ge.Model())
	}
	var m okta.Error
	if err := json.Unmarshal(ge.Body(), &m); err != nil {
		t.Fatalf("error body does not decode into okta.Error: %v: %s", err, ge.Body())
	}
	return m
}

// checkError checks an Okta error object: the code, a summary, an id, and
// errorCauses as an array (non-empty when wantCauses).
func checkError(t *testing.T, e okta.Error, code string, wantCauses bool) {
	t.Helper()
	if got := e.GetErrorCode(); got != code {
		t.Errorf("errorCode = %q, want %q (summary %q)", got, code, e.GetErrorSummary())
	}
	if e.GetErrorSummary() == "" || e.GetErrorId() == "" || e.GetErrorLink() == "" {
		t.Errorf("errorSummary, errorId and errorLink must be set: %+v", e)
	}
	if e.ErrorCauses == nil {
		t.Errorf("errorCauses is absent or null; Okta always sends an array")
	}
	if wantCauses && len(e.ErrorCauses) == 0 {
		t.Errorf("errorCauses is empty; want the reason (summary %q)", e.GetErrorSummary())
	}
	for i, c := range e.ErrorCauses {
		if c.GetErrorSummary() == "" {
			t.Errorf("errorCauses[%d].errorSummary is empty", i)
		}
		noExtra(t, "errorCauses[]", c.AdditionalProperties)
	}
	noExtra(t, "error", e.AdditionalProperties)
}

// noExtra fails when poolserver sent fields the SDK's model does not know.
// extensions are poolserver's documented additions to Okta's shapes
// (docs/api.md); the SDK keeps them in AdditionalProperties.
var extensions = map[string]bool{"maxUnavailable": true, "allowDowngrade": true, "nextWindow": true, "minOperational": true, "requireAllConnected": true, "rollout": true,
	"progress": true, "phase": true, "dispatchedAt": true, "agentCounts": true}

func noExtra(t *testing.T, what string, extra map[string]any) {
	t.Helper()
	for k, v := range extra {
		if !extensions[k] {
			t.Errorf("%s has a field the SDK does not know and docs/api.md does not list: %s=%v", what, k, v)
		}
	}
}

// wantStatus checks the HTTP status of an SDK call.
func wantStatus(t *testing.T, resp *okta.APIResponse, want int) {
	t.Helper()
	switch {
	case resp == nil || resp.Response == nil:
		t.Fatalf("no HTTP response; want %d", want)
	case resp.StatusCode != want:
		t.Fatalf("HTTP status = %d, want %d", resp.StatusCode, want)
	}
}

// jsonOf renders an SDK object as the SDK would send it, for comparisons.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
