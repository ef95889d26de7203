//go:build !windows

package main

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/internal/devpki"
	"go.uber.org/zap"
)

// TestSIGHUPReloadsTheCertificate: a SIGHUP makes serve load the key pair
// again from its files.
func TestSIGHUPReloadsTheCertificate(t *testing.T) {
	ca, err := devpki.NewCA(t.TempDir(), "ca")
	if err != nil {
		t.Fatal(err)
	}
	first, err := ca.Server("server")
	if err != nil {
		t.Fatal(err)
	}
	certs, err := controlplane.NewCertReloader(first.CertFile, first.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := certs.GetCertificate(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := reloadOnSIGHUP(ctx, certs, zap.NewNop())
	defer stop()
	second, err := ca.Server("second")
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{second.CertFile: first.CertFile, second.KeyFile: first.KeyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for {
		if c, _ := certs.GetCertificate(nil); c != before {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal("the certificate was not reloaded on SIGHUP")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
