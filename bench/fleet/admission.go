package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// runDownloadCap is -download-cap: the same rollout with downloads twice,
// on fresh copies of one fleet, without a download cap and with
// artifacts.max_concurrent_downloads = limit, and prints the peak of
// downloads the server served at once (sampled from its /metrics), the
// downloads it refused and the rollout's duration. Every host takes its
// job at once (maxUnavailable: the whole pool) and reads size bytes at
// rate bytes a second, so the cap is what bounds the server's load.
func runDownloadCap(ctx context.Context, bin, work string, o options, limit int, size, rate int64) error {
	base, err := setup(ctx, filepath.Join(work, "base"), o.hosts, "")
	if err != nil {
		return err
	}
	if err := publishSized(ctx, base.dir, "1.2.0", size); err != nil {
		return err
	}
	sc := scenario{update: `{"targetVersion":"1.2.0"}`, download: true, downloadRate: rate, want: okta.JobSuccess}
	type row struct {
		cap      int
		res      rolloutResult
		peak     int
		rejected string
	}
	var rows []row
	for _, c := range []int{0, limit} {
		f, err := base.clone(filepath.Join(work, fmt.Sprintf("cap%d", c)))
		if err != nil {
			return err
		}
		oc := o
		oc.maxDownloads = c
		srv, err := startServer(ctx, bin, f.dir, oc, "")
		if err != nil {
			return err
		}
		sctx, stopSampling := context.WithCancel(ctx)
		peak := make(chan int, 1)
		go func() { peak <- samplePeak(sctx, srv.base, "poolserver_artifact_downloads_in_flight") }()
		res, err := rollout(ctx, srv, f, oc, sc)
		stopSampling()
		r := row{cap: c, res: res, peak: <-peak, rejected: metricValue(ctx, srv.base, "poolserver_artifact_downloads_rejected_total")}
		stop(srv.cmd)
		if err != nil {
			return fmt.Errorf("rollout with max_concurrent_downloads = %d: %w", c, err)
		}
		rows = append(rows, r)
	}
	fmt.Printf("| download cap, %d hosts, %d-byte artifact read at %d B/s per host | peak downloads served at once | downloads refused (503) | rollout duration |\n", o.hosts, size, rate)
	fmt.Println("|---|---|---|---|")
	for _, r := range rows {
		name := "no cap (max_concurrent_downloads = 0)"
		if r.cap > 0 {
			name = fmt.Sprintf("max_concurrent_downloads = %d", r.cap)
		}
		fmt.Printf("| %s | %d | %s | %.1f s |\n", name, r.peak, r.rejected, r.res.took.Seconds())
	}
	return nil
}

// publishSized publishes AD version (linux/amd64) with a random artifact
// of size bytes into a closed SQLite fixture's data dir.
func publishSized(ctx context.Context, dir, version string, size int64) error {
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		return err
	}
	defer st.Close()
	art, sig := filepath.Join(dir, "..", "big"), filepath.Join(dir, "..", "big.minisig")
	f, err := os.Create(art)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, rand.Reader, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(sig, []byte("untrusted comment: bench\nRWQ\ntrusted comment: bench\nx\n"), 0o644); err != nil {
		return err
	}
	_, err = controlplane.PublishRelease(ctx, st, dir, controlplane.Publish{Name: "AD", Version: version, OS: "linux", Arch: "amd64",
		Channel: okta.ChannelGA, File: art, SignatureFile: sig}, time.Now())
	return err
}

// samplePeak polls one gauge of the server's /metrics every 50 ms until
// ctx ends and returns the highest value seen.
func samplePeak(ctx context.Context, base, name string) int {
	peak := 0
	for {
		if v, err := strconv.Atoi(metricValue(ctx, base, name)); err == nil {
			peak = max(peak, v)
		}
		select {
		case <-ctx.Done():
			return peak
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// metricValue reads one unlabelled sample of the server's /metrics ("?"
// when unreadable).
func metricValue(ctx context.Context, base, name string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return "?"
}
