package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/artifacts"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/internal/vercmp"
)

// SelfName is the release name of poolagent itself.
const SelfName = rollout.SelfName

// channelRank orders release channels by stability. A pool follows the
// releases of its channel and of every more stable one: a BETA pool takes
// BETA, EA and GA releases; a GA pool takes GA only; TEST takes everything.
var channelRank = map[okta.ReleaseChannel]int{okta.ChannelTest: 0, okta.ChannelBeta: 1, okta.ChannelEA: 2, okta.ChannelGA: 3}

// catalog is a snapshot of the release catalog.
type catalog struct {
	releases []*store.Release
	byKey    map[string]*store.Release
	// byPatch maps a patch's SHA-256 to the release it builds.
	byPatch map[string]*store.Release
}

func releaseKey(name, version, goos, arch string) string {
	return name + "\x00" + version + "\x00" + goos + "\x00" + arch
}

func newCatalog(rs []*store.Release) *catalog {
	c := &catalog{releases: rs, byKey: make(map[string]*store.Release, len(rs)), byPatch: map[string]*store.Release{}}
	for _, r := range rs {
		c.byKey[releaseKey(r.Name, r.Version, r.OS, r.Arch)] = r
		for _, p := range r.Patches {
			c.byPatch[p.SHA256] = r
		}
	}
	return c
}

// patchRelease returns the release a patch builds, or nil for a SHA-256
// that is no patch of the catalog.
func (c *catalog) patchRelease(sha string) *store.Release { return c.byPatch[sha] }

// Get returns the artifact of name and version for a platform.
func (c *catalog) Get(name, version, goos, arch string) *store.Release {
	return c.byKey[releaseKey(name, version, goos, arch)]
}

// Latest returns the newest version of name that a pool on channel takes.
func (c *catalog) Latest(name string, channel okta.ReleaseChannel) string {
	best := ""
	for _, r := range c.releases {
		if r.Name == name && channelRank[r.Channel] >= channelRank[channel] && (best == "" || vercmp.Compare(r.Version, best) > 0) {
			best = r.Version
		}
	}
	return best
}

// channelOf returns the most stable channel on which version of name is
// released (any platform), or false when the catalog has no such release.
func (c *catalog) channelOf(name, version string) (okta.ReleaseChannel, bool) {
	best, found := okta.ReleaseChannel(""), false
	for _, r := range c.releases {
		if r.Name == name && r.Version == version && (!found || channelRank[r.Channel] > channelRank[best]) {
			best, found = r.Channel, true
		}
	}
	return best, found
}

// checkChannel refuses a targetVersion that the catalog has only on a less
// stable channel than the pool follows (docs/rollout.md). A version absent
// from the catalog passes: it may be published later, and the rollout
// engine reports NO_ARTIFACT for hosts it cannot serve.
func checkChannel(p *store.Pool, c *catalog, version string) *oktaError {
	if c == nil || version == "" {
		return nil
	}
	ch, ok := c.channelOf(string(p.Type), version)
	follow := p.Settings.ReleaseChannel
	if follow == "" {
		follow = okta.ChannelGA
	}
	if !ok || channelRank[ch] >= channelRank[follow] {
		return nil
	}
	return errValidation(fmt.Sprintf("targetVersion: %s %s is released only on the %s channel, and agent pool %s follows %s "+
		"(it takes %s); set the pool's releaseChannel to %s or less stable in its update settings, or pick a version released on %s",
		p.Type, version, ch, p.ID, follow, channelsFrom(follow), ch, follow))
}

// channelsFrom lists the channels a pool on channel follows, least stable
// first: "GA", "EA, GA", ...
func channelsFrom(channel okta.ReleaseChannel) string {
	var out []string
	for _, c := range []okta.ReleaseChannel{okta.ChannelTest, okta.ChannelBeta, okta.ChannelEA, okta.ChannelGA} {
		if channelRank[c] >= channelRank[channel] {
			out = append(out, string(c))
		}
	}
	return strings.Join(out, ", ")
}

// Published returns when a version of name was first published (any
// platform): the start of its schedule.delay.
func (c *catalog) Published(name, version string) (time.Time, bool) {
	var first time.Time
	for _, r := range c.releases {
		if r.Name == name && r.Version == version && (first.IsZero() || r.PublishedAt.Before(first)) {
			first = r.PublishedAt
		}
	}
	return first, !first.IsZero()
}

// catalogCache refreshes the catalog snapshot at most every catalogTTL
// (the CLI publishes into the same database).
type catalogCache struct {
	mu      sync.Mutex
	c       *catalog
	fetched time.Time
}

const catalogTTL = 2 * time.Second

func (s *Server) catalog(ctx context.Context) (*catalog, error) {
	return s.loadCatalog(ctx, false)
}

// loadCatalog returns the snapshot, reading the store when it is older
// than catalogTTL or when fresh is set (the rollout engine: a release
// published a moment ago must not fail a rollout as missing).
func (s *Server) loadCatalog(ctx context.Context, fresh bool) (*catalog, error) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	now := s.clock.Now()
	if !fresh && s.cat.c != nil && now.Sub(s.cat.fetched) < catalogTTL {
		return s.cat.c, nil
	}
	rs, err := s.store.ListReleases(ctx, "")
	if err != nil {
		return nil, err
	}
	// Releases are never changed or removed, only added: the same count
	// and newest sequence is the same catalog, and the snapshot stays the
	// same pointer (the rollout engine re-plans when it changes).
	if old := s.cat.c; old != nil && len(old.releases) == len(rs) && (len(rs) == 0 || old.releases[len(rs)-1].Seq == rs[len(rs)-1].Seq) {
		s.cat.fetched = now
		return old, nil
	}
	s.cat.c, s.cat.fetched = newCatalog(rs), now
	return s.cat.c, nil
}

// effectiveLatest is the pool's latestVersion: the pinned setting, or the
// newest release of its type on its channel.
func effectiveLatest(p *store.Pool, c *catalog) string {
	if c == nil {
		return p.Settings.LatestVersion
	}
	return rollout.EffectiveLatest(p, c)
}

// artifactURL is the path an artifact is served at.
func artifactURL(r *store.Release) string { return rollout.ArtifactPath(r) }

// Publish describes a release to add to the catalog.
type Publish struct {
	Name, Version, OS, Arch string
	Channel                 okta.ReleaseChannel
	File, SignatureFile     string
	// Deltas is how many earlier releases of the same name and platform
	// to build binary patches from (0: none; see DefaultDeltas).
	Deltas int
	// Warn receives what publish left out (a patch too large to keep, an
	// earlier artifact missing); nil discards it.
	Warn func(msg string)
	// PatchDir is the data dir the patches are kept in, whatever store
	// holds the artifacts; needed when Deltas > 0.
	PatchDir string
}

// validate checks a release's name, version, platform and channel.
func (p Publish) validate() error {
	var problems []string
	if p.Name != SelfName && !okta.AgentType(p.Name).Valid() {
		problems = append(problems, fmt.Sprintf("--name %q: want an agent type (AD, IWA, LDAP, MFA, OPP, RUM, Radius) or poolagent", p.Name))
	}
	if msg := checkVersion(p.Version); p.Version == "" || msg != "" {
		problems = append(problems, fmt.Sprintf("--version %q: %s", p.Version, orRequired(msg)))
	}
	for flag, v := range map[string]string{"--os": p.OS, "--arch": p.Arch} {
		if v == "" || strings.ContainsAny(v, `/\. `) {
			problems = append(problems, fmt.Sprintf("%s %q: want a GOOS/GOARCH name such as linux or amd64", flag, v))
		}
	}
	if p.Deltas < 0 {
		problems = append(problems, fmt.Sprintf("--deltas %d: want 0 (no patches) or more", p.Deltas))
	}
	if !p.Channel.Valid() {
		problems = append(problems, fmt.Sprintf("--channel %q: want GA, EA, BETA or TEST", p.Channel))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// PublishRelease publishes into the data dir's artifact store (and keeps
// the patches there): see PublishReleaseTo.
func PublishRelease(ctx context.Context, st store.Store, dataDir string, p Publish, now time.Time) (*store.Release, error) {
	if p.PatchDir == "" {
		p.PatchDir = dataDir
	}
	return PublishReleaseTo(ctx, st, artifacts.NewDataDir(dataDir), p, now)
}

// PublishReleaseTo hashes an artifact, stores it in arts under its
// SHA-256, builds its patches (p.Deltas), records its size and SHA-256 and
// adds it to the catalog. The signature is stored as given: agents verify
// it against their own pinned keys, never against anything the server
// says.
func PublishReleaseTo(ctx context.Context, st store.Store, arts ArtifactStore, p Publish, now time.Time) (*store.Release, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if p.Deltas > 0 && p.PatchDir == "" {
		return nil, errors.New("publish: building patches needs the data dir to keep them in")
	}
	sig, err := os.ReadFile(p.SignatureFile)
	if err != nil {
		return nil, fmt.Errorf("read signature: %w", err)
	}
	if !strings.HasPrefix(string(sig), "untrusted comment:") {
		return nil, fmt.Errorf("signature %s is not a minisign signature file", p.SignatureFile)
	}
	in, err := os.Open(p.File)
	if err != nil {
		return nil, fmt.Errorf("read artifact: %w", err)
	}
	defer in.Close()
	// Hash first: the key is the SHA-256, and the store checks or keys
	// the upload by it.
	h := sha256.New()
	size, err := io.Copy(h, in)
	if err != nil {
		return nil, fmt.Errorf("read artifact: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read artifact: %w", err)
	}
	if err := arts.Put(ctx, sum, in, size); err != nil {
		return nil, err
	}
	r := &store.Release{Name: p.Name, Version: p.Version, OS: p.OS, Arch: p.Arch, Channel: p.Channel, Size: size, SHA256: sum,
		Signature: string(sig), PublishedAt: now.UTC()}
	if p.Deltas > 0 {
		earlier, err := st.ListReleases(ctx, p.Name)
		if err != nil {
			return nil, fmt.Errorf("list earlier releases for patches: %w", err)
		}
		warn := p.Warn
		if warn == nil {
			warn = func(string) {}
		}
		if r.Patches, err = buildPatches(ctx, arts, p.PatchDir, p.File, patchSources(earlier, p, p.Deltas), size, warn); err != nil {
			return nil, err
		}
	}
	if err := st.CreateRelease(ctx, r); err != nil {
		return nil, fmt.Errorf("publish %s %s %s/%s: %w", p.Name, p.Version, p.OS, p.Arch, err)
	}
	return r, nil
}

func orRequired(msg string) string {
	if msg == "" {
		return "is required"
	}
	return msg
}

// handleArtifact serves GET /artifacts/{name}/{version}/{os}/{arch} with
// Range, If-Range and a strong ETag (the SHA-256), to a managed client or
// an API token.
func (s *Server) handleArtifact(w http.ResponseWriter, r *http.Request) {
	if _, err := s.authClient(r); err != nil {
		if _, aerr := s.authenticate(r); aerr != nil {
			spUnauthorized(w, "send a client secret or an API token as Authorization: Bearer")
			return
		}
	}
	rel, err := s.store.GetRelease(r.Context(), r.PathValue("name"), r.PathValue("version"), r.PathValue("os"), r.PathValue("arch"))
	if errors.Is(err, store.ErrNotFound) {
		spNotFound(w, "no such artifact in the catalog")
		return
	}
	if err != nil {
		spInternal(w)
		return
	}
	// Served from the store (a ranged GET for each Range with S3), not
	// redirected: an agent's secret never follows a redirect, and an
	// agent that cannot reach the store still gets its bytes here.
	f, err := s.arts.Open(r.Context(), rel.SHA256)
	if errors.Is(err, artifacts.ErrNotFound) {
		spNotFound(w, "the artifact's file is missing from the artifact store")
		return
	}
	if err != nil {
		s.log.Error("open artifact", zap.String("sha256", rel.SHA256), zap.Error(err))
		spInternal(w)
		return
	}
	defer f.Close()
	w.Header().Set("ETag", `"`+rel.SHA256+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Checksum-Sha256", rel.SHA256)
	http.ServeContent(w, r, "", rel.PublishedAt, f)
}

// handleListReleases serves GET /api/v1/releases (extension): the catalog.
func (s *Server) handleListReleases(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	rs, err := s.store.ListReleases(r.Context(), r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	out := make([]okta.Release, 0, len(rs))
	for _, rel := range rs {
		or := okta.Release{Name: rel.Name, Version: rel.Version, OS: rel.OS, Arch: rel.Arch, Channel: rel.Channel, Size: rel.Size,
			SHA256: rel.SHA256, PublishedAt: rel.PublishedAt, URL: s.baseURL(r) + artifactURL(rel)}
		for _, p := range rel.Patches {
			or.Patches = append(or.Patches, okta.ReleasePatch{FromVersion: p.FromVersion, FromSHA256: p.FromSHA256, Size: p.Size, SHA256: p.SHA256,
				URL: s.baseURL(r) + PatchURL(p.SHA256)})
		}
		out = append(out, or)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
