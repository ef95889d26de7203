package updater

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

func TestRateFor(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg, job  int64
		effective int64
	}{
		{"none", 0, 0, 0},
		{"host cap only", 1000, 0, 1000},
		{"job only", 0, 500, 500},
		{"the job's is smaller", 1000, 500, 500},
		{"the host's is smaller", 300, 500, 300},
		{"negative means none", -1, 700, 700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &Updater{cfg: Config{RateLimit: tc.cfg}}
			if got := u.rateFor(Job{RateLimit: tc.job}); got != tc.effective {
				t.Errorf("rateFor = %d, want %d", got, tc.effective)
			}
		})
	}
}

// TestFetchRateLimit downloads 4 MiB at 1 MiB/s: it cannot take less than
// about 3.75 s (4 s minus the 250 ms burst); 2.5 s is a generous bound.
func TestFetchRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds")
	}
	const size, rate = 4 << 20, 1 << 20
	for _, tc := range []struct {
		name     string
		cfg, job int64
	}{
		{"job limit", 0, rate},
		{"host cap below the job's limit", rate, 64 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSigner(t)
			srv := newArtifactServer(t)
			data := randomBytes(t, size)
			job := srv.job(t, s, "/a", data, meta("1.1.0"))
			job.RateLimit = tc.job
			u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) { c.RateLimit = tc.cfg })
			start := time.Now()
			f, err := u.Fetch(t.Context(), job, Target{Version: "1.0.0"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el < 2500*time.Millisecond {
				t.Errorf("4 MiB at 1 MiB/s took %s; want at least 2.5 s", el)
			}
			if b, _ := os.ReadFile(f.Path); !bytes.Equal(b, data) {
				t.Error("fetched file differs from the artifact")
			}
		})
	}
}

// TestRateLimitedReaderStopsWithItsContext: a cancelled download does not
// sleep out its debt.
func TestRateLimitedReaderStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	l := newRateLimited(ctx, bytes.NewReader(make([]byte, 1<<20)), 1024)
	buf := make([]byte, 4096)
	if _, err := l.Read(buf); err != nil { // the burst
		t.Fatal(err)
	}
	for l.paid.Before(time.Now()) { // spend the burst
		if _, err := l.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if _, err := l.Read(buf); !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel: %v, want context.Canceled", err)
	}
}
