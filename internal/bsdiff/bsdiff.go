// Package bsdiff applies bsdiff 4 patches (BSDIFF40: a header, then the
// bzip2-compressed control, diff and extra blocks) with bounded memory: the
// old file is read with ReadAt where the control block points, the new
// file is written as a stream, and nothing but small buffers is held,
// whatever the files' sizes. It uses only the standard library, so the
// agent links nothing more for it.
package bsdiff

import (
	"bufio"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of the header: the magic, the compressed lengths
// of the control and diff blocks, and the new file's size.
const HeaderSize = 32

// Magic starts every BSDIFF40 patch.
const Magic = "BSDIFF40"

// ErrCorrupt: the patch is malformed, truncated, or points outside the
// file it builds.
var ErrCorrupt = errors.New("corrupt bsdiff patch")

// Header is a patch's header.
type Header struct {
	CtrlLen, DiffLen int64 // compressed lengths of the control and diff blocks
	NewSize          int64 // size of the file the patch builds
}

// ReadHeader reads and checks the header of a patch of patchSize bytes:
// the magic, and blocks that fit in the file.
func ReadHeader(patch io.ReaderAt, patchSize int64) (Header, error) {
	var b [HeaderSize]byte
	if _, err := patch.ReadAt(b[:], 0); err != nil {
		return Header{}, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if string(b[:8]) != Magic {
		return Header{}, fmt.Errorf("%w: no %s magic", ErrCorrupt, Magic)
	}
	h := Header{CtrlLen: offtin(b[8:16]), DiffLen: offtin(b[16:24]), NewSize: offtin(b[24:32])}
	if h.CtrlLen < 0 || h.DiffLen < 0 || h.NewSize < 0 || h.CtrlLen > patchSize-HeaderSize || h.DiffLen > patchSize-HeaderSize-h.CtrlLen {
		return Header{}, fmt.Errorf("%w: the header announces blocks that do not fit in the %d-byte patch", ErrCorrupt, patchSize)
	}
	return h, nil
}

// bufSize is the size of each buffer Apply holds (it holds four, and the
// three bzip2 decompressors' state, about 3 MB in all).
const bufSize = 64 << 10

// Apply writes to out the file that patch (patchSize bytes) builds from
// old (oldSize bytes). The header's new size must be wantSize: the caller
// knows how large the result must be, and Apply refuses to write any
// other length. out receives exactly wantSize bytes on success; on error
// it may have received some, which the caller discards.
func Apply(old io.ReaderAt, oldSize int64, patch io.ReaderAt, patchSize int64, out io.Writer, wantSize int64) error {
	h, err := ReadHeader(patch, patchSize)
	if err != nil {
		return err
	}
	if h.NewSize != wantSize {
		return fmt.Errorf("%w: the patch builds %d bytes, the artifact has %d", ErrCorrupt, h.NewSize, wantSize)
	}
	section := func(off, n int64) *bufio.Reader {
		return bufio.NewReaderSize(bzip2.NewReader(bufio.NewReaderSize(io.NewSectionReader(patch, off, n), bufSize)), bufSize)
	}
	ctrl := section(HeaderSize, h.CtrlLen)
	diff := section(HeaderSize+h.CtrlLen, h.DiffLen)
	extra := section(HeaderSize+h.CtrlLen+h.DiffLen, patchSize-HeaderSize-h.CtrlLen-h.DiffLen)
	w := bufio.NewWriterSize(out, bufSize)
	dbuf, obuf := make([]byte, bufSize), make([]byte, bufSize)

	var oldpos, newpos int64
	var triple [24]byte
	for newpos < h.NewSize {
		if _, err := io.ReadFull(ctrl, triple[:]); err != nil {
			return fmt.Errorf("%w: control block at output byte %d: %w", ErrCorrupt, newpos, eof(err))
		}
		add, cp, seek := offtin(triple[0:8]), offtin(triple[8:16]), offtin(triple[16:24])
		if add < 0 || cp < 0 || add > h.NewSize-newpos || cp > h.NewSize-newpos-add {
			return fmt.Errorf("%w: a control entry at output byte %d runs past the new file's %d bytes", ErrCorrupt, newpos, h.NewSize)
		}
		// Add the diff block to old, byte by byte; old bytes outside the
		// file count as zero (as in bspatch).
		for done := int64(0); done < add; {
			n := min(add-done, bufSize)
			d := dbuf[:n]
			if _, err := io.ReadFull(diff, d); err != nil {
				return fmt.Errorf("%w: diff block at output byte %d: %w", ErrCorrupt, newpos+done, eof(err))
			}
			if err := readOld(old, oldSize, oldpos+done, obuf[:n]); err != nil {
				return err
			}
			for i := range d {
				d[i] += obuf[i]
			}
			if _, err := w.Write(d); err != nil {
				return err
			}
			done += n
		}
		newpos += add
		oldpos += add
		// Copy the extra block.
		if n, err := io.CopyN(w, extra, cp); err != nil {
			return fmt.Errorf("%w: extra block at output byte %d: %w", ErrCorrupt, newpos+n, eof(err))
		}
		newpos += cp
		oldpos += seek
	}
	return w.Flush()
}

// readOld fills b with old's bytes from off, zero outside [0, oldSize).
func readOld(old io.ReaderAt, oldSize, off int64, b []byte) error {
	clear(b)
	lo, hi := max(off, 0), min(off+int64(len(b)), oldSize)
	if lo >= hi {
		return nil
	}
	if _, err := old.ReadAt(b[lo-off:hi-off], lo); err != nil {
		return fmt.Errorf("read the old file at byte %d: %w", lo, err)
	}
	return nil
}

// eof turns a clean end of a block into an unexpected one: a block ends
// only where the control block says.
func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// offtin decodes bsdiff's sign-magnitude little-endian integer.
func offtin(b []byte) int64 {
	v := int64(binary.LittleEndian.Uint64(b) &^ (1 << 63))
	if b[7]&0x80 != 0 {
		return -v
	}
	return v
}
