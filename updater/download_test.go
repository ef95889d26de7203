package updater

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"
)

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// cutAfter answers the first request for path with the full length
// announced but only half the body, then drops the connection.
func cutFirst(srv *artifactServer, path string, data []byte, etag string) {
	srv.before = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n != 1 || r.URL.Path != path {
			return false
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

func TestFetchProgress(t *testing.T) {
	s := newSigner(t)
	srv := newArtifactServer(t)
	data := randomBytes(t, 3<<20)
	job := srv.job(t, s, "/a", data, meta("1.1.0"))
	u := newTestUpdater(t, []string{s.pubText()}, nil)
	var got []Progress
	f, err := u.Fetch(t.Context(), job, Target{Version: "1.0.0"}, func(p Progress) { got = append(got, p) })
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.Path); !bytes.Equal(b, data) {
		t.Fatal("fetched file differs from the artifact")
	}
	if len(got) < 2 || got[len(got)-1].Percent != 100 || got[len(got)-1].Bytes != int64(len(data)) {
		t.Fatalf("progress = %+v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Percent <= got[i-1].Percent || got[i].Total != int64(len(data)) || got[i].JobID != job.ID {
			t.Fatalf("progress not increasing: %+v", got)
		}
	}
	// A second Fetch re-verifies the cached file instead of downloading.
	if _, err := u.Fetch(t.Context(), job, Target{}, nil); err != nil {
		t.Fatal(err)
	}
	if n := srv.count("/a"); n != 1 {
		t.Fatalf("artifact requested %d times, want 1", n)
	}
}

func TestFetchResumesAfterCutConnection(t *testing.T) {
	s := newSigner(t)
	data := randomBytes(t, 1<<20)
	for _, tc := range []struct {
		name    string
		retries int // within one Fetch; -1: the second Fetch resumes
	}{
		{"same fetch", 3},
		{"next fetch", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtifactServer(t)
			job := srv.job(t, s, "/a", data, meta("1.1.0"))
			etag := srv.files["/a"].etag
			cutFirst(srv, "/a", data, etag)
			u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) { c.Retries = tc.retries })
			_, err := u.Fetch(t.Context(), job, Target{}, nil)
			if tc.retries < 0 {
				if !errors.Is(err, ErrDownload) {
					t.Fatalf("first Fetch: %v, want ErrDownload", err)
				}
				_, err = u.Fetch(t.Context(), job, Target{}, nil)
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			h := srv.headers()
			if len(h) != 2 {
				t.Fatalf("%d requests, want 2", len(h))
			}
			if want := "bytes=" + strconv.Itoa(len(data)/2) + "-"; h[1].Get("Range") != want || h[1].Get("If-Range") != etag {
				t.Fatalf("resume request Range=%q If-Range=%q, want %q and %q", h[1].Get("Range"), h[1].Get("If-Range"), want, etag)
			}
		})
	}
}

func TestFetchStartsOverWhenETagChanged(t *testing.T) {
	s := newSigner(t)
	srv := newArtifactServer(t)
	old := randomBytes(t, 1<<20)
	cutFirst(srv, "/a", old, `"old-copy"`)
	u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) { c.Retries = -1 })
	// The server's copy changes between the cut and the retry, and the
	// new descriptor describes the new copy.
	data := randomBytes(t, 1<<20)
	job := srv.job(t, s, "/a", data, meta("1.1.0"))
	if _, err := u.Fetch(t.Context(), job, Target{}, nil); !errors.Is(err, ErrDownload) {
		t.Fatalf("first Fetch: %v, want ErrDownload", err)
	}
	f, err := u.Fetch(t.Context(), job, Target{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := srv.headers()
	if h[1].Get("If-Range") != `"old-copy"` || h[1].Get("Range") == "" {
		t.Fatalf("second request did not try to resume: %v", h[1])
	}
	if b, _ := os.ReadFile(f.Path); !bytes.Equal(b, data) {
		t.Fatal("fetched file is not the server's new copy")
	}
}

func TestFetchRefusesEndlessData(t *testing.T) {
	s := newSigner(t)
	data := randomBytes(t, 64<<10)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"chunked body beyond the size", func(w http.ResponseWriter, r *http.Request) {
			for range 100 {
				w.Write(data) // no Content-Length: chunked, endless from our view
			}
		}},
		{"announced length beyond the size", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(2*len(data)))
			w.Write(data)
			w.Write(data)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			u := newTestUpdater(t, []string{s.pubText()}, nil)
			job := Job{ID: "j", Artifact: Artifact{Meta: meta("1.1.0"), URL: srv.URL, Size: int64(len(data)), SHA256: sum(data), Signature: s.sign(t, data, meta("1.1.0"))}}
			_, err := u.Fetch(t.Context(), job, Target{}, nil)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Fetch: %v, want ErrTooLarge", err)
			}
			assertNoDownloads(t, u)
		})
	}
}

func TestFetchGivesUpOnStalledPeer(t *testing.T) {
	s := newSigner(t)
	data := randomBytes(t, 64<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:100])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // a peer that keeps the connection and sends nothing
	}))
	defer srv.Close()
	u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) {
		c.MinSpeed = 1 << 10
		c.StallTimeout = 300 * time.Millisecond
	})
	job := Job{ID: "j", Artifact: Artifact{Meta: meta("1.1.0"), URL: srv.URL, Size: int64(len(data)), SHA256: sum(data), Signature: s.sign(t, data, meta("1.1.0"))}}
	_, err := u.Fetch(t.Context(), job, Target{}, nil)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("Fetch: %v, want ErrStalled", err)
	}
}

func TestFetchWrongHashAndSize(t *testing.T) {
	s := newSigner(t)
	srv := newArtifactServer(t)
	data := readFixture(t, "agent-1.1.0.sh")
	evil := bytes.Replace(data, []byte("sleep 600"), []byte("sleep 666"), 1)
	for _, tc := range []struct {
		name   string
		served []byte
		want   error
	}{
		{"other bytes of the same length", evil, ErrHash},
		{"shorter file", data[:len(data)-1], ErrDownload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := srv.job(t, s, "/"+tc.name, data, meta("1.1.0"))
			srv.put("/"+tc.name, tc.served)
			u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) { c.Retries = -1 })
			_, err := u.Fetch(t.Context(), job, Target{}, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Fetch: %v, want %v", err, tc.want)
			}
		})
	}
	// A hash failure leaves nothing behind to resume from.
	job := srv.job(t, s, "/h", data, meta("1.1.0"))
	srv.put("/h", evil)
	u := newTestUpdater(t, []string{s.pubText()}, nil)
	if _, err := u.Fetch(t.Context(), job, Target{}, nil); !errors.Is(err, ErrHash) {
		t.Fatalf("Fetch: %v, want ErrHash", err)
	}
	assertNoDownloads(t, u)
}

func TestFetchDowngrade(t *testing.T) {
	s := newSigner(t)
	srv := newArtifactServer(t)
	data := readFixture(t, "agent-1.0.0.sh")
	job := srv.job(t, s, "/a", data, meta("1.0.0"))
	u := newTestUpdater(t, []string{s.pubText()}, nil)
	installed := Target{Version: "1.10.0"}
	if _, err := u.Fetch(t.Context(), job, installed, nil); !errors.Is(err, ErrDowngrade) {
		t.Fatalf("Fetch: %v, want ErrDowngrade", err)
	}
	if n := srv.count("/a"); n != 0 {
		t.Fatalf("a refused downgrade downloaded anyway (%d requests)", n)
	}
	job.AllowDowngrade = true
	if _, err := u.Fetch(t.Context(), job, installed, nil); err != nil {
		t.Fatalf("Fetch with AllowDowngrade: %v", err)
	}
}

func TestFetchSignatureURL(t *testing.T) {
	s := newSigner(t)
	srv := newArtifactServer(t)
	data := readFixture(t, "agent-1.1.0.sh")
	job := srv.job(t, s, "/a", data, meta("1.1.0"))
	job.Artifact.SignatureURL = srv.put("/a.minisig", job.Artifact.Signature)
	job.Artifact.Signature = nil
	u := newTestUpdater(t, []string{s.pubText()}, nil)
	if _, err := u.Fetch(t.Context(), job, Target{}, nil); err != nil {
		t.Fatal(err)
	}
	job.Artifact.SignatureURL = srv.URL + "/missing.minisig"
	if _, err := u.Fetch(t.Context(), job, Target{}, nil); !errors.Is(err, ErrSignature) {
		t.Fatalf("Fetch with a 404 signature: %v, want ErrSignature", err)
	}
}

func TestFetchTransportSecurity(t *testing.T) {
	s := newSigner(t)
	data := readFixture(t, "agent-1.1.0.sh")
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer tlsSrv.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer plain.Close()
	job := func(url string) Job {
		return Job{ID: "j", Artifact: Artifact{Meta: meta("1.1.0"), URL: url, Size: int64(len(data)), SHA256: sum(data), Signature: s.sign(t, data, meta("1.1.0"))}}
	}
	t.Run("plain http refused by default", func(t *testing.T) {
		u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) { c.AllowInsecureHTTP = false })
		if _, err := u.Fetch(t.Context(), job(plain.URL), Target{}, nil); err == nil {
			t.Fatal("plain http accepted")
		}
	})
	t.Run("unknown certificate refused", func(t *testing.T) {
		u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) { c.AllowInsecureHTTP = false })
		if _, err := u.Fetch(t.Context(), job(tlsSrv.URL), Target{}, nil); !errors.Is(err, ErrDownload) {
			t.Fatalf("Fetch: %v, want ErrDownload (certificate)", err)
		}
	})
	t.Run("pinned CA accepted", func(t *testing.T) {
		u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) {
			c.AllowInsecureHTTP = false
			c.TLSConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
		})
		if _, err := u.Fetch(t.Context(), job(tlsSrv.URL), Target{}, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func assertNoDownloads(t *testing.T, u *Updater) {
	t.Helper()
	des, err := os.ReadDir(u.cfg.StateDir + "/downloads")
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		t.Errorf("left in downloads: %s", de.Name())
	}
}
