package agent

import (
	"fmt"
	"path/filepath"

	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/internal/vercmp"
	"github.com/poolagent/poolagent/internal/version"
	"github.com/poolagent/poolagent/updater"
)

// Precheck failure codes (updateMessage prefixes).
const (
	codePrecheckDisk    = "PRECHECK_DISK"
	codePrecheckVersion = "PRECHECK_VERSION"
	codePrecheckAgent   = "PRECHECK_AGENT"
)

// precheckError is a failed precheck: its code and a sentence for an
// operator. Nothing was downloaded or stopped.
type precheckError struct {
	code string
	msg  string
}

func (e *precheckError) Error() string { return e.msg }

// minFreeMargin is the least margin the default disk precheck adds.
const minFreeMargin = 16 << 20

// freeBytesNeeded is what the disk precheck requires when the job does not
// say: the artifact twice (the download and the rollback copy) plus 10%,
// at least 16 MiB (the server's own formula).
func freeBytesNeeded(size int64) int64 {
	return 2*size + max(size/10, minFreeMargin)
}

// precheck checks a job's Precheck before anything is downloaded: the
// poolagent version, the installed version the update starts from, and
// free space in the state dir and beside the binary it replaces. A job
// without Precheck passes.
func (d *Daemon) precheck(j *state.Job, t updater.Target) error {
	pc := j.Spec.Precheck
	if pc == nil {
		return nil
	}
	if m := pc.MinPoolagentVersion; m != "" {
		v := version.String()
		if v != "dev" && vercmp.Valid(v) && vercmp.Compare(v, m) < 0 {
			return &precheckError{codePrecheckAgent, fmt.Sprintf("poolagent %s runs on this host, the job needs %s or newer: update poolagent first", v, m)}
		}
	}
	if from := pc.FromVersion; from != "" && t.Version != from && (!vercmp.Valid(t.Version) || vercmp.Compare(t.Version, from) != 0) {
		installed := t.Version
		if installed == "" {
			installed = "of an unknown version"
		} else {
			installed = "at " + installed
		}
		return &precheckError{codePrecheckVersion, fmt.Sprintf("%s is %s on this host, the update expected %s: the host changed since the server planned the job", j.Name, installed, from)}
	}
	need := pc.FreeBytes
	mp := j.Spec.ManagedProcessConfiguration[j.Name]
	if need <= 0 && mp.Artifact != nil {
		need = freeBytesNeeded(mp.Artifact.Size)
	}
	if need <= 0 {
		return nil
	}
	// What an earlier attempt already downloaded need not be free again.
	have := d.upd.Downloaded(updaterJob(j))
	dirs := []string{d.cfg.StateDir}
	if t.Path != "" {
		dirs = append(dirs, filepath.Dir(t.Path))
	}
	for i, dir := range dirs {
		free, err := d.freeSpace(dir)
		if err != nil {
			return &precheckError{codePrecheckDisk, fmt.Sprintf("cannot tell the free space in %s: %v", dir, err)}
		}
		want := need
		if i == 0 {
			want = max(need-have, 0)
		}
		if int64(free) < want {
			return &precheckError{codePrecheckDisk, fmt.Sprintf("%s free in %s, the update needs %s", mib(int64(free)), dir, mib(want))}
		}
	}
	return nil
}

// mib renders a size in MiB for a person.
func mib(n int64) string {
	if n < 1<<20 && n > 0 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
