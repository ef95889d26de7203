package main

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolagent/poolagent/agent"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// The simulator plays every host without a goroutine of its own: each
// host has one pending event (its next heartbeat, download or end of
// install) in a time-ordered heap; a bounded pool of workers takes the due
// hosts from it, sends the host's requests over one shared http.Transport
// and schedules its next event. A host's state is the few bytes of
// hostState; ids and secrets are derived (identities).

// simWorkers bounds the simulator's concurrent requests (and
// connections): the load generator's concurrency, 256 unless -sim-conns
// says otherwise. A real fleet has a connection per host; with few
// workers, hosts whose requests wait on the server (job reports behind a
// dispatch's writes) hold back every other host's heartbeat.
var simWorkers = 256

type event struct {
	at   int64 // nanoseconds since the simulation's start
	host uint32
}

type eventHeap []event

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// scheduler is the time-ordered queue of host events. Workers take due
// events themselves (next): while hosts are due, a worker that finishes a
// request takes the next one at once, without waking another goroutine.
// A dispatcher goroutine handing each event over a channel cost two
// goroutine wake-ups an event, and the simulator's share of the two
// cores with them (bench/README.md).
type scheduler struct {
	start time.Time
	mu    sync.Mutex
	h     eventHeap
	// timed: an idle worker waits for the earliest event's time (at most
	// one); wake tells it of an earlier event. The other idle workers
	// wait for avail: a hint that an event may be theirs to take.
	timed bool
	wake  chan struct{}
	avail chan struct{}
}

func newScheduler(n int) *scheduler {
	return &scheduler{start: time.Now(), h: make(eventHeap, 0, n), wake: make(chan struct{}, 1), avail: make(chan struct{}, 1)}
}

// now is the simulation's clock: nanoseconds since its start.
func (s *scheduler) now() int64 { return int64(time.Since(s.start)) }

func (s *scheduler) push(at int64, host int) {
	s.mu.Lock()
	heap.Push(&s.h, event{at: at, host: uint32(host)})
	first := s.h[0].host == uint32(host) && s.h[0].at == at
	timed := s.timed
	s.mu.Unlock()
	if !first {
		return
	}
	// An earlier event: the timed waiter waits for it instead, or an
	// idle worker becomes that waiter.
	ch := s.avail
	if timed {
		ch = s.wake
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// next returns the earliest event once it is due; false once ctx ends.
func (s *scheduler) next(ctx context.Context) (event, bool) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		// Checked first: a simulator behind its hosts' schedule always
		// has a due event, and would never stop.
		if ctx.Err() != nil {
			return event{}, false
		}
		s.mu.Lock()
		if len(s.h) > 0 && s.h[0].at <= s.now() {
			e := heap.Pop(&s.h).(event)
			more := len(s.h) > 0 && !s.timed
			s.mu.Unlock()
			if more {
				// An idle worker takes the timed role for the next event.
				select {
				case s.avail <- struct{}{}:
				default:
				}
			}
			return e, true
		}
		if s.timed {
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return event{}, false
			case <-s.avail:
			}
			continue
		}
		s.timed = true
		wait := time.Hour
		if len(s.h) > 0 {
			wait = time.Duration(s.h[0].at - s.now())
		}
		s.mu.Unlock()
		t.Reset(wait)
		select {
		case <-ctx.Done():
		case <-s.wake: // an earlier event (Reset drops a stale expiry: Go 1.23 timers)
		case <-t.C:
		}
		s.mu.Lock()
		s.timed = false
		s.mu.Unlock()
		if ctx.Err() != nil {
			return event{}, false
		}
	}
}

// Steps of a host: what its pending event does.
const (
	stepBeat     uint8 = iota // a regular heartbeat
	stepDownload              // start downloading its job's artifact
	stepInstall               // the install is over: report the job
	stepProgress              // the job's progress heartbeat (agent.ProgressDelay after its start)
)

// hostState is all the simulator keeps per host.
type hostState struct {
	next    int64 // next regular heartbeat, on the simulation's clock
	step    uint8
	version uint8       // index in the simulation's versions
	health  agentHealth // what its health watch reports of the agent
}

// activeJob is a job a host is working on (only hosts in flight have one).
type activeJob struct {
	uuid       string
	target     uint8 // index in versions
	url        string
	patchURL   string // the patch offered from the host's binary, if any
	mirrorURL  string // the first mirror the job names, if any
	startAfter time.Time
	taken      int64 // on the scheduler's clock
}

// jobReply is the part of a heartbeat reply the simulator reads.
type jobReply struct {
	Body struct {
		Jobs []struct {
			UUID       string             `json:"uuid"`
			State      sailpoint.JobState `json:"state"`
			StartAfter string             `json:"startAfter"`
			Config     struct {
				Agent struct {
					Version  string `json:"version"`
					Artifact *struct {
						URL    string `json:"url"`
						SHA256 string `json:"sha256"`
						Patch  *struct {
							URL string `json:"url"`
						} `json:"patch"`
						Mirrors []string `json:"mirrors"`
					} `json:"artifact"`
				} `json:"ad-agent"`
			} `json:"managedProcessConfiguration"`
		} `json:"jobs"`
	} `json:"body"`
}

// mayHaveJobs tells whether a reply needs decoding: encoding/json writes
// an empty or absent job list as `"jobs":[]` or `"jobs":null`.
func mayHaveJobs(b []byte) bool {
	i := bytes.Index(b, []byte(`"jobs":`))
	if i < 0 {
		return false
	}
	rest := b[i+len(`"jobs":`):]
	return !bytes.HasPrefix(rest, []byte("[]")) && !bytes.HasPrefix(rest, []byte("null"))
}

// nextHeartbeat reads the reply's nextHeartbeat hint (0: none), as
// poolagent does: at least a second, at most interval.
func nextHeartbeat(b []byte, interval time.Duration) time.Duration {
	key := []byte(`"` + sailpoint.ConfigNextHeartbeat + `":"`)
	i := bytes.Index(b, key)
	if i < 0 {
		return 0
	}
	rest := b[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return 0
	}
	n, err := strconv.Atoi(string(rest[:end]))
	if err != nil || n <= 0 {
		return 0
	}
	return min(max(time.Duration(n)*time.Second, time.Second), interval)
}

// latencies is a log-scale histogram of request latencies (about 1%
// resolution from 10 µs to 100 s), safe for concurrent use.
type latencies struct{ b [1000]atomic.Int64 }

const latScale = 1000 / math.Ln10 / 7 // 1000 buckets over 7 decades

func (l *latencies) add(d time.Duration) {
	us := max(float64(d)/1e4, 1) // units of 10 µs
	l.b[min(int(math.Log(us)*latScale), len(l.b)-1)].Add(1)
}

// quantile returns the q-quantile (upper edge of its bucket) in seconds.
func (l *latencies) quantile(q float64) float64 {
	var total int64
	for i := range l.b {
		total += l.b[i].Load()
	}
	if total == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range l.b {
		if seen += l.b[i].Load(); seen >= want {
			return math.Exp(float64(i+1)/latScale) * 1e-5
		}
	}
	return math.Inf(1)
}

// sim plays a fleet: every host heartbeats at interval, spread evenly
// over one interval, and obeys its jobs per sc.
type sim struct {
	base     string // server URL
	rawHost  string // host:port of base, for the heartbeats' rawClient
	ids      *identities
	tmpl     *bodyTemplate
	client   *http.Client
	interval time.Duration
	install  time.Duration
	sc       scenario
	sched    *scheduler
	hosts    []hostState

	versionsMu sync.Mutex
	versions   []string
	shas       []string // the binary's SHA-256 of each version, "" if unknown

	jobsMu sync.Mutex
	jobs   map[int]*activeJob
	// regress holds, per host that installed the bad release, when its
	// agent turns unhealthy (scenario.regressAfter).
	regress map[int]int64
	// badHosts counts hosts that finished the bad release, reverts the
	// revert jobs finished; lastRevert is when the last one was.
	badHosts, reverts, lastRevert atomic.Int64

	beats, jobsTaken, jobsDone, limited, errs atomic.Int64
	// Artifact bytes read from poolserver's response bodies, full files
	// and patches, and the downloads of each.
	fullBytes, patchBytes, fullGets, patchGets atomic.Int64
	mirrorBytes, mirrorGets                    atomic.Int64 // read from a mirror, not poolserver
	// lastTaken and lastDone are when (time.Now().UnixNano()) the last
	// job was taken and the last one reported done; behind counts the
	// heartbeats sent a whole interval late (the simulator or the server
	// could not keep up).
	lastTaken, lastDone, behind atomic.Int64
	// hinted counts the heartbeats sent early at the server's word
	// (nextHeartbeat: a job was on its way).
	hinted atomic.Int64
	// created is when (UnixNano) the rollout's update was created; from
	// then, takenBy counts the jobs taken per 5 s after it, and missed
	// the heartbeats of hosts still on their first version answered with
	// neither a job nor a hint (each costs that host an interval).
	created               atomic.Int64
	takenBy               [64]atomic.Int64
	missed                atomic.Int64
	inFlight, maxInFlight atomic.Int64
	busy                  atomic.Int64 // downloads refused with 503 or 429
	lat                   latencies

	startsMu sync.Mutex
	starts   map[int64]int // download starts per second
}

func newSim(base string, ids *identities, interval, install time.Duration, sc scenario) *sim {
	tr := &http.Transport{MaxIdleConns: simWorkers, MaxIdleConnsPerHost: simWorkers, MaxConnsPerHost: simWorkers, IdleConnTimeout: time.Minute}
	s := &sim{base: base, ids: ids, tmpl: newBodyTemplate(), client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		rawHost:  strings.TrimPrefix(base, "http://"),
		interval: interval, install: install, sc: sc, sched: newScheduler(ids.n), hosts: make([]hostState, ids.n),
		versions: []string{"1.0.0"}, shas: []string{sc.installedSHA}, jobs: map[int]*activeJob{}, starts: map[int64]int{},
		regress: map[int]int64{}}
	for i := range s.hosts {
		// Spread the hosts evenly over one interval.
		s.hosts[i].next = int64(interval) * int64(i) / int64(ids.n)
		s.sched.push(s.hosts[i].next, i)
	}
	return s
}

func (s *sim) version(v uint8) string {
	s.versionsMu.Lock()
	defer s.versionsMu.Unlock()
	return s.versions[v]
}

func (s *sim) sha(v uint8) string {
	s.versionsMu.Lock()
	defer s.versionsMu.Unlock()
	return s.shas[v]
}

// internVersion returns v's index in versions; sha, when not empty, is
// its binary's SHA-256 (a job's artifact tells it).
func (s *sim) internVersion(v, sha string) uint8 {
	s.versionsMu.Lock()
	defer s.versionsMu.Unlock()
	for i, have := range s.versions {
		if have == v {
			if s.shas[i] == "" {
				s.shas[i] = sha
			}
			return uint8(i)
		}
	}
	s.versions = append(s.versions, v)
	s.shas = append(s.shas, sha)
	return uint8(len(s.versions) - 1)
}

// run plays the hosts until ctx ends.
func (s *sim) run(ctx context.Context) { s.runWith(ctx, (*worker).step) }

// runWith runs step on each due event, on one of simWorkers workers,
// until ctx ends; step schedules the host's next event. Requests under way
// when ctx ends are finished, not cancelled (a cancelled heartbeat is an
// error in the server's log).
func (s *sim) runWith(ctx context.Context, step func(w *worker, ctx context.Context, e event)) {
	reqCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range simWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{s: s, raw: rawClient{addr: s.rawHost, host: s.rawHost, timeout: 30 * time.Second}}
			defer w.raw.close()
			for {
				e, ok := s.sched.next(ctx)
				if !ok {
					return
				}
				step(w, reqCtx, e)
			}
		}()
	}
	wg.Wait()
	s.client.Transport.(*http.Transport).CloseIdleConnections()
}

// worker holds one worker goroutine's reusable buffers.
type worker struct {
	s     *sim
	body  []byte
	reply bytes.Buffer
	rep   jobReply
	soon  time.Duration // the last reply's nextHeartbeat (0: none)
	// raw sends the heartbeats when poolserver is plain http (always,
	// in these benchmarks); path and auth are its buffers.
	raw        rawClient
	path, auth []byte
}

// step does host e.host's due event and schedules its next one.
func (w *worker) step(ctx context.Context, e event) {
	i := int(e.host)
	s, h := w.s, &w.s.hosts[i]
	switch h.step {
	case stepBeat:
		at := h.next
		w.regress(i, h)
		ok := w.beat(ctx, i, h, nil)
		now := s.sched.now()
		if h.next = at + int64(s.interval); h.next < now {
			h.next = now + int64(s.interval) // fallen a whole interval behind
			s.behind.Add(1)
		}
		if ok && w.soon > 0 && len(w.rep.Body.Jobs) == 0 {
			// The server's hint, as poolagent takes it: once, then the
			// interval from there.
			h.next = now + int64(w.soon)
			s.hinted.Add(1)
		} else if ok && len(w.rep.Body.Jobs) == 0 && h.version == 0 && s.created.Load() != 0 {
			s.missed.Add(1)
		}
		if !ok || len(w.rep.Body.Jobs) == 0 || w.rep.Body.Jobs[0].State != sailpoint.JobPending {
			s.sched.push(h.next, i)
			return
		}
		rj := w.rep.Body.Jobs[0]
		j := &activeJob{uuid: rj.UUID}
		var sha string
		if a := rj.Config.Agent.Artifact; a != nil {
			j.url, sha = a.URL, a.SHA256
			if a.Patch != nil {
				j.patchURL = a.Patch.URL
			}
			if len(a.Mirrors) > 0 {
				j.mirrorURL = a.Mirrors[0]
			}
		}
		j.target = s.internVersion(rj.Config.Agent.Version, sha)
		if t, err := time.Parse(time.RFC3339, rj.StartAfter); err == nil {
			j.startAfter = t
		}
		s.jobsMu.Lock()
		s.jobs[i] = j
		if strings.HasPrefix(j.uuid, "revert-") {
			delete(s.regress, i) // going back before its regression showed
		}
		s.jobsMu.Unlock()
		s.jobsTaken.Add(1)
		tn := time.Now().UnixNano()
		storeMax(&s.lastTaken, tn)
		if c := s.created.Load(); c != 0 {
			s.takenBy[min(max(tn-c, 0)/int64(5*time.Second), int64(len(s.takenBy)-1))].Add(1)
		}
		if n := s.inFlight.Add(1); n > s.maxInFlight.Load() {
			s.maxInFlight.Store(n) // racy max, good enough for a bound check
		}
		j.taken = s.sched.now()
		if s.sc.download && j.url != "" {
			w.beat(ctx, i, h, w.jobsJSON(runningReport(j)))
			h.step = stepDownload
			s.sched.push(max(s.sched.now(), int64(j.startAfter.Sub(s.sched.start))), i)
			return
		}
		if s.install >= agent.ProgressDelay {
			// As poolagent: progress goes out within ProgressDelay; an
			// install that ends sooner reports only its end.
			h.step = stepProgress
			s.sched.push(j.taken+int64(agent.ProgressDelay), i)
			return
		}
		h.step = stepInstall
		s.sched.push(j.taken+int64(s.install), i)
	case stepProgress:
		j := s.job(i)
		w.beat(ctx, i, h, w.jobsJSON(runningReport(j)))
		h.step = stepInstall
		s.sched.push(max(s.sched.now(), j.taken+int64(s.install)), i)
	case stepDownload:
		j := s.job(i)
		// Counted when the host meant to start (as a host with its own
		// timer would), not when a worker was free.
		s.startsMu.Lock()
		s.starts[s.sched.start.Add(time.Duration(e.at)).Unix()]++
		s.startsMu.Unlock()
		// The patch when the job offers one (as the agent does; the
		// simulator neither applies nor verifies it), else the full file.
		url, served, gets := j.url, &s.fullBytes, &s.fullGets
		switch {
		case j.patchURL != "":
			url, served, gets = j.patchURL, &s.patchBytes, &s.patchGets
		case j.mirrorURL != "":
			url, served, gets = j.mirrorURL, &s.mirrorBytes, &s.mirrorGets
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if url != j.mirrorURL {
			// As poolagent: the secret goes to poolserver only.
			req.Header.Set("Authorization", s.ids.bearer(i))
		}
		if resp, err := s.client.Do(req); err == nil {
			if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
				// The download cap: come back after Retry-After plus up
				// to half again, as poolagent does (updater.busyWait).
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				s.busy.Add(1)
				after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				wait := time.Duration(max(after, 1)) * time.Second
				wait += time.Duration(rand.Int64N(int64(wait / 2)))
				s.sched.push(s.sched.now()+int64(wait), i)
				return
			}
			n, err := io.Copy(io.Discard, &pacedReader{r: resp.Body, rate: s.sc.downloadRate})
			resp.Body.Close()
			served.Add(n)
			gets.Add(1)
			if err != nil || resp.StatusCode != http.StatusOK {
				s.errs.Add(1)
			}
		} else {
			s.errs.Add(1)
		}
		h.step = stepInstall
		s.sched.push(s.sched.now()+int64(s.install), i)
	case stepInstall:
		j := s.job(i)
		s.inFlight.Add(-1)
		if s.sc.fail {
			w.beat(ctx, i, h, w.jobsJSON(sailpoint.JobReport{UUID: j.uuid, State: sailpoint.JobFailed, Progress: 100,
				UpdateStatus: "Failed", UpdateMessage: "HEALTH_CHECK: simulated bad release"}))
		} else {
			h.version = j.target
			if s.sc.regressAfter > 0 {
				h.health = healthOK // the install's check passed; the watch goes on
			}
			w.beat(ctx, i, h, w.jobsJSON(sailpoint.JobReport{UUID: j.uuid, State: sailpoint.JobFinished, Progress: 100}))
			s.finished(i, j)
		}
		s.jobsMu.Lock()
		delete(s.jobs, i)
		s.jobsMu.Unlock()
		s.jobsDone.Add(1)
		storeMax(&s.lastDone, time.Now().UnixNano())
		h.step = stepBeat
		s.sched.push(max(h.next, s.sched.now()), i)
	}
}

// runningReport is a started job's progress.
func runningReport(j *activeJob) sailpoint.JobReport {
	return sailpoint.JobReport{UUID: j.uuid, State: sailpoint.JobRunning, Progress: 10, Phase: "download"}
}

func (s *sim) job(i int) *activeJob {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	return s.jobs[i]
}

func (w *worker) jobsJSON(r sailpoint.JobReport) []byte {
	b, _ := json.Marshal([]sailpoint.JobReport{r})
	return b
}

// beat sends host i's heartbeat (h's version installed: its version and,
// when known, its binary's SHA-256; h's agent health) and decodes the
// reply's jobs into w.rep; false when it failed.
func (w *worker) beat(ctx context.Context, i int, h *hostState, jobs []byte) bool {
	s := w.s
	w.rep.Body.Jobs = w.rep.Body.Jobs[:0]
	now := time.Now()
	w.body = s.tmpl.appendBody(w.body[:0], s.ids, i, s.version(h.version), s.sha(h.version), h.health, jobs, now)
	if !strings.HasPrefix(s.base, "https://") {
		w.path = heartbeatURL(w.path[:0], "", s.ids, i)
		w.auth = s.ids.appendSecret(append(w.auth[:0], "Bearer "...), i)
		status, err := w.raw.post(string(w.path), w.auth, w.body, &w.reply)
		return w.took(now, status, err)
	}
	url := heartbeatURL(make([]byte, 0, len(s.base)+64), s.base, s.ids, i)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, string(url), bytes.NewReader(w.body))
	req.Header.Set("Authorization", s.ids.bearer(i))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		s.errs.Add(1)
		return false
	}
	defer resp.Body.Close()
	w.reply.Reset()
	_, err = w.reply.ReadFrom(resp.Body)
	return w.took(now, resp.StatusCode, err)
}

// took counts a heartbeat sent at start that got status (err: its reply
// was cut short, or it failed) with its reply in w.reply, and decodes the
// reply's jobs and hint.
func (w *worker) took(start time.Time, status int, err error) bool {
	s := w.s
	if status == 0 {
		s.errs.Add(1)
		return false
	}
	s.lat.add(time.Since(start))
	s.beats.Add(1)
	if status == http.StatusTooManyRequests {
		s.limited.Add(1)
	}
	if err != nil || status != http.StatusOK {
		return false
	}
	w.soon = nextHeartbeat(w.reply.Bytes(), s.interval)
	if mayHaveJobs(w.reply.Bytes()) {
		if err := json.Unmarshal(w.reply.Bytes(), &w.rep); err != nil {
			s.errs.Add(1)
			return false
		}
	}
	return true
}

// peakStarts is the most download starts in one second.
func (s *sim) peakStarts() int {
	s.startsMu.Lock()
	defer s.startsMu.Unlock()
	n := 0
	for _, c := range s.starts {
		n = max(n, c)
	}
	return n
}

// String summarises the simulation's counters for stderr.
func (s *sim) String() string {
	return fmt.Sprintf("%d heartbeats, %d jobs taken, %d reported done, %d 429s, %d errors",
		s.beats.Load(), s.jobsTaken.Load(), s.jobsDone.Load(), s.limited.Load(), s.errs.Load())
}

// storeMax raises v to x if x is greater.
func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// pacedReader reads at most rate bytes a second (0: unpaced), as a host
// on a slow link: the server's handler, and its download slot, stay busy
// for the whole transfer.
type pacedReader struct {
	r    io.Reader
	rate int64
	n    int64
	t0   time.Time
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.rate <= 0 {
		return p.r.Read(b)
	}
	if p.t0.IsZero() {
		p.t0 = time.Now()
	}
	if len(b) > 32<<10 {
		b = b[:32<<10]
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if ahead := time.Duration(p.n*int64(time.Second)/p.rate) - time.Since(p.t0); ahead > 0 {
		time.Sleep(ahead)
	}
	return n, err
}
