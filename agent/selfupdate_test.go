package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/localapi"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/signing"
	"github.com/poolagent/poolagent/updater"
)

// selfServer is a poolserver stand-in on 127.0.0.1: it offers one signed
// poolagent self-update job in every heartbeat reply, serves its artifact,
// and records the job reports. While down, heartbeats get 503.
type selfServer struct {
	t        *testing.T
	srv      *httptest.Server
	job      sailpoint.Job
	artifact []byte

	mu        sync.Mutex
	down      bool
	downloads int
	reports   []sailpoint.JobReport
	terminal  chan sailpoint.JobReport // the first terminal report of each run
}

const selfJobID = "self-c1-1.0.1"

func newSelfServer(t *testing.T, priv minisign.PrivateKey, artifact []byte) *selfServer {
	t.Helper()
	s := &selfServer{t: t, artifact: artifact, terminal: make(chan sailpoint.JobReport, 1)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	m := updater.Meta{Name: config.SelfName, Version: "1.0.1", OS: runtime.GOOS, Arch: runtime.GOARCH}
	sig, err := signing.SignReader(priv, bytes.NewReader(artifact), m)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(artifact)
	s.job = sailpoint.Job{UUID: selfJobID, State: sailpoint.JobPending, Type: sailpoint.JobTypeUpgrade, TargetID: "c1", Sequence: 1,
		ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{config.SelfName: {Version: "1.0.1", Path: config.SelfName, Type: config.SelfName,
			Artifact: &sailpoint.Artifact{Name: m.Name, Version: m.Version, OS: m.OS, Arch: m.Arch, URL: s.srv.URL + "/artifacts/poolagent/1.0.1",
				Size: int64(len(artifact)), SHA256: hex.EncodeToString(sum[:]), Signature: string(sig)}}}}
	return s
}

func (s *selfServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.URL.Path == "/artifacts/poolagent/1.0.1":
		s.downloads++
		http.ServeContent(w, r, "poolagent", time.Time{}, bytes.NewReader(s.artifact))
	case r.URL.Path == "/beta/managed-clients/c1/status" && r.Method == http.MethodPost:
		if s.down {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		var req sailpoint.StatusRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, j := range req.Body.Jobs {
			s.reports = append(s.reports, j)
			if j.State == sailpoint.JobFinished || j.State == sailpoint.JobFailed || j.State == sailpoint.JobCancelled {
				select {
				case s.terminal <- j:
				default:
				}
			}
		}
		typ := sailpoint.ClientType("VA")
		rep := sailpoint.StatusReply{Status: sailpoint.StatusNormal, Type: &typ, Timestamp: time.Now().UTC(),
			Body: sailpoint.ReplyBody{ID: "c1", ClientID: "c1", ClusterID: "p1", Configuration: map[string]string{}, Jobs: []sailpoint.Job{s.job}}}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	default:
		http.NotFound(w, r)
	}
}

func (s *selfServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// failedReports lists the FAILED reports the server received.
func (s *selfServer) failedReports() []sailpoint.JobReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sailpoint.JobReport
	for _, j := range s.reports {
		if j.State == sailpoint.JobFailed {
			out = append(out, j)
		}
	}
	return out
}

// selfHost is a host whose "poolagent binary" is a file in a temp dir:
// each start builds a Daemon as `poolagent run` does and points it at it.
type selfHost struct {
	t    *testing.T
	cfg  config.Config
	exe  string
	logs *lockedBuffer
}

func newSelfHost(t *testing.T, srv *selfServer, pub string, oldBinary []byte) *selfHost {
	t.Helper()
	dir := t.TempDir()
	h := &selfHost{t: t, exe: filepath.Join(dir, "bin", "poolagent"), logs: &lockedBuffer{}}
	if err := os.MkdirAll(filepath.Dir(h.exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.exe, oldBinary, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.LocalAPI.Socket = filepath.Join(dir, "api.sock")
	// On Windows the local API listens on loopback TCP: a free port, not
	// the default one a real poolagent may hold.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalAPI.Listen = l.Addr().String()
	l.Close()
	cfg.ServerURL = srv.srv.URL
	cfg.HeartbeatInterval.Duration = 50 * time.Millisecond
	cfg.Artifacts.AllowInsecureHTTP = true
	cfg.Artifacts.TrustedKeys = []string{pub}
	cfg.SelfUpdate.Enabled = true
	cfg.SelfUpdate.ConfirmTimeout.Duration = time.Second
	h.cfg = cfg
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := state.WriteCredentials(cfg.Credentials(), state.Credentials{ServerURL: srv.srv.URL, ClientID: "c1", Secret: "pcs_test"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("poolagent log:\n%s", h.logs.String())
		}
	})
	return h
}

// start runs a new Daemon in the background, as a service manager would.
func (h *selfHost) start(ctx context.Context) (*Daemon, <-chan error) {
	h.t.Helper()
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(h.logs), zap.DebugLevel))
	deps, err := NewDeps(h.cfg, log)
	if err != nil {
		h.t.Fatal(err)
	}
	deps.Exe = h.exe
	d, err := New(h.cfg, log, deps)
	if err != nil {
		h.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return d, done
}

// install runs the old binary until it has swapped in the new one and
// asks to be restarted.
func (h *selfHost) install(ctx context.Context, newBinary []byte) {
	h.t.Helper()
	_, done := h.start(ctx)
	if err := <-done; !errors.Is(err, ErrRestart) {
		h.t.Fatalf("the old binary's run ended with %v, want %v", err, ErrRestart)
	}
	if b, _ := os.ReadFile(h.exe); !bytes.Equal(b, newBinary) {
		h.t.Fatalf("after the install the binary on disk is %q, want the new one", b)
	}
}

func selfFixture(t *testing.T) (*selfServer, *selfHost, []byte, []byte) {
	t.Helper()
	pub, priv, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	oldBinary, newBinary := []byte("poolagent 1.0.0 binary\n"), []byte("poolagent 1.0.1 binary\n")
	srv := newSelfServer(t, priv, newBinary)
	return srv, newSelfHost(t, srv, pub.String(), oldBinary), oldBinary, newBinary
}

// selfJobOf finds the self-update job in a status.
func selfJobOf(t *testing.T, st localapi.Status) localapi.Job {
	t.Helper()
	for _, j := range st.Jobs {
		if j.UUID == selfJobID {
			return j
		}
	}
	t.Fatalf("the status lists no job %s: %+v", selfJobID, st.Jobs)
	return localapi.Job{}
}

// localStatus asks the running daemon's local API for its status, as
// `poolagent status` does.
func (h *selfHost) localStatus(ctx context.Context) localapi.Status {
	h.t.Helper()
	c, err := localapi.Dial(localapi.Endpoint{Socket: h.cfg.Socket(), Listen: h.cfg.LocalAPI.Listen, TokenFile: h.cfg.TokenFile()})
	if err != nil {
		h.t.Fatal(err)
	}
	var st localapi.Status
	if err := c.Get(ctx, "/status", &st); err != nil {
		h.t.Fatalf("local API status: %v", err)
	}
	return st
}

func (s *selfServer) downloadCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads
}

// TestResumedSelfUpdateFinishesWithoutReinstalling: the new binary resumes
// its self-update in the confirm phase; it must wait for the confirmation
// (the first good heartbeat) and report the job FINISHED, never install it
// a second time (which the updater refuses: BUSY, and the job FAILED).
func TestResumedSelfUpdateFinishesWithoutReinstalling(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, h, _, newBinary := selfFixture(t)
	h.install(ctx, newBinary)

	// The new binary starts.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	d, done := h.start(runCtx)
	var rep sailpoint.JobReport
	select {
	case rep = <-srv.terminal:
	case err := <-done:
		t.Fatalf("the new binary's run ended before its job did: %v", err)
	case <-ctx.Done():
		t.Fatal("the self-update job never ended")
	}
	if rep.UUID != selfJobID || rep.State != sailpoint.JobFinished || rep.UpdateStatus != string(okta.InstanceSuccess) {
		t.Errorf("the server got %+v, want %s FINISHED/Success", rep, selfJobID)
	}
	if j := selfJobOf(t, h.localStatus(ctx)); j.State != string(sailpoint.JobFinished) || j.UpdateStatus != string(okta.InstanceSuccess) || j.UpdateMessage != "" {
		t.Errorf("local API status: job %s/%s %q, want FINISHED/Success", j.State, j.UpdateStatus, j.UpdateMessage)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the new binary's run ended with %v, want a plain stop", err)
	}
	if f := srv.failedReports(); len(f) > 0 {
		t.Errorf("the server got FAILED reports: %+v", f)
	}
	if srv.downloadCount() != 1 {
		t.Errorf("the artifact was downloaded %d times, want once (no second install)", srv.downloadCount())
	}
	if strings.Contains(h.logs.String(), "BUSY") || strings.Contains(h.logs.String(), "still in phase") {
		t.Errorf("the new binary tried to install itself again:\n%s", h.logs.String())
	}
	if b, _ := os.ReadFile(h.exe); !bytes.Equal(b, newBinary) {
		t.Errorf("the binary on disk is %q, want the new one", b)
	}
	// Confirmed: the journal is clear, so a later self-update may run.
	if s, err := d.upd.RecoverSelf(ctx, h.exe); err != nil || s.Pending || s.RolledBack {
		t.Errorf("after the confirmation RecoverSelf = %+v, %v: want nothing pending", s, err)
	}
}

// TestUnconfirmedSelfUpdateRollsBack: a new binary without a good
// heartbeat before its deadline restarts, the restart restores the
// previous binary, and the previous binary reports the job FAILED with
// SELF_ROLLED_BACK.
func TestUnconfirmedSelfUpdateRollsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, h, oldBinary, newBinary := selfFixture(t)
	h.install(ctx, newBinary)

	// The new binary cannot reach the server: it never confirms. It
	// restarts at its deadline; a start past the deadline (or after its
	// attempts) rolls back and asks for one more restart.
	srv.setDown(true)
	rolledBack := false
	for range 5 {
		d, done := h.start(ctx)
		err := <-done
		if !errors.Is(err, ErrRestart) {
			t.Fatalf("an unconfirmed binary's run ended with %v, want %v", err, ErrRestart)
		}
		if errors.Is(err, updater.ErrSelfRolledBack) {
			rolledBack = true
			break
		}
		if j := selfJobOf(t, d.Status()); j.State != string(sailpoint.JobRunning) || j.UpdateStatus != string(okta.InstancePendingCompletion) || j.Phase != "confirm" {
			t.Errorf("while unconfirmed the job is %s/%s in phase %q, want RUNNING/PendingCompletion in confirm", j.State, j.UpdateStatus, j.Phase)
		}
	}
	if !rolledBack {
		t.Fatal("the unconfirmed self-update was never rolled back")
	}
	if b, _ := os.ReadFile(h.exe); !bytes.Equal(b, oldBinary) {
		t.Fatalf("after the rollback the binary on disk is %q, want the previous one", b)
	}

	// The previous binary starts and reports the rollback.
	srv.setDown(false)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	_, done := h.start(runCtx)
	var rep sailpoint.JobReport
	select {
	case rep = <-srv.terminal:
	case err := <-done:
		t.Fatalf("the previous binary's run ended before reporting: %v", err)
	case <-ctx.Done():
		t.Fatal("the rollback was never reported")
	}
	if rep.UUID != selfJobID || rep.State != sailpoint.JobFailed || !strings.HasPrefix(rep.UpdateMessage, "SELF_ROLLED_BACK: ") {
		t.Errorf("the server got %+v, want %s FAILED with SELF_ROLLED_BACK", rep, selfJobID)
	}
	if j := selfJobOf(t, h.localStatus(ctx)); j.State != string(sailpoint.JobFailed) || !strings.HasPrefix(j.UpdateMessage, "SELF_ROLLED_BACK: ") {
		t.Errorf("local API status: job %s %q, want FAILED with SELF_ROLLED_BACK", j.State, j.UpdateMessage)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the previous binary's run ended with %v, want a plain stop", err)
	}
	if srv.downloadCount() != 1 {
		t.Errorf("the artifact was downloaded %d times, want once (the refused job is not retried)", srv.downloadCount())
	}
}
