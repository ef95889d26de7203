package rollout

// HoldsJob reports whether an agent of a client holds a job the engine
// hands out now: a job of an active update scheduled for it, or running
// (a paused or halted update's jobs not yet started are not handed out and
// do not count). It reads the published job table, as a heartbeat does:
// no engine lock, no store read, as of the engine's last tick.
func (e *Engine) HoldsJob(clientID, agentID string) bool {
	if clientID == "" {
		return false
	}
	cj := e.table.get(clientID)
	if cj == nil {
		return false
	}
	for _, j := range cj.jobs {
		if j.agentID == agentID {
			return true
		}
	}
	return false
}
