// Package appliance holds the wire types of the vCenter appliance
// update-manager API that poolagent serves on its local API
// (/appliance/update-manager/...): the Task an install returns, the update
// summaries and the ResponseError of the seed.
package appliance

// TaskStatus is the status of a Task.
type TaskStatus string

// Task statuses of the seed.
const (
	TaskQueued    TaskStatus = "QUEUED"
	TaskRunning   TaskStatus = "RUNNING"
	TaskSuccess   TaskStatus = "SUCCESS"
	TaskFailed    TaskStatus = "ERROR"
	TaskCancelled TaskStatus = "CANCELLED"
)

// TaskTypeInstall is the Task type of an install.
const TaskTypeInstall = "com.vmware.appliance.update.install"

// Task monitors an update (202 of POST .../actions/install, and
// GET /appliance/update-manager/tasks/{id}).
type Task struct {
	ID          string     `json:"id"`
	Description string     `json:"description,omitempty"`
	Type        string     `json:"type,omitempty"`
	Status      TaskStatus `json:"status"`
	Error       *TaskError `json:"error,omitempty"`
	Result      any        `json:"result,omitempty"`
	// Progress is a percentage.
	Progress int32 `json:"progress"`
	// StartTime and CompleteTime are Unix times in milliseconds (0: not yet).
	StartTime    int64 `json:"start_time,omitempty"`
	CompleteTime int64 `json:"complete_time,omitempty"`
}

// TaskError says why a Task ended in ERROR or CANCELLED.
type TaskError struct {
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
}

// Update is one version the control plane offers this host
// (GET /appliance/update-manager/updates).
type Update struct {
	// Version is the update_version to pass to the install action.
	Version string `json:"version"`
	// Name is the managed agent the update is for; Type its agent type.
	Name string `json:"name"`
	Type string `json:"type"`
	// Description is a sentence for a person.
	Description string `json:"description,omitempty"`
	// TaskID is the task that installs it (the job's uuid).
	TaskID string `json:"task_id"`
	// Status is the task's current status.
	Status TaskStatus `json:"status"`
}

// ResponseError is the seed's error body (400, 403, 404, 500).
type ResponseError struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
	OpID      string `json:"op_id"`
}

// Error codes poolagent returns.
const (
	CodeInvalidArgument = "INVALID_ARGUMENT"
	CodeNotFound        = "NOT_FOUND"
	CodeNotAllowed      = "NOT_ALLOWED_IN_CURRENT_STATE"
	CodeUnauthorized    = "UNAUTHORIZED"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
)
