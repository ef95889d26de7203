package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type loadResult struct {
	rate     float64
	p50, p99 float64
	errs     int64
}

// heartbeatURL appends host i's heartbeat URL under base to b.
func heartbeatURL(b []byte, base string, ids *identities, i int) []byte {
	b = append(b, base...)
	b = append(b, "/beta/managed-clients/"...)
	b = ids.appendID(b, i)
	return append(b, "/status"...)
}

// load sends heartbeats from conns goroutines for d, cycling over the
// hosts. With echo, every request goes to base itself (the bare net/http
// baseline) with host 0's body.
func load(ctx context.Context, base string, echo bool, ids *identities, conns int, d time.Duration) loadResult {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	tmpl := newBodyTemplate()
	var next atomic.Int64
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var lat []float64
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]float64, 0, 4096)
			var body, url []byte
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := int(next.Add(1)-1) % ids.n
				target, auth := base, "Bearer x"
				if echo {
					body = tmpl.appendBody(body[:0], ids, 0, "1.0.0", "", healthNone, nil, time.Now())
				} else {
					body = tmpl.appendBody(body[:0], ids, i, "1.0.0", "", healthNone, nil, time.Now())
					url = heartbeatURL(url[:0], base, ids, i)
					target, auth = string(url), ids.bearer(i)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
				req.Header.Set("Authorization", auth)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0).Seconds())
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start).Seconds()
	sort.Float64s(lat)
	r := loadResult{rate: float64(len(lat)) / took, errs: errs.Load()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	if r.errs > 0 {
		fmt.Fprintf(os.Stderr, "load %s at %d conns: %d errors\n", base, conns, r.errs)
	}
	return r
}

// firstRoundConns is oneRound's connections: a host's first heartbeat
// waits for the commit of its facts, so the round is bound by how many
// are in flight.
const firstRoundConns = 64

// oneRound sends one heartbeat per host over firstRoundConns connections;
// it returns how many were not answered 200.
func oneRound(ctx context.Context, base string, ids *identities) int64 {
	tr := &http.Transport{MaxIdleConnsPerHost: firstRoundConns}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	tmpl := newBodyTemplate()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range firstRoundConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body, url []byte
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= ids.n {
					return
				}
				body = tmpl.appendBody(body[:0], ids, i, "1.0.0", "", healthNone, nil, time.Now())
				url = heartbeatURL(url[:0], base, ids, i)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, string(url), bytes.NewReader(body))
				req.Header.Set("Authorization", ids.bearer(i))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return failed.Load()
}
