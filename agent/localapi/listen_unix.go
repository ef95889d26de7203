//go:build !windows

package localapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
)

// Endpoint says where the local API listens: a unix socket on Unix.
type Endpoint struct {
	// Socket is the unix socket's path.
	Socket string
	// Listen and TokenFile are used on Windows only.
	Listen, TokenFile string
}

// Listen opens the local API's socket with mode 0600 (owner only) and
// returns it with the token clients must send ("" on Unix: the socket's
// permissions are the access control).
func Listen(e Endpoint) (net.Listener, string, error) {
	if err := os.MkdirAll(filepath.Dir(e.Socket), 0o700); err != nil {
		return nil, "", fmt.Errorf("local API: %w", err)
	}
	// A socket left by a killed daemon refuses connections: replace it.
	if fi, err := os.Lstat(e.Socket); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, "", fmt.Errorf("local API: %s exists and is not a socket", e.Socket)
		}
		if c, err := net.Dial("unix", e.Socket); err == nil {
			c.Close()
			return nil, "", fmt.Errorf("local API: %s is in use: is another poolagent running?", e.Socket)
		}
		if err := os.Remove(e.Socket); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("local API: %w", err)
		}
	}
	// The umask makes the socket owner-only from its creation; the chmod
	// makes sure.
	old := umask(0o177)
	l, err := net.Listen("unix", e.Socket)
	umask(old)
	if err != nil {
		return nil, "", fmt.Errorf("local API: %w", err)
	}
	if err := os.Chmod(e.Socket, 0o600); err != nil {
		l.Close()
		return nil, "", fmt.Errorf("local API: %w", err)
	}
	return l, "", nil
}

// Dial returns a client for the local API at e.
func Dial(e Endpoint) (*Client, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.Socket)
		},
	}
	return &Client{http: &http.Client{Transport: tr}, base: "http://poolagent", Where: "unix socket " + e.Socket}, nil
}
