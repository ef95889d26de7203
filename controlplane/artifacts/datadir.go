package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DataDir keeps artifacts as files under <data_dir>/artifacts, one per
// SHA-256 (poolserver's behaviour without an object store).
type DataDir struct {
	dir string
}

// NewDataDir returns the store under dataDir/artifacts.
func NewDataDir(dataDir string) *DataDir {
	return &DataDir{dir: filepath.Join(dataDir, "artifacts")}
}

// Path is the file holding the artifact with SHA-256 sha.
func (d *DataDir) Path(sha string) string { return filepath.Join(d.dir, sha) }

// Put writes r (size bytes) as the artifact sha: into a temporary file,
// fsynced, checked against sha, then renamed into place, so a crash never
// leaves a torn artifact under its name.
func (d *DataDir) Put(ctx context.Context, sha string, r io.Reader, size int64) error {
	if err := checkKey(sha); err != nil {
		return err
	}
	if err := os.MkdirAll(d.dir, 0o750); err != nil {
		return fmt.Errorf("create artifact dir: %w", err)
	}
	tmp, err := os.CreateTemp(d.dir, ".upload-*")
	if err != nil {
		return fmt.Errorf("store artifact: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store artifact: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha || n != size {
		return fmt.Errorf("store artifact: the file changed while it was stored (%d bytes, SHA-256 %s; want %d, %s)", n, got, size, sha)
	}
	if err := os.Rename(tmp.Name(), d.Path(sha)); err != nil {
		return fmt.Errorf("store artifact: %w", err)
	}
	if dir, err := os.Open(d.dir); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}

// Open opens the artifact sha for reading with seeks (Range requests).
func (d *DataDir) Open(_ context.Context, sha string) (io.ReadSeekCloser, error) {
	if err := checkKey(sha); err != nil {
		return nil, err
	}
	f, err := os.Open(d.Path(sha))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is missing from the data dir: %w", sha, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open artifact: %w", err)
	}
	return f, nil
}

// PresignGet returns "": the data dir has no URL of its own; agents fetch
// from poolserver's /artifacts route.
func (d *DataDir) PresignGet(context.Context, string, time.Duration) (string, error) {
	return "", nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
