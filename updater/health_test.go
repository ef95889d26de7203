package updater

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// upService is a Service whose Running answer the test sets.
type upService struct{ up atomic.Bool }

func (s *upService) Start(context.Context) error { s.up.Store(true); return nil }
func (s *upService) Stop(context.Context) error  { s.up.Store(false); return nil }
func (s *upService) Running(context.Context) (bool, error) {
	return s.up.Load(), nil
}

// TestCheckHealth: the watch's check is the install's without the grace
// period: a stopped process, a failing URL and a passing one.
func TestCheckHealth(t *testing.T) {
	var code atomic.Int32
	code.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(code.Load())) }))
	defer srv.Close()
	u := newTestUpdater(t, []string{newSigner(t).pubText()}, nil)
	svc := &upService{}
	h := HealthCheck{Grace: time.Hour, URL: srv.URL + "/healthz", Timeout: time.Second, Interval: 10 * time.Millisecond}

	err := u.CheckHealth(t.Context(), svc, h)
	if !errors.Is(err, ErrHealthCheck) || !strings.Contains(err.Error(), "the process is not running") {
		t.Fatalf("stopped service: %v", err)
	}
	svc.up.Store(true)
	// A grace period of an hour is not waited for: the watch looks at a
	// version that has been running.
	if err := u.CheckHealth(t.Context(), svc, h); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	code.Store(http.StatusServiceUnavailable)
	err = u.CheckHealth(t.Context(), svc, h)
	if !errors.Is(err, ErrHealthCheck) || !strings.Contains(err.Error(), "GET "+srv.URL+"/healthz") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("failing URL: %v", err)
	}
	if err := u.CheckHealth(t.Context(), nil, HealthCheck{}); err != nil {
		t.Fatalf("nothing to check: %v", err)
	}
}
