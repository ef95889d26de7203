package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/poolagent/poolagent/internal/s3test"
	"github.com/poolagent/poolagent/signing"
)

// TestPublishToS3AndServe: `release publish --config` uploads to the S3
// store the config names (SeaweedFS, a real server), nothing lands in the
// data dir, and `serve` streams the artifact from the store with Range.
func TestPublishToS3AndServe(t *testing.T) {
	s3 := s3test.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s3.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3.SecretKey)
	dir := t.TempDir()
	addr := freeAddr(t)
	conf := filepath.Join(dir, "poolserver.toml")
	data := filepath.Join(dir, "data")
	os.WriteFile(conf, []byte(fmt.Sprintf(`listen = %q
data_dir = %q

[artifacts]
store = "s3"
endpoint = %q
bucket = %q
prefix = "pa/releases"
presign_expiry = "30m"
`, addr, data, s3.Endpoint, s3.Bucket)), 0o600)

	art := filepath.Join(dir, "ad-agent")
	body := bytes.Repeat([]byte("poolagent object store test\n"), 10000)
	os.WriteFile(art, body, 0o755)
	_, priv, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signing.Sign(priv, art, signing.Meta{Name: "AD", Version: "1.1.0", OS: "linux", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(art+".minisig", sig, 0o644)
	out := cli(t, "release", "publish", "--config", conf, "--name", "AD", "--version", "1.1.0", "--os", "linux", "--arch", "amd64",
		"--file", art, "--signature", art+".minisig")
	sum := sha256.Sum256(body)
	sha := hex.EncodeToString(sum[:])
	if !strings.Contains(out, "sha256="+sha) {
		t.Fatalf("publish printed %q", out)
	}
	info, err := s3.Client(t).StatObject(context.Background(), s3.Bucket, "pa/releases/"+sha, minio.StatObjectOptions{})
	if err != nil || info.Size != int64(len(body)) {
		t.Fatalf("object in the bucket: %+v %v", info, err)
	}
	if _, err := os.Stat(filepath.Join(data, "artifacts", sha)); err == nil {
		t.Error("the artifact was also written to the data dir")
	}

	var logs bytes.Buffer
	srv := exec.Command(binary, "serve", "--config", conf)
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	token := strings.TrimSpace(cli(t, "token", "create", "--data-dir", data, "--scope", "okta.agentPools.read"))
	get := func(rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", base+"/artifacts/AD/1.1.0/linux/amd64", nil)
		req.Header.Set("Authorization", "SSWS "+token)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, got := get("")
	if resp.StatusCode != 200 || !bytes.Equal(got, body) || resp.Header.Get("ETag") != `"`+sha+`"` {
		t.Fatalf("GET = %d, %d bytes, ETag %q\n%s", resp.StatusCode, len(got), resp.Header.Get("ETag"), logs.String())
	}
	resp, got = get("bytes=100000-")
	if resp.StatusCode != 206 || !bytes.Equal(got, body[100000:]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100000-%d/%d", len(body)-1, len(body)) {
		t.Errorf("ranged GET = %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(got))
	}

	// A bucket that does not exist stops publish with the key to fix.
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte(fmt.Sprintf("data_dir = %q\n[artifacts]\nstore = \"s3\"\nendpoint = %q\nbucket = \"nope-%d\"\n", data, s3.Endpoint, time.Now().UnixNano())), 0o600)
	cmd := exec.Command(binary, "release", "publish", "--config", bad, "--name", "AD", "--version", "1.2.0", "--os", "linux", "--arch", "amd64",
		"--file", art, "--signature", art+".minisig")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "artifacts.bucket: bucket") {
		t.Errorf("publish to a missing bucket: %v %s", err, b)
	}
}
