package updater

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBusyWait(t *testing.T) {
	const max = 2 * time.Minute
	for _, tt := range []struct {
		after time.Duration
		r     float64
		want  time.Duration
	}{
		{10 * time.Second, 0, 10 * time.Second},
		{10 * time.Second, 0.5, 12500 * time.Millisecond},
		{0, 0, defaultBusyWait},                  // no Retry-After
		{200 * time.Millisecond, 0, time.Second}, // at least a second
		{time.Hour, 0, max},                      // capped
		{time.Hour, 0.5, max + max/4},            // the jitter goes on top of the cap
	} {
		if got := busyWait(tt.after, max, tt.r); got != tt.want {
			t.Errorf("busyWait(%s, %s, %v) = %s, want %s", tt.after, max, tt.r, got, tt.want)
		}
	}
	// Whatever the server asks, never 1.5 x the cap or more.
	for _, r := range []float64{0, 0.25, 0.9999999} {
		if got := busyWait(24*time.Hour, max, r); got >= max+max/2 {
			t.Errorf("busyWait(24h, %s, %v) = %s: not below 1.5 x the cap", max, r, got)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"10", 10 * time.Second},
		{" 3 ", 3 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"99999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tt.v, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

// TestFetchWaitsOutBusyServer: a download cut halfway, then refused with
// 503 and 429 (Retry-After), resumes once the server has room. With a
// single retry allowed it still succeeds: the busy replies are waits, not
// failed attempts, and each wait is capped by BusyMaxWait.
func TestFetchWaitsOutBusyServer(t *testing.T) {
	s := newSigner(t)
	srv := newArtifactServer(t)
	data := randomBytes(t, 1<<20)
	job := srv.job(t, s, "/a", data, meta("1.1.0"))
	etag := `"` + sum(data)[:16] + `"`
	srv.before = func(w http.ResponseWriter, r *http.Request, n int) bool {
		switch n {
		case 1:
			w.Header().Set("ETag", etag)
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case 2, 4:
			w.Header().Set("Retry-After", "3600") // capped by BusyMaxWait
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		case 3:
			w.WriteHeader(http.StatusTooManyRequests) // no Retry-After: the default, capped
			return true
		}
		return false
	}
	u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) {
		c.Retries = 1
		c.BusyMaxWait = 20 * time.Millisecond
	})
	start := time.Now()
	if _, err := u.Fetch(t.Context(), job, Target{}, nil); err != nil {
		t.Fatalf("Fetch through a busy server: %v", err)
	}
	if el := time.Since(start); el < 3*20*time.Millisecond || el > 10*time.Second {
		t.Errorf("Fetch took %s: want three capped waits (60-90 ms) and little more", el)
	}
	h := srv.headers()
	if len(h) != 5 {
		t.Fatalf("%d requests, want 5 (cut, 503, 429, 503, resumed)", len(h))
	}
	if got := h[4].Get("Range"); got != "bytes="+strconv.Itoa(len(data)/2)+"-" {
		t.Errorf("last request Range %q: the download did not resume after the busy replies", got)
	}
}

// TestFetchBusyTimeout: a server that stays busy fails the download after
// BusyTimeout, with a message that says so, after a bounded number of
// requests.
func TestFetchBusyTimeout(t *testing.T) {
	s := newSigner(t)
	srv := newArtifactServer(t)
	data := randomBytes(t, 4096)
	job := srv.job(t, s, "/a", data, meta("1.1.0"))
	srv.before = func(w http.ResponseWriter, r *http.Request, n int) bool {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) {
		c.BusyMaxWait = 20 * time.Millisecond
		c.BusyTimeout = 150 * time.Millisecond
	})
	_, err := u.Fetch(t.Context(), job, Target{}, nil)
	if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "still busy") {
		t.Fatalf("Fetch from an always-busy server = %v, want a DOWNLOAD error saying the server stayed busy", err)
	}
	// Waits of 20-30 ms within 150 ms: between 5 and 8 requests.
	if n := srv.count("/a"); n < 5 || n > 9 {
		t.Errorf("%d requests to an always-busy server, want 5-9", n)
	}
}
