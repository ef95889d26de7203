// Package sailpoint holds the wire types of the heartbeat protocol: SailPoint's
// ManagedClientStatus (POST /beta/managed-clients/{clientId}/status), its
// error objects, and poolagent's documented extensions of the body (the
// host's managed agents, job progress, and job artifacts).
//
// docs/heartbeat.md describes the protocol for someone writing another agent.
package sailpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// ClientStatus is a managed client's self-reported health.
type ClientStatus string

// The statuses of the seed.
const (
	StatusNormal        ClientStatus = "NORMAL"
	StatusUndefined     ClientStatus = "UNDEFINED"
	StatusNotConfigured ClientStatus = "NOT_CONFIGURED"
	StatusConfiguring   ClientStatus = "CONFIGURING"
	StatusWarning       ClientStatus = "WARNING"
	StatusError         ClientStatus = "ERROR"
	StatusFailed        ClientStatus = "FAILED"
)

// Valid reports whether s is one of the seed's statuses.
func (s ClientStatus) Valid() bool {
	switch s {
	case StatusNormal, StatusUndefined, StatusNotConfigured, StatusConfiguring, StatusWarning, StatusError, StatusFailed:
		return true
	}
	return false
}

// ClientType is the kind of managed client; it may be null on the wire.
type ClientType string

// The client types of the seed.
const (
	TypeCCG          ClientType = "CCG"
	TypeVA           ClientType = "VA"
	TypeInternal     ClientType = "INTERNAL"
	TypeIIQHarvester ClientType = "IIQ_HARVESTER"
)

// Valid reports whether t is one of the seed's client types.
func (t ClientType) Valid() bool {
	switch t {
	case TypeCCG, TypeVA, TypeInternal, TypeIIQHarvester:
		return true
	}
	return false
}

// JobState is the SailPoint state of one job.
type JobState string

// Job states. PENDING: received, waiting for the window; RUNNING:
// downloading, verifying, swapping or waiting for the health check;
// FINISHED: committed; FAILED: failed and rolled back; CANCELLED: stopped
// before the swap.
const (
	JobPending   JobState = "PENDING"
	JobRunning   JobState = "RUNNING"
	JobFinished  JobState = "FINISHED"
	JobFailed    JobState = "FAILED"
	JobCancelled JobState = "CANCELLED"
)

// Valid reports whether s is a job state.
func (s JobState) Valid() bool {
	switch s {
	case JobPending, JobRunning, JobFinished, JobFailed, JobCancelled:
		return true
	}
	return false
}

// Terminal reports whether a job in state s is over: FINISHED, FAILED or
// CANCELLED. Nothing moves a job out of these.
func (s JobState) Terminal() bool {
	switch s {
	case JobFinished, JobFailed, JobCancelled:
		return true
	}
	return false
}

// JobTypeUpgrade is the only job type: update one or more managed programs.
const JobTypeUpgrade = "VA_UPGRADE"

// Flex is a scalar the seed sends as a string, a number, a boolean or
// null ("lastSeen": "1620843964604"); it decodes any of them to a string.
type Flex string

// UnmarshalJSON accepts a JSON string, number, boolean or null.
func (f *Flex) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		// The common case, a plain string, without the decoder's copy.
		if len(b) >= 2 && b[len(b)-1] == '"' && bytes.IndexByte(b[1:len(b)-1], '\\') < 0 && bytes.IndexByte(b[1:len(b)-1], '"') < 0 {
			*f = Flex(b[1 : len(b)-1])
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = Flex(s)
	case b[0] == '{' || b[0] == '[':
		return errors.New("expected a string, number, boolean or null, got an object or array")
	default:
		*f = Flex(b)
	}
	return nil
}

// Int returns the value as an integer, or 0.
func (f Flex) Int() int64 {
	n, _ := strconv.ParseInt(string(f), 10, 64)
	return n
}

// StatusRequest is the body an agent posts every heartbeat interval.
type StatusRequest struct {
	Body      ClientBody   `json:"body"`
	Status    ClientStatus `json:"status"`
	Type      *ClientType  `json:"type"`
	Timestamp string       `json:"timestamp"`
}

// ClientBody is the host's report: the seed's host facts plus poolagent's
// extensions (marked).
type ClientBody struct {
	ID              Flex `json:"id,omitempty"`
	ClusterID       Flex `json:"clusterId,omitempty"`
	AlertKey        Flex `json:"alertKey,omitempty"`
	Hostname        Flex `json:"hostname,omitempty"`
	InternalIP      Flex `json:"internal_ip,omitempty"`
	LastSeen        Flex `json:"lastSeen,omitempty"`
	SinceSeen       Flex `json:"sinceSeen,omitempty"`
	SinceSeenMillis Flex `json:"sinceSeenMillis,omitempty"`
	Stacktrace      Flex `json:"stacktrace,omitempty"`
	State           Flex `json:"state,omitempty"`
	Status          Flex `json:"status,omitempty"`
	UUID            Flex `json:"uuid,omitempty"`
	Product         Flex `json:"product,omitempty"`
	VAVersion       Flex `json:"va_version,omitempty"`
	PlatformVersion Flex `json:"platform_version,omitempty"`
	OSVersion       Flex `json:"os_version,omitempty"`
	OSType          Flex `json:"os_type,omitempty"`
	Hypervisor      Flex `json:"hypervisor,omitempty"`

	// Extensions.
	OS            Flex          `json:"os,omitempty"`   // GOOS of the host: linux, windows, darwin
	Arch          Flex          `json:"arch,omitempty"` // GOARCH of the host: amd64, arm64
	UptimeSeconds Flex          `json:"uptime,omitempty"`
	AgentVersion  Flex          `json:"poolagent_version,omitempty"`
	Agents        []AgentReport `json:"agents,omitempty"`
	Jobs          []JobReport   `json:"jobs,omitempty"`
	Sequence      Flex          `json:"lastJobSequence,omitempty"` // highest job sequence the agent has seen

	// Timezone is the host's IANA time zone, e.g. "Europe/Paris", for
	// maintenance windows in each host's local time (extension).
	Timezone Flex `json:"timezone,omitempty"`
}

// AgentReport is one managed program on the host (extension).
type AgentReport struct {
	Name          string `json:"name"`
	Type          string `json:"type"` // an Okta AgentType (AD, LDAP, ...) or "poolagent"
	Version       string `json:"version"`
	UpdateStatus  string `json:"updateStatus,omitempty"`
	UpdateMessage string `json:"updateMessage,omitempty"`
	// SHA256 (hex) of the installed binary: the server offers a patch
	// only from these exact bytes.
	SHA256 string `json:"sha256,omitempty"`
	// Health is the last result of the host's watch of the agent (its
	// health check run every watch_interval after the install); absent
	// when the host does not watch it (extension).
	Health *AgentHealth `json:"health,omitempty"`
}

// AgentHealth is a managed agent's health as its host last checked it
// (extension of AgentReport).
type AgentHealth struct {
	// OK is the check's result.
	OK bool `json:"ok"`
	// CheckedAt is when the host checked (RFC 3339, the host's clock).
	CheckedAt string `json:"checkedAt,omitempty"`
	// Reason says why the agent is not healthy ("" when OK): "health
	// check failed: GET http://127.0.0.1:8089/healthz: HTTP 503", or
	// "crash loop: ...".
	Reason string `json:"reason,omitempty"`
	// Restarts counts the restarts of the agent's service the host's
	// service manager reported since the host started watching the
	// installed version; absent where the service manager does not tell.
	Restarts *int `json:"restarts,omitempty"`
}

// JobReport is the progress of one job on the host (extension).
type JobReport struct {
	UUID          string   `json:"uuid"`
	State         JobState `json:"state"`
	Progress      int      `json:"progress"`                // percent 0-100
	Phase         string   `json:"phase,omitempty"`         // e.g. download, verify, swap, health
	UpdateStatus  string   `json:"updateStatus,omitempty"`  // Okta AgentUpdateInstanceStatus
	UpdateMessage string   `json:"updateMessage,omitempty"` // why it failed or was cancelled
	// Diagnostics ride along a FAILED report: what the failed version
	// printed and what its health check answered.
	Diagnostics *Diagnostics `json:"diagnostics,omitempty"`
}

// MaxDiagnosticsOutput bounds Diagnostics.Output: the last 64 KiB.
const MaxDiagnosticsOutput = 64 << 10

// Diagnostics is what a host attaches to a failed job (extension).
type Diagnostics struct {
	// Output is the tail (at most MaxDiagnosticsOutput bytes) of the
	// failed version's standard output and error (or its log).
	Output string `json:"output,omitempty"`
	// Health is the health check's last result, e.g. "GET
	// http://127.0.0.1:8089/healthz: HTTP 503".
	Health string `json:"health,omitempty"`
}

// Precheck is what a host checks before any download; a failure is
// reported with its code and leaves the host untouched (extension).
type Precheck struct {
	// FreeBytes is the free space the state dir and the install root
	// need: the artifact, the rollback copy and a margin.
	FreeBytes int64 `json:"freeBytes,omitempty"`
	// FromVersion is the installed version the update expects to start
	// from (the version the server saw when it handed out the job).
	FromVersion string `json:"fromVersion,omitempty"`
	// MinPoolagentVersion is the oldest poolagent that may run the job.
	MinPoolagentVersion string `json:"minPoolagentVersion,omitempty"`
}

// StatusReply is the server's answer: a ManagedClientStatus whose body
// carries the configuration, the jobs and the maintenance window.
type StatusReply struct {
	Body      ReplyBody    `json:"body"`
	Status    ClientStatus `json:"status"`
	Type      *ClientType  `json:"type"`
	Timestamp time.Time    `json:"timestamp"`
}

// ReplyBody is the body of a StatusReply: every field of the seed's
// response (empty where poolserver has nothing to say) plus poolagent's
// extensions (marked).
type ReplyBody struct {
	ID        string `json:"id"`
	ClientID  string `json:"clientId"`
	ClusterID string `json:"clusterId"`
	// OrgType is the SailPoint tenant's org type (e.g. "test"); always
	// empty: poolserver has no tenant.
	OrgType string `json:"orgType"`
	// VADownloadURL is where a SailPoint virtual appliance image is
	// downloaded; always empty: artifacts come with each job.
	VADownloadURL   string `json:"vaDownloadUrl"`
	ClusterJobCount int    `json:"clusterJobCount"`
	// Configuration holds the seed's keys (ConfigClusterType and the
	// other Config* constants) and the extensions ConfigHeartbeatInterval,
	// ConfigNextHeartbeat and ConfigPoolType; every value is a string.
	Configuration map[string]string `json:"configuration"`
	// ConnectorServices are the cluster's connector services in the seed;
	// always empty: poolserver runs no connectors.
	ConnectorServices []ConnectorService `json:"connectorServices"`
	Jobs              []Job              `json:"jobs"`
	// Queue is the cluster's message queue in the seed; its fields are
	// empty: jobs come in this reply, not from a queue.
	Queue *Queue `json:"queue"`
	// Maintenance is the first job's window, or a closed window with
	// only windowClusterTime when no job has one.
	Maintenance *Maintenance `json:"maintenance"`

	// Warnings (extension) are what the server wants the host's operator
	// to know, each "CODE: sentence" (TYPE_MISMATCH: a managed agent's type
	// is not the pool's). Always present; empty when all is well. A reply
	// without the key comes from a server older than the field.
	Warnings []string `json:"warnings"`
}

// Keys of ReplyBody.Configuration. The seed's keys keep the seed's
// meaning; ConfigHeartbeatInterval, ConfigNextHeartbeat and ConfigPoolType
// are extensions.
const (
	// ConfigClusterType is the SailPoint cluster type ("sqsCluster" in
	// the seed: how the cluster gets its work); empty from poolserver,
	// whose hosts poll.
	ConfigClusterType       = "clusterType"
	ConfigClusterExternalID = "clusterExternalId"
	ConfigDebug             = "debug"
	ConfigFailureThreshold  = "failureThreshold"
	ConfigGMTOffset         = "gmtOffset"
	ConfigScheduleUpgrade   = "scheduleUpgrade"
	ConfigVAVersion         = "va_version"
	ConfigJobType           = "jobType"
	ConfigCookbook          = "cookbook"
	// ConfigHeartbeatInterval (extension) is the interval in whole seconds.
	ConfigHeartbeatInterval = "heartbeatInterval"
	// ConfigNextHeartbeat (extension), present only when the server
	// has a reason, asks the host to send its next heartbeat after this
	// many whole seconds instead of heartbeatInterval, once: a job for it
	// may be seconds away (an operator just created, edited or acted on an
	// update of its pool). The interval is unchanged.
	ConfigNextHeartbeat = "nextHeartbeat"
	// ConfigPoolType (extension) is the Okta agent type of the client's
	// pool (AD, LDAP, Radius, ...): its agents of this type are the
	// pool's agents. Servers before it sent the pool type as clusterType.
	ConfigPoolType = "poolType"
)

// ConnectorService is one connector service of the seed's
// connectorServices (poolserver sends none).
type ConnectorService struct {
	ID                         string                `json:"id"`
	Name                       string                `json:"name"`
	ConnectorHost              *string               `json:"connector_host"`
	ConnectorPort              *string               `json:"connector_port"`
	ConnectorUseSSL            *bool                 `json:"connector_(boolean)useSSL"`
	ConnectorFileUploadHistory []ConnectorFileUpload `json:"connectorFileUploadHistory"`
}

// ConnectorFileUpload is one file uploaded to a connector service.
type ConnectorFileUpload struct {
	ServiceID string `json:"serviceId"`
	Date      string `json:"date"`
	File      string `json:"file"`
}

// Queue is the seed's cluster queue.
type Queue struct {
	Name   string `json:"name"`
	Region string `json:"region"`
}

// Job is one update job for the host.
type Job struct {
	UUID     string   `json:"uuid"`
	Cookbook string   `json:"cookbook"`
	State    JobState `json:"state"`
	Type     string   `json:"type"`
	TargetID string   `json:"targetId"`
	// ManagedProcessConfiguration maps a managed program's name to its
	// target version and artifact.
	ManagedProcessConfiguration map[string]ManagedProcess `json:"managedProcessConfiguration"`

	// Extensions.
	UpdateID       string       `json:"updateId,omitempty"`
	PoolID         string       `json:"poolId,omitempty"`
	AllowDowngrade bool         `json:"allowDowngrade"`
	Sequence       int64        `json:"sequence"`  // grows with every job the server issues
	ExpiresAt      time.Time    `json:"expiresAt"` // the agent ignores a job past this
	Maintenance    *Maintenance `json:"maintenance,omitempty"`
	// Precheck is checked before any download.
	Precheck *Precheck `json:"precheck,omitempty"`
	// StartAfter (RFC 3339, server time) spreads download starts over the
	// window (splay): the host does not start downloading before it.
	StartAfter string `json:"startAfter,omitempty"`
	// DownloadRateLimit bounds the host's download, in bytes per second
	// (0: unbounded).
	DownloadRateLimit int64 `json:"downloadRateLimit,omitempty"`
}

// ManagedProcess is the seed's managedProcessConfiguration entry plus the
// artifact to install (extension).
type ManagedProcess struct {
	Version      string    `json:"version"`
	Path         string    `json:"path"`
	Description  *string   `json:"description"`
	Dependencies *string   `json:"dependencies"`
	Type         string    `json:"type,omitempty"`
	Artifact     *Artifact `json:"artifact,omitempty"`
}

// Artifact describes the file to download and how to check it.
type Artifact struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	URL       string `json:"url"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Signature string `json:"signature"` // minisign signature file contents
	// Mirrors (extension) are further full URLs of the same file, in the
	// order the server prefers them to URL: the pool's artifactMirrors,
	// then a presigned URL of the object store. URL (poolserver's) is the
	// last resort. A host may refuse them (artifacts.use_server_mirrors);
	// every byte is verified the same whatever the source.
	Mirrors []string `json:"mirrors,omitempty"`
	// Patch optionally offers a binary patch from the host's installed
	// binary; the full file above stays the fallback (extension).
	Patch *ArtifactPatch `json:"patch,omitempty"`
}

// ArtifactPatch is a bsdiff patch that turns the installed binary (version
// FromVersion, SHA-256 FromSHA256) into the artifact. It needs no trust of
// its own: the result is verified as the full file would be (extension).
type ArtifactPatch struct {
	FromVersion string `json:"fromVersion"`
	FromSHA256  string `json:"fromSha256"`
	URL         string `json:"url"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"` // of the patch file
}

// Maintenance is the window a job may be applied in. Times are RFC 3339
// UTC; WindowClusterTime is the server's clock when it answered, so an
// agent with a skewed clock can judge the window by the server's time.
type Maintenance struct {
	Window            string `json:"window"` // "true" while the window is open
	WindowStartTime   string `json:"windowStartTime"`
	WindowClusterTime string `json:"windowClusterTime"`
	WindowFinishTime  string `json:"windowFinishTime"`
}

// Message is one localized text of an error.
type Message struct {
	Locale       string `json:"locale"`
	LocaleOrigin string `json:"localeOrigin"`
	Text         string `json:"text"`
}

// Error is SailPoint's error object (400, 403, 404, 500).
type Error struct {
	DetailCode string    `json:"detailCode"`
	TrackingID string    `json:"trackingId"`
	Messages   []Message `json:"messages"`
	Causes     []Message `json:"causes"`
}

// AuthError is SailPoint's 401 body.
type AuthError struct {
	Error string `json:"error"`
}

// RateLimitError is SailPoint's 429 body.
type RateLimitError struct {
	Message string `json:"message"`
}

// EnrollRequest exchanges a one-time enrollment token (the Bearer
// credential) for a client id and secret (extension:
// POST /beta/managed-clients).
type EnrollRequest struct {
	Hostname string     `json:"hostname"`
	Type     ClientType `json:"type,omitempty"`
	OS       string     `json:"os,omitempty"`
	Arch     string     `json:"arch,omitempty"`
}

// EnrollReply carries the new client's credentials; the secret is shown once.
type EnrollReply struct {
	ID        string `json:"id"`
	ClientID  string `json:"clientId"`
	ClusterID string `json:"clusterId"`
	Secret    string `json:"secret"`
}
