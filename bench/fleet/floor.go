package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/poolagent/poolagent/controlplane/store"
)

// The floor: the timed rollout against a bare control plane, in the same
// run, so poolserver's figure reads as a ratio to what the machine allows.
// The bare control plane speaks the simulator's part of the protocol over
// plain net/http and keeps nothing but a byte of state per host in memory:
// it reads each heartbeat's body, hands a host its job at its first
// heartbeat after the create, and counts the FINISHED reports. No
// authentication, no store, no facts, no rollout rules: whatever the
// floor's rollout takes beyond interval + install is the cost of HTTP and
// of the simulator on these cores, which poolserver pays as well.

// Host states in the floor server.
const (
	floorIdle uint32 = iota
	floorJobGiven
	floorDone
)

// floorServer is the bare control plane's state.
type floorServer struct {
	hosts   []atomic.Uint32
	created atomic.Bool
	done    atomic.Int64
	bufs    sync.Pool
	idle    []byte // the reply to a heartbeat with nothing to do
	job     []byte // the reply that hands out the job
}

// floorJobUUID is the one job's id: the simulator only echoes it back.
const floorJobUUID = "0190c7a0-0000-7000-8000-000000000001"

func newFloorServer(n int) *floorServer {
	// Replies of about the size of poolserver's (docs/heartbeat.md).
	const head = `{"status":"NORMAL","type":"VA","timestamp":"2026-03-02T10:00:00.123Z","body":{"id":"floor","clientId":"floor","clusterId":"floor","orgType":"","vaDownloadUrl":"","clusterJobCount":1,` +
		`"configuration":{"clusterType":"","clusterExternalId":"floor","debug":"false","failureThreshold":"","gmtOffset":"0","scheduleUpgrade":"true","va_version":"","heartbeatInterval":"30","poolType":"AD"},` +
		`"connectorServices":[],"queue":{"name":"","region":""},"warnings":[],`
	const tail = `"maintenance":{"window":"true","windowStartTime":"2026-03-02T02:00:00Z","windowClusterTime":"2026-03-02T10:00:00Z","windowFinishTime":"2026-03-02T04:00:00Z"}}}`
	job := `"jobs":[{"uuid":"` + floorJobUUID + `","cookbook":"` + floorJobUUID + `","state":"PENDING","type":"VA_UPGRADE","targetId":"floor",` +
		`"managedProcessConfiguration":{"ad-agent":{"version":"1.1.0","path":"AD/ad-agent","description":null,"dependencies":null,"type":"AD",` +
		`"artifact":{"name":"AD","version":"1.1.0","os":"linux","arch":"amd64","url":"http://127.0.0.1/artifacts/AD/1.1.0/linux/amd64","size":7340032,` +
		`"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","signature":"untrusted comment: floor\nRWQ="}}},` +
		`"updateId":"floor","poolId":"floor","allowDowngrade":false,"sequence":1,"expiresAt":"2026-03-02T10:10:00Z",` +
		`"maintenance":{"window":"true","windowStartTime":"2026-03-02T02:00:00Z","windowClusterTime":"2026-03-02T10:00:00Z","windowFinishTime":"2026-03-02T04:00:00Z"}}],`
	f := &floorServer{hosts: make([]atomic.Uint32, n), idle: []byte(head + `"jobs":[],` + tail), job: []byte(head + job + tail)}
	f.bufs.New = func() any { return new(bytes.Buffer) }
	return f
}

// ServeHTTP answers heartbeats and the three management calls the timed
// rollout makes.
func (f *floorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/beta/managed-clients/") && strings.HasSuffix(p, "/status"):
		f.heartbeat(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/beta/managed-clients/"), "/status"))
	case p == "/healthz":
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/updates/settings"):
		writeFloorJSON(w, http.StatusCreated, `{}`)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/updates"):
		f.created.Store(true)
		writeFloorJSON(w, http.StatusCreated, `{"id":"floor","status":"Scheduled"}`)
	case r.Method == http.MethodGet && strings.Contains(p, "/updates/floor"):
		status := "InProgress"
		if f.done.Load() == int64(len(f.hosts)) {
			status = "Success"
		}
		writeFloorJSON(w, http.StatusOK, `{"id":"floor","status":"`+status+`"}`)
	default:
		http.NotFound(w, r)
	}
}

func writeFloorJSON(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// heartbeat reads host id's heartbeat, counts its job's end, and hands it
// the job if the update exists and it has none yet.
func (f *floorServer) heartbeat(w http.ResponseWriter, r *http.Request, id string) {
	i, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	if err != nil || i < 0 || i >= len(f.hosts) || r.Header.Get("Authorization") == "" {
		http.Error(w, "unknown host", http.StatusUnauthorized)
		return
	}
	buf := f.bufs.Get().(*bytes.Buffer)
	defer f.bufs.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, 1<<20)); err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	reply := f.idle
	if f.created.Load() {
		if bytes.Contains(buf.Bytes(), []byte(`"state":"FINISHED"`)) && f.hosts[i].CompareAndSwap(floorJobGiven, floorDone) {
			f.done.Add(1)
		}
		if f.hosts[i].CompareAndSwap(floorIdle, floorJobGiven) {
			reply = f.job
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
	_, _ = w.Write(reply)
}

// serveFloor is the child process of -floor: the bare control plane for
// n hosts on addr.
func serveFloor(addr string, n int) error {
	return http.ListenAndServe(addr, newFloorServer(n))
}

// runFloor plays the timed rollout of o.hosts hosts against the bare
// control plane in a child process (self -floor ADDR N), so its CPU and
// memory are its own as poolserver's are.
func runFloor(ctx context.Context, self string, o options) (rolloutResult, error) {
	addr := freeAddr()
	cmd := exec.Command(self, "-floor", addr, strconv.Itoa(o.hosts))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return rolloutResult{}, err
	}
	defer stop(cmd)
	srv := &server{cmd: cmd, base: "http://" + addr}
	if err := waitUp(ctx, srv.base+"/healthz"); err != nil {
		return rolloutResult{}, err
	}
	f := &fixture{pool: &store.Pool{ID: "floor"}, token: "floor", ids: newIdentities(o.hosts)}
	res, err := rollout(ctx, srv, f, o, goodRollout)
	if err != nil {
		return res, fmt.Errorf("the floor's rollout: %w", err)
	}
	return res, nil
}

// floorRow prints the floor's row and poolserver's ratio to it.
func floorRow(o options, floor, r rolloutResult) {
	fmt.Printf("| the same rollout against a bare control plane (net/http, a byte of state per host, no store, no rules): create to all done | %.1f s (last taken %.1f s, last done %.1f s; its CPU %.1f s, the simulator's %.1f s) | poolserver: %.1f s | %.2f | - |\n",
		floor.took.Seconds(), floor.lastTaken.Seconds(), floor.lastDone.Seconds(), floor.cpu, floor.simCPU, r.took.Seconds(), r.took.Seconds()/floor.took.Seconds())
	goal := (o.interval + o.install).Seconds()
	fmt.Printf("| the floor against interval + install | %.1f s | %.1f s | %.2f | - |\n", floor.took.Seconds(), goal, floor.took.Seconds()/goal)
}
