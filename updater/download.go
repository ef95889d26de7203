package updater

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/internal/vercmp"
	"github.com/poolagent/poolagent/platform/disk"
	"github.com/poolagent/poolagent/signing"
)

// Fetched is an artifact downloaded into the state dir and verified:
// size, SHA-256, signature by a pinned key, and signed metadata.
type Fetched struct {
	Job    Job
	Path   string
	SHA256 string
	Size   int64
	// Patched reports that a binary patch produced the file.
	Patched bool
	// Kept reports that the file is the binary the last update replaced,
	// kept in the state dir (kept.go): nothing was downloaded.
	Kept bool
	// PatchErr is why the job's patch was not used and the full artifact
	// was downloaded instead (wraps ErrPatch); nil when the job offered
	// none or it was used.
	PatchErr error
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Fetch downloads and verifies job's artifact for target t, resuming a
// previous partial download. It changes nothing outside the state dir, so
// the daemon may call it before the maintenance window opens.
func (u *Updater) Fetch(ctx context.Context, job Job, t Target, progress ProgressFunc) (*Fetched, error) {
	a := job.Artifact
	op := "download artifact " + a.Name + " " + a.Version
	if err := u.checkJob(job); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if t.Version != "" && !job.AllowDowngrade && vercmp.Compare(a.Version, t.Version) < 0 {
		return nil, fmt.Errorf("%s: installed version is %s and a downgrade is not allowed: %w", op, t.Version, ErrDowngrade)
	}
	sig, err := u.signature(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	base := filepath.Join(u.cfg.StateDir, "downloads", fileKey(a))
	final := base + ".bin"

	// A revert to the release the last update replaced uses the binary
	// kept then.
	if f := u.fetchKept(job, t, sig); f != nil {
		return f, nil
	}

	// A file verified by an earlier Fetch is verified again: the state dir
	// is not a trust boundary we rely on.
	if _, err := os.Stat(final); err == nil {
		f, err := u.verifyFile(final, a, sig)
		if err == nil {
			f.Job = job
			return f, nil
		}
		u.log.Warn("cached artifact failed verification; downloading again", zap.String("path", final), zap.Error(err))
		_ = os.Remove(final)
	}

	var patchErr error
	if job.Patch != nil {
		f, err := u.fetchPatched(ctx, job, t, sig, base, progress)
		if err == nil {
			return f, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if !errors.Is(err, ErrPatch) {
			// The patched bytes were the artifact's and failed its
			// signature: the full file would too.
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		u.log.Warn("patch unusable; falling back to the full artifact", zap.String("job", job.ID), zap.Error(err))
		patchErr = err
	}

	part := base + ".part"
	u.hook(PhaseDownload)
	// The sources in order: the mirrors, then URL. A source that fails
	// (unreachable, an HTTP error, bytes that fail verification) is
	// abandoned for the next; the last one's error is the job's.
	sources := append(slices.Clone(a.Mirrors), a.URL)
	var lastErr error
	for i, src := range sources {
		f, err := u.fetchFrom(ctx, job, src, part, final, sig, progress)
		if err == nil {
			f.PatchErr = patchErr
			if i > 0 {
				u.log.Info("artifact downloaded from a fallback source", zap.String("job", job.ID), zap.String("source", redact(src)), zap.Int("index", i))
			}
			return f, nil
		}
		lastErr = err
		if ctx.Err() != nil || errors.Is(err, ErrDiskFull) {
			break
		}
		if i < len(sources)-1 {
			u.log.Warn("artifact source failed; trying the next", zap.String("job", job.ID), zap.String("source", redact(src)),
				zap.String("next", redact(sources[i+1])), zap.Error(err))
		}
	}
	if len(sources) > 1 && ctx.Err() == nil {
		return nil, fmt.Errorf("%s: all %d sources failed, the last (%s): %w", op, len(sources), redact(sources[len(sources)-1]), lastErr)
	}
	return nil, fmt.Errorf("%s: %w", op, lastErr)
}

// fetchFrom downloads the artifact from one source into part, verifies it
// and renames it to final. Bytes that fail verification are dropped.
func (u *Updater) fetchFrom(ctx context.Context, job Job, src, part, final string, sig []byte, progress ProgressFunc) (*Fetched, error) {
	a := job.Artifact
	if err := u.checkURLString(src); err != nil {
		return nil, fmt.Errorf("source %s: %w", redact(src), err)
	}
	cur := u.currentURL(job, src)
	for fresh := false; ; fresh = true {
		if fresh {
			removeDownload(part)
		}
		d, resumed, err := u.downloadFrom(ctx, job.ID, cur, a.Size, part, signing.NeedsPrehash(sig), u.rateFor(job), progress)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				removeDownload(part)
			}
			return nil, err
		}
		u.hook(PhaseVerify)
		if err := u.check(d, a, sig); err != nil {
			removeDownload(part)
			if resumed && !fresh && (errors.Is(err, ErrHash) || errors.Is(err, ErrSize)) {
				// A resumed file can carry a torn tail from a crash; the
				// whole file once more settles whether the source is wrong.
				u.log.Warn("resumed download failed its hash; downloading from scratch", zap.String("job", job.ID), zap.Error(err))
				continue
			}
			return nil, err
		}
		if err := os.Rename(part, final); err != nil {
			return nil, err
		}
		_ = os.Remove(part + ".etag")
		return &Fetched{Job: job, Path: final, SHA256: a.SHA256, Size: a.Size}, nil
	}
}

// currentURL returns a function giving src as the job's Refresh last
// describes it: the same object (scheme, host and path) with its newest
// query, so a presigned URL that expired during a download is replaced
// before the next attempt resumes it.
func (u *Updater) currentURL(job Job, src string) func() string {
	if job.Refresh == nil {
		return func() string { return src }
	}
	key := sourceKey(src)
	return func() string {
		fresh := job.Refresh()
		if fresh.SHA256 != job.Artifact.SHA256 || fresh.Size != job.Artifact.Size {
			return src
		}
		for _, c := range append(slices.Clone(fresh.Mirrors), fresh.URL) {
			if c != src && sourceKey(c) == key && u.checkURLString(c) == nil {
				return c
			}
		}
		return src
	}
}

// sourceKey is a URL without its query: what identifies the object behind
// a presigned URL across its refreshes.
func sourceKey(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i]
	}
	return raw
}

func (u *Updater) checkJob(job Job) error {
	a := job.Artifact
	switch {
	case a.Name == "" || a.Version == "" || a.OS == "" || a.Arch == "":
		return errors.New("job descriptor lacks name, version, os or arch")
	case a.Size <= 0:
		return errors.New("job descriptor lacks the artifact size")
	case !hexSHA256.MatchString(strings.ToLower(a.SHA256)):
		return fmt.Errorf("job descriptor sha256 %q is not 64 hex digits", a.SHA256)
	}
	pu, err := url.Parse(a.URL)
	if err != nil {
		return fmt.Errorf("artifact URL: %w", err)
	}
	return u.checkURL(pu.Scheme)
}

// signature returns the job's signature text, fetching it if need be.
func (u *Updater) signature(ctx context.Context, a Artifact) ([]byte, error) {
	if len(a.Signature) > 0 {
		return a.Signature, nil
	}
	if a.SignatureURL == "" {
		return nil, fmt.Errorf("no signature in the job: %w", ErrSignature)
	}
	pu, err := url.Parse(a.SignatureURL)
	if err != nil {
		return nil, fmt.Errorf("signature URL: %w", err)
	}
	if err := u.checkURL(pu.Scheme); err != nil {
		return nil, fmt.Errorf("signature URL: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.SignatureURL, nil)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch signature: %w: %w", err, ErrDownload)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch signature: HTTP %s: %w", resp.Status, ErrSignature)
	}
	const maxSig = 16 << 10 // a minisign signature is ~300 bytes
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSig+1))
	if err != nil {
		return nil, fmt.Errorf("fetch signature: %w: %w", err, ErrDownload)
	}
	if len(b) > maxSig {
		return nil, fmt.Errorf("fetch signature: larger than %d bytes: %w", maxSig, ErrSignature)
	}
	return b, nil
}

// check compares a finished digest with the descriptor and the signature.
func (u *Updater) check(d *digester, a Artifact, sig []byte) error {
	sum := d.finish()
	if d.n != a.Size {
		return fmt.Errorf("%w: got %d bytes, want %d", ErrSize, d.n, a.Size)
	}
	if sum != strings.ToLower(a.SHA256) {
		return fmt.Errorf("%w: got %s, want %s", ErrHash, sum, strings.ToLower(a.SHA256))
	}
	return u.keys.Verify(d.mr, sig, a.Meta, sum, d.n)
}

// verifyFile hashes a file on disk and checks it like a download.
func (u *Updater) verifyFile(path string, a Artifact, sig []byte) (*Fetched, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := newDigester(signing.NeedsPrehash(sig))
	if _, err := d.copyFrom(nil, f, a.Size, nil); err != nil {
		d.finish()
		if errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("file larger than %d bytes: %w", a.Size, ErrSize)
		}
		return nil, err
	}
	if err := u.check(d, a, sig); err != nil {
		return nil, err
	}
	return &Fetched{Path: path, SHA256: strings.ToLower(a.SHA256), Size: a.Size}, nil
}

// download fetches url into part, resuming what part already holds, and
// returns the digest of the whole file. resumed reports whether bytes from
// an earlier attempt were kept.
func (u *Updater) download(ctx context.Context, jobID, rawURL string, size int64, part string, prehash bool, rate int64, progress ProgressFunc) (d *digester, resumed bool, err error) {
	return u.downloadFrom(ctx, jobID, func() string { return rawURL }, size, part, prehash, rate, progress)
}

// downloadFrom is download with the URL asked again before each attempt
// (a refreshed presigned URL).
func (u *Updater) downloadFrom(ctx context.Context, jobID string, rawURL func() string, size int64, part string, prehash bool, rate int64, progress ProgressFunc) (d *digester, resumed bool, err error) {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, diskFull(err)
	}
	defer f.Close()
	rep := &reporter{fn: progress, job: jobID, total: size, last: -1}
	var lastErr error
	var busyFor time.Duration // waited on busy replies so far
	for attempt := 0; attempt <= u.cfg.Retries; attempt++ {
		if attempt > 0 && lastErr != nil {
			u.log.Info("resuming interrupted download", zap.String("job", jobID), zap.Int("attempt", attempt), zap.Error(lastErr))
		}
		d, resumedNow, err := u.attempt(ctx, f, rawURL(), size, part+".etag", prehash, rate, rep)
		resumed = resumed || resumedNow
		if err == nil {
			if err := f.Sync(); err != nil {
				return nil, resumed, diskFull(err)
			}
			return d, resumed, nil
		}
		wait := time.Duration(attempt+1) * 100 * time.Millisecond
		var busy *busyError
		if errors.As(err, &busy) && ctx.Err() == nil {
			// A busy server is not a failed attempt: wait as it asks,
			// with jitter, within the job's busy budget.
			wait = busyWait(busy.after, u.cfg.BusyMaxWait, rand.Float64())
			if busyFor+wait > u.cfg.BusyTimeout {
				return nil, resumed, fmt.Errorf("%w; still busy after %s of waiting (the limit is %s)", err, busyFor.Round(time.Second), u.cfg.BusyTimeout)
			}
			busyFor += wait
			u.log.Info("artifact server busy; waiting before asking again", zap.String("job", jobID), zap.Int("status", busy.status),
				zap.Duration("retry_after", busy.after), zap.Duration("wait", wait), zap.Duration("busy_for", busyFor))
			attempt--
			lastErr = nil
		} else if !retryable(ctx, err) {
			return nil, resumed, err
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return nil, resumed, ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil, resumed, lastErr
}

// busyError is a server's 503 or 429: come back later, not a failure of
// the download. after is its Retry-After (0: none given).
type busyError struct {
	status int
	after  time.Duration
	err    error
}

func (e *busyError) Error() string { return e.err.Error() }
func (e *busyError) Unwrap() error { return e.err }

// defaultBusyWait is the wait after a busy reply without Retry-After.
const defaultBusyWait = 5 * time.Second

// busyWait is how long to wait after a busy reply that asked for after:
// at least one second (and the default without a Retry-After), at most
// maxWait, plus up to half again as jitter (r in [0, 1)) so the hosts a
// busy server refused together do not all come back together.
func busyWait(after, maxWait time.Duration, r float64) time.Duration {
	if after <= 0 {
		after = defaultBusyWait
	}
	base := min(max(after, time.Second), maxWait)
	return base + time.Duration(r*float64(base)/2)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date. 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	return !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrStalled) && !errors.Is(err, errHTTPStatus) && !errors.Is(err, ErrDiskFull)
}

// diskFull marks a write error that says the disk is full with
// ErrDiskFull, keeping the system error in the chain.
func diskFull(err error) error {
	if disk.IsFull(err) && !errors.Is(err, ErrDiskFull) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

var errHTTPStatus = errors.New("unexpected HTTP status")

// attempt is one HTTP request. It resumes from f's length when the sidecar
// holds a validator, and starts over when the server's copy changed.
func (u *Updater) attempt(ctx context.Context, f *os.File, rawURL string, size int64, sidecar string, prehash bool, rate int64, rep *reporter) (_ *digester, resumed bool, err error) {
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	offset := st.Size()
	validator := readValidator(sidecar, rawURL)
	if offset > size || validator == "" {
		offset = 0
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, false, err
	}
	if offset > 0 {
		if offset == size {
			// Nothing left to fetch; still ask, so a changed copy is seen.
			offset--
		}
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		req.Header.Set("If-Range", validator)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", err, ErrDownload)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if offset == 0 || !ok || start != offset || (total >= 0 && total != size) {
			// Not the range we asked for: drop what we have, start over.
			_ = f.Truncate(0)
			_ = os.Remove(sidecar)
			return nil, false, fmt.Errorf("server answered range %q to %d-: %w", resp.Header.Get("Content-Range"), offset, ErrDownload)
		}
	case http.StatusOK:
		offset = 0 // no range support, or the copy changed (If-Range)
	case http.StatusRequestedRangeNotSatisfiable:
		_ = f.Truncate(0)
		_ = os.Remove(sidecar)
		return nil, false, fmt.Errorf("server refused range %d-: %w", offset, ErrDownload)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		after := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, false, &busyError{status: resp.StatusCode, after: after,
			err: fmt.Errorf("GET %s: HTTP %s (server busy): %w: %w", redact(rawURL), resp.Status, ErrDownload, errHTTPStatus)}
	default:
		return nil, false, fmt.Errorf("GET %s: HTTP %s: %w: %w", redact(rawURL), resp.Status, ErrDownload, errHTTPStatus)
	}
	if resp.ContentLength > size-offset {
		return nil, false, fmt.Errorf("server announces %d bytes from offset %d, descriptor says %d in all: %w", resp.ContentLength, offset, size, ErrTooLarge)
	}
	if err := f.Truncate(offset); err != nil {
		return nil, false, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, false, err
	}
	writeValidator(sidecar, rawURL, resp.Header)

	d := newDigester(prehash)
	defer func() {
		if err != nil {
			d.finish()
		}
	}()
	if offset > 0 {
		// Hash the kept prefix; it is in the page cache or cheap to read.
		if _, err := d.copyFrom(nil, io.LimitReader(f, offset), offset, nil); err != nil {
			return nil, false, err
		}
		u.log.Info("resuming download", zap.Int64("offset", offset), zap.Int64("size", size))
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, false, err
	}

	var src io.Reader = resp.Body
	minSpeed := u.cfg.MinSpeed
	if rate > 0 {
		src = newRateLimited(ctx, src, rate)
		minSpeed = min(minSpeed, max(rate/2, 1))
	}
	body := &countingReader{r: src}
	stop := u.watchStall(ctx, cancel, body, minSpeed)
	defer stop()
	n, err := d.copyFrom(&diskWriter{w: f}, body, size-offset, func(total int64) { rep.report(offset + total) })
	if err != nil {
		var werr *writeError
		if errors.As(err, &werr) {
			return nil, offset > 0, fmt.Errorf("write the download at byte %d: %w", offset+n, diskFull(werr.err))
		}
		if errors.Is(err, ErrTooLarge) {
			return nil, offset > 0, fmt.Errorf("server sent more than the descriptor's %d bytes: %w", size, ErrTooLarge)
		}
		if c := context.Cause(ctx); errors.Is(c, ErrStalled) {
			return nil, offset > 0, c
		}
		return nil, offset > 0, fmt.Errorf("connection lost at byte %d: %w: %w", offset+n, err, ErrDownload)
	}
	if offset+n < size {
		return nil, offset > 0, fmt.Errorf("connection closed at byte %d of %d: %w", offset+n, size, ErrDownload)
	}
	return d, offset > 0, nil
}

// watchStall cancels the request when fewer than MinSpeed bytes per second
// arrived over the last StallTimeout.
func (u *Updater) watchStall(ctx context.Context, cancel context.CancelCauseFunc, body *countingReader, minSpeed int64) (stop func()) {
	window := u.cfg.StallTimeout
	tick := max(window/5, 10*time.Millisecond)
	done := make(chan struct{})
	go func() {
		type sample struct {
			t time.Time
			n int64
		}
		t := time.NewTicker(tick)
		defer t.Stop()
		hist := []sample{{time.Now(), 0}}
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				s := sample{now, body.n.Load()}
				hist = append(hist, s)
				for len(hist) > 2 && now.Sub(hist[1].t) >= window {
					hist = hist[1:]
				}
				el := now.Sub(hist[0].t)
				if el >= window && float64(s.n-hist[0].n) < float64(minSpeed)*el.Seconds() {
					cancel(fmt.Errorf("below %d bytes/s for %s (%d bytes in %s): %w",
						minSpeed, window, s.n-hist[0].n, el.Round(time.Millisecond), ErrStalled))
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// writeError marks an error of the local file, as opposed to the
// connection's.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// diskWriter tags its writer's errors as writeErrors.
type diskWriter struct{ w io.Writer }

func (d *diskWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type reporter struct {
	fn    ProgressFunc
	job   string
	total int64
	last  int
}

func (r *reporter) report(n int64) {
	if r.fn == nil || r.total <= 0 {
		return
	}
	pct := int(n * 100 / r.total)
	if pct == r.last {
		return
	}
	r.last = pct
	r.fn(Progress{JobID: r.job, Phase: PhaseDownload, Bytes: n, Total: r.total, Percent: pct})
}

// readValidator returns the If-Range value saved for rawURL's object (its
// query aside: a refreshed presigned URL resumes the same object), or "".
func readValidator(sidecar, rawURL string) string {
	b, err := os.ReadFile(sidecar)
	if err != nil {
		return ""
	}
	u, v, ok := strings.Cut(string(b), "\n")
	if !ok || u != sourceKey(rawURL) {
		return ""
	}
	return strings.TrimSpace(v)
}

// writeValidator saves the response's strong ETag (or Last-Modified) so a
// later attempt can resume with If-Range. Weak ETags cannot be used with
// If-Range, so a response with one is not resumable.
func writeValidator(sidecar, rawURL string, h http.Header) {
	v := h.Get("ETag")
	if strings.HasPrefix(v, "W/") {
		v = ""
	}
	if v == "" && h.Get("ETag") == "" {
		v = h.Get("Last-Modified")
	}
	if v == "" {
		_ = os.Remove(sidecar)
		return
	}
	_ = os.WriteFile(sidecar, []byte(sourceKey(rawURL)+"\n"+v+"\n"), 0o600)
}

func removeDownload(part string) {
	_ = os.Remove(part)
	_ = os.Remove(part + ".etag")
}

// parseContentRange parses "bytes start-end/total"; total is -1 for "*".
func parseContentRange(s string) (start, total int64, ok bool) {
	s, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

// fileKey names an artifact's files in the state dir.
func fileKey(a Artifact) string {
	sum := strings.ToLower(a.SHA256)
	if len(sum) > 16 {
		sum = sum[:16]
	}
	return safeName(a.Name) + "-" + safeName(a.Version) + "-" + safeName(a.OS) + "-" + safeName(a.Arch) + "-" + sum
}

// redact drops a URL's query (it may carry a token) for messages.
func redact(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i] + "?…"
	}
	return raw
}

// Downloaded returns how many bytes of job's artifact are already in the
// state dir (a verified file or a partial download): space a precheck
// need not find free again.
func (u *Updater) Downloaded(job Job) int64 {
	base := filepath.Join(u.cfg.StateDir, "downloads", fileKey(job.Artifact))
	var n int64
	for _, p := range []string{base + ".bin", base + ".part"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}
