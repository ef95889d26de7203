package localapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/api/appliance"
)

type fakeBackend struct{}

func (fakeBackend) Status() Status { return Status{Version: "1.0.0"} }
func (fakeBackend) Updates() []appliance.Update {
	return []appliance.Update{{Version: "1.1.0", TaskID: "j1", Status: appliance.TaskQueued}}
}
func (fakeBackend) Install(v string) (appliance.Task, error) {
	if v != "1.1.0" {
		return appliance.Task{}, &Error{Status: 404, Code: appliance.CodeNotFound, Msg: "no update " + v}
	}
	return appliance.Task{ID: "j1", Status: appliance.TaskQueued}, nil
}
func (fakeBackend) Task(id string) (appliance.Task, bool) {
	return appliance.Task{ID: id, Status: appliance.TaskRunning}, id == "j1"
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name, method, path, token string
		wantStatus                int
		wantBody                  string
	}{
		{"status", "GET", "/status", "tok", 200, `"version":"1.0.0"`},
		{"updates", "GET", "/appliance/update-manager/updates", "tok", 200, `"version":"1.1.0"`},
		{"install", "POST", "/appliance/update-manager/updates/1.1.0/actions/install", "tok", 202, `"status":"QUEUED"`},
		{"install unknown", "POST", "/appliance/update-manager/updates/2.0.0/actions/install", "tok", 404, `"error_code":"NOT_FOUND"`},
		{"install by GET", "GET", "/appliance/update-manager/updates/1.1.0/actions/install", "tok", 404, `"op_id":`},
		{"task", "GET", "/appliance/update-manager/tasks/j1", "tok", 200, `"status":"RUNNING"`},
		{"unknown task", "GET", "/appliance/update-manager/tasks/j2", "tok", 404, `"error_code":"NOT_FOUND"`},
		// The token is "tok": a wrong guess of another length and one of
		// the same length are both refused, in the API's error format.
		{"wrong token, other length", "GET", "/status", "nope", 401, `"error_code":"UNAUTHORIZED"`},
		{"wrong token, same length", "GET", "/status", "tak", 401, `"error_code":"UNAUTHORIZED"`},
		{"token prefix", "GET", "/status", "to", 401, `"error_code":"UNAUTHORIZED"`},
		{"empty token", "GET", "/status", "", 401, `"error_code":"UNAUTHORIZED"`},
		{"wrong token on install", "POST", "/appliance/update-manager/updates/1.1.0/actions/install", "tol", 401, `"error_code":"UNAUTHORIZED"`},
	}
	h := Handler(fakeBackend{}, "tok", zap.NewNop())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			req.Header.Set("Authorization", "Bearer "+tt.token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("%d %s", rec.Code, rec.Body)
			}
			if rec.Code >= 400 {
				var e appliance.ResponseError
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || len(e.OpID) != 36 || e.ErrorCode == "" || e.Message == "" {
					t.Errorf("error body %s: %v", rec.Body, err)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("error Content-Type %q", ct)
				}
			}
		})
	}
}

func TestListenDialRoundTrip(t *testing.T) {
	dir := t.TempDir()
	e := Endpoint{Socket: dir + "/pa.sock", Listen: "127.0.0.1:0", TokenFile: dir + "/token"}
	l, token, err := Listen(e)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, Handler(fakeBackend{}, token, zap.NewNop())) }()
	e.Listen = l.Addr().String()
	c, err := Dial(e)
	if err != nil {
		t.Fatal(err)
	}
	var s Status
	if err := c.Get(ctx, "/status", &s); err != nil || s.Version != "1.0.0" {
		t.Fatalf("status %+v, %v", s, err)
	}
	var task appliance.Task
	err = c.Post(ctx, "/appliance/update-manager/updates/9/actions/install", &task)
	if e, ok := err.(*Error); !ok || e.Status != http.StatusNotFound || e.Code != appliance.CodeNotFound {
		t.Errorf("error = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
