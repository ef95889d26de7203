//go:build !windows

package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/internal/sdnotify"
	"go.uber.org/zap"
)

// reloadOnSIGHUP reloads the TLS certificate on every SIGHUP until ctx
// ends or the returned stop is called; a bad new pair is logged and the
// old one stays in use.
func reloadOnSIGHUP(ctx context.Context, certs *controlplane.CertReloader, log *zap.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = sdnotify.Reloading()
				if err := certs.Reload(); err != nil {
					log.Error("reload the TLS certificate on SIGHUP: keeping the old one", zap.Error(err))
				} else {
					log.Info("reloaded the TLS certificate on SIGHUP")
				}
				_ = sdnotify.Ready()
			}
		}
	}()
	return func() { signal.Stop(hup); cancel() }
}
