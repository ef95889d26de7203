package updater

import (
	"os"
	"time"

	"github.com/poolagent/poolagent/signing"
)

// Job is one host's share of an update: install Artifact on a target.
type Job struct {
	// ID identifies the job in logs and the journal (the server's uuid).
	ID string
	// Artifact describes the full file to install.
	Artifact Artifact
	// Patch optionally offers a bsdiff patch from the installed version.
	Patch *Patch
	// AllowDowngrade permits installing a version below the installed one.
	// The caller decides it from the host's own policy; poolagent never
	// copies it from the server's job (docs/agent.md, "Downgrades").
	AllowDowngrade bool
	// RateLimit bounds this job's download in bytes per second; 0 means
	// Config.RateLimit alone. The smaller non-zero limit of the two wins.
	RateLimit int64
	// Refresh, if set, returns the artifact as the server last described
	// it. Before each download attempt a source's URL is replaced by the
	// refreshed one for the same object (scheme, host and path), so a
	// presigned URL that expired meanwhile is not resumed with. A refresh
	// for another SHA-256 or size is ignored.
	Refresh func() Artifact `json:"-"`
}

// Meta is what a signature binds an artifact to: program, version and
// platform. It is signing.Meta, named here because Artifact embeds it.
type Meta = signing.Meta

// Artifact is the descriptor of a release file, as the server sends it.
// Its Meta is what the signature must bind.
type Artifact struct {
	Meta
	// URL of the full file (https unless the config allows http):
	// poolserver's, the last source tried.
	URL string
	// Mirrors are full URLs of the same file tried before URL, in order.
	// Bytes from any of them are verified exactly like URL's.
	Mirrors []string
	// Size in bytes and SHA256 (hex) of the full file.
	Size   int64
	SHA256 string
	// Signature is the text of the minisign signature, or SignatureURL
	// where to fetch it. One of them is required.
	Signature    []byte
	SignatureURL string
}

// Patch is a bsdiff patch (as made by bsdiff 4 / minio/selfupdate) that
// turns the installed version into Artifact.
type Patch struct {
	// FromVersion is the version the patch applies to.
	FromVersion string
	// FromSHA256 (hex) is the SHA-256 of the binary the patch applies to;
	// when set, the installed file must have it or the patch is not used.
	FromSHA256 string
	URL        string
	Size       int64
	// SHA256 of the patch file itself (hex); optional, since the patched
	// result is checked against the artifact's SHA-256 in any case.
	SHA256 string
}

// Target is one managed program on the host.
type Target struct {
	// Name keys the journal; use the program's name (e.g. "AD").
	Name string
	// Path of the binary to replace.
	Path string
	// Version currently installed ("" if unknown: no downgrade check).
	Version string
	// Mode of the installed binary; zero means 0755.
	Mode os.FileMode
	// Service stops and starts the program. Nil means nothing runs it.
	Service Service
	// Health is checked after the new version starts.
	Health HealthCheck
}

// HealthCheck decides whether a freshly started version is good.
type HealthCheck struct {
	// Grace: the process must stay up this long. Default 5 s.
	Grace time.Duration
	// URL, if set, must answer a GET with 2xx within Timeout.
	URL string
	// Command, if set, must exit 0 within Timeout (argv, no shell).
	Command []string
	// Timeout for URL and Command. Default 30 s.
	Timeout time.Duration
	// Interval between polls. Default 200 ms.
	Interval time.Duration
}

// Phase names a step of a job. Phases are written to the journal.
type Phase string

// Phases in order. Download and verify touch nothing outside the state
// dir; from Staged on, the journal records the phase before it acts.
const (
	PhaseDownload    Phase = "download"
	PhaseVerify      Phase = "verify"
	PhaseStaging     Phase = "staging"      // about to copy the new binary beside the target
	PhaseStopping    Phase = "stopping"     // about to stop the service
	PhaseSwapping    Phase = "swapping"     // about to link the previous binary aside and rename
	PhaseSwapped     Phase = "swapped"      // target holds the new binary; prev holds the old one
	PhaseHealth      Phase = "health"       // new version started, being checked
	PhaseCommitting  Phase = "committing"   // healthy; dropping the previous binary
	PhaseRollingBack Phase = "rolling-back" // restoring the previous binary
	PhaseDone        Phase = "done"

	PhaseSelfSwapping    Phase = "self-swapping"    // poolagent replacing its own binary
	PhaseSelfUnconfirmed Phase = "self-unconfirmed" // self-swapped, waiting for ConfirmSelf
)

// Progress is reported during a download.
type Progress struct {
	JobID   string
	Phase   Phase
	Bytes   int64
	Total   int64
	Percent int
}

// ProgressFunc receives progress; it must not block.
type ProgressFunc func(Progress)

// PhaseFunc receives each phase Apply enters (staging, stopping, swapping,
// swapped, health, committing, rolling-back), once the journal holds it and
// before Apply acts on it. It runs on Apply's goroutine: Apply waits for it.
type PhaseFunc func(Phase)
