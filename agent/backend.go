package agent

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/localapi"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/appliance"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/vercmp"
	"github.com/poolagent/poolagent/internal/version"
)

// Status implements localapi.Backend.
func (d *Daemon) Status() localapi.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := localapi.Status{
		Version: version.String(), PID: os.Getpid(), StartedAt: d.started,
		Server: d.server.String(), ClientID: d.creds.ClientID, ClusterID: d.creds.ClusterID,
		Connected: d.connected, LastHeartbeat: d.st.LastHeartbeat, LastError: d.lastErr, Interval: d.interval,
		HeartbeatsSent: d.beatsSent, HeartbeatsFailed: d.beatsFailed,
		PoolType: d.poolType, Warnings: slices.Clone(d.warnings),
		Agents: []localapi.Agent{}, Jobs: []localapi.Job{},
	}
	add := func(name, typ string) {
		a := localapi.Agent{Name: name, Type: typ}
		if st := d.st.Agents[name]; st != nil {
			a.Version, a.UpdateStatus, a.UpdateMessage = st.Version, st.UpdateStatus, st.UpdateMessage
		}
		s.Agents = append(s.Agents, a)
	}
	for _, a := range d.cfg.Agents {
		add(a.Name, a.Type)
		s.Agents[len(s.Agents)-1].Health = d.healthStatusLocked(a)
	}
	add(config.SelfName, config.SelfName)
	now := time.Now()
	for _, j := range d.st.Jobs {
		lj := localapi.Job{UUID: j.UUID, Name: j.Name, Version: j.Version, State: string(j.State), UpdateStatus: j.UpdateStatus,
			Phase: j.Phase, Progress: j.Progress, UpdateMessage: j.UpdateMessage, Received: j.Received, Started: j.Started, Finished: j.Finished,
			StartAfter: j.Spec.StartAfter, Diagnostics: j.Diagnostics}
		if m := j.Spec.Maintenance; m != nil {
			lj.WindowStart, lj.WindowFinish = m.WindowStartTime, m.WindowFinishTime
		}
		if !j.Terminal() {
			lj.WindowOpen = d.windows[j.UUID].open(now, d.cfg.Maintenance.MinRemaining.Duration)
			switch {
			case j.Swapped:
			case j.Phase == jobSteps[stepSplay].Phase:
				lj.WaitingFor = "its start time " + j.Spec.StartAfter + " (splay, server time)"
			case d.cfg.Maintenance.Policy == config.PolicyManual && !j.InstallRequested && j.Name != config.SelfName:
				lj.WaitingFor = "an operator's install (maintenance.policy = manual)"
			case !lj.WindowOpen:
				lj.WaitingFor = "the maintenance window"
			}
		}
		s.Jobs = append(s.Jobs, lj)
	}
	return s
}

// task renders a job as the appliance API's Task.
func task(j *state.Job) appliance.Task {
	t := appliance.Task{ID: j.UUID, Type: appliance.TaskTypeInstall, Progress: int32(j.Progress),
		Description: fmt.Sprintf("install %s %s", j.Name, j.Version)}
	t.Status = taskStatus[j.State]
	if j.State == sailpoint.JobFailed || j.State == sailpoint.JobCancelled {
		t.Error = &appliance.TaskError{Message: j.UpdateMessage}
	}
	if !j.Started.IsZero() {
		t.StartTime = j.Started.UnixMilli()
	} else if j.InstallRequested {
		t.StartTime = j.Received.UnixMilli()
	}
	if !j.Finished.IsZero() {
		t.CompleteTime = j.Finished.UnixMilli()
	}
	return t
}

// Updates implements localapi.Backend: the versions the server offers this
// host, from the jobs its heartbeat replies carried (poolagent needs no
// API token for this; the server's release catalog is not queried).
func (d *Daemon) Updates() []appliance.Update {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []appliance.Update{}
	for _, j := range d.st.Jobs {
		if strings.HasPrefix(j.UpdateMessage, "JOB_REFUSED") {
			continue // not an update this host can take
		}
		t := task(j)
		out = append(out, appliance.Update{Version: j.Version, Name: j.Name, Type: j.Type, TaskID: j.UUID, Status: t.Status,
			Description: t.Description})
	}
	return out
}

// Install implements localapi.Backend: it releases the job that installs
// version (under the manual policy it waits for this; under the window
// policy it already runs) and returns its Task. The swap still waits for
// the server's maintenance window.
func (d *Daemon) Install(v string) (appliance.Task, error) {
	if !vercmp.Valid(v) {
		return appliance.Task{}, &localapi.Error{Status: http.StatusBadRequest, Code: appliance.CodeInvalidArgument,
			Msg: fmt.Sprintf("%q is not a version", v)}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var pick *state.Job
	for _, j := range d.st.Jobs {
		if j.Version != v {
			continue
		}
		if !j.Terminal() {
			pick = j
			break
		}
		if pick == nil || j.Received.After(pick.Received) {
			pick = j
		}
	}
	switch {
	case pick == nil:
		return appliance.Task{}, &localapi.Error{Status: http.StatusNotFound, Code: appliance.CodeNotFound,
			Msg: fmt.Sprintf("the server offers no update to version %s for this host", v)}
	case pick.Terminal():
		return appliance.Task{}, &localapi.Error{Status: http.StatusBadRequest, Code: appliance.CodeNotAllowed,
			Msg: fmt.Sprintf("the update to %s already ended (%s); its task is %s", v, pick.State, pick.UUID)}
	}
	if !pick.InstallRequested {
		pick.InstallRequested = true
		d.log.Info("install requested on the local API", zap.String("job", pick.UUID), zap.String("version", v))
		d.saveLocked()
		d.wakeLocked()
	}
	return task(pick), nil
}

// Task implements localapi.Backend.
func (d *Daemon) Task(id string) (appliance.Task, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	j := d.st.Job(id)
	if j == nil {
		return appliance.Task{}, false
	}
	return task(j), true
}
