package controlplane

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/store"
)

// StopRollbackReason is rollout.halted of an update an operator stopped
// with ?rollback=true (when it had not halted already).
const StopRollbackReason = "STOPPED: an operator stopped the update and asked for a rollback"

// rollbackQuery reads the lifecycle actions' ?rollback= (only stop takes
// it): true asks for a fleet rollback.
func rollbackQuery(r *http.Request, a okta.UpdateAction) (bool, error) {
	v := r.URL.Query()
	if !v.Has("rollback") {
		return false, nil
	}
	if a != okta.ActionStop {
		return false, newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: rollback",
			"rollback: only the stop action takes it (POST .../stop?rollback=true)")
	}
	b, err := strconv.ParseBool(v.Get("rollback"))
	if err != nil {
		return false, newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: rollback",
			fmt.Sprintf("rollback: must be true or false, got %q", v.Get("rollback")))
	}
	return b, nil
}

// refuseDuringRollback is the 400 for an action that would undo the jobs
// of a fleet rollback in progress (retry, activate, delete).
func refuseDuringRollback(u *store.Update, a okta.UpdateAction) error {
	if !rollout.RollbackActive(u) {
		return nil
	}
	switch a {
	case okta.ActionRetry, okta.ActionActivate, okta.ActionDelete:
		return newOktaError(http.StatusBadRequest, okta.CodeValidation,
			fmt.Sprintf("Api validation failed: cannot %s update %s while its rollback is in progress", a, u.ID),
			fmt.Sprintf("rollout.rollback.state: %s is allowed once the rollback is %s; it is %s (watch rollout.rollback)",
				a, rollout.RollbackDone, rollout.RollbackInProgress))
	}
	return nil
}

// applyActionRollback is applyAction with the fleet rollback: a stop with
// rollback starts one (on a Failed or Cancelled update too: it keeps its
// status and rolls back the hosts it moved), and actions that would undo a rollback in
// progress are refused.
func applyActionRollback(u *store.Update, a okta.UpdateAction, rollback bool, now time.Time) error {
	if err := refuseDuringRollback(u, a); err != nil {
		return err
	}
	if rollback && a == okta.ActionStop && (u.Status == okta.JobFailed || u.Status == okta.JobCancelled) {
		if !rollout.StartRollback(u, StopRollbackReason) {
			return newOktaError(http.StatusBadRequest, okta.CodeValidation,
				fmt.Sprintf("Api validation failed: update %s is already rolling back", u.ID),
				"rollout.rollback.state: the rollback is InProgress (watch rollout.rollback)")
		}
		u.ModifiedAt = now
		return nil
	}
	if err := applyAction(u, a, now); err != nil {
		return err
	}
	if rollback {
		rollout.StartRollback(u, StopRollbackReason)
	}
	return nil
}
