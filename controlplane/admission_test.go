package controlplane_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
)

// scrape returns the value of one sample line of /metrics ("name{labels}").
func scrape(t *testing.T, base, sample string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no sample %s", sample)
	return ""
}

// TestDownloadCap: with artifacts.max_concurrent_downloads = 2, two
// downloads in flight hold both slots for their whole body, a third gets
// 503 with Retry-After in SailPoint's error format, and once they end a
// download is served again; /metrics counts the bytes written, the
// downloads in flight and the refusals.
func TestDownloadCap(t *testing.T) {
	f := newFleet(t, func(c *controlplane.Config) { c.Artifacts.MaxConcurrentDownloads = 2 })
	const size = 16 << 20
	dir := t.TempDir()
	file, sig := filepath.Join(dir, "agent"), filepath.Join(dir, "agent.minisig")
	data := make([]byte, size)
	rand.Read(data)
	os.WriteFile(file, data, 0o755)
	os.WriteFile(sig, []byte("untrusted comment: signature\nRUQ...\ntrusted comment: name=AD version=2.0.0\nsig\n"), 0o644)
	if _, err := controlplane.PublishRelease(context.Background(), f.st, f.dataDir, controlplane.Publish{Name: "AD", Version: "2.0.0",
		OS: "linux", Arch: "amd64", Channel: okta.ChannelGA, File: file, SignatureFile: sig}, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	url := f.env.srv.URL + "/artifacts/AD/2.0.0/linux/amd64"
	get := func(c *http.Client, rng string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "SSWS "+f.env.read)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	var held []*http.Response
	for range 2 {
		// Unread, the body fills the socket buffers (a few MB at most)
		// and the handler blocks holding its slot.
		resp := get(&http.Client{Transport: &http.Transport{}}, "")
		if resp.StatusCode != 200 {
			t.Fatalf("download: HTTP %d", resp.StatusCode)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
			t.Fatal(err)
		}
		held = append(held, resp)
	}
	if got := scrape(t, f.env.srv.URL, "poolserver_artifact_downloads_in_flight"); got != "2" {
		t.Fatalf("in flight = %s, want 2", got)
	}

	resp := get(http.DefaultClient, "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "10" {
		t.Fatalf("third download: HTTP %d Retry-After %q, want 503 and 10", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	var spErr sailpoint.Error
	if err := json.Unmarshal(body, &spErr); err != nil || spErr.DetailCode == "" || spErr.TrackingID == "" || len(spErr.Messages) != 1 ||
		len(spErr.Causes) != 1 || !strings.Contains(spErr.Causes[0].Text, "max_concurrent_downloads") {
		t.Fatalf("503 body is not SailPoint's error naming the setting (%v): %s", err, body)
	}
	if got := scrape(t, f.env.srv.URL, "poolserver_artifact_downloads_rejected_total"); got != "1" {
		t.Errorf("rejected = %s, want 1", got)
	}

	for _, r := range held {
		rest, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil || 1024+len(rest) != size {
			t.Fatalf("held download: %d bytes, %v", 1024+len(rest), err)
		}
	}
	// The slots free when the handlers return, a moment after the last byte.
	deadline := time.Now().Add(5 * time.Second)
	for scrape(t, f.env.srv.URL, "poolserver_artifact_downloads_in_flight") != "0" {
		if time.Now().After(deadline) {
			t.Fatal("downloads still in flight after their bodies were read")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp = get(http.DefaultClient, "bytes=100-199")
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(part) != string(data[100:200]) {
		t.Fatalf("range download after the slots freed: HTTP %d, %d bytes", resp.StatusCode, len(part))
	}
	if got, want := scrape(t, f.env.srv.URL, `poolserver_artifact_bytes_total{kind="full"}`), fmt.Sprintf("%g", float64(2*size+100)); got != want {
		t.Errorf(`bytes_total{kind="full"} = %s, want %s (two whole bodies and one 100-byte range)`, got, want)
	}
	if got := scrape(t, f.env.srv.URL, `poolserver_artifact_bytes_total{kind="patch"}`); got != "0" {
		t.Errorf(`bytes_total{kind="patch"} = %s, want 0`, got)
	}
}

// TestDownloadCapOffByDefault: the default (0) puts no cap on downloads.
func TestDownloadCapOffByDefault(t *testing.T) {
	if n := controlplane.DefaultConfig().Artifacts.MaxConcurrentDownloads; n != 0 {
		t.Fatalf("default max_concurrent_downloads = %d, want 0 (no cap)", n)
	}
	f := newFleet(t)
	f.publish("1.1.0")
	for range 5 {
		if r := f.env.do("GET", "/artifacts/AD/1.1.0/linux/amd64", f.env.read, ""); r.status != 200 {
			t.Fatalf("download: HTTP %d", r.status)
		}
	}
	if got := scrape(t, f.env.srv.URL, "poolserver_artifact_downloads_rejected_total"); got != "0" {
		t.Errorf("rejected = %s, want 0", got)
	}
}
