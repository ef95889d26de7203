//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"aead.dev/minisign"

	"github.com/poolagent/poolagent/bench/internal/minor"
	"github.com/poolagent/poolagent/controlplane/delta"
	"github.com/poolagent/poolagent/signing"
	"github.com/poolagent/poolagent/updater"
)

// defaultPatchMB is the default size of the patch part's release. At
// 200 MB, building the patch alone (delta.Diff's suffix sort) took 219 s
// (177 s of CPU) and 2.2 GB on a shared 2-core machine, against 25-59 s and
// 560 MB at 50 MB; -patch-size 200 measures the full size.
const defaultPatchMB = 50

// The paths the loopback server gives the minor release and its patch.
const (
	newPath   = "/minor"
	patchPath = "/minor.bsdiff"
)

// patchBench measures taking a minor release as a binary patch (download
// the patch, apply it to the installed binary, verify the result in full)
// against downloading the same release in full, each in a child, and
// prints a second table. Building the patch (publish's side) is measured
// once, in a child of its own, and reported apart.
func patchBench(ctx context.Context, work string, size int64, runs int, pub string, priv minisign.PrivateKey, base string, files map[string]string, idle measured) error {
	// The installed binary (random bytes) and the minor release made from
	// it; both stay in the page cache, as a running binary would.
	old := filepath.Join(work, "installed.bin")
	if _, err := writeRandom(old, size); err != nil {
		return err
	}
	// Made in a child: on Linux a child's ru_maxrss starts from its
	// parent's peak (exec records the shared address space's high-water
	// mark), so this process never holds a whole file.
	newFile := files[newPath]
	if _, err := spawn(ctx, childReq{Mode: "minor", Dir: work, Src: old, Artifact: newFile}); err != nil {
		return fmt.Errorf("make the minor release: %w", err)
	}
	newSHA, err := updater.HashFile(newFile)
	if err != nil {
		return err
	}
	nst, err := os.Stat(newFile)
	if err != nil {
		return err
	}
	newSize := nst.Size()
	oldSum, err := updater.HashFile(old)
	if err != nil {
		return err
	}
	m := signing.Meta{Name: "AD", Version: "2.1.0", OS: "linux", Arch: "amd64"}
	sig, err := signing.Sign(priv, newFile, m)
	if err != nil {
		return err
	}

	// Publish's side: delta.Diff, as `release publish --deltas` runs it.
	patchFile := files[patchPath]
	build, err := spawn(ctx, childReq{Mode: "diff", Dir: work, Src: old, Artifact: newFile, Patch: patchFile})
	if err != nil {
		return fmt.Errorf("build the patch: %w", err)
	}
	patchSum, err := updater.HashFile(patchFile)
	if err != nil {
		return err
	}
	st, err := os.Stat(patchFile)
	if err != nil {
		return err
	}
	patchSize := st.Size()

	full := updater.Job{ID: "bench-full", Artifact: updater.Artifact{Meta: m, URL: base + newPath, Size: newSize,
		SHA256: newSHA, Signature: sig}}
	patched := full
	patched.ID = "bench-patch"
	patched.Patch = &updater.Patch{FromVersion: "2.0.0", FromSHA256: oldSum, URL: base + patchPath, Size: patchSize, SHA256: patchSum}
	target := updater.Target{Name: "AD", Path: old, Version: "2.0.0"}
	// Warm the page cache: the installed binary is read by the patch (a
	// running binary's pages are cached), the release and patch are
	// served from it.
	for _, p := range []string{old, newFile, patchFile} {
		if _, err := updater.HashFile(p); err != nil {
			return err
		}
	}
	var fulls, patches []measured
	for range runs {
		for _, x := range []struct {
			job     updater.Job
			patched bool
			into    *[]measured
		}{{full, false, &fulls}, {patched, true, &patches}} {
			r, err := spawn(ctx, childReq{Mode: "update", Dir: work, Job: x.job, Target: target, Patched: x.patched, PubKey: pub})
			if err != nil {
				return fmt.Errorf("%s: %w", x.job.ID, err)
			}
			*x.into = append(*x.into, r)
		}
	}
	for _, x := range []struct {
		name string
		ms   []measured
	}{{"full", fulls}, {"patch", patches}, {"diff", []measured{build}}} {
		fmt.Fprintf(os.Stderr, "%-8s wall %.3fs cpu %.3fs maxrss %.1f MB\n", x.name, median(x.ms, wallOf), median(x.ms, cpuOf), float64(maxOf(x.ms, rssOf))/(1<<20))
	}

	fW, pW := median(fulls, wallOf), median(patches, wallOf)
	fCPU, pCPU := median(fulls, cpuOf)-idle.cpu, median(patches, cpuOf)-idle.cpu
	fRSS, pRSS := maxOf(fulls, rssOf)-idle.maxRSS, maxOf(patches, rssOf)-idle.maxRSS
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Printf("| updater, minor release of %.0f MB over loopback (%d small edits, %d KB inserted) | patch: download + apply + verify | full download + verify (same run) | ratio patch / full |\n",
		mib(newSize), minor.Edits, minor.Inserted>>10)
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| bytes downloaded | %d B | %d B | %.6f |\n", patchSize, newSize, float64(patchSize)/float64(newSize))
	fmt.Printf("| wall time (median of %d) | %.3f s | %.3f s | %.2f |\n", runs, pW, fW, pW/fW)
	fmt.Printf("| CPU, user+sys, idle child's subtracted | %.3f s | %.3f s | %.2f |\n", pCPU, fCPU, pCPU/fCPU)
	fmt.Printf("| peak RSS above idle | %.1f MB | %.1f MB | %.2f |\n", mib(pRSS), mib(fRSS), float64(pRSS)/float64(max(fRSS, 1)))
	fmt.Printf("| publish: building the patch (delta.Diff, one child) | %.1f s wall, %.1f s CPU, peak RSS %.0f MB | - | - |\n",
		build.wall, build.cpu, mib(build.maxRSS))
	return nil
}

// writeMinor writes the minor release made from the file at oldPath.
func writeMinor(oldPath, newPath string) error {
	old, err := os.ReadFile(oldPath)
	if err != nil {
		return err
	}
	f, err := os.Create(newPath)
	if err != nil {
		return err
	}
	if _, err := f.Write(minor.Release(old, 19)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// diffFiles writes the bsdiff patch from old to new, as publish does:
// both files in memory, the patch fsynced.
func diffFiles(ctx context.Context, oldPath, newPath, patchPath string) error {
	old, err := os.ReadFile(oldPath)
	if err != nil {
		return err
	}
	newB, err := os.ReadFile(newPath)
	if err != nil {
		return err
	}
	f, err := os.Create(patchPath)
	if err != nil {
		return err
	}
	if err := delta.Diff(ctx, old, newB, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
