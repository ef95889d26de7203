package updater

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/poolagent/poolagent/signing"
)

// signer is a release key.
type signer struct {
	pub  minisign.PublicKey
	priv minisign.PrivateKey
}

func newSigner(t testing.TB) signer {
	t.Helper()
	pub, priv, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return signer{pub, priv}
}

func (s signer) pubText() string { return s.pub.String() }

// signLegacy signs data the way the minisign CLI does with a trusted
// comment that carries no digest (`minisign -S -t "poolagent-artifact ..."`).
func (s signer) signLegacy(t testing.TB, data []byte, m Meta) []byte {
	t.Helper()
	mr := minisign.NewReader(bytes.NewReader(data))
	if _, err := io.Copy(io.Discard, mr); err != nil {
		t.Fatal(err)
	}
	return mr.SignWithComments(s.priv, signing.TrustedComment(m.Name, m.Version, m.OS, m.Arch), "legacy")
}

func (s signer) sign(t testing.TB, data []byte, m Meta) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "artifact")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sig, err := signing.Sign(s.priv, p, m)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func meta(version string) Meta {
	return Meta{Name: "AD", Version: version, OS: "linux", Arch: "amd64"}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// artifactServer serves files by path with ETags, Range and If-Range
// (http.ServeContent), and records the requests it saw.
type artifactServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string]served
	reqs  []http.Header
	paths []string
	// before, if set, may answer a request itself (return true).
	before func(w http.ResponseWriter, r *http.Request, n int) bool
}

type served struct {
	data []byte
	etag string
}

func newArtifactServer(t testing.TB) *artifactServer {
	s := &artifactServer{files: map[string]served{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *artifactServer) put(path string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = served{data: data, etag: `"` + sum(data)[:16] + `"`}
	return s.URL + path
}

func (s *artifactServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.paths {
		if p == path {
			n++
		}
	}
	return n
}

func (s *artifactServer) headers() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.reqs...)
}

func (s *artifactServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Header.Clone())
	s.paths = append(s.paths, r.URL.Path)
	n := len(s.reqs)
	f, ok := s.files[r.URL.Path]
	before := s.before
	s.mu.Unlock()
	if before != nil && before(w, r, n) {
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(f.data)))
}

// job describes data as version v of AD, served at path and signed by s.
func (srv *artifactServer) job(t testing.TB, s signer, path string, data []byte, m Meta) Job {
	url := srv.put(path, data)
	return Job{
		ID: "job-" + m.Version,
		Artifact: Artifact{
			Meta: m, URL: url, Size: int64(len(data)), SHA256: sum(data),
			Signature: s.sign(t, data, m),
		},
	}
}

func newTestUpdater(t testing.TB, keys []string, mod func(*Config)) *Updater {
	t.Helper()
	cfg := Config{StateDir: t.TempDir(), TrustedKeys: keys, AllowInsecureHTTP: true}
	if mod != nil {
		mod(&cfg)
	}
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// fetchAndApply runs a job as poolagent does: Fetch, then Apply.
func fetchAndApply(ctx context.Context, u *Updater, job Job, t Target, onPhase PhaseFunc) (Result, error) {
	f, err := u.Fetch(ctx, job, t, nil)
	if err != nil {
		return Result{}, err
	}
	return u.Apply(ctx, f, t, onPhase)
}
