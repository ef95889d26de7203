package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/sailpoint"
)

// The template must render exactly what json.Marshal gives for the same
// heartbeat, with and without job reports.
func TestBodyTemplateMatchesMarshal(t *testing.T) {
	ids := newIdentities(100)
	tmpl := newBodyTemplate()
	now := time.Date(2026, 11, 2, 10, 30, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name    string
		host    int
		version string
		sha     string
		health  agentHealth
		jobs    []sailpoint.JobReport
	}{
		{"no jobs", 0, "1.0.0", "", healthNone, nil},
		{"running", 42, "1.0.0", "", healthNone, []sailpoint.JobReport{{UUID: "job-1", State: sailpoint.JobRunning, Progress: 10, Phase: "download"}}},
		{"failed", 99999, "1.1.0", "", healthNone, []sailpoint.JobReport{{UUID: "job-2", State: sailpoint.JobFailed, Progress: 100, UpdateStatus: "Failed", UpdateMessage: "HEALTH_CHECK: x"}}},
		{"two", 123456, "2.0.0", "", healthNone, []sailpoint.JobReport{{UUID: "a", State: sailpoint.JobFinished}, {UUID: "b", State: sailpoint.JobCancelled}}},
		{"binary hash", 7, "1.0.0", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", healthNone, nil},
		{"healthy", 9, "1.1.0", "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", healthOK, nil},
		{"unhealthy, a job", 10, "1.1.0", "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", healthFailing, []sailpoint.JobReport{{UUID: "d", State: sailpoint.JobRunning}}},
		{"unhealthy, no hash", 11, "1.1.0", "", healthFailing, nil},
		{"binary hash and a job", 8, "1.1.0", "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", healthNone, []sailpoint.JobReport{{UUID: "c", State: sailpoint.JobRunning}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(sampleBody(ids.id(tc.host), strconv.FormatInt(now.UnixMilli(), 10), tc.version, tc.sha, now.Format(time.RFC3339Nano), tc.health, now.Format(time.RFC3339), tc.jobs))
			if err != nil {
				t.Fatal(err)
			}
			var jobs []byte
			if tc.jobs != nil {
				jobs, _ = json.Marshal(tc.jobs)
			}
			got := tmpl.appendBody([]byte("keep"), ids, tc.host, tc.version, tc.sha, tc.health, jobs, now)
			if !bytes.HasPrefix(got, []byte("keep")) || !bytes.Equal(got[4:], want) {
				t.Fatalf("template body:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestIdentities(t *testing.T) {
	a, b := newIdentities(10), newIdentities(10)
	for _, tc := range []struct {
		i    int
		want string
	}{{0, "00000"}, {7, "00007"}, {42, "00042"}, {99999, "99999"}, {123456, "123456"}} {
		if got := a.id(tc.i); got != a.prefix+tc.want {
			t.Errorf("id(%d) = %q, want %q", tc.i, got, a.prefix+tc.want)
		}
	}
	if a.prefix == b.prefix {
		t.Errorf("two runs share the id prefix %q", a.prefix)
	}
	secret := regexp.MustCompile(`^pcs_[0-9A-Za-z]{40}$`)
	seen := map[string]bool{}
	for i := range 1000 {
		s := string(a.appendSecret(nil, i))
		if !secret.MatchString(s) {
			t.Fatalf("secret %d = %q: not pcs_ and 40 base62 characters", i, s)
		}
		if seen[s] {
			t.Fatalf("secret %d repeats", i)
		}
		seen[s] = true
		if again := string(a.appendSecret(nil, i)); again != s {
			t.Fatalf("secret %d not stable: %q then %q", i, s, again)
		}
		if other := string(b.appendSecret(nil, i)); other == s {
			t.Fatalf("secret %d the same in two runs", i)
		}
	}
	if got, want := a.bearer(3), "Bearer "+string(a.appendSecret(nil, 3)); got != want {
		t.Errorf("bearer(3) = %q, want %q", got, want)
	}
}

func TestMayHaveJobs(t *testing.T) {
	for _, tc := range []struct {
		reply string
		want  bool
	}{
		{`{"body":{"id":"x"},"status":"normal"}`, false},
		{`{"body":{"jobs":[]},"status":"normal"}`, false},
		{`{"body":{"jobs":null}}`, false},
		{`{"body":{"jobs":[{"uuid":"u","state":"PENDING"}]}}`, true},
	} {
		if got := mayHaveJobs([]byte(tc.reply)); got != tc.want {
			t.Errorf("mayHaveJobs(%s) = %v, want %v", tc.reply, got, tc.want)
		}
	}
}

// The reply struct reads what the simulator needs from a real reply.
func TestJobReplyDecodes(t *testing.T) {
	full := sailpoint.StatusReply{Body: sailpoint.ReplyBody{Jobs: []sailpoint.Job{{UUID: "u1", State: sailpoint.JobPending, StartAfter: "2026-11-02T10:30:00Z",
		ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{"ad-agent": {Version: "1.1.0", Artifact: &sailpoint.Artifact{URL: "http://x/a"}}}}}}}
	b, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	if !mayHaveJobs(b) {
		t.Fatalf("mayHaveJobs false for %s", b)
	}
	var r jobReply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	j := r.Body.Jobs[0]
	if j.UUID != "u1" || j.State != sailpoint.JobPending || j.StartAfter != "2026-11-02T10:30:00Z" || j.Config.Agent.Version != "1.1.0" ||
		j.Config.Agent.Artifact == nil || j.Config.Agent.Artifact.URL != "http://x/a" {
		t.Fatalf("decoded %+v from %s", j, b)
	}
}

// Many workers taking events at once take each exactly once, none early.
func TestSchedulerWorkers(t *testing.T) {
	const n, workers = 2000, 16
	s := newScheduler(n)
	s.start = time.Now()
	for i := range n {
		s.push(int64(i%50)*int64(time.Millisecond), i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	taken := make([]int, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				e, ok := s.next(ctx)
				if !ok {
					return
				}
				if e.at > s.now() {
					t.Errorf("host %d taken early", e.host)
				}
				mu.Lock()
				taken[e.host]++
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		total := 0
		for _, c := range taken {
			total += c
		}
		mu.Unlock()
		if total >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	for i, c := range taken {
		if c != 1 {
			t.Fatalf("host %d taken %d times", i, c)
		}
	}
}

// Workers take hosts in time order, each at or after its time; an event
// pushed earlier than the one a worker waits for is taken first.
func TestSchedulerOrder(t *testing.T) {
	s := newScheduler(8)
	s.start = time.Now()
	ms := int64(time.Millisecond)
	for i, at := range []int64{30 * ms, 10 * ms, 20 * ms, 0, 10 * ms} {
		s.push(at, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []int
	for range 6 {
		e, ok := s.next(ctx)
		if !ok {
			t.Fatal("next ended before ctx")
		}
		if e.at > s.now() {
			t.Fatalf("host %d (at %v) taken early, at %v", e.host, time.Duration(e.at), time.Duration(s.now()))
		}
		i := int(e.host)
		got = append(got, i)
		if i == 3 {
			s.push(s.now()+5*ms, 5)
		}
	}
	// Host 3 at 0, host 5 pushed at 5 ms, hosts 1 and 4 at 10 ms (either
	// order), host 2 at 20 ms, host 0 at 30 ms.
	if g := fmt.Sprint(got); g != "[3 5 1 4 2 0]" && g != "[3 5 4 1 2 0]" {
		t.Errorf("order %v", got)
	}
	if late := s.now(); late < 30*ms {
		t.Errorf("host 0 (at 30 ms) taken at %v", time.Duration(late))
	}
	// A waiting worker is woken by an earlier event, and by ctx's end.
	s.push(s.now()+int64(time.Hour), 6)
	done := make(chan event)
	go func() { e, _ := s.next(ctx); done <- e }()
	time.Sleep(20 * time.Millisecond)
	s.push(s.now()+ms, 7)
	select {
	case e := <-done:
		if e.host != 7 {
			t.Errorf("woken for host %d, want 7", e.host)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting worker missed an earlier event")
	}
	ended := make(chan bool)
	go func() { _, ok := s.next(ctx); ended <- ok }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case ok := <-ended:
		if ok {
			t.Error("next returned an event after ctx ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting worker did not return when ctx ended")
	}
}

func TestLatencyQuantiles(t *testing.T) {
	var l latencies
	for i := 1; i <= 100; i++ {
		l.add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct{ q, want float64 }{{0.5, 0.050}, {0.99, 0.099}} {
		got := l.quantile(tc.q)
		if got < tc.want || got > tc.want*1.03 {
			t.Errorf("quantile(%v) = %v, want %v within 3%%", tc.q, got, tc.want)
		}
	}
}

func TestSkimTop(t *testing.T) {
	const doc = ` {"agents":[{"id":"a1","status":"x","n":{"status":"deep"}},{"id":"a2,}"}],"id":"upd1", "status" : "SUCCESS",` +
		`"rollout":{"halted":"ERROR_BUDGET: 501 of 10000 \"hosts\" failed","wave":1},"name":"a \"quoted\" , name"}` + "\n"
	for _, chunk := range []int{1, 7, 1 << 20} {
		got, err := skimTop(&chunkReader{s: doc, n: chunk}, "id", "status", "rollout", "missing")
		if err != nil {
			t.Fatalf("chunks of %d: %v", chunk, err)
		}
		want := map[string]string{"id": `"upd1"`, "status": `"SUCCESS"`, "rollout": `{"halted":"ERROR_BUDGET: 501 of 10000 \"hosts\" failed","wave":1}`}
		if len(got) != len(want) {
			t.Fatalf("chunks of %d: got keys %v", chunk, got)
		}
		for k, v := range want {
			if string(got[k]) != v {
				t.Errorf("chunks of %d: %s = %s, want %s", chunk, k, got[k], v)
			}
		}
	}
	if _, err := skimTop(&chunkReader{s: `{"id":"x","agents":[`, n: 4}, "id"); err == nil {
		t.Error("a truncated object: no error")
	}
}

type chunkReader struct {
	s string
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.s)
	r.s = r.s[n:]
	return n, nil
}

func TestNextHeartbeatHint(t *testing.T) {
	tests := []struct {
		reply string
		want  time.Duration
	}{
		{`{"body":{"configuration":{"heartbeatInterval":"30"},"jobs":[]}}`, 0},
		{`{"body":{"configuration":{"heartbeatInterval":"30","nextHeartbeat":"3"},"jobs":[]}}`, 3 * time.Second},
		{`{"body":{"configuration":{"nextHeartbeat":"0"}}}`, 0},
		{`{"body":{"configuration":{"nextHeartbeat":"x"}}}`, 0},
		{`{"body":{"configuration":{"nextHeartbeat":"90"}}}`, 30 * time.Second}, // at most the interval
		{`{"body":{"configuration":{"nextHeartbeat":"3`, 0},                     // cut short
	}
	for _, tt := range tests {
		if got := nextHeartbeat([]byte(tt.reply), 30*time.Second); got != tt.want {
			t.Errorf("nextHeartbeat(%s) = %s, want %s", tt.reply, got, tt.want)
		}
	}
}

// Workers behind their hosts' schedule (every event already due, each one
// pushed back due) still stop when ctx ends.
func TestSchedulerStopsWhenBehind(t *testing.T) {
	s := newScheduler(64)
	s.start = time.Now()
	for i := range 64 {
		s.push(0, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			e, ok := s.next(ctx)
			if !ok {
				return
			}
			s.push(0, int(e.host)) // due again at once
		}
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("a worker with due events kept taking them after ctx ended")
	}
}
