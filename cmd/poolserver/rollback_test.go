package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
)

func TestWatchShowsTheRollback(t *testing.T) {
	u := &okta.AgentPoolUpdate{ID: "upd1", Status: okta.JobFailed,
		Rollout: json.RawMessage(`{"halted":"ERROR_BUDGET: 3 of 20 hosts failed; the budget tolerates 2","rollback":{"state":"InProgress","toRevert":4,"reverting":1,"reverted":2,"failed":0}}`)}
	block := watchBlock(u)
	for _, want := range []string{"halted: ERROR_BUDGET: 3 of 20 hosts failed", "rollback InProgress", "2 of 4 hosts reverted, 1 reverting, 0 failed", "[###############...............]  50%"} {
		if !strings.Contains(block, want) {
			t.Errorf("watch block lacks %q:\n%s", want, block)
		}
	}
	if !rollingBack(u) {
		t.Error("a Failed update rolling back: watch must go on")
	}
	u.Rollout = json.RawMessage(`{"halted":"x","rollback":{"state":"Done","toRevert":4,"reverted":4}}`)
	if rollingBack(u) || !strings.Contains(watchBlock(u), "rollback Done") {
		t.Errorf("done: rollingBack %t\n%s", rollingBack(u), watchBlock(u))
	}
	u.Rollout = nil
	if rollbackLine(u) != "" || rollingBack(u) {
		t.Error("no rollout: no rollback line")
	}
}
