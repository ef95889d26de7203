package controlplane

import (
	"context"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/controlplane/artifacts"
)

// ArtifactStore keeps release files by their SHA-256 (lowercase hex):
// controlplane/artifacts has the data dir and the S3 implementations.
type ArtifactStore interface {
	// Put stores size bytes from r as the artifact sha.
	Put(ctx context.Context, sha string, r io.Reader, size int64) error
	// Open reads the artifact sha with seeks (Range requests); an absent
	// one is artifacts.ErrNotFound.
	Open(ctx context.Context, sha string) (io.ReadSeekCloser, error)
	// PresignGet returns a URL agents may GET the artifact from without
	// poolserver's credentials, valid for expiry; "" when the store has
	// none (the data dir).
	PresignGet(ctx context.Context, sha string, expiry time.Duration) (string, error)
}

// WithArtifactStore serves and presigns the artifacts from a (the
// default: the data dir's).
func WithArtifactStore(a ArtifactStore) Option { return func(s *Server) { s.arts = a } }

// OpenArtifactStore returns the store cfg.Artifacts names. An S3 store is
// checked (bucket reachable with the credentials) so a mistake stops
// poolserver at start, not at the first download.
func OpenArtifactStore(ctx context.Context, cfg Config) (ArtifactStore, error) {
	if cfg.Artifacts.Store != StoreS3 {
		return artifacts.NewDataDir(cfg.DataDir), nil
	}
	s3, err := artifacts.NewS3(cfg.Artifacts.S3())
	if err != nil {
		return nil, err
	}
	if err := s3.Check(ctx); err != nil {
		return nil, err
	}
	return s3, nil
}

// presignCache keeps each artifact's presigned URL until less than half of
// its validity is left: the heartbeat replies of a fleet share it (and
// their ETags stay stable), and every URL an agent holds is still valid
// for at least half the expiry.
type presignCache struct {
	mu sync.Mutex
	m  map[string]presigned
}

type presigned struct {
	url     string
	renewAt time.Time
}

// presign returns the store's URL for the artifact sha, or "" when the
// store has none or presigning failed (agents then use poolserver's).
func (s *Server) presign(ctx context.Context, sha string, now time.Time) string {
	s.presigns.mu.Lock()
	defer s.presigns.mu.Unlock()
	if p, ok := s.presigns.m[sha]; ok && now.Before(p.renewAt) {
		return p.url
	}
	expiry := s.cfg.Artifacts.PresignExpiry.Duration
	u, err := s.arts.PresignGet(ctx, sha, expiry)
	if err != nil {
		s.log.Warn("cannot presign an artifact URL; agents download it from poolserver", zap.String("sha256", sha), zap.Error(err))
		return ""
	}
	if s.presigns.m == nil {
		s.presigns.m = map[string]presigned{}
	}
	if len(s.presigns.m) > 4096 { // releases in flight are few; drop stale ones
		clear(s.presigns.m)
	}
	s.presigns.m[sha] = presigned{url: u, renewAt: now.Add(expiry / 2)}
	return u
}

// artifactSources lists a job's artifact sources before poolserver's own
// URL: the pool's mirrors (<base>/<sha256>), then the object store's
// presigned URL. Each heartbeat reply carries them afresh, so a URL near
// its expiry is replaced before an agent resumes with it.
func (s *Server) artifactSources(ctx context.Context, mirrors []string, sha string, now time.Time) []string {
	out := make([]string, 0, len(mirrors)+1)
	for _, m := range mirrors {
		out = append(out, m+"/"+sha)
	}
	if u := s.presign(ctx, sha, now); u != "" {
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// mirrorCache keeps each pool's artifactMirrors for mirrorTTL, so the
// heartbeats of a pool do not each read the pool.
type mirrorCache struct {
	mu sync.Mutex
	m  map[string]cachedMirrors
}

type cachedMirrors struct {
	urls    []string
	fetched time.Time
}

const mirrorTTL = 5 * time.Second

// poolMirrors returns the pool's artifactMirrors (nil when it cannot be
// read: the agents then skip the mirrors, not the job).
func (s *Server) poolMirrors(ctx context.Context, poolID string) []string {
	now := s.clock.Now()
	s.mirrors.mu.Lock()
	c, ok := s.mirrors.m[poolID]
	s.mirrors.mu.Unlock()
	if ok && now.Sub(c.fetched) < mirrorTTL {
		return c.urls
	}
	p, err := s.store.GetPool(ctx, poolID)
	if err != nil {
		s.log.Warn("read the pool's artifact mirrors", zap.String("pool", poolID), zap.Error(err))
		return nil
	}
	s.mirrors.mu.Lock()
	if s.mirrors.m == nil {
		s.mirrors.m = map[string]cachedMirrors{}
	}
	s.mirrors.m[poolID] = cachedMirrors{urls: p.Settings.ArtifactMirrors, fetched: now}
	s.mirrors.mu.Unlock()
	return p.Settings.ArtifactMirrors
}
