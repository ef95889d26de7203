package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/version"
)

// maxReply bounds a heartbeat reply.
const maxReply = 4 << 20

// newTransport returns the one transport every request to the server
// shares, tuned so heartbeats reuse a kept-alive connection.
func newTransport(cfg config.Config) (*http.Transport, error) {
	proxy := http.ProxyFromEnvironment
	if cfg.Proxy != "" {
		u, err := url.Parse(cfg.Proxy)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		proxy = http.ProxyURL(u)
	}
	tc, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 proxy,
		TLSClientConfig:       tc,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConns:          4,
		MaxIdleConnsPerHost:   2,
		// Above any heartbeat interval the server would give, so the
		// server's idle_timeout decides.
		IdleConnTimeout:   10 * time.Minute,
		ForceAttemptHTTP2: true,
		// Range and ETag must be the server's, not a transparent
		// decompression's.
		DisableCompression: true,
	}, nil
}

// origin is scheme://host[:port] of u.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// bearerTransport adds the client secret to requests for the server's
// origin (artifact downloads), never to other hosts.
type bearerTransport struct {
	base   http.RoundTripper
	origin string
	secret string
}

// RoundTrip implements http.RoundTripper.
func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if origin(r.URL) == b.origin && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.secret)
	}
	return b.base.RoundTrip(r)
}

// heartbeatLoop heartbeats until ctx ends: every interval, sooner after a
// job changed state, later after failures (exponential backoff with
// jitter, or the server's Retry-After).
func (d *Daemon) heartbeatLoop(ctx context.Context) {
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	due := time.Now() // when timer fires
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-d.beatNow:
			timer.Stop()
		case <-d.beatSoon:
			// Progress: within ProgressDelay, unless a heartbeat is due
			// sooner anyway (a failing server's backoff is kept too).
			if failures == 0 && time.Until(due) > ProgressDelay {
				due = time.Now().Add(ProgressDelay)
				timer.Reset(ProgressDelay)
			}
			continue
		}
		// This heartbeat carries whatever progress asked for one.
		select {
		case <-d.beatSoon:
		default:
		}
		wait, err := d.beat(ctx)
		d.mu.Lock()
		interval, soon := d.interval, d.nextBeat
		d.nextBeat = 0
		confirmBy := d.selfConfirmBy
		pending := d.selfPending
		d.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if wait == 0 {
				wait = backoff(failures, interval)
			}
			d.log.Warn("heartbeat failed", zap.Error(err), zap.Int("failures", failures), zap.Duration("retry_in", wait))
		} else {
			failures = 0
			wait = interval
			if soon > 0 {
				wait = soon
			}
		}
		if pending && !confirmBy.IsZero() && time.Now().After(confirmBy) {
			d.log.Error("the new poolagent binary had no good heartbeat before its deadline; restarting to roll back")
			d.mu.Lock()
			d.restart = true
			d.mu.Unlock()
			d.stop()
			return
		}
		if pending && !confirmBy.IsZero() {
			// Failing heartbeats back off up to minutes: the deadline
			// is looked at on time all the same.
			wait = min(wait, max(time.Until(confirmBy), 0))
		}
		due = time.Now().Add(wait)
		timer.Reset(wait)
	}
}

// backoff is the wait after n consecutive failures: exponential from one
// interval (at most 1 s) up to 5 minutes (or the interval if longer), with
// jitter over the upper half.
func backoff(n int, interval time.Duration) time.Duration {
	base := min(interval, time.Second)
	limit := max(5*time.Minute, interval)
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// beat sends one heartbeat and handles the reply. On failure it returns
// how long the server asked to wait (0: use the backoff).
func (d *Daemon) beat(ctx context.Context) (time.Duration, error) {
	req, reported := d.buildRequest(ctx)
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	u := d.server.JoinPath("beta", "managed-clients", d.creds.ClientID, "status")
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	hreq.Header.Set("Authorization", "Bearer "+d.creds.Secret)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", "poolagent/"+version.String())
	resp, err := d.client.Do(hreq)
	if err != nil {
		d.setConnected(false, err)
		return 0, fmt.Errorf("heartbeat: %w", err)
	}
	// Drain and close so the connection goes back to the pool.
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReply))
		resp.Body.Close()
	}()
	recv := time.Now()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := fmt.Errorf("heartbeat: server answered %s: %s", resp.Status, bytes.TrimSpace(msg))
		if resp.StatusCode == http.StatusUnauthorized {
			err = fmt.Errorf("%w (the client secret was refused: enroll this host again)", err)
		}
		d.setConnected(false, err)
		wait := time.Duration(0)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			wait = retryAfter(resp.Header.Get("Retry-After"), recv)
		}
		return wait, err
	}
	var rep sailpoint.StatusReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReply)).Decode(&rep); err != nil {
		d.setConnected(false, err)
		return 0, fmt.Errorf("heartbeat: decode reply: %w", err)
	}
	d.setConnected(true, nil)
	d.handleReply(ctx, &rep, recv, reported)
	return 0, nil
}

func (d *Daemon) setConnected(ok bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.connected = ok
	d.beatsSent++
	if err != nil {
		d.beatsFailed++
		d.lastErr = err.Error()
	} else {
		d.lastErr = ""
		d.st.LastHeartbeat = time.Now()
	}
}

// buildRequest assembles the ManagedClientStatus; reported lists the jobs
// whose final state it carries.
func (d *Daemon) buildRequest(ctx context.Context) (*sailpoint.StatusRequest, []string) {
	f, err := d.facts.Collect(ctx)
	if err != nil {
		d.log.Debug("host facts", zap.Error(err))
	}
	if d.cfg.Hostname != "" {
		f.Hostname = d.cfg.Hostname
	}
	typ := sailpoint.ClientType(d.cfg.Type)
	req := &sailpoint.StatusRequest{
		Status:    sailpoint.StatusNormal,
		Type:      &typ,
		Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
		Body: sailpoint.ClientBody{
			ID:              sailpoint.Flex(d.creds.ClientID),
			Hostname:        sailpoint.Flex(f.Hostname),
			InternalIP:      sailpoint.Flex(f.InternalIP),
			OSType:          sailpoint.Flex(f.OSType),
			OSVersion:       sailpoint.Flex(f.OSVersion),
			Hypervisor:      sailpoint.Flex(f.Hypervisor),
			PlatformVersion: sailpoint.Flex(d.cfg.PlatformVersion),
			OS:              sailpoint.Flex(runtime.GOOS),
			Arch:            sailpoint.Flex(runtime.GOARCH),
			UptimeSeconds:   sailpoint.Flex(strconv.FormatUint(f.UptimeSeconds, 10)),
			AgentVersion:    sailpoint.Flex(version.String()),
			Timezone:        sailpoint.Flex(d.timezone()),
			LastSeen:        sailpoint.Flex(strconv.FormatInt(time.Now().UnixMilli(), 10)),
		},
	}
	// Hash the binaries before taking the lock: a changed binary is read
	// whole once.
	d.mu.Lock()
	sums := make(map[string]string, len(d.cfg.Agents)+1)
	paths := map[string]string{config.SelfName: d.exe}
	for _, a := range d.cfg.Agents {
		paths[a.Name] = a.Binary
	}
	d.mu.Unlock()
	for name, p := range paths {
		sums[name] = d.hashes.sum(p)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.cfg.Agents {
		s := d.st.Agents[a.Name]
		r := sailpoint.AgentReport{Name: a.Name, Type: a.Type, SHA256: sums[a.Name]}
		if s != nil {
			r.Version, r.UpdateStatus, r.UpdateMessage = s.Version, s.UpdateStatus, s.UpdateMessage
		}
		r.Health = d.healthReportLocked(a.Name)
		req.Body.Agents = append(req.Body.Agents, r)
	}
	self := sailpoint.AgentReport{Name: config.SelfName, Type: config.SelfName, Version: version.String(), SHA256: sums[config.SelfName]}
	if s := d.st.Agents[config.SelfName]; s != nil {
		self.UpdateStatus, self.UpdateMessage = s.UpdateStatus, s.UpdateMessage
	}
	req.Body.Agents = append(req.Body.Agents, self)
	var reported []string
	var seq int64
	for _, j := range d.st.Jobs {
		seq = max(seq, j.Spec.Sequence)
		if j.Reported {
			continue
		}
		rep := sailpoint.JobReport{UUID: j.UUID, State: j.State, Progress: j.Progress,
			Phase: j.Phase, UpdateStatus: j.UpdateStatus, UpdateMessage: j.UpdateMessage}
		if j.State == sailpoint.JobFailed {
			rep.Diagnostics = j.Diagnostics
		}
		req.Body.Jobs = append(req.Body.Jobs, rep)
		if j.Terminal() {
			reported = append(reported, j.UUID)
		}
	}
	if seq > 0 {
		req.Body.Sequence = sailpoint.Flex(strconv.FormatInt(seq, 10))
	}
	if d.unhealthyLocked() {
		// SailPoint's word for a host that runs but not well; the
		// agent's own health (above) says which and why.
		req.Status = sailpoint.StatusWarning
	}
	for _, s := range d.st.Agents {
		// A failed rollback leaves the journal for an operator.
		if strings.HasPrefix(s.UpdateMessage, "ROLLBACK_FAILED:") {
			req.Status = sailpoint.StatusError
		}
	}
	return req, reported
}
