package updater

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/poolagent/poolagent/internal/atomicfile"
)

// journalVersion is bumped when entry's meaning changes.
const journalVersion = 1

// entry is one target's unfinished job, stored as
// <state>/journal/<target>.json. It is rewritten atomically before each
// phase acts and removed when the job is done.
type entry struct {
	V         int       `json:"v"`
	JobID     string    `json:"job_id"`
	Name      string    `json:"name"`
	Target    string    `json:"target"`
	Staged    string    `json:"staged"`
	Prev      string    `json:"prev"`
	From      string    `json:"from_version,omitempty"`
	To        string    `json:"to_version"`
	OldSHA256 string    `json:"old_sha256,omitempty"`
	NewSHA256 string    `json:"new_sha256"`
	Phase     Phase     `json:"phase"`
	Reason    string    `json:"reason,omitempty"`
	Code      string    `json:"code,omitempty"`
	Self      bool      `json:"self,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	Deadline  time.Time `json:"deadline,omitzero"`
	Updated   time.Time `json:"updated"`

	// onPhase is Apply's caller's PhaseFunc (nil in Recover).
	onPhase PhaseFunc
}

type journal struct {
	dir string
}

func (j *journal) path(name string) string {
	return filepath.Join(j.dir, safeName(name)+".json")
}

// put records e durably before the caller acts on its phase.
func (j *journal) put(e *entry) error {
	e.V = journalVersion
	e.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(j.path(e.Name), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write journal for %s: %w", e.Name, err)
	}
	return nil
}

// get returns the entry for name, or nil.
func (j *journal) get(name string) (*entry, error) {
	b, err := os.ReadFile(j.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal for %s: %w", name, err)
	}
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("read journal for %s: corrupt entry: %w", name, err)
	}
	if e.V != journalVersion {
		return nil, fmt.Errorf("read journal for %s: version %d, this agent reads %d", name, e.V, journalVersion)
	}
	return &e, nil
}

// del removes name's entry: the job is over.
func (j *journal) del(name string) error {
	if err := removeSync(j.path(name)); err != nil {
		return fmt.Errorf("clear journal for %s: %w", name, err)
	}
	return nil
}

// names lists targets with an entry.
func (j *journal) names() ([]string, error) {
	des, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		n := de.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		out = append(out, strings.TrimSuffix(n, ".json"))
	}
	return out, nil
}

// safeName maps a target name to a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
