package agent

import (
	"os"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// TestDocsJobStateTable keeps docs/agent.md's job state table the
// rendering of jobSteps.
func TestDocsJobStateTable(t *testing.T) {
	b, err := os.ReadFile("../docs/agent.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := jobStateTable(); !strings.Contains(string(b), want) {
		t.Errorf("docs/agent.md does not hold the job state table of agent/jobstate.go; it should read:\n%s", want)
	}
}

// TestJobStepsComplete: every step has a row, every state a Task status.
func TestJobStepsComplete(t *testing.T) {
	for s, info := range jobSteps {
		if info.Host == "" {
			t.Errorf("step %d has no row in jobSteps", s)
		}
		if info.State != "" && taskStatus[info.State] == "" {
			t.Errorf("step %d: state %s has no appliance Task status", s, info.State)
		}
	}
	for _, s := range []sailpoint.JobState{sailpoint.JobPending, sailpoint.JobRunning, sailpoint.JobFinished, sailpoint.JobFailed, sailpoint.JobCancelled} {
		if taskStatus[s] == "" {
			t.Errorf("state %s has no appliance Task status", s)
		}
	}
}

// TestMoveLocked plays a job through an install that commits and checks
// what it reports after each step.
func TestMoveLocked(t *testing.T) {
	d := testDaemon(t)
	j := &state.Job{UUID: "j1", Name: "poolagent"}
	type want struct {
		phase    string
		state    sailpoint.JobState
		status   string
		progress int
		changed  bool
	}
	for _, tc := range []struct {
		step     jobStep
		progress int
		want     want
	}{
		{stepReceived, 0, want{"", sailpoint.JobPending, "Scheduled", 0, true}},
		{stepSplay, 0, want{"splay", sailpoint.JobPending, "Scheduled", 0, false}},
		{stepDownload, 30, want{"download", sailpoint.JobPending, "Scheduled", 30, false}},
		{stepWaiting, 0, want{"waiting", sailpoint.JobPending, "Scheduled", 30, false}},
		{stepInstall, 0, want{"download", sailpoint.JobRunning, "InProgress", 30, true}},
		{stepDownload, 20, want{"download", sailpoint.JobRunning, "InProgress", 30, false}},
		{stepSwap, 0, want{"swap", sailpoint.JobRunning, "InProgress", 50, false}},
		{stepHealth, 0, want{"health", sailpoint.JobRunning, "PendingCompletion", 75, true}},
		{stepHealth, 0, want{"health", sailpoint.JobRunning, "PendingCompletion", 75, false}},
		{stepFinished, 0, want{"", sailpoint.JobFinished, "Success", 100, true}},
	} {
		changed := d.moveLocked(j, tc.step, tc.progress, "")
		got := want{j.Phase, j.State, j.UpdateStatus, j.Progress, changed}
		if got != tc.want {
			t.Fatalf("after step %d: got %+v, want %+v", tc.step, got, tc.want)
		}
	}
	if j.Started.IsZero() || j.Finished.IsZero() || !j.Swapped {
		t.Errorf("started %v, finished %v, swapped %v: want both set and swapped", j.Started, j.Finished, j.Swapped)
	}
	if a := d.st.Agents["poolagent"]; a == nil || a.UpdateStatus != "Success" {
		t.Errorf("the agent's report is %+v, want Success", a)
	}
	c := &state.Job{UUID: "j2", Name: "poolagent"}
	d.moveLocked(c, stepReceived, 0, "")
	d.moveLocked(c, stepCancelled, 0, "")
	if c.State != sailpoint.JobCancelled || c.UpdateMessage != cancelledByServer || c.Progress != 0 {
		t.Errorf("cancelled job: %+v", c)
	}
}
