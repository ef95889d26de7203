package main

import (
	"encoding/json"
	"fmt"

	"github.com/poolagent/poolagent/api/okta"
)

// rollbackView is the update's rollout.halted and rollout.rollback (the
// fleet rollback, docs/rollout.md).
type rollbackView struct {
	Halted   string `json:"halted"`
	Rollback *struct {
		State     string `json:"state"`
		ToRevert  int    `json:"toRevert"`
		Reverting int    `json:"reverting"`
		Reverted  int    `json:"reverted"`
		Failed    int    `json:"failed"`
	} `json:"rollback"`
}

func rollbackOf(u *okta.AgentPoolUpdate) rollbackView {
	var v rollbackView
	if len(u.Rollout) > 0 {
		_ = json.Unmarshal(u.Rollout, &v) // the server's own document
	}
	return v
}

// rollingBack reports whether the update's fleet rollback still runs:
// `updates watch` goes on until it is done.
func rollingBack(u *okta.AgentPoolUpdate) bool {
	rb := rollbackOf(u).Rollback
	return rb != nil && rb.State == "InProgress"
}

// rollbackLine is what `updates watch` prints of a halted update and its
// rollback: "halted: ERROR_BUDGET: ..." and "rollback InProgress
// [####....] 2 of 4 hosts reverted, 1 reverting, 0 failed".
func rollbackLine(u *okta.AgentPoolUpdate) string {
	v := rollbackOf(u)
	out := ""
	if v.Halted != "" {
		out = "halted: " + v.Halted
	}
	if rb := v.Rollback; rb != nil {
		pct := 100
		if rb.ToRevert > 0 {
			pct = (rb.Reverted + rb.Failed) * 100 / rb.ToRevert
		}
		if out != "" {
			out += "\n"
		}
		out += fmt.Sprintf("%s rollback %-10s %d of %d hosts reverted, %d reverting, %d failed",
			bar(pct, 30), rb.State, rb.Reverted, rb.ToRevert, rb.Reverting, rb.Failed)
	}
	return out
}
