package updater

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/internal/bsdiff"
)

// fetchPatched downloads job's patch, applies it to the installed binary
// and verifies the result exactly like a full download (size, SHA-256,
// signature and what it binds): a patch needs no trust of its own. Any
// failure but the result's signature wraps ErrPatch, and the caller falls
// back to the full artifact.
func (u *Updater) fetchPatched(ctx context.Context, job Job, t Target, sig []byte, base string, progress ProgressFunc) (*Fetched, error) {
	p, a := job.Patch, job.Artifact
	switch {
	case t.Path == "":
		return nil, fmt.Errorf("%w: the target has no binary to patch", ErrPatch)
	case p.FromVersion != t.Version:
		return nil, fmt.Errorf("%w: the patch applies to version %q, the installed version is %q", ErrPatch, p.FromVersion, t.Version)
	case p.Size <= 0:
		return nil, fmt.Errorf("%w: descriptor lacks the patch size", ErrPatch)
	}
	if err := u.checkURLString(p.URL); err != nil {
		return nil, fmt.Errorf("%w: patch URL: %w", ErrPatch, err)
	}
	if p.FromSHA256 != "" {
		sum, err := HashFile(t.Path)
		if err != nil {
			return nil, fmt.Errorf("%w: hash the installed binary: %w", ErrPatch, err)
		}
		if !strings.EqualFold(sum, p.FromSHA256) {
			return nil, fmt.Errorf("%w: the installed binary %s has SHA-256 %s, the patch applies to %s", ErrPatch, t.Path, sum, p.FromSHA256)
		}
	}
	part := base + ".patch.part"
	d, _, err := u.download(ctx, job.ID, p.URL, p.Size, part, false, u.rateFor(job), progress)
	if err != nil {
		removeDownload(part)
		return nil, fmt.Errorf("%w: download: %w", ErrPatch, err)
	}
	sum := d.finish()
	defer removeDownload(part)
	if p.SHA256 != "" && !strings.EqualFold(sum, p.SHA256) {
		return nil, fmt.Errorf("%w: patch file: %w: got %s, want %s", ErrPatch, ErrHash, sum, p.SHA256)
	}

	out := base + ".patched"
	if err := applyBSDiff(t.Path, part, out, a.Size); err != nil {
		_ = os.Remove(out)
		return nil, fmt.Errorf("%w: apply to %s: %w", ErrPatch, t.Path, err)
	}
	f, err := u.verifyFile(out, a, sig)
	if err != nil {
		_ = os.Remove(out)
		if errors.Is(err, ErrSignature) || errors.Is(err, ErrUntrustedKey) || errors.Is(err, ErrMetadata) {
			// The bytes are the artifact's (the SHA-256 matched), so the
			// full file would fail the same way.
			return nil, err
		}
		return nil, fmt.Errorf("%w: patched result: %w", ErrPatch, err)
	}
	final := base + ".bin"
	if err := os.Rename(out, final); err != nil {
		_ = os.Remove(out)
		return nil, fmt.Errorf("%w: %w", ErrPatch, err)
	}
	u.log.Info("artifact built from a binary patch", zap.String("job", job.ID), zap.String("from", p.FromVersion), zap.Int64("patch_bytes", p.Size))
	f.Job, f.Path, f.Patched = job, final, true
	return f, nil
}

func (u *Updater) checkURLString(raw string) error {
	i := strings.IndexByte(raw, ':')
	if i < 0 {
		return fmt.Errorf("URL %q has no scheme", raw)
	}
	return u.checkURL(raw[:i])
}

// applyBSDiff writes old+patch to out with bounded memory (internal/bsdiff
// streams: the old file is read where the patch points, the new one
// written as it is built). The patch header's new size must equal the
// descriptor's, so a patch cannot make the file any larger.
func applyBSDiff(oldPath, patchPath, out string, wantSize int64) error {
	pf, err := os.Open(patchPath)
	if err != nil {
		return err
	}
	defer pf.Close()
	pst, err := pf.Stat()
	if err != nil {
		return err
	}
	old, err := os.Open(oldPath)
	if err != nil {
		return err
	}
	defer old.Close()
	ost, err := old.Stat()
	if err != nil {
		return err
	}
	of, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := bsdiff.Apply(old, ost.Size(), pf, pst.Size(), of, wantSize); err != nil {
		of.Close()
		return err
	}
	if err := of.Sync(); err != nil {
		of.Close()
		return err
	}
	return of.Close()
}
