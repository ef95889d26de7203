package updater

import (
	"io"
	"os"
	"path/filepath"

	"github.com/poolagent/poolagent/internal/atomicfile"
)

// syncDir fsyncs a directory so a rename or unlink in it is durable (a
// no-op on Windows, see internal/atomicfile).
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }

// copyFileSync copies src to dst (created with mode) and fsyncs dst.
func copyFileSync(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	_ = os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	// The umask may have narrowed the mode; the binary needs exactly it.
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// removeSync removes path (if present) and fsyncs its directory.
func removeSync(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// renameSync renames within one directory and fsyncs it.
func renameSync(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	return syncDir(filepath.Dir(to))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// siblings returns the staged and previous paths kept beside target: the
// same directory, so renames are atomic and links possible.
func siblings(target string) (staged, prev string) {
	dir, base := filepath.Split(target)
	return filepath.Join(dir, "."+base+".poolagent-new"), filepath.Join(dir, "."+base+".poolagent-prev")
}

func dirOf(path string) string { return filepath.Dir(path) }
