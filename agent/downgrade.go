package agent

import (
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/internal/vercmp"
	"github.com/poolagent/poolagent/updater"
)

// codeDowngradeRefused prefixes the updateMessage of a job refused because
// it would install an older release than this host allows.
const codeDowngradeRefused = "DOWNGRADE_REFUSED"

// downgradeVerdict is what the host's downgrade policy says of a job.
type downgradeVerdict int

const (
	// notDowngrade: the job's version is not below the installed one (or
	// the installed version is unknown and cannot be compared).
	notDowngrade downgradeVerdict = iota
	// revertAllowed: back to the release the last update replaced, by
	// artifacts.allow_revert.
	revertAllowed
	// downgradeAllowed: by artifacts.allow_downgrade.
	downgradeAllowed
	// downgradeRefused: an older release this host does not allow.
	downgradeRefused
)

func (v downgradeVerdict) String() string {
	switch v {
	case notDowngrade:
		return "not a downgrade"
	case revertAllowed:
		return "revert allowed"
	case downgradeAllowed:
		return "downgrade allowed"
	}
	return "downgrade refused"
}

// downgradeQuery is everything the downgrade decision looks at.
type downgradeQuery struct {
	// Installed is the installed version ("" when unknown).
	Installed string
	// Version and SHA256 are the job's target version and its artifact's
	// SHA-256 (hex) from the job's descriptor.
	Version, SHA256 string
	// JobAllows is the job's allowDowngrade: the server asks for it.
	JobAllows bool
	// Previous is what the last committed update replaced (nil: none).
	Previous *state.Previous
	// Now is the host's clock.
	Now time.Time
	// AllowDowngrade and AllowRevert are the host's own config
	// (artifacts.allow_downgrade, artifacts.allow_revert).
	AllowDowngrade, AllowRevert bool
}

// decideDowngrade is the host's downgrade policy. A job below the installed
// version needs the job's allowDowngrade (the server asked for it) AND this
// host's consent: artifacts.allow_downgrade for any older release, or
// artifacts.allow_revert for exactly the release (version and SHA-256) the
// last update of this agent replaced, at most config.RevertWindow after that
// update. The server's flag alone never downgrades a host. reason says why,
// for a person.
func decideDowngrade(q downgradeQuery) (downgradeVerdict, string) {
	if q.Installed == "" || !vercmp.Valid(q.Installed) || vercmp.Compare(q.Version, q.Installed) >= 0 {
		return notDowngrade, ""
	}
	if !q.JobAllows {
		return downgradeRefused, "the job does not allow a downgrade (allowDowngrade)"
	}
	if q.AllowDowngrade {
		return downgradeAllowed, "artifacts.allow_downgrade is set in this host's config"
	}
	const fix = "set artifacts.allow_downgrade = true in this host's config to allow downgrades"
	if !q.AllowRevert {
		return downgradeRefused, "artifacts.allow_downgrade and artifacts.allow_revert are off in this host's config; " + fix
	}
	p := q.Previous
	switch {
	case p == nil || p.Version == "" || p.SHA256 == "":
		return downgradeRefused, "this host remembers no earlier release of it to revert to, and artifacts.allow_downgrade is off; " + fix
	case !vercmp.Valid(p.Version) || vercmp.Compare(q.Version, p.Version) != 0:
		return downgradeRefused, fmt.Sprintf("the only release it may revert to is %s, which ran before its last update, and artifacts.allow_downgrade is off; %s", p.Version, fix)
	case !strings.EqualFold(q.SHA256, p.SHA256):
		return downgradeRefused, fmt.Sprintf("the artifact's SHA-256 %s is not that of the %s binary this host ran before (%s): another build of that version; %s", q.SHA256, p.Version, p.SHA256, fix)
	case q.Now.Sub(p.At) > config.RevertWindow:
		return downgradeRefused, fmt.Sprintf("the update that replaced %s committed at %s, more than %d days ago, and a revert is only allowed within that; %s",
			p.Version, p.At.UTC().Format(time.RFC3339), int(config.RevertWindow/(24*time.Hour)), fix)
	}
	return revertAllowed, fmt.Sprintf("a revert to the %s build this host ran before its last update at %s (artifacts.allow_revert)", p.Version, p.At.UTC().Format(time.RFC3339))
}

// checkDowngrade applies the host's downgrade policy to j on t before
// anything is downloaded. It reports whether the updater may install an
// older version, or a *precheckError with DOWNGRADE_REFUSED.
func (d *Daemon) checkDowngrade(j *state.Job, t updater.Target, log *zap.Logger) (bool, error) {
	q := downgradeQuery{Installed: t.Version, Version: j.Version, JobAllows: j.Spec.AllowDowngrade, Now: time.Now()}
	if a := j.Spec.ManagedProcessConfiguration[j.Name].Artifact; a != nil {
		q.SHA256 = a.SHA256
	}
	d.mu.Lock()
	q.AllowDowngrade, q.AllowRevert = d.cfg.Artifacts.AllowDowngrade, d.cfg.Artifacts.AllowRevert
	if s := d.st.Agents[j.Name]; s != nil && s.Previous != nil {
		p := *s.Previous
		q.Previous = &p
	}
	d.mu.Unlock()
	v, reason := decideDowngrade(q)
	switch v {
	case downgradeRefused:
		return false, &precheckError{codeDowngradeRefused, fmt.Sprintf("%s is at %s on this host and the job would install the older %s: %s; nothing was downloaded or changed",
			j.Name, t.Version, j.Version, reason)}
	case revertAllowed, downgradeAllowed:
		log.Warn("the job downgrades this agent", zap.String("installed", t.Version), zap.String("reason", reason))
		return true, nil
	}
	return false, nil
}

// rememberPreviousLocked records, when an update of name committed, the
// release it replaced: the one allow_revert may go back to. Nothing is
// recorded when nothing was replaced (sha256 empty).
func (d *Daemon) rememberPreviousLocked(name, version, sha256 string) {
	if sha256 == "" {
		return
	}
	s := d.st.Agents[name]
	if s == nil {
		s = &state.Agent{}
		d.st.Agents[name] = s
	}
	s.Previous = &state.Previous{Version: version, SHA256: strings.ToLower(sha256), At: time.Now().UTC()}
}
