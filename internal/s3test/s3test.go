// Package s3test runs a real S3-compatible server for tests: SeaweedFS's
// `weed server -s3` on loopback, with free ports, its data in a temporary
// directory and one identity (access key and secret) of its own. The
// binary is $POOLAGENT_TEST_WEED, else `weed` on PATH or in GOPATH/bin
// (.ci/run installs it). Without it a test is skipped, or fails under
// CI=true, where S3 tests must never be skipped silently.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnvWeed names the weed binary to use instead of looking for it.
const EnvWeed = "POOLAGENT_TEST_WEED"

// Server is a running S3 endpoint with an empty bucket.
type Server struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the only identity the server accepts.
	AccessKey, SecretKey string
	// Bucket exists and is empty.
	Bucket string
}

// Binary returns the weed binary's path, or skips (fails under CI=true).
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvWeed); p != "" {
		return p
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	if p := filepath.Join(gopath, "bin", "weed"); gopath != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("S3 tests cannot run: no weed binary (SeaweedFS) on PATH, in GOPATH/bin or in %s, and CI must not skip them (.ci/run installs it)", EnvWeed)
	}
	t.Skipf("S3 tests skipped: install SeaweedFS's weed (see .ci/run) or set %s", EnvWeed)
	return ""
}

// Start runs a server for the test, stopped when it ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	s := &Server{AccessKey: "poolagent-test-" + randHex(4), SecretKey: randHex(20), Bucket: "poolagent-" + randHex(4)}
	conf := map[string]any{"identities": []any{map[string]any{
		"name":        "poolserver",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	b, _ := json.Marshal(conf)
	confPath := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(confPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 8)
	s3port := ports[6]
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"server",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=" + data,
		"-master.port=" + ports[0], "-master.port.grpc=" + ports[1], "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
		"-volume.port=" + ports[2], "-volume.port.grpc=" + ports[3], "-volume.max=8",
		"-filer", "-filer.port=" + ports[4], "-filer.port.grpc=" + ports[5], "-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3", "-s3.port=" + s3port, "-s3.port.grpc=" + ports[7], "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.config=" + confPath, "-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
	}
	logf, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start weed: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	s.Endpoint = "http://127.0.0.1:" + s3port
	c, err := minio.New("127.0.0.1:"+s3port, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	// The S3 gateway answers before the filer and volume behind it are
	// ready: wait until a bucket can be made.
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("weed exited while starting:\n%s", tail(log))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: "us-east-1"})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("weed's S3 did not come up within 90s (last error: %v):\n%s", err, tail(log))
		}
		time.Sleep(300 * time.Millisecond)
	}
	return s
}

// Client returns a client with the server's identity.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var ls []net.Listener
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
