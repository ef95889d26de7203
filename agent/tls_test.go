package agent

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/internal/devpki"
)

// TestAgentVerifiesTheServer: poolagent's transport refuses a server whose
// certificate does not chain to server_ca (or the system roots), or whose
// public key is not the pinned one, and presents client_cert when asked.
func TestAgentVerifiesTheServer(t *testing.T) {
	dir := t.TempDir()
	ca, err := devpki.NewCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	other, err := devpki.NewCA(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Server("server")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := ca.Server("stranger") // same CA, another key
	if err != nil {
		t.Fatal(err)
	}
	clientPair, err := ca.Client("host1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mtls" && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	leaf := srv.TLS.Certificates[0].Leaf
	if leaf == nil {
		t.Fatal("no leaf")
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	hexPin := strings.ToUpper(hex.EncodeToString(sum[:]))

	tests := []struct {
		name    string
		mutate  func(*config.Config)
		path    string
		wantErr string // "" : HTTP 204
	}{
		{"system roots do not know the CA", func(c *config.Config) {}, "/", "certificate"},
		{"server_ca of another CA", func(c *config.Config) { c.ServerCA = other.CertFile }, "/", "certificate"},
		{"server_ca", func(c *config.Config) { c.ServerCA = ca.CertFile }, "/", ""},
		{"pinned key, base64", func(c *config.Config) { c.ServerCA, c.ServerPubkeySHA256 = ca.CertFile, pair.SPKISHA256 }, "/", ""},
		{"pinned key, hex", func(c *config.Config) { c.ServerCA, c.ServerPubkeySHA256 = ca.CertFile, hexPin }, "/", ""},
		{"pinned key mismatch", func(c *config.Config) { c.ServerCA, c.ServerPubkeySHA256 = ca.CertFile, stranger.SPKISHA256 }, "/",
			"server_pubkey_sha256"},
		{"client certificate presented", func(c *config.Config) {
			c.ServerCA, c.ClientCert, c.ClientKey = ca.CertFile, clientPair.CertFile, clientPair.KeyFile
		}, "/mtls", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			tt.mutate(&cfg)
			tr, err := newTransport(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get(srv.URL + tt.path)
			if tt.wantErr != "" {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("HTTP %d, want the connection refused (%s)", resp.StatusCode, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("HTTP %d, want 204", resp.StatusCode)
			}
		})
	}
}

func TestParsePinAndTLSConfigKeys(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*config.Config)
		wantErr string
	}{
		{"base64 pin", func(c *config.Config) { c.ServerPubkeySHA256 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" }, ""},
		{"hex pin with colons", func(c *config.Config) { c.ServerPubkeySHA256 = strings.Repeat("ab:", 31) + "ab" }, ""},
		{"short pin", func(c *config.Config) { c.ServerPubkeySHA256 = "abcd" }, "server_pubkey_sha256"},
		{"relative server_ca", func(c *config.Config) { c.ServerCA = "ca.pem" }, "server_ca"},
		{"client_cert without key", func(c *config.Config) { c.ClientCert = "/etc/poolagent/c.pem" }, "client_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.SelfUpdate.Enabled = false
			tt.mutate(&cfg)
			err := cfg.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}
