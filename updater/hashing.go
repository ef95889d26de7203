package updater

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"aead.dev/minisign"
)

const (
	chunkSize = 256 << 10
	chunks    = 8 // 2 MiB in flight: memory stays flat whatever the artifact's size
)

// digester computes SHA-256 and minisign's BLAKE2b-512 pre-hash of a stream
// in two goroutines while the caller writes the same bytes to disk, so the
// hashes cost no wall time on a multi-core host.
type digester struct {
	free  chan *chunk
	lanes int // 2 with minisign's pre-hash, 1 with SHA-256 alone
	work  [2]chan *chunk
	wg    sync.WaitGroup
	sha   hash.Hash
	mr    *minisign.Reader
	n     int64
	close sync.Once
}

type chunk struct {
	buf  []byte
	n    int
	refs atomic.Int32
}

// inPlace lets minisign.Reader hash a buffer without a copy: Reader.Read
// hashes p[:n] after the inner Read, and the bytes are already in p.
type inPlace struct{}

func (inPlace) Read(p []byte) (int, error) { return len(p), nil }

// newDigester starts the hashers. prehash adds minisign's BLAKE2b-512
// pre-hash, needed only for a signature whose trusted comment does not
// carry the artifact's SHA-256 (BLAKE2b is the slowest part of a verified
// download: ~0.5 GB/s a core against SHA-256's ~1.4 GB/s).
func newDigester(prehash bool) *digester {
	d := &digester{free: make(chan *chunk, chunks), sha: sha256.New(), lanes: 1}
	for range chunks {
		d.free <- &chunk{buf: make([]byte, chunkSize)}
	}
	d.work[0] = make(chan *chunk, chunks)
	d.wg.Add(1)
	go d.run(d.work[0], func(b []byte) { d.sha.Write(b) })
	if prehash {
		d.lanes = 2
		d.mr = minisign.NewReader(inPlace{})
		d.work[1] = make(chan *chunk, chunks)
		d.wg.Add(1)
		go d.run(d.work[1], func(b []byte) { _, _ = d.mr.Read(b) })
	}
	return d
}

func (d *digester) run(in <-chan *chunk, h func([]byte)) {
	defer d.wg.Done()
	for c := range in {
		h(c.buf[:c.n])
		if c.refs.Add(-1) == 0 {
			d.free <- c
		}
	}
}

// get returns a free buffer to fill.
func (d *digester) get() *chunk { return <-d.free }

// put hands a filled buffer to both hashers; it returns to the pool once
// both are done with it.
func (d *digester) put(c *chunk) {
	if c.n == 0 {
		d.free <- c
		return
	}
	d.n += int64(c.n)
	c.refs.Store(int32(d.lanes))
	for i := range d.lanes {
		d.work[i] <- c
	}
}

// finish waits for the hashers and returns the SHA-256 in hex.
func (d *digester) finish() string {
	d.close.Do(func() {
		for i := range d.lanes {
			close(d.work[i])
		}
	})
	d.wg.Wait()
	return hex.EncodeToString(d.sha.Sum(nil))
}

// copyFrom streams r to w (if not nil) through the hashers until EOF or
// until limit bytes have passed; one byte more than limit is ErrTooLarge.
// onChunk, if set, sees the running total after each chunk.
func (d *digester) copyFrom(w io.Writer, r io.Reader, limit int64, onChunk func(total int64)) (int64, error) {
	var total int64
	for {
		c := d.get()
		n, err := io.ReadFull(r, c.buf)
		c.n = n
		if total+int64(n) > limit {
			d.free <- c
			return total, ErrTooLarge
		}
		if n > 0 && w != nil {
			if _, werr := w.Write(c.buf[:n]); werr != nil {
				d.free <- c
				return total, werr
			}
		}
		d.put(c)
		total += int64(n)
		if n > 0 && onChunk != nil {
			onChunk(total)
		}
		switch err {
		case nil:
			continue
		case io.EOF, io.ErrUnexpectedEOF:
			return total, nil
		default:
			return total, err
		}
	}
}

// HashFile returns the SHA-256 of a file in hex (the form artifacts,
// journals and the host's record of its previous binary use).
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
