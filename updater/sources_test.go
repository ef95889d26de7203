package updater

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// TestFetchSources: the mirrors are tried in order before the URL; a
// source that is missing, unreachable, serves other bytes or refuses is
// abandoned for the next; the first verified file wins; when every source
// fails the last one's error is the job's.
func TestFetchSources(t *testing.T) {
	s := newSigner(t)
	data := randomBytes(t, 256<<10)
	tampered := bytes.Clone(data)
	tampered[1000] ^= 1
	for _, tc := range []struct {
		name    string
		mirrors []string // paths on the server, or full URLs
		url     string
		wantErr error
		want    []string // paths requested, in order
	}{
		{"first mirror", []string{"/good", "/tampered"}, "/origin", nil, []string{"/good"}},
		{"missing then tampered then origin", []string{"/missing", "/tampered"}, "/origin", nil, []string{"/missing", "/tampered", "/origin"}},
		{"unreachable mirror", []string{"http://127.0.0.1:1/x", "/good"}, "/origin", nil, []string{"/good"}},
		{"refused scheme", []string{"ftp://mirror.example.com/x"}, "/origin", nil, []string{"/origin"}},
		{"all fail", []string{"/tampered"}, "/missing", errHTTPStatus, []string{"/tampered", "/missing"}},
		{"origin tampered", []string{"/missing"}, "/tampered", ErrHash, []string{"/missing", "/tampered"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtifactServer(t)
			job := srv.job(t, s, "/origin", data, meta("1.1.0"))
			srv.put("/good", data)
			srv.put("/tampered", tampered)
			abs := func(p string) string {
				if strings.HasPrefix(p, "/") {
					return srv.URL + p
				}
				return p
			}
			for _, m := range tc.mirrors {
				job.Artifact.Mirrors = append(job.Artifact.Mirrors, abs(m))
			}
			job.Artifact.URL = abs(tc.url)
			u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) { c.Retries = -1 })
			f, err := u.Fetch(t.Context(), job, Target{}, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Fetch = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Fetch: %v", err)
			} else if b, _ := os.ReadFile(f.Path); !bytes.Equal(b, data) {
				t.Fatal("the fetched file is not the release")
			}
			srv.mu.Lock()
			got := append([]string(nil), srv.paths...)
			srv.mu.Unlock()
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("requests %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFetchRefreshedURL: a presigned URL that expired after the
// connection was cut is replaced by the job's refreshed one, and the
// download resumes (Range) from where it stopped, not from scratch.
func TestFetchRefreshedURL(t *testing.T) {
	s := newSigner(t)
	data := randomBytes(t, 1<<20)
	srv := newArtifactServer(t)
	job := srv.job(t, s, "/a", data, meta("1.1.0"))
	etag := srv.files["/a"].etag
	var expired atomic.Bool
	srv.before = func(w http.ResponseWriter, r *http.Request, n int) bool {
		switch sig := r.URL.Query().Get("sig"); {
		case sig == "old" && expired.Load():
			http.Error(w, "Request has expired", http.StatusForbidden)
			return true
		case sig == "old":
			expired.Store(true) // it expires while the body flows
			w.Header().Set("ETag", etag)
			w.Header().Set("Content-Length", "1048576")
			w.WriteHeader(http.StatusOK)
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case sig != "new":
			http.Error(w, "bad signature", http.StatusForbidden)
			return true
		}
		return false
	}
	job.Artifact.URL = srv.URL + "/a?sig=old"
	job.Refresh = func() Artifact {
		a := job.Artifact
		a.URL = srv.URL + "/a?sig=new"
		if !expired.Load() {
			a.URL = srv.URL + "/a?sig=old"
		}
		return a
	}
	u := newTestUpdater(t, []string{s.pubText()}, nil)
	f, err := u.Fetch(t.Context(), job, Target{}, nil)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if b, _ := os.ReadFile(f.Path); !bytes.Equal(b, data) {
		t.Fatal("the fetched file is not the release")
	}
	h := srv.headers()
	if len(h) != 2 || h[1].Get("Range") != "bytes=524288-" {
		t.Fatalf("requests %v; want the cut one, then a resume with Range from the middle", h)
	}
}
