// Package delta builds binary patches between releases at publish: bsdiff
// 4 patches (BSDIFF40, bzip2-compressed blocks), the format
// minio/selfupdate's patcher and poolagent's streaming patcher apply. It is
// pure Go (bzip2 by github.com/dsnet/compress), so poolserver needs no cgo
// and no bzip2 program.
package delta

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/dsnet/compress/bzip2"
)

// MaxOld is the largest source file Diff accepts: its suffix array has
// 32-bit indexes.
const MaxOld = math.MaxInt32 - 1

// HeaderSize is the size of a BSDIFF40 header: magic, the compressed
// lengths of the control and diff blocks, and the new file's size.
const HeaderSize = 32

// Magic starts every BSDIFF40 patch.
const Magic = "BSDIFF40"

// Diff writes a bsdiff patch that turns old into new. It holds old, new,
// the suffix array of old (4 bytes a byte) and the uncompressed diff and
// extra blocks (up to 2 bytes a byte of new) in memory: about 6 times the
// old file plus 3 times the new. ctx is checked as the scan advances.
func Diff(ctx context.Context, old, new []byte, patch io.WriteSeeker) error {
	if len(old) > MaxOld {
		return fmt.Errorf("diff: the old file has %d bytes, more than %d", len(old), MaxOld)
	}
	start, err := patch.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	I := qsufsort(old)
	if err := ctx.Err(); err != nil {
		return err
	}
	db := make([]byte, 0, len(new))
	eb := make([]byte, 0, len(new))
	var ctrl []byte

	if _, err := patch.Write(make([]byte, HeaderSize)); err != nil { // written at the end
		return fmt.Errorf("diff: %w", err)
	}
	var scan, pos, length, lastscan, lastpos, lastoffset int
	for steps := 0; scan < len(new); steps++ {
		if steps%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		oldscore := 0
		scan += length
		for scsc := scan; scan < len(new); scan++ {
			pos, length = search(I, old, new[scan:], 0, len(old))
			for ; scsc < scan+length; scsc++ {
				if scsc+lastoffset < len(old) && old[scsc+lastoffset] == new[scsc] {
					oldscore++
				}
			}
			if (length == oldscore && length != 0) || length > oldscore+8 {
				break
			}
			if scan+lastoffset < len(old) && old[scan+lastoffset] == new[scan] {
				oldscore--
			}
		}
		if length == oldscore && scan != len(new) {
			continue
		}
		var s, sf, lenf int
		for i := 0; lastscan+i < scan && lastpos+i < len(old); {
			if old[lastpos+i] == new[lastscan+i] {
				s++
			}
			i++
			if s*2-i > sf*2-lenf {
				sf, lenf = s, i
			}
		}
		lenb := 0
		if scan < len(new) {
			var s, sb int
			for i := 1; scan >= lastscan+i && pos >= i; i++ {
				if old[pos-i] == new[scan-i] {
					s++
				}
				if s*2-i > sb*2-lenb {
					sb, lenb = s, i
				}
			}
		}
		if lastscan+lenf > scan-lenb {
			overlap := (lastscan + lenf) - (scan - lenb)
			var s, ss, lens int
			for i := 0; i < overlap; i++ {
				if new[lastscan+lenf-overlap+i] == old[lastpos+lenf-overlap+i] {
					s++
				}
				if new[scan-lenb+i] == old[pos-lenb+i] {
					s--
				}
				if s > ss {
					ss, lens = s, i+1
				}
			}
			lenf += lens - overlap
			lenb -= lens
		}
		for i := 0; i < lenf; i++ {
			db = append(db, new[lastscan+i]-old[lastpos+i])
		}
		eb = append(eb, new[lastscan+lenf:scan-lenb]...)
		ctrl = appendOfft(ctrl, int64(lenf))
		ctrl = appendOfft(ctrl, int64((scan-lenb)-(lastscan+lenf)))
		ctrl = appendOfft(ctrl, int64((pos-lenb)-(lastpos+lenf)))
		lastscan, lastpos, lastoffset = scan-lenb, pos-lenb, pos-scan
	}

	var lens [2]int64
	for i, block := range [][]byte{ctrl, db, eb} {
		n, err := writeBzip2(patch, block)
		if err != nil {
			return fmt.Errorf("diff: compress block %d: %w", i, err)
		}
		if i < 2 {
			lens[i] = n
		}
	}
	end, err := patch.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	hdr := append([]byte(Magic), appendOfft(appendOfft(appendOfft(nil, lens[0]), lens[1]), int64(len(new)))...)
	if _, err := patch.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	if _, err := patch.Write(hdr); err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	if _, err := patch.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	return nil
}

// writeBzip2 writes b compressed and returns the compressed length.
func writeBzip2(w io.Writer, b []byte) (int64, error) {
	cw := &countWriter{w: w}
	zw, err := bzip2.NewWriter(cw, &bzip2.WriterConfig{Level: bzip2.BestCompression})
	if err != nil {
		return 0, err
	}
	if _, err := zw.Write(b); err != nil {
		zw.Close()
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// appendOfft appends v in bsdiff's sign-magnitude little-endian encoding.
func appendOfft(b []byte, v int64) []byte {
	neg := v < 0
	if neg {
		v = -v
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(v))
	if neg {
		b[len(b)-1] |= 0x80
	}
	return b
}
