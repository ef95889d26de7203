package sailpoint

import "testing"

func TestJobStateTerminal(t *testing.T) {
	for s, want := range map[JobState]bool{
		JobPending: false, JobRunning: false, JobFinished: true, JobFailed: true, JobCancelled: true, "": false,
	} {
		if got := s.Terminal(); got != want {
			t.Errorf("%q.Terminal() = %v, want %v", s, got, want)
		}
	}
}
