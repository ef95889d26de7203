package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestSecretsNeverLogged runs requests with every kind of secret through
// a server logging at debug level and checks no secret appears in its log.
func TestSecretsNeverLogged(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var buf bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel))
	srv := controlplane.New(controlplane.DefaultConfig(), st, log)
	defer srv.Close()
	h := srv.Handler()
	p := &store.Pool{ID: store.NewID("pol"), Name: "p", Type: okta.AgentTypeAD, CreatedAt: time.Now()}
	st.CreatePool(ctx, p)
	tok, _, _ := controlplane.CreateToken(ctx, st, "t", []store.Scope{store.ScopeManage}, 0, time.Now())
	secret, c, _ := controlplane.CreateClient(ctx, st, p.ID, "", time.Now())
	enroll, _ := controlplane.CreateEnrollToken(ctx, st, p.ID, time.Hour, time.Now())
	send := func(method, path, auth, body string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	send("GET", "/api/v1/agentPools", "SSWS "+tok, "")
	send("POST", "/api/v1/agentPools/"+p.ID+"/updates", "SSWS "+tok, `{"targetVersion":"1.0.1"}`)
	send("GET", "/api/v1/agentPools", "SSWS "+tok+"x", "")
	send("POST", "/beta/managed-clients/"+c.ID+"/status", "Bearer "+secret, `{"status":"NORMAL","body":{}}`)
	send("POST", "/beta/managed-clients/"+c.ID+"/status", "Bearer "+secret+"x", `{"status":"NORMAL","body":{}}`)
	send("POST", "/beta/managed-clients", "Bearer "+enroll, `{"hostname":"h"}`)
	send("POST", "/beta/managed-clients", "Bearer "+enroll, `{"hostname":"h"}`) // reused: refused
	if buf.Len() == 0 {
		t.Fatal("nothing was logged; the test would prove nothing")
	}
	for _, s := range []string{tok, secret, enroll} {
		if strings.Contains(buf.String(), s) || strings.Contains(buf.String(), s[4:]) {
			t.Errorf("a secret appears in the log: %s", buf.String())
		}
	}
}

// TestHostileBodies: deep nesting, duplicate keys and a flood on one token
// get clear answers, never a 500, and lose nothing.
func TestHostileBodies(t *testing.T) {
	e := newEnv(t)
	p, _ := e.pool(okta.AgentTypeAD, "ad", "dc1")
	base := "/api/v1/agentPools/" + p.ID + "/updates"
	deep := `{"name":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`
	if r := e.do("POST", base, e.manage, deep); r.status != 400 {
		t.Errorf("deeply nested body: %d %s", r.status, r.body)
	}
	// Duplicate keys: the last one wins (encoding/json), deterministically.
	r := e.do("POST", base, e.manage, `{"targetVersion":"1.0.0","targetVersion":"2.0.0"}`)
	var u okta.AgentPoolUpdate
	r.decode(t, &u)
	if r.status != 201 || u.TargetVersion != "2.0.0" {
		t.Errorf("duplicate keys: %d %+v", r.status, u)
	}
	// 64 concurrent creates on one token: each is a 201 or a 429, and every
	// 201 is in the store.
	type res struct {
		code int
		id   string
	}
	out := make(chan res, 64)
	for range 64 {
		go func() {
			req, _ := http.NewRequest("POST", e.srv.URL+base, strings.NewReader(`{"targetVersion":"3.0.0"}`))
			req.Header.Set("Authorization", "SSWS "+e.manage)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				out <- res{}
				return
			}
			defer resp.Body.Close()
			var v okta.AgentPoolUpdate
			_ = jsonDecode(resp.Body, &v)
			out <- res{resp.StatusCode, v.ID}
		}()
	}
	created := map[string]bool{}
	for range 64 {
		x := <-out
		switch x.code {
		case 201:
			created[x.id] = true
		case 429:
		default:
			t.Errorf("concurrent create: status %d", x.code)
		}
	}
	var list []okta.AgentPoolUpdate
	e.do("GET", base, e.read, "").decode(t, &list)
	found := 0
	for _, u := range list {
		if created[u.ID] {
			found++
		}
	}
	if found != len(created) {
		t.Errorf("%d updates acknowledged, %d in the store", len(created), found)
	}
}

func jsonDecode(r interface{ Read([]byte) (int, error) }, v any) error {
	return json.NewDecoder(r).Decode(v)
}
