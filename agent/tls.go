package agent

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/poolagent/poolagent/agent/config"
)

// errPinMismatch: the server's public key is not the pinned one.
var errPinMismatch = errors.New("the server's public key does not match server_pubkey_sha256")

// clientTLS is the TLS configuration of every connection to the server:
// the system roots or server_ca, the pinned public key when
// server_pubkey_sha256 is set, and client_cert for mutual TLS.
func clientTLS(cfg config.Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.ServerCA != "" {
		b, err := os.ReadFile(cfg.ServerCA)
		if err != nil {
			return nil, fmt.Errorf("server_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("server_ca: %s holds no PEM certificate", cfg.ServerCA)
		}
		tc.RootCAs = pool
	}
	if cfg.ServerPubkeySHA256 != "" {
		pin, err := config.ParsePin(cfg.ServerPubkeySHA256)
		if err != nil {
			return nil, fmt.Errorf("server_pubkey_sha256: %w", err)
		}
		// Runs after the chain is verified: the pin is checked besides it.
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errPinMismatch
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if !bytes.Equal(sum[:], pin) {
				return errPinMismatch
			}
			return nil
		}
	}
	if cfg.ClientCert != "" {
		c, err := tls.LoadX509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client_cert, client_key: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}
