package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/sailpoint"
)

func TestCredentialsRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "client.json")
	if _, err := ReadCredentials(p); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("missing file: %v", err)
	}
	c := Credentials{ServerURL: "https://ps.example.com", ClientID: "mcl1", Secret: "pcs_x"}
	if err := WriteCredentials(p, c); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("mode: %v %v", fi, err)
	}
	got, err := ReadCredentials(p)
	if err != nil || got != c {
		t.Fatalf("read %+v, %v", got, err)
	}
	if err := os.WriteFile(p, []byte(`{"client_id":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCredentials(p); err == nil {
		t.Fatal("credentials without a secret accepted")
	}
}

func TestSaveLoadPrune(t *testing.T) {
	dir := t.TempDir()
	s, err := Load(dir)
	if err != nil || len(s.Jobs) != 0 {
		t.Fatalf("empty state: %+v %v", s, err)
	}
	for i := range KeepFinished + 5 {
		s.Jobs = append(s.Jobs, &Job{UUID: fmt.Sprint(i), State: sailpoint.JobFinished, Reported: true})
	}
	s.Jobs = append(s.Jobs, &Job{UUID: "running", State: sailpoint.JobRunning}, &Job{UUID: "unreported", State: sailpoint.JobFailed})
	s.Sequences["upd1"] = 7
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	s.Agents["ad"] = &Agent{Version: "1.1.0", Previous: &Previous{Version: "1.0.0", SHA256: "ab12", At: at}}
	s.Prune()
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Jobs) != KeepFinished+2 || got.Job("running") == nil || got.Job("unreported") == nil || got.Job("0") != nil || got.Sequences["upd1"] != 7 {
		t.Errorf("after prune: %d jobs, %+v", len(got.Jobs), got.Sequences)
	}
	if p := got.Agents["ad"].Previous; p == nil || *p != (Previous{Version: "1.0.0", SHA256: "ab12", At: at}) {
		t.Errorf("previous release after a reload: %+v", p)
	}
}
