// Package sdnotify tells systemd about a Type=notify service's state: it
// sends sd_notify datagrams to $NOTIFY_SOCKET, written by hand (no cgo, no
// libsystemd). Without NOTIFY_SOCKET (not under systemd, or on another OS)
// every call is a no-op.
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// Ready tells systemd the service is up (READY=1).
func Ready() error { return Notify("READY=1") }

// Reloading tells systemd the service is reloading its configuration; send
// Ready when done.
func Reloading() error { return Notify("RELOADING=1") }

// Stopping tells systemd the service is shutting down.
func Stopping() error { return Notify("STOPPING=1") }

// Notify sends state (newline-separated KEY=VALUE assignments) to the
// socket named by NOTIFY_SOCKET; it does nothing when that is unset.
func Notify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if name[0] == '@' {
		name = "\x00" + name[1:] // an abstract socket
	}
	if name[0] != '/' && name[0] != 0 {
		return fmt.Errorf("NOTIFY_SOCKET %q: not a unix socket path", name)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
