// Package signing makes and checks the minisign signatures of poolagent's
// release artifacts: key generation, signing, the trusted-comment format
// that binds an artifact to a program, version, platform and digest, and
// the agent's keyring that verifies them.
//
// It is a leaf both programs import: poolserver signs releases with it
// without linking the updater, and the updater verifies downloads with it,
// so the format a signature binds has one definition.
//
// See docs/updater.md for the trust model.
package signing
