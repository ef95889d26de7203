package agent

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/internal/version"
	"github.com/poolagent/poolagent/updater"
)

// awaitsSelfConfirmLocked reports whether j is the self-update that
// installed this still unconfirmed binary.
func (d *Daemon) awaitsSelfConfirmLocked(j *state.Job) bool {
	return d.selfPending && j.Name == config.SelfName && j.Swapped && !j.Terminal()
}

// applySelfState handles what RecoverSelf found.
func (d *Daemon) applySelfState(self updater.SelfState) {
	var j *state.Job
	for _, x := range d.st.Jobs {
		if x.Name == config.SelfName && !x.Terminal() {
			j = x
		}
	}
	switch {
	case self.Pending:
		d.selfPending, d.selfConfirmBy = true, self.ConfirmBy
		d.log.Info("running a new poolagent binary; it is confirmed after the first good heartbeat",
			zap.String("version", version.String()), zap.Time("confirm_by", self.ConfirmBy))
		if j != nil {
			d.moveLocked(j, stepConfirm, 0, "")
		}
	case self.RolledBack:
		d.log.Warn("the last self-update was rolled back", zap.String("reason", self.Reason))
		if j != nil {
			d.finishLocked(j, fmt.Errorf("%w: %s", updater.ErrSelfRolledBack, self.Reason))
		}
	case j != nil && j.Swapped:
		// The swap happened and this binary is not pending: the
		// journal no longer knows it (confirmed earlier, or the
		// previous binary runs). Judge by the version.
		if version.String() == j.Version {
			d.finishLocked(j, nil)
			d.rememberPreviousLocked(config.SelfName, j.FromVersion, j.FromSHA256)
		} else {
			d.finishLocked(j, fmt.Errorf("%w: poolagent %s runs, not %s", updater.ErrSelfRolledBack, version.String(), j.Version))
		}
	}
	d.setAgentVersion(config.SelfName, version.String())
}

// selfTarget is poolagent's own target.
func (d *Daemon) selfTarget() updater.Target {
	return updater.Target{Name: config.SelfName, Path: d.exe, Version: version.String()}
}
