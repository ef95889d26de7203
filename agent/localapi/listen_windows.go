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
// e.TokenFile. The file is created in the state dir, whose ACL (set by the
// installer) lets only Administrators and SYSTEM read it.
func Listen(e Endpoint) (net.Listener, string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", fmt.Errorf("local API: %w", err)
	}
	token := hex.EncodeToString(b[:])
	if err := os.WriteFile(e.TokenFile, []byte(token+"\n"), 0o600); err != nil {
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
