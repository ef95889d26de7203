// Package state keeps what poolagent must remember across restarts, in its
// state dir: the client credentials (client.json, owner-only) and the
// daemon's state (state.json: the managed agents' installed versions,
// update statuses and what each last update replaced, every job with its progress, the highest job sequence
// seen per update and the server's clock). Files are written to a temporary
// file, fsynced and renamed, so a crash leaves the old or the new copy.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/atomicfile"
	"github.com/poolagent/poolagent/platform/fsacl"
)

// Credentials are a managed client's id and secret.
type Credentials struct {
	ServerURL  string    `json:"server_url"`
	ClientID   string    `json:"client_id"`
	ClusterID  string    `json:"cluster_id,omitempty"`
	Secret     string    `json:"secret"`
	EnrolledAt time.Time `json:"enrolled_at"`
}

// ErrNotEnrolled is returned when no credentials file exists.
var ErrNotEnrolled = errors.New("not enrolled: run `poolagent enroll --server URL --token TOKEN` first")

// ReadCredentials reads the credentials file.
func ReadCredentials(path string) (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("read credentials %s: %w", path, ErrNotEnrolled)
	}
	if err != nil {
		return c, fmt.Errorf("read credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("read credentials %s: %w", path, err)
	}
	if c.ClientID == "" || c.Secret == "" {
		return c, fmt.Errorf("read credentials %s: client_id or secret missing", path)
	}
	return c, nil
}

// WriteCredentials writes the credentials file with owner-only
// permissions: 0600 on Unix, a protected ACL granting SYSTEM and
// Administrators only on Windows (platform/fsacl).
func WriteCredentials(path string, c Credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

// Agent is what poolagent knows of one managed agent.
type Agent struct {
	Version       string `json:"version"`
	UpdateStatus  string `json:"updateStatus,omitempty"`
	UpdateMessage string `json:"updateMessage,omitempty"`
	// Previous is what ran before poolagent's last committed update of
	// this agent (nil: no update committed yet): the one older release
	// artifacts.allow_revert lets a job go back to.
	Previous *Previous `json:"previous,omitempty"`
}

// Previous is the release an update replaced.
type Previous struct {
	// Version and SHA256 (hex) of the binary the update replaced.
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	// At is when the update committed, by the host's own clock.
	At time.Time `json:"at"`
}

// Job is one job the server handed out and its progress on this host.
type Job struct {
	UUID     string `json:"uuid"`
	UpdateID string `json:"updateId,omitempty"`
	// Name, Type and Version: the managed process, its type and the
	// target version.
	Name    string `json:"name"`
	Type    string `json:"type"`
	Version string `json:"version"`
	// Spec is the job as the server last sent it.
	Spec sailpoint.Job `json:"spec"`

	State         sailpoint.JobState `json:"state"`
	UpdateStatus  string             `json:"updateStatus"`
	Phase         string             `json:"phase,omitempty"`
	Progress      int                `json:"progress"`
	UpdateMessage string             `json:"updateMessage,omitempty"`
	// Warning is what went wrong without failing the job (a binary
	// patch not used: "PATCH: ..."); it is the updateMessage of a job
	// that succeeds.
	Warning string `json:"warning,omitempty"`

	Received time.Time `json:"received"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// InstallRequested: an operator asked for it on the local API.
	InstallRequested bool `json:"installRequested,omitempty"`
	// Swapped: past the swap; a cancel no longer stops it.
	Swapped bool `json:"swapped,omitempty"`
	// Reported: the server acknowledged the final state; it is no longer
	// sent.
	Reported bool `json:"reported,omitempty"`
	// FromVersion and FromSHA256 are, for a self-update past its swap,
	// the poolagent version and binary SHA-256 it replaces; they become
	// the agent's Previous once the new binary confirms.
	FromVersion string `json:"fromVersion,omitempty"`
	FromSHA256  string `json:"fromSha256,omitempty"`
	// Diagnostics of a failure past the swap: what the failed version
	// printed and its health check's last result. Sent with the FAILED
	// report until the server acknowledged it.
	Diagnostics *sailpoint.Diagnostics `json:"diagnostics,omitempty"`
}

// Terminal reports whether the job is over on this host.
func (j *Job) Terminal() bool {
	return j.State.Terminal()
}

// State is the daemon's persistent state.
type State struct {
	V int `json:"v"`
	// Agents by name, poolagent itself included.
	Agents map[string]*Agent `json:"agents"`
	// Jobs in the order received; finished ones are pruned to the newest.
	Jobs []*Job `json:"jobs"`
	// Sequences is the highest job sequence seen per update id.
	Sequences map[string]int64 `json:"sequences"`
	// ServerTime is the newest server timestamp seen, and LocalTime the
	// agent's wall clock when it arrived.
	ServerTime time.Time `json:"serverTime,omitzero"`
	LocalTime  time.Time `json:"localTime,omitzero"`
	// LastHeartbeat is the last successful heartbeat.
	LastHeartbeat time.Time `json:"lastHeartbeat,omitzero"`
}

// KeepFinished is how many finished jobs are kept for status and tasks.
const KeepFinished = 20

// Job returns the job with uuid id, or nil.
func (s *State) Job(id string) *Job {
	for _, j := range s.Jobs {
		if j.UUID == id {
			return j
		}
	}
	return nil
}

// Prune drops the oldest reported finished jobs beyond KeepFinished.
func (s *State) Prune() {
	n := 0
	for _, j := range s.Jobs {
		if j.Terminal() && j.Reported {
			n++
		}
	}
	out := s.Jobs[:0]
	for _, j := range s.Jobs {
		if n > KeepFinished && j.Terminal() && j.Reported {
			n--
			continue
		}
		out = append(out, j)
	}
	s.Jobs = out
	// Diagnostics (up to 64 KiB each) are kept for the newest few
	// acknowledged failures only, for `poolagent status`.
	kept := 0
	for i := len(s.Jobs) - 1; i >= 0; i-- {
		if j := s.Jobs[i]; j.Diagnostics != nil && j.Reported {
			if kept++; kept > KeepDiagnostics {
				j.Diagnostics = nil
			}
		}
	}
}

// KeepDiagnostics is how many acknowledged failed jobs keep their
// diagnostics.
const KeepDiagnostics = 3

// Load reads state.json from dir; a missing file is an empty state.
func Load(dir string) (*State, error) {
	s := &State{V: 1, Agents: map[string]*Agent{}, Sequences: map[string]int64{}}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("load state %s: %w", filepath.Join(dir, "state.json"), err)
	}
	if s.Agents == nil {
		s.Agents = map[string]*Agent{}
	}
	if s.Sequences == nil {
		s.Sequences = map[string]int64{}
	}
	return s, nil
}

// Save writes s to dir/state.json atomically.
func (s *State) Save(dir string) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// WriteFileAtomic writes b to path through a temporary file in the same
// directory (internal/atomicfile: write, fsync, rename, fsync the
// directory). A mode without group or other bits also gets, before
// anything is written, the owner-only ACL of fsacl.RestrictFile (SYSTEM and
// Administrators on Windows), which the rename keeps.
func WriteFileAtomic(path string, b []byte, mode os.FileMode) error {
	var prepare func(string) error
	if mode&0o077 == 0 {
		prepare = fsacl.RestrictFile
	}
	return atomicfile.WriteWith(path, b, mode, prepare)
}
