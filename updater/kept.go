package updater

import (
	"os"
	"path/filepath"

	"go.uber.org/zap"
)

// The binary an update replaced is kept in the state dir (previous/<name>)
// after the update commits: a later revert to that release (a fleet
// rollback) installs it without a download. It is verified like a download
// (size, SHA-256 and the job's signature) before it is used; the state dir
// is not a trust boundary.

// keptPath is where the binary the last committed update of name replaced
// is kept.
func (u *Updater) keptPath(name string) string {
	return filepath.Join(u.cfg.StateDir, "previous", safeName(name))
}

// keepPrevious moves a committed job's rollback copy to keptPath (a copy
// when the state dir is on another filesystem). A failure costs only the
// download a revert then needs.
func (u *Updater) keepPrevious(e *entry) {
	if e.Name == "" || !exists(e.Prev) {
		return
	}
	dst := u.keptPath(e.Name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		u.log.Warn("keep the previous binary", zap.String("path", dst), zap.Error(err))
		return
	}
	if err := renameSync(e.Prev, dst); err == nil {
		return
	}
	if err := copyFileSync(e.Prev, dst, 0o600); err != nil {
		u.log.Warn("keep the previous binary", zap.String("path", dst), zap.Error(err))
		_ = os.Remove(dst)
	}
}

// fetchKept returns the kept previous binary of t when it is the job's artifact
// (size, SHA-256, signature), or nil.
func (u *Updater) fetchKept(job Job, t Target, sig []byte) *Fetched {
	if t.Name == "" {
		return nil
	}
	path := u.keptPath(t.Name)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != job.Artifact.Size {
		return nil
	}
	f, err := u.verifyFile(path, job.Artifact, sig)
	if err != nil {
		return nil // another release, or damaged: download as usual
	}
	u.log.Info("the binary the last update replaced is this job's artifact; nothing to download",
		zap.String("job", job.ID), zap.String("target", t.Name), zap.String("version", job.Artifact.Version))
	f.Job, f.Kept = job, true
	return f
}
