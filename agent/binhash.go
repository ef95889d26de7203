package agent

import (
	"os"
	"sync"
	"time"

	"github.com/poolagent/poolagent/updater"
)

// binHashes caches the SHA-256 of installed binaries by path, size and
// modification time: the heartbeat reports each binary's hash (the server
// offers a patch only from those exact bytes) without reading a 100 MB
// file every interval. A swap renames a new file into place, which changes
// its size or time; a file changed in place within the same second at the
// same size is not noticed, and the updater checks the hash itself before
// it patches.
type binHashes struct {
	mu sync.Mutex
	m  map[string]binHash
}

type binHash struct {
	size    int64
	modTime time.Time
	sha     string
}

// sum returns path's SHA-256 (hex), or "" when it cannot be read.
func (c *binHashes) sum(path string) string {
	if path == "" {
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	c.mu.Lock()
	h, ok := c.m[path]
	c.mu.Unlock()
	if ok && h.size == fi.Size() && h.modTime.Equal(fi.ModTime()) {
		return h.sha
	}
	sha, err := updater.HashFile(path)
	if err != nil {
		return ""
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]binHash{}
	}
	c.m[path] = binHash{size: fi.Size(), modTime: fi.ModTime(), sha: sha}
	c.mu.Unlock()
	return sha
}
