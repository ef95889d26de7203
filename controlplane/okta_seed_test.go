package controlplane_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
)

// seedRequest reads a request body of testdata/seed-requests: the JSON
// request samples of the seeds, verbatim (okta-agent-pools-api.txt; the
// field table okta-create-agent-pool-update-fields.txt has none), and the
// empty models the Python SDK's examples send (okta.AgentPoolUpdate(),
// okta.AgentPoolUpdateSetting()).
func seedRequest(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seed-requests", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSeedRequestSamples posts every request sample of the seeds as is.
// The settings sample and the Python SDK's empty models are accepted. The
// update samples are Okta's schema samples: every field is understood, but
// three values are placeholders with no valid reading ("cron": "string",
// "timezone": "string", an agent object without an id); the reply is a
// 400 naming exactly those, and the same sample with only those three
// filled in is accepted.
func TestSeedRequestSamples(t *testing.T) {
	e := newEnv(t)
	p, agents := e.pool(okta.AgentTypeAD, "ad", "dc1", "dc2")
	base := "/api/v1/agentPools/" + p.ID + "/updates"
	existing := e.createUpdate(p.ID, `{"targetVersion":"1.1.0"}`)
	placeholders := []string{
		"agents[0].id: is required",
		`schedule.cron: invalid cron expression "string"`,
		`schedule.timezone: unknown IANA time zone "string"`,
	}

	for _, tc := range []struct{ name, file, path string }{
		{"create", "create-update.json", base},
		{"modify", "modify-update.json", base + "/" + existing.ID},
	} {
		t.Run(tc.name+" verbatim", func(t *testing.T) {
			r := e.do("POST", tc.path, e.manage, seedRequest(t, tc.file))
			oe := r.okta(t)
			if r.status != 400 || oe.ErrorCode != okta.CodeValidation {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var causes []string
			for _, c := range oe.ErrorCauses {
				causes = append(causes, c.ErrorSummary)
			}
			if len(causes) != len(placeholders) {
				t.Fatalf("causes = %q; want only the placeholders %q", causes, placeholders)
			}
			for _, want := range placeholders {
				if !slices.ContainsFunc(causes, func(c string) bool { return strings.HasPrefix(c, want) }) {
					t.Errorf("no cause %q in %q", want, causes)
				}
			}
		})
		t.Run(tc.name+" with the placeholders filled in", func(t *testing.T) {
			var body map[string]any
			if err := json.Unmarshal([]byte(seedRequest(t, tc.file)), &body); err != nil {
				t.Fatal(err)
			}
			body["agents"].([]any)[0].(map[string]any)["id"] = agents[1].ID
			sc := body["schedule"].(map[string]any)
			sc["cron"], sc["timezone"] = "0 8 ? * 6#3", "America/Los_Angeles"
			b, _ := json.Marshal(body)
			r := e.do("POST", tc.path, e.manage, string(b))
			if r.status != http.StatusCreated {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var u okta.AgentPoolUpdate
			r.decode(t, &u)
			// Everything else of the sample is kept as sent; status is
			// read-only (Cancelled in the sample), duration 0 is the default.
			if u.Name != "string" || u.Reason != "string" || u.TargetVersion != "string" || !u.Enabled || !u.NotifyAdmin ||
				u.SortOrder != 0 || u.AgentType != okta.AgentTypeAD || u.Status != okta.JobScheduled ||
				len(u.Agents) != 1 || u.Agents[0].ID != agents[1].ID || u.Schedule == nil || u.Schedule.Cron != "0 8 ? * 6#3" ||
				u.Schedule.Timezone != "America/Los_Angeles" || *u.Schedule.Delay != 0 || *u.Schedule.Duration != controlplane.DefaultWindowMinutes {
				t.Errorf("update = %s", r.body)
			}
		})
	}

	t.Run("settings verbatim", func(t *testing.T) {
		r := e.do("POST", base+"/settings", e.manage, seedRequest(t, "update-settings.json"))
		if r.status != http.StatusCreated {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var s okta.AgentPoolUpdateSetting
		r.decode(t, &s)
		if s.AgentType != okta.AgentTypeAD || !s.ContinueOnError || s.LatestVersion != "string" || s.MinimalSupportedVersion != "string" ||
			s.PoolName != "string" || s.ReleaseChannel != okta.ChannelBeta || s.PoolID != p.ID {
			t.Errorf("settings = %s", r.body)
		}
	})
	t.Run("Python SDK's empty update", func(t *testing.T) {
		r := e.do("POST", base, e.manage, seedRequest(t, "python-empty-update.json"))
		if r.status != http.StatusCreated {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var u okta.AgentPoolUpdate
		r.decode(t, &u)
		if u.Status != okta.JobInProgress || len(u.Agents) != 2 || !u.Enabled {
			t.Errorf("update = %s", r.body)
		}
	})
	t.Run("Python SDK's empty settings", func(t *testing.T) {
		if r := e.do("POST", base+"/settings", e.manage, seedRequest(t, "python-empty-settings.json")); r.status != http.StatusCreated {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

// TestLifecycleWithOctetStreamBody sends each lifecycle POST as Okta's
// Python SDK does: Content-Type application/octet-stream and an empty
// body, with its User-Agent and its space-less SSWS prefix.
func TestLifecycleWithOctetStreamBody(t *testing.T) {
	e := newEnv(t)
	p, _ := e.pool(okta.AgentTypeAD, "ad", "dc1")
	u := e.createUpdate(p.ID, `{"targetVersion":"1.1.0","schedule":{"cron":"0 8 ? * 6#3"}}`)
	base := e.srv.URL + "/api/v1/agentPools/" + p.ID + "/updates/" + u.ID + "/"
	for _, step := range []struct {
		action string
		want   okta.AgentUpdateJobStatus
	}{
		{"deactivate", okta.JobScheduled},
		{"activate", okta.JobScheduled},
		{"pause", okta.JobPaused},
		{"resume", okta.JobScheduled},
		{"stop", okta.JobCancelled},
		{"retry", okta.JobInProgress},
	} {
		req, _ := http.NewRequest("POST", base+step.action, http.NoBody)
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", uaPython)
		req.Header.Set("Authorization", "SSWS"+e.manage)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %d %s", step.action, resp.StatusCode, b)
		}
		// The Python SDK's form: lastConnection in Unix milliseconds.
		var got struct {
			Status okta.AgentUpdateJobStatus
			Agents []struct{ LastConnection int64 }
		}
		if err := json.Unmarshal(b, &got); err != nil || got.Status != step.want || len(got.Agents) != 1 || got.Agents[0].LastConnection == 0 {
			t.Errorf("%s: %s (%v), want status %s", step.action, b, err, step.want)
		}
	}
}
