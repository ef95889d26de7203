package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/postgres"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// identities derives every simulated host's client id and secret from its
// index, so the simulator keeps no per-host strings: host i is
// "host-<run>-<i>" and its secret is "pcs_" and 40 base62 characters of
// SHA-512(key, i), key being random per run. The server only ever sees
// the secret's hash (stored by setup), as for a real client.
type identities struct {
	n      int
	prefix string // "host-<run>-"
	key    [32]byte
}

func newIdentities(n int) *identities {
	ids := &identities{n: n, prefix: "host-" + store.NewID("")[:6] + "-"} // unique per run: a PostgreSQL database outlives it
	_, _ = rand.Read(ids.key[:])
	return ids
}

// appendID appends host i's client id ("host-<run>-00042") to b.
func (ids *identities) appendID(b []byte, i int) []byte {
	b = append(b, ids.prefix...)
	for p := 10000; p > 1 && i < p; p /= 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(i), 10)
}

func (ids *identities) id(i int) string { return string(ids.appendID(nil, i)) }

const secretAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// appendSecret appends host i's client secret to b.
func (ids *identities) appendSecret(b []byte, i int) []byte {
	var in [40]byte
	copy(in[:], ids.key[:])
	binary.BigEndian.PutUint64(in[32:], uint64(i))
	sum := sha512.Sum512(in[:])
	b = append(b, "pcs_"...)
	for _, c := range sum[:40] {
		b = append(b, secretAlphabet[int(c)%len(secretAlphabet)])
	}
	return b
}

// bearer returns the Authorization header value of host i.
func (ids *identities) bearer(i int) string {
	var buf [64]byte
	return string(ids.appendSecret(append(buf[:0], "Bearer "...), i))
}

type fixture struct {
	dir   string // the server's data dir
	pool  *store.Pool
	token string
	ids   *identities
	// setupTook is how long registering the hosts took.
	setupTook time.Duration
}

// setupWorkers is how many clients are created at once: SQLite has one
// writer, so more overlap only the hashing and the reads; PostgreSQL
// commits on several connections at once.
const setupWorkers = 8

// setup registers a pool, an API token, n clients and a release directly
// in a fresh data dir (and the PostgreSQL database dsn, when set).
// Clients are created setupWorkers at a time with the store's
// CreateClient; their secrets are derived (see identities).
func setup(ctx context.Context, work string, n int, dsn string) (*fixture, error) {
	return setupWith(ctx, work, n, dsn, publishBench)
}

// setupWith is setup with publish instead of the benchmark's release; a
// nil publish leaves the catalog empty.
func setupWith(ctx context.Context, work string, n int, dsn string, publish func(ctx context.Context, st store.Store, work, dataDir string, now time.Time) error) (*fixture, error) {
	f := &fixture{dir: filepath.Join(work, "data"), ids: newIdentities(n)}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return nil, err
	}
	var st store.Store
	var err error
	if dsn != "" {
		st, err = postgres.Open(ctx, dsn)
	} else {
		st, err = sqlite.Open(ctx, f.dir)
	}
	if err != nil {
		return nil, err
	}
	defer st.Close()
	now := time.Now()
	f.pool = &store.Pool{ID: store.NewID("pol"), Name: "bench", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := st.CreatePool(ctx, f.pool); err != nil {
		return nil, err
	}
	if f.token, _, err = controlplane.CreateToken(ctx, st, "bench", []store.Scope{store.ScopeManage}, 0, now); err != nil {
		return nil, err
	}
	t0 := time.Now()
	var next atomic.Int64
	errs := make(chan error, setupWorkers)
	var wg sync.WaitGroup
	for range setupWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				buf = f.ids.appendSecret(buf[:0], i)
				c := &store.Client{ID: f.ids.id(i), PoolID: f.pool.ID, SecretHash: controlplane.HashSecret(string(buf)), CreatedAt: now.UTC()}
				if err := st.CreateClient(ctx, c); err != nil {
					errs <- fmt.Errorf("register simulated host %d: %w", i, err)
					next.Store(int64(n)) // the others stop
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(<-errs, ctx.Err()); err != nil {
		return nil, err
	}
	f.setupTook = time.Since(t0)
	if publish == nil {
		return f, nil
	}
	if err := publish(ctx, st, work, f.dir, now); err != nil {
		return nil, err
	}
	return f, nil
}

// publishBench publishes the release the benchmark rolls out: 4 KB, 1.1.0.
func publishBench(ctx context.Context, st store.Store, work, dataDir string, now time.Time) error {
	// A release to roll out (the server does not check signatures; hosts do).
	art, sig := filepath.Join(work, "agent"), filepath.Join(work, "agent.minisig")
	if err := os.WriteFile(art, bytes.Repeat([]byte("A"), 4096), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(sig, []byte("untrusted comment: bench\nRWQ\ntrusted comment: bench\nx\n"), 0o644); err != nil {
		return err
	}
	if _, err := controlplane.PublishRelease(ctx, st, dataDir, controlplane.Publish{Name: "AD", Version: "1.1.0", OS: "linux", Arch: "amd64",
		Channel: okta.ChannelGA, File: art, SignatureFile: sig}, now); err != nil && !errors.Is(err, store.ErrConflict) {
		return err // a PostgreSQL database may already hold it from an earlier run
	}
	return nil
}

// clone copies a SQLite fixture's data dir (closed, so checkpointed) to
// work/data: the same pool, token and hosts, without registering them
// again.
func (f *fixture) clone(work string) (*fixture, error) {
	g := *f
	g.dir = filepath.Join(work, "data")
	err := filepath.WalkDir(f.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(f.dir, path)
		to := filepath.Join(g.dir, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(dst, src); err != nil {
			dst.Close()
			return err
		}
		return dst.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("copy the registered fleet to %s: %w", g.dir, err)
	}
	return &g, nil
}

// bodyTemplate renders a realistic heartbeat of about 1 KB (the body
// json.Marshal gives for sailpoint.StatusRequest) by appending the
// per-host values between precomputed literal pieces: no marshalling and
// no allocation per heartbeat.
type bodyTemplate struct {
	pieces [][]byte // literals between the slots
	slots  []slot   // slots[k] comes after pieces[k]
}

type slot int

const (
	slotID slot = iota
	slotLastSeen
	slotVersion
	slotJobs
	slotTimestamp
	slotSHA
	slotStatus
)

// placeholders of the slots in the marshalled template.
var placeholders = map[slot]string{slotID: "@@ID@@", slotLastSeen: "@@LS@@", slotVersion: "@@VER@@", slotTimestamp: "@@TS@@", slotStatus: "@@ST@@"}

// agentHealth is what a simulated host's health watch last found of its
// agent (the heartbeat's agents[].health extension, docs/heartbeat.md).
type agentHealth uint8

const (
	healthNone    agentHealth = iota // not watched: no health field
	healthOK                         // {"ok": true}
	healthFailing                    // {"ok": false, "reason": ...}; the host says WARNING
)

// healthReason is a failing simulated agent's health reason.
const healthReason = "health check failed: simulated: the release regressed after its install"

// report is h as the heartbeat's agents[].health, checked at ts; nil for
// healthNone.
func (h agentHealth) report(ts string) *sailpoint.AgentHealth {
	switch h {
	case healthOK:
		return &sailpoint.AgentHealth{OK: true, CheckedAt: ts}
	case healthFailing:
		return &sailpoint.AgentHealth{CheckedAt: ts, Reason: healthReason}
	}
	return nil
}

// sampleBody is the heartbeat the simulator sends, with the given values;
// sha is the installed binary's SHA-256 ("": not reported), health the
// ad-agent's watch (checked at checkedAt).
func sampleBody(id, lastSeen, version, sha, ts string, health agentHealth, checkedAt string, jobs []sailpoint.JobReport) sailpoint.StatusRequest {
	typ := sailpoint.TypeVA
	status := sailpoint.StatusNormal
	if health == healthFailing {
		status = sailpoint.StatusWarning // as poolagent while an agent fails
	}
	return sailpoint.StatusRequest{Status: status, Type: &typ, Timestamp: ts,
		Body: sailpoint.ClientBody{
			ID: sailpoint.Flex(id), Hostname: sailpoint.Flex(id + ".corp.example.com"), InternalIP: "10.20.30.40",
			OSType: "ubuntu", OSVersion: "24.04", Hypervisor: "kvm", PlatformVersion: "2", VAVersion: "va-2026.11",
			Product: "idn", OS: "linux", Arch: "amd64", UptimeSeconds: "864000", AgentVersion: "0.3.0",
			LastSeen:   sailpoint.Flex(lastSeen),
			Stacktrace: sailpoint.Flex(bytes.Repeat([]byte(" "), 300)),
			Agents: []sailpoint.AgentReport{
				{Name: "ad-agent", Type: "AD", Version: version, UpdateStatus: "Success", SHA256: sha, Health: health.report(checkedAt)},
				{Name: "fluent", Type: "fluent", Version: "50"},
				{Name: "toolbox", Type: "toolbox", Version: "6"},
			},
			Jobs: jobs,
		}}
}

func newBodyTemplate() *bodyTemplate {
	const jobMark, shaMark = "@@JOB@@", "@@SHA@@"
	body := sampleBody(placeholders[slotID], placeholders[slotLastSeen], placeholders[slotVersion], shaMark, placeholders[slotTimestamp],
		healthNone, "", []sailpoint.JobReport{{UUID: jobMark}})
	body.Status = sailpoint.ClientStatus(placeholders[slotStatus])
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	// The sha256 field, key and all, becomes a slot too: omitted when
	// empty, as encoding/json does; the agent's health (the next field)
	// is appended in the same slot.
	b = bytes.Replace(b, []byte(`,"sha256":"`+shaMark+`"`), []byte("@@SHAS@@"), 1)
	// The jobs field, from its comma to the end of its array, becomes a
	// slot: present only when there are jobs to report.
	js := bytes.Index(b, []byte(`,"jobs":[`))
	je := js + bytes.IndexByte(b[js:], ']') + 1
	b = append(b[:js:js], append([]byte("@@JOBS@@"), b[je:]...)...)
	t := &bodyTemplate{}
	for len(b) > 0 {
		at, which := len(b), slot(-1)
		for s, p := range placeholders {
			if i := bytes.Index(b, []byte(p)); i >= 0 && i < at {
				at, which = i, s
			}
		}
		if i := bytes.Index(b, []byte("@@JOBS@@")); i >= 0 && i < at {
			at, which = i, slotJobs
		}
		if i := bytes.Index(b, []byte("@@SHAS@@")); i >= 0 && i < at {
			at, which = i, slotSHA
		}
		t.pieces = append(t.pieces, b[:at])
		if which < 0 {
			break
		}
		t.slots = append(t.slots, which)
		n := len("@@JOBS@@") // and @@SHAS@@
		if which != slotJobs && which != slotSHA {
			n = len(placeholders[which])
		}
		b = b[at+n:]
	}
	return t
}

// appendBody appends host i's heartbeat to buf. sha is the installed
// binary's SHA-256 (hex, or "" for none); health is the ad-agent's watch
// (checked now); jobs is the JSON array of job reports, or nil.
func (t *bodyTemplate) appendBody(buf []byte, ids *identities, i int, version, sha string, health agentHealth, jobs []byte, now time.Time) []byte {
	for k, p := range t.pieces {
		buf = append(buf, p...)
		if k >= len(t.slots) {
			break
		}
		switch t.slots[k] {
		case slotID:
			buf = ids.appendID(buf, i)
		case slotLastSeen:
			buf = strconv.AppendInt(buf, now.UnixMilli(), 10)
		case slotVersion:
			buf = append(buf, version...)
		case slotTimestamp:
			buf = now.UTC().AppendFormat(buf, time.RFC3339Nano)
		case slotSHA:
			if sha != "" {
				buf = append(buf, `,"sha256":"`...)
				buf = append(buf, sha...)
				buf = append(buf, '"')
			}
			if health != healthNone {
				buf = append(buf, `,"health":{"ok":`...)
				buf = strconv.AppendBool(buf, health == healthOK)
				buf = append(buf, `,"checkedAt":"`...)
				buf = now.UTC().AppendFormat(buf, time.RFC3339)
				buf = append(buf, '"')
				if health == healthFailing {
					buf = append(buf, `,"reason":"`+healthReason+`"`...)
				}
				buf = append(buf, '}')
			}
		case slotStatus:
			if health == healthFailing {
				buf = append(buf, sailpoint.StatusWarning...)
			} else {
				buf = append(buf, sailpoint.StatusNormal...)
			}
		case slotJobs:
			if jobs != nil {
				buf = append(buf, `,"jobs":`...)
				buf = append(buf, jobs...)
			}
		}
	}
	return buf
}
