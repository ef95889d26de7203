package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/bench/internal/minor"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// deltaBench is -delta-only: one pool of o.hosts hosts with 1.0.0
// installed (its binary's SHA-256 in every heartbeat) takes 1.1.0, a minor
// release of size bytes, three times on fresh copies of one registered
// fleet: published with --deltas 0 (every host downloads the full file),
// with --deltas 1 (every host is offered the patch from 1.0.0 and
// downloads it), and with --deltas 0 and the pool's artifactMirrors naming
// a site mirror (every host downloads from it). It prints the bytes
// poolserver served each time, counted from the response bodies the hosts
// read.
func deltaBench(ctx context.Context, bin, work string, o options, size int64) error {
	base, err := setupWith(ctx, filepath.Join(work, "delta"), o.hosts, "", nil)
	if err != nil {
		return err
	}
	old := make([]byte, size)
	if _, err := rand.Read(old); err != nil {
		return err
	}
	newB := minor.Release(old, 19)
	oldFile, newFile := filepath.Join(work, "agent-1.0.0"), filepath.Join(work, "agent-1.1.0")
	sig := filepath.Join(work, "agent.minisig")
	for _, x := range []struct {
		path string
		b    []byte
	}{{oldFile, old}, {newFile, newB}, {sig, []byte("untrusted comment: bench\nRWQ\ntrusted comment: bench\nx\n")}} {
		if err := os.WriteFile(x.path, x.b, 0o644); err != nil {
			return err
		}
	}
	oldSum, newSum := sha256.Sum256(old), sha256.Sum256(newB)
	old, newB = nil, nil
	mirror, err := serveMirror(newFile, hex.EncodeToString(newSum[:]))
	if err != nil {
		return err
	}
	defer mirror.Close()

	type pass struct {
		name     string
		deltas   int
		settings string        // the pool's settings ("": maxUnavailable only)
		publish  time.Duration // publishing 1.1.0
		patches  []store.ReleasePatch
		res      rolloutResult
	}
	passes := []*pass{{name: "full", deltas: 0}, {name: "patch", deltas: 1},
		{name: "mirror", deltas: 0, settings: fmt.Sprintf(`{"maxUnavailable":%d,"artifactMirrors":[%q]}`, o.hosts, mirror.base)}}
	for _, p := range passes {
		f, err := base.clone(filepath.Join(work, "delta-"+p.name))
		if err != nil {
			return err
		}
		p.publish, p.patches, err = publishMinor(ctx, f.dir, oldFile, newFile, sig, p.deltas)
		if err != nil {
			return fmt.Errorf("publish with --deltas %d: %w", p.deltas, err)
		}
		srv, err := startServer(ctx, bin, f.dir, o, "")
		if err != nil {
			return err
		}
		p.res, err = rollout(ctx, srv, f, o, scenario{settings: p.settings, update: `{"targetVersion":"1.1.0"}`, download: true, want: okta.JobSuccess,
			installedSHA: hex.EncodeToString(oldSum[:])})
		stop(srv.cmd)
		if err != nil {
			return fmt.Errorf("rollout with --deltas %d: %w", p.deltas, err)
		}
		r := p.res
		fmt.Fprintf(os.Stderr, "delta %s: %d full downloads (%d B), %d patches (%d B), %d from the mirror (%d B); %d heartbeats, %d jobs, %d 429s, %d errors\n",
			p.name, r.fullGets, r.fullBytes, r.patchGets, r.patchBytes, r.mirrorGets, r.mirrorBytes, r.beats, r.jobs, r.limited, r.errs)
	}
	full, patch, mir := passes[0], passes[1], passes[2]
	if len(patch.patches) != 1 {
		return fmt.Errorf("publish with --deltas 1 kept %d patches, want 1", len(patch.patches))
	}
	served := func(r rolloutResult) int64 { return r.fullBytes + r.patchBytes }
	fb, pb, mb := served(full.res), served(patch.res), served(mir.res)
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	ratio := func(b int64) float64 { return float64(b) / float64(max(fb, 1)) }
	fmt.Printf("| fleet, %d hosts take a minor release of %.1f MB (1.0.0 to 1.1.0), interval %s, SQLite | full downloads (--deltas 0) | with patches (--deltas 1) | with a pool mirror (artifactMirrors) |\n",
		o.hosts, mib(size+minor.Inserted-512), o.interval)
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| artifact bytes poolserver served | %d B (%.1f MB) | %d B (%.2f MB) | %d B (%.2f MB) |\n", fb, mib(fb), pb, mib(pb), mb, mib(mb))
	fmt.Printf("| ratio to full downloads | 1 | **%.6f** | **%.6f** |\n", ratio(pb), ratio(mb))
	fmt.Printf("| downloads from poolserver: patches / full files; from the mirror | %d / %d; %d | %d / %d; %d | %d / %d; %d (%.1f MB) |\n",
		full.res.patchGets, full.res.fullGets, full.res.mirrorGets, patch.res.patchGets, patch.res.fullGets, patch.res.mirrorGets,
		mir.res.patchGets, mir.res.fullGets, mir.res.mirrorGets, mib(mir.res.mirrorBytes))
	fmt.Printf("| rollout: create to all Success | %.1f s | %.1f s | %.1f s |\n", full.res.took.Seconds(), patch.res.took.Seconds(), mir.res.took.Seconds())
	fmt.Printf("| server CPU during the rollout | %.2f s | %.2f s | %.2f s |\n", full.res.cpu, patch.res.cpu, mir.res.cpu)
	fmt.Printf("| publishing 1.1.0 (in process) | %.3f s | %.3f s, patch %d B | %.3f s |\n",
		full.publish.Seconds(), patch.publish.Seconds(), patch.patches[0].Size, mir.publish.Seconds())
	fmt.Printf("| heartbeat errors / 429s | %d / %d | %d / %d | %d / %d |\n", full.res.errs, full.res.limited, patch.res.errs, patch.res.limited, mir.res.errs, mir.res.limited)
	return nil
}

// publishMinor publishes 1.0.0 then 1.1.0 (with deltas patches) into the
// SQLite data dir, and returns how long publishing 1.1.0 took and the
// patches it kept.
func publishMinor(ctx context.Context, dataDir, oldFile, newFile, sig string, deltas int) (time.Duration, []store.ReleasePatch, error) {
	st, err := sqlite.Open(ctx, dataDir)
	if err != nil {
		return 0, nil, err
	}
	defer st.Close()
	now := time.Now()
	pub := controlplane.Publish{Name: "AD", Version: "1.0.0", OS: "linux", Arch: "amd64", Channel: okta.ChannelGA, File: oldFile, SignatureFile: sig}
	if _, err := controlplane.PublishRelease(ctx, st, dataDir, pub, now); err != nil {
		return 0, nil, err
	}
	pub.Version, pub.File, pub.Deltas = "1.1.0", newFile, deltas
	pub.Warn = func(msg string) { fmt.Fprintln(os.Stderr, "publish:", msg) }
	t0 := time.Now()
	r, err := controlplane.PublishRelease(ctx, st, dataDir, pub, now.Add(time.Second))
	if err != nil {
		return 0, nil, err
	}
	return time.Since(t0), r.Patches, nil
}

// mirrorServer is a site mirror: a plain HTTP file server holding one
// release file at <base>/<sha256>, as docs/api.md describes.
type mirrorServer struct {
	base string
	srv  *http.Server
}

func serveMirror(file, sha string) (*mirrorServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /m/"+sha, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, file) })
	m := &mirrorServer{base: "http://" + ln.Addr().String() + "/m", srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = m.srv.Serve(ln) }()
	return m, nil
}

// Close stops the mirror.
func (m *mirrorServer) Close() { _ = m.srv.Close() }
