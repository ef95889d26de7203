package artifacts_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/poolagent/poolagent/controlplane/artifacts"
	"github.com/poolagent/poolagent/internal/s3test"
)

// store is what both implementations offer.
type store interface {
	Put(ctx context.Context, sha string, r io.Reader, size int64) error
	Open(ctx context.Context, sha string) (io.ReadSeekCloser, error)
	PresignGet(ctx context.Context, sha string, expiry time.Duration) (string, error)
}

func blob(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// exercise runs the same checks on any store: put, read with a seek, a
// missing key, a key that is not a SHA-256.
func exercise(t *testing.T, s store) {
	ctx := context.Background()
	b, sum := blob(t, 300<<10)
	if err := s.Put(ctx, sum, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	// Twice is fine: the same key is the same bytes.
	if err := s.Put(ctx, sum, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Put again: %v", err)
	}
	f, err := s.Open(ctx, sum)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer f.Close()
	if end, err := f.Seek(0, io.SeekEnd); err != nil || end != int64(len(b)) {
		t.Fatalf("Seek end = %d, %v; want %d", end, err, len(b))
	}
	if _, err := f.Seek(200<<10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, b[200<<10:]) {
		t.Fatalf("read after seek: %d bytes, %v", len(got), err)
	}
	_, missing := blob(t, 10)
	if _, err := s.Open(ctx, missing); !errors.Is(err, artifacts.ErrNotFound) {
		t.Errorf("Open(missing) = %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, "../etc/passwd", bytes.NewReader(nil), 0); err == nil {
		t.Error("Put with a path for a key succeeded")
	}
}

func TestDataDir(t *testing.T) {
	d := artifacts.NewDataDir(t.TempDir())
	exercise(t, d)
	// The bytes must match the key.
	b, _ := blob(t, 100)
	_, other := blob(t, 100)
	if err := d.Put(context.Background(), other, bytes.NewReader(b), 100); err == nil || !strings.Contains(err.Error(), "changed while it was stored") {
		t.Errorf("Put of other bytes = %v", err)
	}
	if u, err := d.PresignGet(context.Background(), other, time.Hour); u != "" || err != nil {
		t.Errorf("PresignGet = %q, %v; the data dir has no URL", u, err)
	}
}

// TestS3 runs the same checks against a real S3 server (SeaweedFS), then
// reads the object by presigned URL, whole and by Range, and checks that
// a tampered signature and an expired URL are refused by the store.
func TestS3(t *testing.T) {
	srv := s3test.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	s, err := artifacts.NewS3(artifacts.S3Config{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Prefix: "releases/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	exercise(t, s)

	b, sum := blob(t, 64<<10)
	if err := s.Put(ctx, sum, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client(t).StatObject(ctx, srv.Bucket, "releases/"+sum, minio.StatObjectOptions{}); err != nil {
		t.Errorf("object not under the prefix: %v", err)
	}
	u, err := s.PresignGet(ctx, sum, time.Hour)
	if err != nil || !strings.Contains(u, "X-Amz-Signature=") {
		t.Fatalf("PresignGet = %q, %v", u, err)
	}
	get := func(url, rng string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if code, body := get(u, ""); code != 200 || !bytes.Equal(body, b) {
		t.Errorf("GET presigned = %d, %d bytes", code, len(body))
	}
	if code, body := get(u, "bytes=1000-"); code != 206 || !bytes.Equal(body, b[1000:]) {
		t.Errorf("GET presigned with Range = %d, %d bytes", code, len(body))
	}
	if code, _ := get(strings.Replace(u, "X-Amz-Signature=", "X-Amz-Signature=0", 1), ""); code != 403 {
		t.Errorf("GET with a tampered signature = %d, want 403", code)
	}
	short, err := s.PresignGet(ctx, sum, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if code, _ := get(short, ""); code != 403 {
		t.Errorf("GET after expiry = %d, want 403", code)
	}
}

func TestS3Config(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	for _, tc := range []struct {
		name string
		cfg  artifacts.S3Config
		want string
	}{
		{"endpoint", artifacts.S3Config{Endpoint: "s3.example.com", Bucket: "b"}, "artifacts.endpoint:"},
		{"endpoint path", artifacts.S3Config{Endpoint: "https://s3.example.com/bucket", Bucket: "b"}, "artifacts.endpoint:"},
		{"bucket", artifacts.S3Config{Endpoint: "https://s3.example.com"}, "artifacts.bucket:"},
		{"no credentials", artifacts.S3Config{Endpoint: "https://s3.example.com", Bucket: "b"}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{"missing file", artifacts.S3Config{Endpoint: "https://s3.example.com", Bucket: "b", CredentialsFile: "testdata/nope"}, "artifacts.credentials_file:"},
		{"empty profile", artifacts.S3Config{Endpoint: "https://s3.example.com", Bucket: "b", CredentialsFile: "testdata/credentials", Profile: "empty"}, "profile [empty]"},
	} {
		if _, err := artifacts.NewS3(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewS3 = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if _, err := artifacts.NewS3(artifacts.S3Config{Endpoint: "https://s3.example.com", Bucket: "b", CredentialsFile: "testdata/credentials", Profile: "poolserver"}); err != nil {
		t.Errorf("credentials file: %v", err)
	}
}
