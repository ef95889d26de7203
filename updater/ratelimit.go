package updater

import (
	"context"
	"io"
	"time"
)

// rateFor is the download limit of job in bytes per second: the smaller
// non-zero one of the config's and the job's, 0 for none.
func (u *Updater) rateFor(job Job) int64 {
	c, j := max(u.cfg.RateLimit, 0), max(job.RateLimit, 0)
	switch {
	case c == 0:
		return j
	case j == 0:
		return c
	}
	return min(c, j)
}

// rateBurst is how much unused allowance a rate-limited reader may save up:
// after an idle spell it reads at most this much time's worth at once.
const rateBurst = 250 * time.Millisecond

// rateLimited is a token-bucket reader: it hands out at most rate bytes per
// second on average, sleeping (until ctx ends) before a read while the
// bytes already read are not paid for. It holds no buffer, so memory stays
// flat whatever the rate.
type rateLimited struct {
	ctx   context.Context
	r     io.Reader
	rate  int64
	chunk int
	// paid is the instant at which the bytes read so far are paid for.
	paid time.Time
}

func newRateLimited(ctx context.Context, r io.Reader, rate int64) *rateLimited {
	// Reads of at most 1/8 s worth keep the stream smooth.
	return &rateLimited{ctx: ctx, r: r, rate: rate, chunk: int(max(min(rate/8, 1<<20), 512))}
}

func (l *rateLimited) Read(p []byte) (int, error) {
	now := time.Now()
	if l.paid.Before(now.Add(-rateBurst)) {
		l.paid = now.Add(-rateBurst)
	}
	if wait := l.paid.Sub(now); wait > 0 {
		if err := sleep(l.ctx, wait); err != nil {
			return 0, err
		}
	}
	if len(p) > l.chunk {
		p = p[:l.chunk]
	}
	n, err := l.r.Read(p)
	l.paid = l.paid.Add(time.Duration(float64(n) * float64(time.Second) / float64(l.rate)))
	return n, err
}
