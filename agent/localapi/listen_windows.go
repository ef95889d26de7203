package localapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/poolagent/poolagent/platform/fsacl"
)

// Endpoint says where the local API listens: on Windows a loopback address
// with a bearer token kept in TokenFile.
type Endpoint struct {
	// Socket is used on Unix only.
	Socket string
	// Listen is the loopback address; TokenFile holds the token.
	Listen, TokenFile string
}

// Listen opens the loopback listener and writes a fresh token to
// e.TokenFile. The file gets a protected ACL letting only SYSTEM and
// Administrators read it (platform/fsacl) before the token is written.
func Listen(e Endpoint) (net.Listener, string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", fmt.Errorf("local API: %w", err)
	}
	token := hex.EncodeToString(b[:])
	if err := writeToken(e.TokenFile, token); err != nil {
		return nil, "", fmt.Errorf("local API: token file: %w", err)
	}
	l, err := net.Listen("tcp", e.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("local API: %w", err)
	}
	return l, token, nil
}

// Dial returns a client for the local API at e, reading its token.
func Dial(e Endpoint) (*Client, error) {
	b, err := os.ReadFile(e.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("poolagent is not running or its token is unreadable (run as Administrator): %w", err)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", e.Listen)
	}}
	return &Client{http: &http.Client{Transport: tr}, base: "http://" + e.Listen, token: strings.TrimSpace(string(b)), Where: e.Listen}, nil
}

// writeToken creates or truncates path, restricts it to SYSTEM and
// Administrators, and only then writes the token into it.
func writeToken(path, token string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := fsacl.RestrictFile(path); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
