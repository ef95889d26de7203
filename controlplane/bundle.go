package controlplane

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/signing"
)

// A release bundle carries releases to a poolserver that cannot reach the
// one they were published on (an air-gapped site, docs/install.md). It is
// an uncompressed tar (artifacts are compressed already, if at all):
//
//	manifest.json                     BundleManifest
//	artifacts/SHA256                  each artifact, named by its SHA-256
//	signatures/NAME-VERSION-OS-ARCH.minisig
//	patches/SHA256                    binary patches (export writes none)
//
// The bundle is not trusted: import checks every size, SHA-256 and
// signature against keys the importing operator names before it
// publishes anything.

// BundleFormat names the bundle layout in its manifest.
const BundleFormat = "poolagent-release-bundle/1"

// BundleManifest is manifest.json: the release metadata of a bundle.
type BundleManifest struct {
	Format     string          `json:"format"`
	ExportedAt time.Time       `json:"exportedAt"`
	Releases   []BundleRelease `json:"releases"`
	// Patches are binary patches between releases. Export writes none:
	// the importing poolserver builds its own (ImportOptions.Deltas)
	// against the releases it holds, which a patch built elsewhere may
	// not start from, and a patch needs no trust of its own.
	Patches []BundlePatch `json:"patches"`
}

// BundleRelease is one release (one platform's artifact) in a bundle.
type BundleRelease struct {
	Name        string              `json:"name"`
	Version     string              `json:"version"`
	OS          string              `json:"os"`
	Arch        string              `json:"arch"`
	Channel     okta.ReleaseChannel `json:"channel"`
	Size        int64               `json:"size"`
	SHA256      string              `json:"sha256"`
	PublishedAt time.Time           `json:"publishedAt"`
	// Artifact and Signature are the entries holding its bytes and its
	// minisign signature.
	Artifact  string `json:"artifact"`
	Signature string `json:"signature"`
}

// BundlePatch is a binary patch from one version to a release's.
type BundlePatch struct {
	Name        string `json:"name"`
	FromVersion string `json:"fromVersion"`
	ToVersion   string `json:"toVersion"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	File        string `json:"file"`
}

// Bundle limits: a bundle is refused past them before anything is written
// beyond the staging dir.
const (
	maxManifest     = 1 << 20
	maxSignature    = 16 << 10
	maxBundleFiles  = 4096
	DefaultMaxEntry = 4 << 30 // default cap on one artifact or patch entry
)

var (
	entryArtifact  = regexp.MustCompile(`^artifacts/[0-9a-f]{64}$`)
	entryPatch     = regexp.MustCompile(`^patches/[0-9a-f]{64}$`)
	entrySignature = regexp.MustCompile(`^signatures/[A-Za-z0-9._-]{1,200}\.minisig$`)
)

// ExportBundle writes the releases of name and version (one platform when
// goos and arch are set) from the store and the data dir to out, a tar
// file, and returns its manifest. Each artifact is checked against its
// recorded SHA-256 and size on the way: a damaged data dir is not
// exported.
func ExportBundle(ctx context.Context, st store.Store, arts ArtifactStore, name, version, goos, arch, out string, now time.Time) (*BundleManifest, error) {
	all, err := st.ListReleases(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("export: list releases: %w", err)
	}
	m := &BundleManifest{Format: BundleFormat, ExportedAt: now.UTC(), Releases: []BundleRelease{}, Patches: []BundlePatch{}}
	var rels []*store.Release
	for _, r := range all {
		if r.Version == version && (goos == "" || r.OS == goos) && (arch == "" || r.Arch == arch) {
			rels = append(rels, r)
		}
	}
	if len(rels) == 0 {
		return nil, fmt.Errorf("export: no release %s %s%s in the catalog (see releases list)", name, version, platformSuffix(goos, arch))
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".bundle-*")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	tw := tar.NewWriter(tmp)
	written := map[string]bool{}
	for _, r := range rels {
		br := BundleRelease{Name: r.Name, Version: r.Version, OS: r.OS, Arch: r.Arch, Channel: r.Channel, Size: r.Size, SHA256: r.SHA256,
			PublishedAt: r.PublishedAt.UTC(), Artifact: "artifacts/" + r.SHA256,
			Signature: fmt.Sprintf("signatures/%s-%s-%s-%s.minisig", r.Name, r.Version, r.OS, r.Arch)}
		if !entrySignature.MatchString(br.Signature) {
			return nil, fmt.Errorf("export: %s %s %s/%s: names unfit for a file name", r.Name, r.Version, r.OS, r.Arch)
		}
		if !written[br.Artifact] {
			if err := exportArtifact(ctx, tw, arts, br, now); err != nil {
				return nil, err
			}
			written[br.Artifact] = true
		}
		if err := writeTarFile(tw, br.Signature, []byte(r.Signature), now); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		m.Releases = append(m.Releases, br)
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := writeTarFile(tw, "manifest.json", append(mj, '\n'), now); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return m, nil
}

func platformSuffix(goos, arch string) string {
	if goos == "" && arch == "" {
		return ""
	}
	return " for " + orAny(goos) + "/" + orAny(arch)
}

func orAny(s string) string {
	if s == "" {
		return "any"
	}
	return s
}

// exportArtifact streams one artifact into the tar, checking its digest.
func exportArtifact(ctx context.Context, tw *tar.Writer, arts ArtifactStore, br BundleRelease, now time.Time) error {
	f, err := arts.Open(ctx, br.SHA256)
	if err != nil {
		return fmt.Errorf("export %s %s %s/%s: the artifact is missing from the artifact store: %w", br.Name, br.Version, br.OS, br.Arch, err)
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: br.Artifact, Mode: 0o644, Size: br.Size, ModTime: now.UTC(), Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(ctxReader{ctx, f}, br.Size+1))
	if err != nil && !errors.Is(err, tar.ErrWriteTooLong) {
		return fmt.Errorf("export %s %s %s/%s: %w", br.Name, br.Version, br.OS, br.Arch, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != br.Size || sum != br.SHA256 {
		return fmt.Errorf("export %s %s %s/%s: the stored artifact does not match the catalog (size %d, sha256 %s; want %d, %s): restore it or publish again",
			br.Name, br.Version, br.OS, br.Arch, n, sum, br.Size, br.SHA256)
	}
	return nil
}

func writeTarFile(tw *tar.Writer, name string, b []byte, now time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: now.UTC(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

// ctxReader stops a long copy when ctx ends.
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

// ImportOptions configures ImportBundle.
type ImportOptions struct {
	// TrustedKeys are minisign public keys (a .pub file's text, or its
	// base64 line): every release must be signed by one of them.
	TrustedKeys []string
	// MaxEntry caps one artifact or patch entry (default DefaultMaxEntry).
	MaxEntry int64
	// Deltas is how many earlier releases of the catalog each imported
	// release gets binary patches from, as with publish (0: none).
	Deltas int
	// Warn receives what building patches left out; nil discards it.
	Warn func(msg string)
}

// ImportResult is what ImportBundle did.
type ImportResult struct {
	Published []*store.Release
	// Present are releases the catalog already had, byte for byte.
	Present []BundleRelease
	// SkippedPatches were verified but not kept: import builds its own
	// (ImportOptions.Deltas).
	SkippedPatches int
}

// ImportBundle reads a bundle, stages its files under the data dir and
// verifies all of it (entry names and sizes, every artifact's size and
// SHA-256 against the manifest, every signature against opts.TrustedKeys
// and the release it claims to be, that no release conflicts with the
// catalog) before it publishes anything, through PublishRelease. One
// failed check refuses the whole bundle.
func ImportBundle(ctx context.Context, st store.Store, dataDir, bundle string, opts ImportOptions, now time.Time) (*ImportResult, error) {
	if opts.MaxEntry <= 0 {
		opts.MaxEntry = DefaultMaxEntry
	}
	keys, err := signing.NewKeyring(opts.TrustedKeys, nil)
	if err != nil {
		return nil, fmt.Errorf("import: --trusted-key: %w", err)
	}
	f, err := os.Open(bundle)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Join(dataDir, "artifacts"), 0o750); err != nil {
		return nil, fmt.Errorf("import: create artifact dir: %w", err)
	}
	stage, err := os.MkdirTemp(filepath.Join(dataDir, "artifacts"), ".import-*")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(stage)

	files, manifest, err := readBundle(ctx, f, stage, opts.MaxEntry)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", bundle, err)
	}
	res, err := checkBundle(ctx, st, keys, files, manifest)
	if err != nil {
		return nil, fmt.Errorf("import %s: refused, nothing imported: %w", bundle, err)
	}
	for _, br := range manifest.Releases {
		if containsRelease(res.Present, br) {
			continue
		}
		r, err := PublishRelease(ctx, st, dataDir, Publish{Name: br.Name, Version: br.Version, OS: br.OS, Arch: br.Arch, Channel: br.Channel,
			File: files[br.Artifact].path, SignatureFile: files[br.Signature].path, Deltas: opts.Deltas, Warn: opts.Warn}, now)
		if err != nil {
			return res, fmt.Errorf("import %s: after every check passed, publishing failed (%d of %d published; import again to finish): %w",
				bundle, len(res.Published), len(manifest.Releases)-len(res.Present), err)
		}
		if r.SHA256 != br.SHA256 || r.Size != br.Size {
			// The staged file changed under us: the data dir is not ours alone.
			return res, fmt.Errorf("import %s: the staged artifact of %s %s %s/%s changed while publishing", bundle, br.Name, br.Version, br.OS, br.Arch)
		}
		res.Published = append(res.Published, r)
	}
	return res, nil
}

func containsRelease(rs []BundleRelease, br BundleRelease) bool {
	for _, r := range rs {
		if r.Name == br.Name && r.Version == br.Version && r.OS == br.OS && r.Arch == br.Arch {
			return true
		}
	}
	return false
}

// stagedFile is one bundle entry written to the staging dir.
type stagedFile struct {
	path string
	size int64
	sum  string // hex SHA-256
}

// readBundle stages every entry of the tar r in stage, refusing any entry
// that is not a regular file with an expected name, a duplicate, or
// larger than its kind allows, and decodes the manifest.
func readBundle(ctx context.Context, r io.Reader, stage string, maxEntry int64) (map[string]stagedFile, *BundleManifest, error) {
	tr := tar.NewReader(r)
	files := map[string]stagedFile{}
	var manifest []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("not a readable tar bundle: %w", err)
		}
		name := hdr.Name
		if name != path.Clean(name) || path.IsAbs(name) || strings.Contains(name, "..") || strings.ContainsRune(name, '\\') {
			return nil, nil, fmt.Errorf("entry %q: not a plain relative path: refused", name)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, nil, fmt.Errorf("entry %q: not a regular file (type %q): refused", name, hdr.Typeflag)
		}
		if _, dup := files[name]; dup || (name == "manifest.json" && manifest != nil) {
			return nil, nil, fmt.Errorf("entry %q appears twice", name)
		}
		if len(files) >= maxBundleFiles {
			return nil, nil, fmt.Errorf("more than %d entries", maxBundleFiles)
		}
		var limit int64
		switch {
		case name == "manifest.json":
			limit = maxManifest
		case entrySignature.MatchString(name):
			limit = maxSignature
		case entryArtifact.MatchString(name), entryPatch.MatchString(name):
			limit = maxEntry
		default:
			return nil, nil, fmt.Errorf("entry %q: unexpected name (want manifest.json, artifacts/SHA256, signatures/*.minisig or patches/SHA256)", name)
		}
		if hdr.Size < 0 || hdr.Size > limit {
			return nil, nil, fmt.Errorf("entry %q: %d bytes, more than the %d allowed", name, hdr.Size, limit)
		}
		if name == "manifest.json" {
			if manifest, err = io.ReadAll(io.LimitReader(tr, limit)); err != nil {
				return nil, nil, fmt.Errorf("entry %q: %w", name, err)
			}
			continue
		}
		sf, err := stageEntry(ctx, tr, stage, len(files), hdr.Size)
		if err != nil {
			return nil, nil, fmt.Errorf("entry %q: %w", name, err)
		}
		files[name] = sf
	}
	if manifest == nil {
		return nil, nil, errors.New("no manifest.json: not a release bundle")
	}
	var m BundleManifest
	dec := json.NewDecoder(strings.NewReader(string(manifest)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("manifest.json: %w", err)
	}
	if m.Format != BundleFormat {
		return nil, nil, fmt.Errorf("manifest.json: format %q, want %q", m.Format, BundleFormat)
	}
	return files, &m, nil
}

// stageEntry copies one entry (size bytes announced) to a file in stage.
func stageEntry(ctx context.Context, r io.Reader, stage string, i int, size int64) (stagedFile, error) {
	p := filepath.Join(stage, fmt.Sprintf("%d", i))
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return stagedFile{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(ctxReader{ctx, r}, size))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return stagedFile{}, err
	}
	if n != size {
		return stagedFile{}, fmt.Errorf("truncated: %d of %d bytes", n, size)
	}
	return stagedFile{path: p, size: n, sum: hex.EncodeToString(h.Sum(nil))}, nil
}

// checkBundle verifies a staged bundle against its manifest, the trusted
// keys and the catalog, and lists the releases the catalog already has.
func checkBundle(ctx context.Context, st store.Store, keys *signing.Keyring, files map[string]stagedFile, m *BundleManifest) (*ImportResult, error) {
	if len(m.Releases) == 0 {
		return nil, errors.New("the manifest lists no release")
	}
	res := &ImportResult{}
	used := map[string]bool{}
	seen := map[string]bool{}
	for _, br := range m.Releases {
		what := fmt.Sprintf("%s %s %s/%s", br.Name, br.Version, br.OS, br.Arch)
		key := releaseKey(br.Name, br.Version, br.OS, br.Arch)
		if seen[key] {
			return nil, fmt.Errorf("%s is listed twice", what)
		}
		seen[key] = true
		if err := (Publish{Name: br.Name, Version: br.Version, OS: br.OS, Arch: br.Arch, Channel: br.Channel}).validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		art, ok := files[br.Artifact]
		if !ok || !entryArtifact.MatchString(br.Artifact) {
			return nil, fmt.Errorf("%s: artifact entry %q is not in the bundle", what, br.Artifact)
		}
		sigFile, ok := files[br.Signature]
		if !ok || !entrySignature.MatchString(br.Signature) {
			return nil, fmt.Errorf("%s: signature entry %q is not in the bundle", what, br.Signature)
		}
		used[br.Artifact], used[br.Signature] = true, true
		if art.size != br.Size || art.sum != br.SHA256 || br.Artifact != "artifacts/"+br.SHA256 {
			return nil, fmt.Errorf("%s: the artifact is %d bytes with sha256 %s; the manifest says %d bytes, %s", what, art.size, art.sum, br.Size, br.SHA256)
		}
		sig, err := os.ReadFile(sigFile.path)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(string(sig), "untrusted comment:") {
			return nil, fmt.Errorf("%s: %s is not a minisign signature file", what, br.Signature)
		}
		if err := verifyStaged(ctx, keys, art, sig, signing.Meta{Name: br.Name, Version: br.Version, OS: br.OS, Arch: br.Arch}); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		old, err := st.GetRelease(ctx, br.Name, br.Version, br.OS, br.Arch)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("%s: read the catalog: %w", what, err)
		case old.SHA256 == br.SHA256 && old.Size == br.Size:
			res.Present = append(res.Present, br)
		default:
			return nil, fmt.Errorf("%s is already in the catalog with other bytes (sha256 %s): a release is never replaced", what, old.SHA256)
		}
	}
	for _, p := range m.Patches {
		pf, ok := files[p.File]
		if !ok || !entryPatch.MatchString(p.File) {
			return nil, fmt.Errorf("patch %s %s to %s %s/%s: entry %q is not in the bundle", p.Name, p.FromVersion, p.ToVersion, p.OS, p.Arch, p.File)
		}
		if pf.size != p.Size || pf.sum != p.SHA256 {
			return nil, fmt.Errorf("patch %s %s to %s %s/%s: %d bytes with sha256 %s; the manifest says %d bytes, %s",
				p.Name, p.FromVersion, p.ToVersion, p.OS, p.Arch, pf.size, pf.sum, p.Size, p.SHA256)
		}
		if !seen[releaseKey(p.Name, p.ToVersion, p.OS, p.Arch)] {
			return nil, fmt.Errorf("patch %s %s to %s %s/%s: its target release is not in the bundle", p.Name, p.FromVersion, p.ToVersion, p.OS, p.Arch)
		}
		used[p.File] = true
		res.SkippedPatches++
	}
	for name := range files {
		if !used[name] {
			return nil, fmt.Errorf("entry %q is not in the manifest", name)
		}
	}
	return res, nil
}

// verifyStaged checks a staged artifact's signature by a trusted key and
// the release it names. A signature whose trusted comment carries the
// SHA-256 needs no second read; an older one needs minisign's pre-hash.
func verifyStaged(ctx context.Context, keys *signing.Keyring, art stagedFile, sig []byte, want signing.Meta) error {
	var mr *minisign.Reader
	if signing.NeedsPrehash(sig) {
		f, err := os.Open(art.path)
		if err != nil {
			return err
		}
		defer f.Close()
		mr = minisign.NewReader(ctxReader{ctx, f})
		if _, err := io.Copy(io.Discard, mr); err != nil {
			return err
		}
		return keys.Verify(mr, sig, want, art.sum, art.size)
	}
	return keys.Verify(nil, sig, want, art.sum, art.size)
}
