package process

import "sync"

// Ring is an io.Writer that keeps the last Size bytes written to it: a
// supervised program's recent output, for diagnostics after a failed
// update. It is safe for concurrent use.
type Ring struct {
	mu   sync.Mutex
	buf  []byte
	size int
	next int  // where the next byte goes once full
	full bool // the buffer wrapped
}

// NewRing returns a Ring keeping the last size bytes.
func NewRing(size int) *Ring {
	return &Ring{buf: make([]byte, 0, size), size: size}
}

// Write keeps the tail of p; it never fails.
func (r *Ring) Write(p []byte) (int, error) {
	n := len(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.size <= 0 {
		return n, nil
	}
	if len(p) >= r.size {
		p = p[len(p)-r.size:]
		r.buf = append(r.buf[:0], p...)
		r.next, r.full = 0, true
		return n, nil
	}
	if !r.full {
		room := r.size - len(r.buf)
		if len(p) <= room {
			r.buf = append(r.buf, p...)
			return n, nil
		}
		r.buf = append(r.buf, p[:room]...)
		p = p[room:]
		r.full, r.next = true, 0
	}
	for len(p) > 0 {
		c := copy(r.buf[r.next:], p)
		p = p[c:]
		r.next = (r.next + c) % r.size
	}
	return n, nil
}

// Bytes returns a copy of what the ring holds, oldest first.
func (r *Ring) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]byte(nil), r.buf...)
	}
	out := make([]byte, 0, r.size)
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// Reset empties the ring.
func (r *Ring) Reset() {
	r.mu.Lock()
	r.buf, r.next, r.full = r.buf[:0], 0, false
	r.mu.Unlock()
}
