package agent

import (
	"errors"
	"strings"

	"github.com/poolagent/poolagent/platform/disk"
	"github.com/poolagent/poolagent/updater"
)

// ErrJobRefused: a job named something the config does not allow.
var ErrJobRefused = errors.New("job refused")

// failureMessage is the updateMessage of a failed job: a stable code (a
// precheck's, or the updater's upper-cased: HEALTH_CHECK, SIGNATURE, ...),
// a colon, and the reason for a person. docs/agent.md lists the codes.
func failureMessage(err error) string {
	var pe *precheckError
	if errors.As(err, &pe) {
		return pe.code + ": " + pe.msg
	}
	code := "INTERNAL"
	switch {
	case errors.Is(err, ErrJobRefused):
		code = "JOB_REFUSED"
	case errors.Is(err, updater.ErrSelfRolledBack):
		code = "SELF_ROLLED_BACK"
	case errors.Is(err, updater.ErrRollback):
		code = "ROLLBACK_FAILED"
	default:
		code = strings.ToUpper(strings.ReplaceAll(updater.Code(err), "-", "_"))
		switch {
		case (code == "INTERNAL" || code == "DOWNLOAD") && disk.IsFull(err):
			code = "DISK_FULL"
		case code == "INTERNAL" && errors.Is(err, errRolledBack):
			code = "ROLLBACK"
		}
	}
	return code + ": " + err.Error()
}

// errRolledBack marks a job rolled back for a reason without its own code.
var errRolledBack = errors.New("rolled back")

// rolledBack marks err as a rolled-back job's (errors.Is errRolledBack)
// without changing its message.
type rolledBack struct{ error }

func (r rolledBack) Is(target error) bool { return target == errRolledBack }
func (r rolledBack) Unwrap() error        { return r.error }
