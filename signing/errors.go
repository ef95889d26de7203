package signing

import "errors"

// Verification failure classes. Every error Keyring.Verify returns wraps one
// of them, so errors.Is works; the updater re-exports them as its own.
var (
	// ErrSignature: the signature is missing, malformed, does not verify
	// against a pinned key, or was made by a revoked key.
	ErrSignature = errors.New("signature verification failed")
	// ErrUntrustedKey: the signature names a key that is not pinned.
	ErrUntrustedKey = errors.New("signature by an untrusted key")
	// ErrMetadata: the signed trusted comment names another program,
	// version, os or arch than the job.
	ErrMetadata = errors.New("signed metadata does not match the job")
)
