package main

import (
	"context"

	"github.com/poolagent/poolagent/controlplane"
	"go.uber.org/zap"
)

// reloadOnSIGHUP does nothing on Windows (no SIGHUP): restart the service
// to load a new certificate.
func reloadOnSIGHUP(context.Context, *controlplane.CertReloader, *zap.Logger) (stop func()) {
	return func() {}
}
