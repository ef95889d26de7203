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

// illegal is the 400 for an action the current status does not allow.
func illegal(u *store.Update, a okta.UpdateAction) *oktaError {
	return newOktaError(http.StatusBadRequest, okta.CodeValidation,
		fmt.Sprintf("Api validation failed: cannot %s update %s while its status is %s", a, u.ID, u.Status),
		fmt.Sprintf("status: %s is allowed only when the status is one of %s; the update's status is %s",
			a, strings.Join(rollout.AllowedFrom(a, u.Schedule != nil), ", "), u.Status))
}

// applyAction moves u through the state machine and updates its agents,
// or returns the API's 400 when its status does not allow a.
func applyAction(u *store.Update, a okta.UpdateAction, now time.Time) error {
	if !rollout.Apply(u, a, now) {
		return illegal(u, a)
	}
	return nil
}
