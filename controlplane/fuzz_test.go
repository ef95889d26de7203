package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// fuzzServer is an in-process poolserver for the decoders' fuzz tests.
type fuzzServer struct {
	h              http.Handler
	pool, clientID string
	token, secret  string
}

func newFuzzServer(f *testing.F) *fuzzServer {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	cfg := controlplane.DefaultConfig()
	cfg.RateLimit.RequestsPerWindow = 1 << 30
	cfg.Heartbeat.RateLimit = 1 << 30
	srv := controlplane.New(cfg, st, nil)
	f.Cleanup(srv.Close)
	p := &store.Pool{ID: store.NewID("pol"), Name: "fuzz", Type: okta.AgentTypeAD, CreatedAt: time.Now()}
	if err := st.CreatePool(ctx, p); err != nil {
		f.Fatal(err)
	}
	tok, _, _ := controlplane.CreateToken(ctx, st, "fuzz", []store.Scope{store.ScopeManage}, 0, time.Now())
	secret, c, err := controlplane.CreateClient(ctx, st, p.ID, "", time.Now())
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzServer{h: srv.Handler(), pool: p.ID, clientID: c.ID, token: tok, secret: secret}
}

// send posts body and checks the reply: one of the allowed statuses, never
// a 500, and always a JSON object.
func (s *fuzzServer) send(t *testing.T, path, auth string, body []byte, allowed ...int) {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Authorization", auth)
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	ok := false
	for _, a := range allowed {
		ok = ok || rec.Code == a
	}
	if !ok {
		t.Fatalf("POST %s %q: status %d: %s", path, body, rec.Code, rec.Body.Bytes())
	}
	var v map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("POST %s %q: reply is not a JSON object: %s", path, body, rec.Body.Bytes())
	}
}

func FuzzCreateUpdateBody(f *testing.F) {
	s := newFuzzServer(f)
	for _, seed := range []string{
		`{"targetVersion":"1.1.0"}`,
		`{"name":"x","schedule":{"cron":"0 2 * * 2#1","timezone":"Europe/Berlin","delay":3,"duration":120}}`,
		`{"agents":[{"id":"nope"}],"status":"Paused","_links":{"self":{"href":"x"}}}`,
		`{"schedule":null,"sortOrder":1e400}`,
		`[[[[[[[[[[]]]]]]]]]]`,
		`{"name":"a","name":"b"}`,
		"{\"name\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s.send(t, "/api/v1/agentPools/"+s.pool+"/updates", "SSWS "+s.token, body, 201, 400)
	})
}

func FuzzSettingsBody(f *testing.F) {
	s := newFuzzServer(f)
	for _, seed := range []string{
		`{"releaseChannel":"EA","continueOnError":true}`,
		`{"maxUnavailable":-1,"agentType":"LDAP"}`,
		`{"poolName":""}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s.send(t, "/api/v1/agentPools/"+s.pool+"/updates/settings", "SSWS "+s.token, body, 201, 400)
	})
}

func FuzzHeartbeatBody(f *testing.F) {
	s := newFuzzServer(f)
	for _, seed := range []string{
		`{"status":"NORMAL","type":null,"timestamp":"2026-01-01T00:00:00.000000Z","body":{"hostname":"h","lastSeen":"1620843964604"}}`,
		`{"status":"NORMAL","body":{"agents":[{"name":"a","type":"AD","version":"1.0.0"}],"jobs":[{"uuid":"x","state":"RUNNING","progress":5}]}}`,
		`{"status":"WARNING","body":{"localDev":false,"state":null,"stacktrace":[1]}}`,
		`{"status":"NORMAL","body":{"jobs":[{"uuid":"","state":"DONE","progress":500}]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s.send(t, "/beta/managed-clients/"+s.clientID+"/status", "Bearer "+s.secret, body, 200, 400)
	})
}
