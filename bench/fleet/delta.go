package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
// release of size bytes, twice on fresh copies of one registered fleet:
// once published with --deltas 0 (every host downloads the full file),
// once with --deltas 1 (every host is offered the patch from 1.0.0 and
// downloads it). It prints the bytes poolserver served each time, counted
// from the response bodies the hosts read.
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
	oldSum := sha256.Sum256(old)
	old, newB = nil, nil

	type pass struct {
		name    string
		deltas  int
		publish time.Duration // publishing 1.1.0
		patches []store.ReleasePatch
		res     rolloutResult
	}
	passes := []*pass{{name: "full", deltas: 0}, {name: "patch", deltas: 1}}
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
		p.res, err = rollout(ctx, srv, f, o, scenario{update: `{"targetVersion":"1.1.0"}`, download: true, want: okta.JobSuccess,
			installedSHA: hex.EncodeToString(oldSum[:])})
		stop(srv.cmd)
		if err != nil {
			return fmt.Errorf("rollout with --deltas %d: %w", p.deltas, err)
		}
		r := p.res
		fmt.Fprintf(os.Stderr, "delta %s: %d full downloads (%d B), %d patches (%d B); %d heartbeats, %d jobs, %d 429s, %d errors\n",
			p.name, r.fullGets, r.fullBytes, r.patchGets, r.patchBytes, r.beats, r.jobs, r.limited, r.errs)
	}
	full, patch := passes[0], passes[1]
	if len(patch.patches) != 1 {
		return fmt.Errorf("publish with --deltas 1 kept %d patches, want 1", len(patch.patches))
	}
	fb, pb := full.res.fullBytes+full.res.patchBytes, patch.res.fullBytes+patch.res.patchBytes
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Printf("| fleet, %d hosts take a minor release of %.1f MB (1.0.0 to 1.1.0), interval %s, SQLite, 2 shared cores | with patches (--deltas 1) | full downloads (--deltas 0), same run | ratio |\n",
		o.hosts, mib(size+minor.Inserted-512), o.interval)
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| artifact bytes poolserver served (read by the hosts) | %d B (%.2f MB) | %d B (%.1f MB) | %.6f |\n",
		pb, mib(pb), fb, mib(fb), float64(pb)/float64(max(fb, 1)))
	fmt.Printf("| downloads: patches / full files | %d / %d | %d / %d | - |\n",
		patch.res.patchGets, patch.res.fullGets, full.res.patchGets, full.res.fullGets)
	fmt.Printf("| rollout: create to all Success | %.1f s | %.1f s | %.2f |\n",
		patch.res.took.Seconds(), full.res.took.Seconds(), patch.res.took.Seconds()/full.res.took.Seconds())
	fmt.Printf("| server CPU during the rollout | %.2f s | %.2f s | %.2f |\n",
		patch.res.cpu, full.res.cpu, patch.res.cpu/max(full.res.cpu, 1e-3))
	fmt.Printf("| publishing 1.1.0 (in process; with patches, the patch built from 1.0.0) | %.3f s, patch %d B | %.3f s | - |\n",
		patch.publish.Seconds(), patch.patches[0].Size, full.publish.Seconds())
	fmt.Printf("| heartbeat errors / 429s | %d / %d | %d / %d | - |\n", patch.res.errs, patch.res.limited, full.res.errs, full.res.limited)
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
