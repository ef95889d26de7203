//go:build unix

// Command updater measures the updater's hot paths against plain baselines
// measured in the same run on the same disk, and prints one markdown table:
//
//	go run ./bench/updater [-size 200] [-dir DIR] [-runs 3] [-swaps 200] [-patch-size 200]
//
// The artifact is served over loopback by this process; each measured
// operation runs in a child process (this program re-executed) so its CPU
// time and peak RSS come from the kernel's accounting of that child alone.
// A second table compares taking a minor release as a binary patch with
// downloading it in full (patch.go).
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/poolagent/poolagent/signing"
	"github.com/poolagent/poolagent/updater"
)

const childEnv = "POOLAGENT_BENCH_CHILD"

// childReq tells a child what to do; it answers with childResp on stdout.
type childReq struct {
	Mode     string // idle | update | copy | download | hash | diff | minor
	Dir      string
	Src      string
	URL      string
	Job      updater.Job
	PubKey   string
	Artifact string
	// Target is the installed binary an update patches (patch.go).
	Target updater.Target
	// Patched: the update must have been built from the job's patch.
	Patched bool
	// Patch is where diff writes the patch from Src to Artifact.
	Patch string
}

type childResp struct {
	Seconds float64
	Err     string
}

func main() {
	if raw := os.Getenv(childEnv); raw != "" {
		os.Exit(child(raw))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/updater:", err)
		os.Exit(1)
	}
}

type measured struct {
	wall   float64 // seconds, as timed inside the child
	cpu    float64 // user+sys seconds of the child
	maxRSS int64   // bytes
}

func run() error {
	sizeMB := flag.Int("size", 200, "artifact size in MB")
	dir := flag.String("dir", "", "directory on the disk to measure (default: a temp dir)")
	runs := flag.Int("runs", 3, "runs of each throughput measurement (the median is reported)")
	swaps := flag.Int("swaps", 200, "swaps timed for the p99")
	patchMB := flag.Int("patch-size", defaultPatchMB, "size in MB of the minor release taken as a patch against a full download (0: skip)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	work, err := os.MkdirTemp(*dir, "poolagent-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	size := int64(*sizeMB) << 20

	// The artifact: random bytes, fsynced, signed like a release.
	art := filepath.Join(work, "artifact.bin")
	sha, err := writeRandom(art, size)
	if err != nil {
		return err
	}
	pub, priv, err := signing.GenerateKey()
	if err != nil {
		return err
	}
	m := signing.Meta{Name: "AD", Version: "1.1.0", OS: "linux", Arch: "amd64"}
	sig, err := signing.Sign(priv, art, m)
	if err != nil {
		return err
	}
	// Every file the children fetch: /a is the artifact; the patch part
	// writes its release and patch later (fixed before the server starts,
	// so the handler only reads the map).
	files := map[string]string{"/a": art, newPath: filepath.Join(work, "minor.bin"), patchPath: filepath.Join(work, "minor.bsdiff")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		w.Header().Set("ETag", `"`+r.URL.Path+sha[:16]+`"`)
		http.ServeContent(w, r, "", time.Time{}, f)
	}))
	defer srv.Close()
	job := updater.Job{ID: "bench", Artifact: updater.Artifact{Meta: m, URL: srv.URL + "/a", Size: size, SHA256: sha, Signature: sig}}

	// Warm the page cache so every contender reads the source from memory.
	if _, err := updater.HashFile(art); err != nil {
		return err
	}
	req := func(mode string) childReq {
		return childReq{Mode: mode, Dir: work, Src: art, URL: job.Artifact.URL, Job: job, PubKey: pub.String(), Artifact: art}
	}
	idle, err := spawn(ctx, req("idle"))
	if err != nil {
		return err
	}
	var upd, cp, dl, hs []measured
	for range *runs {
		for _, x := range []struct {
			mode string
			into *[]measured
		}{{"copy", &cp}, {"update", &upd}, {"download", &dl}, {"hash", &hs}} {
			r, err := spawn(ctx, req(x.mode))
			if err != nil {
				return fmt.Errorf("%s: %w", x.mode, err)
			}
			*x.into = append(*x.into, r)
		}
	}
	p99, p50, err := swapLatency(ctx, work, art, *swaps)
	if err != nil {
		return err
	}

	for _, x := range []struct {
		name string
		ms   []measured
	}{{"update", upd}, {"copy", cp}, {"download", dl}, {"hash", hs}, {"idle", []measured{idle}}} {
		fmt.Fprintf(os.Stderr, "%-8s wall %.3fs cpu %.3fs maxrss %.1f MB\n", x.name, median(x.ms, wallOf), median(x.ms, cpuOf), float64(maxOf(x.ms, rssOf))/(1<<20))
	}
	gib := float64(size) / (1 << 30)
	mb := float64(size) / 1e6
	uW, cW := median(upd, wallOf), median(cp, wallOf)
	uCPU := (median(upd, cpuOf) - idle.cpu) / gib
	bCPU := (median(hs, cpuOf) - idle.cpu + median(dl, cpuOf) - idle.cpu) / gib
	rss := float64(maxOf(upd, rssOf)-idle.maxRSS) / (1 << 20)

	fmt.Printf("| %s | measured | baseline (same run, same disk) | ratio | goal |\n", fmt.Sprintf("updater, %d MB artifact over loopback", *sizeMB))
	fmt.Println("|---|---|---|---|---|")
	fmt.Printf("| download + verify throughput, with fsync | %.0f MB/s | plain Go copy from page cache to a new file + fsync: %.0f MB/s | %.2f | ≥ 0.75 |\n",
		mb/uW, mb/cW, cW/uW)
	fmt.Printf("| CPU per GiB of update (download, SHA-256, fsync) | %.2f s | SHA-256 of the bytes + plain download to a file: %.2f s | %.2f | ≤ 1.3 |\n",
		uCPU, bCPU, uCPU/bCPU)
	fmt.Printf("| swap + directory fsync, p99 of %d (hard link kept) | %.3f ms | p50 %.3f ms | - | < 2 ms |\n", *swaps, p99*1e3, p50*1e3)
	fmt.Printf("| peak RSS of the update above idle | %.1f MB | idle process: %.1f MB | - | < 64 MB |\n", rss, float64(idle.maxRSS)/(1<<20))
	if *patchMB <= 0 {
		return nil
	}
	fmt.Println()
	return patchBench(ctx, work, int64(*patchMB)<<20, *runs, pub.String(), priv, srv.URL, files, idle)
}

func wallOf(m measured) float64 { return m.wall }
func cpuOf(m measured) float64  { return m.cpu }
func rssOf(m measured) int64    { return m.maxRSS }

func median(ms []measured, f func(measured) float64) float64 {
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func maxOf(ms []measured, f func(measured) int64) int64 {
	var x int64
	for _, m := range ms {
		x = max(x, f(m))
	}
	return x
}

// spawn runs one measured operation in a child and collects its rusage.
func spawn(ctx context.Context, r childReq) (measured, error) {
	b, _ := json.Marshal(r)
	exe, err := os.Executable()
	if err != nil {
		return measured{}, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return measured{}, err
	}
	var resp childResp
	if err := json.Unmarshal(out, &resp); err != nil {
		return measured{}, fmt.Errorf("child said %q: %w", out, err)
	}
	if resp.Err != "" {
		return measured{}, errors.New(resp.Err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return measured{}, errors.New("no rusage on this platform")
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return measured{wall: resp.Seconds, cpu: cpu, maxRSS: maxRSSBytes(ru)}, nil
}

func child(raw string) int {
	var r childReq
	var resp childResp
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		resp.Err = err.Error()
	} else {
		start := time.Now()
		if err := do(r); err != nil {
			resp.Err = err.Error()
		}
		resp.Seconds = time.Since(start).Seconds()
	}
	json.NewEncoder(os.Stdout).Encode(resp)
	return 0
}

func do(r childReq) error {
	ctx := context.Background()
	dst := filepath.Join(r.Dir, "out-"+r.Mode)
	defer os.Remove(dst)
	switch r.Mode {
	case "idle":
		_, err := updater.New(updater.Config{StateDir: filepath.Join(r.Dir, "state-idle"), TrustedKeys: []string{r.PubKey}, AllowInsecureHTTP: true})
		return err
	case "update":
		state := filepath.Join(r.Dir, "state-update")
		defer os.RemoveAll(state)
		u, err := updater.New(updater.Config{StateDir: state, TrustedKeys: []string{r.PubKey}, AllowInsecureHTTP: true})
		if err != nil {
			return err
		}
		f, err := u.Fetch(ctx, r.Job, r.Target, nil)
		switch {
		case err != nil:
			return err
		case r.Patched && !f.Patched:
			return fmt.Errorf("the update did not use the patch: %v", f.PatchErr)
		case !r.Patched && f.Patched:
			return errors.New("the full download was built from a patch")
		}
		return nil
	case "diff":
		return diffFiles(ctx, r.Src, r.Artifact, r.Patch)
	case "minor":
		return writeMinor(r.Src, r.Artifact)
	case "copy":
		in, err := os.Open(r.Src)
		if err != nil {
			return err
		}
		defer in.Close()
		return copySync(dst, in)
	case "download":
		resp, err := http.Get(r.URL)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return copySync(dst, resp.Body)
	case "hash":
		f, err := os.Open(r.Src)
		if err != nil {
			return err
		}
		defer f.Close()
		// The hash the update needs: SHA-256 alone, since the signed
		// trusted comment carries the artifact's SHA-256 (no BLAKE2b).
		_, err = io.Copy(sha256.New(), f)
		return err
	}
	return fmt.Errorf("unknown mode %q", r.Mode)
}

func copySync(dst string, r io.Reader) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// swapLatency times the updater's swap (link the old binary aside, rename
// the new one over it, fsync the directory) on two full-size binaries that
// take turns, so no iteration frees blocks or writes data.
func swapLatency(ctx context.Context, dir, src string, n int) (p99, p50 float64, err error) {
	target, staged, prev := filepath.Join(dir, "agent"), filepath.Join(dir, ".agent.new"), filepath.Join(dir, ".agent.prev")
	for _, p := range []string{target, staged} {
		in, err := os.Open(src)
		if err != nil {
			return 0, 0, err
		}
		err = copySync(p, in)
		in.Close()
		if err != nil {
			return 0, 0, err
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return 0, 0, err
	}
	lat := make([]float64, 0, n)
	for range n {
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		start := time.Now()
		if err := os.Link(target, prev); err != nil {
			return 0, 0, err
		}
		if err := os.Rename(staged, target); err != nil {
			return 0, 0, err
		}
		if err := d.Sync(); err != nil {
			return 0, 0, err
		}
		lat = append(lat, time.Since(start).Seconds())
		// Untimed: the previous binary becomes the next staged one.
		if err := os.Rename(prev, staged); err != nil {
			return 0, 0, err
		}
		if err := d.Sync(); err != nil {
			return 0, 0, err
		}
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100], lat[len(lat)/2], nil
}

func writeRandom(path string, size int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
