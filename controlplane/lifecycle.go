package controlplane

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/store"
)

// Action is an operator's action on an update: the wire type of api/okta,
// applied by the state machine of the rollout package (rollout.Transitions).
type Action = okta.UpdateAction

// The lifecycle actions of the Agent Pools API.
const (
	ActionActivate   = okta.ActionActivate
	ActionDeactivate = okta.ActionDeactivate
	ActionPause      = okta.ActionPause
	ActionResume     = okta.ActionResume
	ActionStop       = okta.ActionStop
	ActionRetry      = okta.ActionRetry
	ActionDelete     = okta.ActionDelete
)

// illegal is the 400 for an action the current status does not allow.
func illegal(u *store.Update, a Action) *oktaError {
	return newOktaError(http.StatusBadRequest, okta.CodeValidation,
		fmt.Sprintf("Api validation failed: cannot %s update %s while its status is %s", a, u.ID, u.Status),
		fmt.Sprintf("status: %s is allowed only when the status is one of %s; the update's status is %s",
			a, strings.Join(rollout.AllowedFrom(a, u.Schedule != nil), ", "), u.Status))
}

// applyAction moves u through the state machine and updates its agents,
// or returns the API's 400 when its status does not allow a.
func applyAction(u *store.Update, a Action, now time.Time) error {
	if !rollout.Apply(u, a, now) {
		return illegal(u, a)
	}
	return nil
}
