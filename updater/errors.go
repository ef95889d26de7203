package updater

import (
	"errors"

	"github.com/poolagent/poolagent/signing"
)

// Failure classes the daemon maps to failure codes. Every error returned by
// this package that stems from one of these wraps it, so errors.Is works.
var (
	// ErrDownload: the artifact could not be fetched (network, HTTP status).
	ErrDownload = errors.New("download failed")
	// ErrTooLarge: the server sent more bytes than the descriptor's size.
	ErrTooLarge = errors.New("artifact larger than its descriptor")
	// ErrDiskFull: the state dir's file system (or the user's quota) ran
	// out of space while writing the download.
	ErrDiskFull = errors.New("disk full")
	// ErrStalled: the peer stayed below the minimum speed for too long.
	ErrStalled = errors.New("download stalled")
	// ErrSize: the artifact's length differs from the descriptor's size.
	ErrSize = errors.New("size mismatch")
	// ErrHash: the artifact's SHA-256 differs from the descriptor's.
	ErrHash = errors.New("sha256 mismatch")
	// ErrSignature: the signature is missing, malformed, does not verify
	// against a pinned key, or was made by a revoked key (the same value as
	// signing.ErrSignature).
	ErrSignature = signing.ErrSignature
	// ErrUntrustedKey: the signature names a key that is not pinned.
	ErrUntrustedKey = signing.ErrUntrustedKey
	// ErrMetadata: the signed trusted comment names another program,
	// version, os or arch than the job.
	ErrMetadata = signing.ErrMetadata
	// ErrDowngrade: the job would install a version below the installed
	// one and Job.AllowDowngrade is not set.
	ErrDowngrade = errors.New("downgrade refused")
	// ErrPatch: a binary patch could not be applied or gave the wrong
	// result; the full artifact is used instead, so this is only reported
	// when the fallback is impossible.
	ErrPatch = errors.New("patch failed")
	// ErrService: the managed program's service could not be stopped or
	// started.
	ErrService = errors.New("service control failed")
	// ErrHealthCheck: the new version did not pass its health check and
	// was rolled back.
	ErrHealthCheck = errors.New("health check failed")
	// ErrRollback: rolling back failed; the host needs an operator.
	ErrRollback = errors.New("rollback failed")
	// ErrSelfRolledBack: poolagent's own new binary never confirmed and
	// the previous binary was restored; the daemon should exit so its
	// service manager restarts the restored binary.
	ErrSelfRolledBack = errors.New("self-update rolled back")
	// ErrBusy: another job for the same target is unfinished in the
	// journal; run Recover first.
	ErrBusy = errors.New("unfinished job in the journal")
)
