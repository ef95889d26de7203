// Package localapi is poolagent's local API: the daemon's status and the
// vCenter appliance update-manager endpoints (api/appliance), served on a
// unix socket with mode 0600 (only the daemon's user, root, may connect) or,
// on Windows, on a loopback address with a bearer token in a file only
// Administrators and SYSTEM may read. `poolagent status` is its client.
//
// Routes:
//
//	GET  /status
//	GET  /appliance/update-manager/updates
//	POST /appliance/update-manager/updates/{update_version}/actions/install   -> 202 Task
//	GET  /appliance/update-manager/tasks/{id}
package localapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/api/appliance"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// Status is the daemon's state as GET /status returns it and
// `poolagent status` shows it.
type Status struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"startedAt"`
	Server    string    `json:"server"`
	ClientID  string    `json:"clientId"`
	ClusterID string    `json:"clusterId,omitempty"`
	// PoolType is the Okta agent type of the host's pool, as the server
	// last said (empty until a reply says).
	PoolType string `json:"poolType,omitempty"`
	// Warnings are the server's warnings in its last reply ("CODE:
	// sentence", e.g. TYPE_MISMATCH: a managed agent's type is not the
	// pool's).
	Warnings []string `json:"warnings,omitempty"`
	// Connected: the last heartbeat succeeded.
	Connected bool `json:"connected"`
	// LastHeartbeat is the last successful heartbeat; LastError the last
	// failure's reason (empty after a success).
	LastHeartbeat time.Time `json:"lastHeartbeat,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
	// HeartbeatsSent and HeartbeatsFailed count since the daemon started.
	HeartbeatsSent   int64         `json:"heartbeatsSent"`
	HeartbeatsFailed int64         `json:"heartbeatsFailed"`
	Interval         time.Duration `json:"interval"`
	Agents           []Agent       `json:"agents"`
	Jobs             []Job         `json:"jobs"`
}

// Agent is one managed agent (poolagent itself included).
type Agent struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	Version       string `json:"version"`
	UpdateStatus  string `json:"updateStatus,omitempty"`
	UpdateMessage string `json:"updateMessage,omitempty"`
	// Health is the health watch's last result (absent before the first
	// check, or when the agent is not watched).
	Health *Health `json:"health,omitempty"`
}

// Health is the last result of a managed agent's health watch.
type Health struct {
	OK        bool      `json:"ok"`
	CheckedAt time.Time `json:"checkedAt"`
	// Reason says why the agent is not healthy.
	Reason string `json:"reason,omitempty"`
	// Restarts counts the service manager's restarts of the agent since
	// the watch of its installed version began (absent where unknown).
	Restarts *int `json:"restarts,omitempty"`
	// Every is the watch interval.
	Every time.Duration `json:"every"`
}

// Job is one job and its progress.
type Job struct {
	UUID          string    `json:"uuid"`
	Name          string    `json:"name"`
	Version       string    `json:"version"`
	State         string    `json:"state"`
	UpdateStatus  string    `json:"updateStatus"`
	Phase         string    `json:"phase,omitempty"`
	Progress      int       `json:"progress"`
	UpdateMessage string    `json:"updateMessage,omitempty"`
	Received      time.Time `json:"received"`
	Started       time.Time `json:"started,omitzero"`
	Finished      time.Time `json:"finished,omitzero"`
	// Window is the maintenance window in the server's time (RFC 3339);
	// WindowOpen says whether it is open now.
	WindowStart  string `json:"windowStart,omitempty"`
	WindowFinish string `json:"windowFinish,omitempty"`
	WindowOpen   bool   `json:"windowOpen"`
	// WaitingFor says what the job waits for, for a person.
	WaitingFor string `json:"waitingFor,omitempty"`
	// StartAfter is the job's splay start (RFC 3339, server time).
	StartAfter string `json:"startAfter,omitempty"`
	// Diagnostics of a failure past the swap: the failed version's last
	// output and its health check's last result.
	Diagnostics *sailpoint.Diagnostics `json:"diagnostics,omitempty"`
}

// Error is an API error with the seed's error code and HTTP status.
type Error struct {
	Status int
	Code   string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Backend is what the daemon provides to the local API.
type Backend interface {
	Status() Status
	Updates() []appliance.Update
	// Install asks to install version now (inside the window); it
	// returns the job's Task or an *Error.
	Install(version string) (appliance.Task, error)
	Task(id string) (appliance.Task, bool)
}

// Handler returns the local API's routes over b; token, if not empty, is
// required as a bearer token.
func Handler(b Backend, token string, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status())
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(Metrics(b.Status(), time.Now()))
	})
	mux.HandleFunc("GET /appliance/update-manager/updates", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Updates())
	})
	mux.HandleFunc("POST /appliance/update-manager/updates/{update_version}/actions/install", func(w http.ResponseWriter, r *http.Request) {
		t, err := b.Install(r.PathValue("update_version"))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = &Error{Status: http.StatusInternalServerError, Code: appliance.CodeInternal, Msg: err.Error()}
			}
			writeError(w, e.Status, e.Code, e.Msg)
			return
		}
		log.Info("install requested on the local API", zap.String("task", t.ID))
		writeJSON(w, http.StatusAccepted, t)
	})
	mux.HandleFunc("GET /appliance/update-manager/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := b.Task(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, appliance.CodeNotFound, fmt.Sprintf("no task %q", r.PathValue("id")))
			return
		}
		writeJSON(w, http.StatusOK, t)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, appliance.CodeNotFound, "no such resource: "+r.Method+" "+r.URL.Path)
	})
	if token == "" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokenOK(r.Header.Get("Authorization"), token) {
			writeError(w, http.StatusUnauthorized, appliance.CodeUnauthorized, "missing or wrong bearer token: use the token in the local API's token file")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// tokenOK compares an Authorization header with "Bearer <token>" in
// constant time, so the time taken tells nothing of how much of a guess
// matched (only the lengths differ observably).
func tokenOK(header, token string) bool {
	return subtle.ConstantTimeCompare([]byte(header), []byte("Bearer "+token)) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, appliance.ResponseError{ErrorCode: code, Message: msg, OpID: newOpID()})
}

// newOpID returns a random UUID (version 4) for ResponseError.op_id.
func newOpID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Serve serves h on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("local API: %w", err)
	}
	return nil
}

// Client talks to a running daemon's local API.
type Client struct {
	http  *http.Client
	base  string
	token string
	// Where names the endpoint for messages ("unix socket /run/...").
	Where string
}

// Get fetches path into v. An *Error carries the API's error.
func (c *Client) Get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, v)
}

// Post posts to path (no body) and decodes the answer into v.
func (c *Client) Post(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodPost, path, v)
}

func (c *Client) do(ctx context.Context, method, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("poolagent is not running or its local API is unreachable (%s): %w", c.Where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e appliance.ResponseError
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Message == "" {
			e.Message = resp.Status
		}
		return &Error{Status: resp.StatusCode, Code: e.ErrorCode, Msg: e.Message}
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("local API %s %s: %w", method, path, err)
	}
	return nil
}

// Metrics renders a status in Prometheus' text format: a small set for a
// node exporter's textfile collector or a local scrape (poolagent does not
// link a metrics library, to stay small).
func Metrics(s Status, now time.Time) []byte {
	var b strings.Builder
	metric := func(name, help, typ string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	metric("poolagent_heartbeats_total", "Heartbeats sent, by result.", "counter")
	fmt.Fprintf(&b, "poolagent_heartbeats_total{result=\"ok\"} %d\n", s.HeartbeatsSent-s.HeartbeatsFailed)
	fmt.Fprintf(&b, "poolagent_heartbeats_total{result=\"failed\"} %d\n", s.HeartbeatsFailed)
	metric("poolagent_connected", "1 when the last heartbeat succeeded.", "gauge")
	connected := 0
	if s.Connected {
		connected = 1
	}
	fmt.Fprintf(&b, "poolagent_connected %d\n", connected)
	metric("poolagent_last_heartbeat_age_seconds", "Seconds since the last successful heartbeat (-1: none yet).", "gauge")
	age := -1.0
	if !s.LastHeartbeat.IsZero() {
		age = now.Sub(s.LastHeartbeat).Seconds()
	}
	fmt.Fprintf(&b, "poolagent_last_heartbeat_age_seconds %.3f\n", age)
	metric("poolagent_jobs", "Jobs the daemon holds, by state.", "gauge")
	states := map[string]int{}
	for _, j := range s.Jobs {
		states[j.State]++
	}
	for _, st := range []string{"PENDING", "RUNNING", "FINISHED", "FAILED", "CANCELLED"} {
		fmt.Fprintf(&b, "poolagent_jobs{state=%q} %d\n", st, states[st])
	}
	metric("poolagent_agent_info", "The managed agents: version and update status.", "gauge")
	for _, a := range s.Agents {
		fmt.Fprintf(&b, "poolagent_agent_info{name=%q,type=%q,version=%q,update_status=%q} 1\n", a.Name, a.Type, a.Version, a.UpdateStatus)
	}
	return []byte(b.String())
}
