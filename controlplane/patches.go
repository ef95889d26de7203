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
	"path/filepath"
	"slices"

	"github.com/poolagent/poolagent/controlplane/delta"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/internal/vercmp"
)

// DefaultDeltas is how many earlier releases `release publish` builds
// patches from unless told otherwise.
const DefaultDeltas = 3

// patchPath is where a patch's bytes live: content-addressed beside the
// artifacts.
func patchPath(dataDir, sha string) string {
	return filepath.Join(dataDir, "artifacts", "patches", sha)
}

// PatchURL is the path a patch is served at (the server prefixes its base
// URL). Download metrics key on its /artifacts/patches/ prefix.
func PatchURL(sha string) string { return rollout.PatchPath(sha) }

// patchSources returns the releases a new release of p builds patches
// from: the k newest of the same name and platform below p's version.
func patchSources(rs []*store.Release, p Publish, k int) []*store.Release {
	var out []*store.Release
	for _, r := range rs {
		if r.Name == p.Name && r.OS == p.OS && r.Arch == p.Arch && vercmp.Compare(r.Version, p.Version) < 0 {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *store.Release) int { return vercmp.Compare(b.Version, a.Version) })
	return out[:min(k, len(out))]
}

// buildPatches writes a bsdiff patch from each source to the artifact
// newSHA (newSize bytes) and returns those kept: a patch larger than half
// the artifact is not worth a host's trouble and is dropped. A source
// whose file cannot be read is skipped with a note (warn); any other
// failure fails the publish.
func buildPatches(ctx context.Context, arts ArtifactStore, dataDir, newFile string, sources []*store.Release, newSize int64, warn func(string)) ([]store.ReleasePatch, error) {
	if len(sources) == 0 {
		return nil, nil
	}
	newBytes, err := os.ReadFile(newFile)
	if err != nil {
		return nil, fmt.Errorf("read the new artifact to build patches: %w", err)
	}
	dir := filepath.Join(dataDir, "artifacts", "patches")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create patch dir: %w", err)
	}
	var kept []store.ReleasePatch
	// Oldest source first, the order the catalog lists them in.
	for _, src := range slices.Backward(sources) {
		if src.Size > int64(delta.MaxOld) {
			warn(fmt.Sprintf("no patch from %s: its artifact is larger than %d bytes", src.Version, int64(delta.MaxOld)))
			continue
		}
		old, err := readArtifact(ctx, arts, src.SHA256)
		if err != nil {
			warn(fmt.Sprintf("no patch from %s: read its artifact: %v", src.Version, err))
			continue
		}
		if int64(len(old)) > delta.MaxOld {
			warn(fmt.Sprintf("no patch from %s: its artifact is larger than %d bytes", src.Version, int64(delta.MaxOld)))
			continue
		}
		rp, err := writePatch(ctx, dir, old, newBytes)
		if err != nil {
			return nil, fmt.Errorf("build the patch from %s: %w", src.Version, err)
		}
		if rp.Size > newSize/2 {
			_ = os.Remove(patchPath(dataDir, rp.SHA256))
			warn(fmt.Sprintf("no patch from %s: it has %d bytes, more than half the artifact's %d", src.Version, rp.Size, newSize))
			continue
		}
		rp.FromVersion, rp.FromSHA256 = src.Version, src.SHA256
		kept = append(kept, rp)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return kept, nil
}

// writePatch diffs old and new into dir, fsynced, named by its SHA-256.
func writePatch(ctx context.Context, dir string, old, new []byte) (store.ReleasePatch, error) {
	tmp, err := os.CreateTemp(dir, ".patch-*")
	if err != nil {
		return store.ReleasePatch{}, err
	}
	defer os.Remove(tmp.Name())
	err = delta.Diff(ctx, old, new, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	var rp store.ReleasePatch
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err == nil {
		h := sha256.New()
		rp.Size, err = io.Copy(h, tmp)
		rp.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return store.ReleasePatch{}, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, rp.SHA256)); err != nil {
		return store.ReleasePatch{}, err
	}
	return rp, nil
}

// handlePatch serves GET /artifacts/patches/{sha256}: a patch of the
// catalog, with Range, If-Range and a strong ETag (its SHA-256), to the
// same callers as handleArtifact.
func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request) {
	if _, err := s.authClient(r); err != nil {
		if _, aerr := s.authenticate(r); aerr != nil {
			spUnauthorized(w, "send a client secret or an API token as Authorization: Bearer")
			return
		}
	}
	sha := r.PathValue("sha256")
	cat, err := s.catalog(r.Context())
	if err != nil {
		spInternal(w)
		return
	}
	rel := cat.patchRelease(sha)
	if rel == nil {
		spNotFound(w, "no such patch in the catalog")
		return
	}
	f, err := os.Open(patchPath(s.cfg.DataDir, sha))
	if errors.Is(err, os.ErrNotExist) {
		spNotFound(w, "the patch's file is missing from the data dir")
		return
	}
	if err != nil {
		spInternal(w)
		return
	}
	defer f.Close()
	w.Header().Set("ETag", `"`+sha+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Checksum-Sha256", sha)
	http.ServeContent(w, r, "", rel.PublishedAt, f)
}

// readArtifact reads a whole artifact from the store.
func readArtifact(ctx context.Context, arts ArtifactStore, sha string) ([]byte, error) {
	f, err := arts.Open(ctx, sha)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
