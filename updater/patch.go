package updater

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/minio/selfupdate"
	"go.uber.org/zap"
)

// fetchPatched downloads job's patch, applies it to the installed binary
// and verifies the result exactly like a full download. Any failure is
// returned and the caller falls back to the full artifact.
func (u *Updater) fetchPatched(ctx context.Context, job Job, t Target, sig []byte, base string, progress ProgressFunc) (*Fetched, error) {
	p, a := job.Patch, job.Artifact
	if p.Size <= 0 {
		return nil, fmt.Errorf("%w: descriptor lacks the patch size", ErrPatch)
	}
	if err := u.checkURLString(p.URL); err != nil {
		return nil, fmt.Errorf("%w: patch URL: %w", ErrPatch, err)
	}
	part := base + ".patch.part"
	d, _, err := u.download(ctx, job.ID, p.URL, p.Size, part, false, u.rateFor(job), progress)
	if err != nil {
		removeDownload(part)
		return nil, fmt.Errorf("%w: download: %w", ErrPatch, err)
	}
	sum := d.finish()
	defer removeDownload(part)
	if p.SHA256 != "" && sum != p.SHA256 {
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
		return nil, err
	}
	u.log.Info("artifact built from a binary patch", zap.String("job", job.ID), zap.String("from", p.FromVersion), zap.Int64("patch_bytes", p.Size))
	f.Job, f.Path, f.Patched = job, final, true
	return f, nil
}

func (u *Updater) checkURLString(raw string) error {
	i := bytes.IndexByte([]byte(raw), ':')
	if i < 0 {
		return fmt.Errorf("URL %q has no scheme", raw)
	}
	return u.checkURL(raw[:i])
}

// applyBSDiff writes old+patch to out. The patcher holds old and new in
// memory, so the patch header's new size must equal the descriptor's
// before anything is allocated.
func applyBSDiff(oldPath, patchPath, out string, wantSize int64) error {
	pf, err := os.Open(patchPath)
	if err != nil {
		return err
	}
	defer pf.Close()
	var hdr [32]byte
	if _, err := io.ReadFull(pf, hdr[:]); err != nil {
		return fmt.Errorf("patch header: %w", err)
	}
	if string(hdr[:8]) != "BSDIFF40" {
		return errors.New("not a BSDIFF40 patch")
	}
	if n := offtin(hdr[24:32]); n != wantSize {
		return fmt.Errorf("patch produces %d bytes, artifact has %d", n, wantSize)
	}
	// The patcher allocates the control and diff blocks as announced.
	st, err := pf.Stat()
	if err != nil {
		return err
	}
	if c, d := offtin(hdr[8:16]), offtin(hdr[16:24]); c < 0 || d < 0 || c+d > st.Size()-32 {
		return errors.New("patch header announces blocks larger than the patch")
	}
	if _, err := pf.Seek(0, io.SeekStart); err != nil {
		return err
	}
	old, err := os.Open(oldPath)
	if err != nil {
		return err
	}
	defer old.Close()
	of, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := selfupdate.NewBSDiffPatcher().Patch(old, of, pf); err != nil {
		of.Close()
		return err
	}
	if err := of.Sync(); err != nil {
		of.Close()
		return err
	}
	return of.Close()
}

// offtin decodes bsdiff's sign-magnitude little-endian integer.
func offtin(b []byte) int64 {
	v := int64(binary.LittleEndian.Uint64(b) &^ (1 << 63))
	if b[7]&0x80 != 0 {
		return -v
	}
	return v
}
