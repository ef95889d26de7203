// Package updater downloads, verifies and installs new versions of the
// programs poolagent manages, and of poolagent itself.
//
// An update runs in phases: download (streamed to the state dir while
// hashing, resumable, bounded), verify (size, SHA-256, a minisign signature
// by a pinned key whose trusted comment binds name, version, os and arch,
// and the downgrade rule), stage (a copy beside the target), stop, swap (an
// atomic rename with the previous binary kept as a hard link), start,
// health check, then commit or roll back. Every phase is written to a
// journal in the state dir before it acts, so Recover can finish or undo a
// job after a crash and the target always holds the old or the new binary.
//
// poolagent's own binary goes through minio/selfupdate (ApplySelf); the new
// binary must call ConfirmSelf after its first good heartbeat, and
// RecoverSelf, run at start, restores the previous binary when the new one
// never confirmed.
//
// See docs/updater.md for the design, the journal format and the trust model.
package updater
