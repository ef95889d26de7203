package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/schedule"
	"github.com/poolagent/poolagent/controlplane/store"
)

// Defaults of an update's schedule.
const (
	// DefaultWindowMinutes is the window length of a schedule sent without
	// a duration (or with 0, as the seed's request sample does).
	DefaultWindowMinutes = rollout.DefaultWindowMinutes
	// DefaultTimezone is the zone of a schedule sent without one.
	DefaultTimezone = "UTC"
)

// agentRef is an agent entry of an update body. Only id is used; the
// enum fields are checked so a typo is reported; everything else (the
// read-only fields an SDK sends back) is ignored.
type agentRef struct {
	ID                string                         `json:"id"`
	OperationalStatus okta.OperationalStatus         `json:"operationalStatus"`
	Type              okta.AgentType                 `json:"type"`
	UpdateStatus      okta.AgentUpdateInstanceStatus `json:"updateStatus"`
}

// scheduleBody is the schedule of an update body.
type scheduleBody struct {
	Cron     *string `json:"cron"`
	Delay    *int    `json:"delay"`
	Duration *int    `json:"duration"`
	Timezone *string `json:"timezone"`
}

// updateBody is the body of a create or modify request; nil fields were
// absent. Read-only fields (id, _links, schedule.lastUpdated) are ignored;
// status is checked but ignored.
type updateBody struct {
	Agents        *[]agentRef                `json:"agents"`
	AgentType     *okta.AgentType            `json:"agentType"`
	Enabled       *bool                      `json:"enabled"`
	Name          *string                    `json:"name"`
	NotifyAdmin   *bool                      `json:"notifyAdmin"`
	Reason        *string                    `json:"reason"`
	Schedule      json.RawMessage            `json:"schedule"`
	SortOrder     *int                       `json:"sortOrder"`
	Status        *okta.AgentUpdateJobStatus `json:"status"`
	TargetVersion *string                    `json:"targetVersion"`
	// AllowDowngrade is an extension: install a version below the
	// installed one.
	AllowDowngrade *bool `json:"allowDowngrade"`
	// Rollout is an extension: the update's rollout policy.
	Rollout json.RawMessage `json:"rollout"`
}

// parsedUpdate is a validated updateBody.
type parsedUpdate struct {
	updateBody
	scheduleSet bool            // the body carried a schedule field
	schedule    *store.Schedule // nil: no schedule (or cleared)
	rolloutSet  bool
	rollout     *RolloutPolicy
}

const maxTextField = 1024

// checkVersion reports what is wrong with a version string given by an
// operator, or "". Versions name files on hosts, so separators, "..",
// spaces and control characters are refused.
func checkVersion(v string) string {
	switch {
	case len(v) > 128:
		return "is longer than 128 characters"
	case strings.Contains(v, ".."), strings.ContainsAny(v, `/\:`):
		return "must not contain '..', '/', '\\' or ':'"
	}
	for _, r := range v {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "must not contain spaces or control characters"
		}
	}
	return ""
}

// parseUpdateBody decodes and validates an update body for a pool.
func parseUpdateBody(r *http.Request, p *store.Pool) (*parsedUpdate, error) {
	raw, oerr := readBody(r)
	if oerr != nil {
		return nil, oerr
	}
	var b updateBody
	if oerr := decodeJSON(raw, &b); oerr != nil {
		return nil, oerr
	}
	pu := &parsedUpdate{updateBody: b}
	var causes []string
	if b.AgentType != nil && *b.AgentType != "" {
		switch {
		case !b.AgentType.Valid():
			causes = append(causes, fmt.Sprintf("agentType: unknown agent type %q; want one of %s", *b.AgentType, joinTypes()))
		case *b.AgentType != p.Type:
			causes = append(causes, fmt.Sprintf("agentType: the pool holds %s agents, not %s", p.Type, *b.AgentType))
		}
	}
	if b.Status != nil && *b.Status != "" && !b.Status.Valid() {
		causes = append(causes, fmt.Sprintf("status: unknown status %q; want one of Cancelled, Failed, InProgress, Paused, Scheduled, Success", *b.Status))
	}
	if b.TargetVersion != nil {
		if msg := checkVersion(*b.TargetVersion); msg != "" {
			causes = append(causes, "targetVersion: "+msg)
		}
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"name", b.Name}, {"reason", b.Reason}} {
		if f.v != nil && len(*f.v) > maxTextField {
			causes = append(causes, fmt.Sprintf("%s: is longer than %d bytes", f.name, maxTextField))
		}
	}
	if b.Agents != nil {
		seen := map[string]bool{}
		for i, a := range *b.Agents {
			switch {
			case a.ID == "":
				causes = append(causes, fmt.Sprintf("agents[%d].id: is required", i))
			case seen[a.ID]:
				causes = append(causes, fmt.Sprintf("agents[%d].id: agent %s is listed twice", i, a.ID))
			}
			seen[a.ID] = true
			if a.OperationalStatus != "" && !a.OperationalStatus.Valid() {
				causes = append(causes, fmt.Sprintf("agents[%d].operationalStatus: unknown value %q", i, a.OperationalStatus))
			}
			if a.Type != "" && !a.Type.Valid() {
				causes = append(causes, fmt.Sprintf("agents[%d].type: unknown agent type %q", i, a.Type))
			}
			if a.UpdateStatus != "" && !a.UpdateStatus.Valid() {
				causes = append(causes, fmt.Sprintf("agents[%d].updateStatus: unknown value %q", i, a.UpdateStatus))
			}
		}
	}
	if len(b.Schedule) > 0 {
		pu.scheduleSet = true
		sc, scCauses, oerr := parseSchedule(b.Schedule)
		if oerr != nil {
			return nil, oerr
		}
		causes = append(causes, scCauses...)
		pu.schedule = sc
	}
	if len(b.Rollout) > 0 {
		pol, rc := parseRolloutPolicy(b.Rollout)
		causes = append(causes, rc...)
		pu.rolloutSet, pu.rollout = true, pol
	}
	if len(causes) > 0 {
		return nil, errValidation(causes...)
	}
	return pu, nil
}

// parseSchedule validates a schedule object. null, {} and a schedule with
// only read-only fields mean "no schedule".
func parseSchedule(raw json.RawMessage) (*store.Schedule, []string, *oktaError) {
	if string(raw) == "null" {
		return nil, nil, nil
	}
	var sb scheduleBody
	if err := json.Unmarshal(raw, &sb); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return nil, nil, errValidation(fmt.Sprintf("schedule.%s: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value))
		}
		return nil, nil, errMalformed("schedule: must be a JSON object")
	}
	var causes []string
	cron := ""
	if sb.Cron != nil {
		cron = strings.TrimSpace(*sb.Cron)
	}
	if cron == "" {
		if sb.Timezone != nil || sb.Delay != nil || sb.Duration != nil {
			if (sb.Timezone != nil && *sb.Timezone != "") || (sb.Delay != nil && *sb.Delay != 0) || (sb.Duration != nil && *sb.Duration != 0) {
				return nil, []string{"schedule.cron: is required when a schedule is given, e.g. \"0 2 15 * *\" (the 15th at 02:00) or \"0 2 * * 2#1\" (the first Tuesday at 02:00)"}, nil
			}
		}
		return nil, nil, nil
	}
	sc := &store.Schedule{Cron: cron, Timezone: DefaultTimezone}
	if sb.Timezone != nil && *sb.Timezone != "" {
		sc.Timezone = *sb.Timezone
	}
	delay := 0
	if sb.Delay != nil {
		delay = *sb.Delay
		if err := schedule.ValidateDelay(delay); err != nil {
			causes = append(causes, "schedule.delay: "+err.Error())
		}
	}
	duration := DefaultWindowMinutes
	if sb.Duration != nil && *sb.Duration != 0 {
		duration = *sb.Duration
		if duration < 0 {
			causes = append(causes, fmt.Sprintf("schedule.duration: must be a positive number of minutes, got %d", duration))
		}
	}
	sc.Delay, sc.Duration = &delay, &duration
	_, cronErr := schedule.Parse(sc.Cron)
	if cronErr != nil {
		causes = append(causes, "schedule.cron: "+cronErr.Error())
	}
	var tzErr error
	if sc.Timezone != schedule.HostTimezone { // "host": each host's own zone (extension)
		_, tzErr = time.LoadLocation(sc.Timezone)
		if tzErr != nil || sc.Timezone == "Local" {
			causes = append(causes, fmt.Sprintf("schedule.timezone: unknown IANA time zone %q (e.g. \"UTC\", \"Europe/Berlin\", \"America/New_York\", or \"host\" for each host's own zone)", sc.Timezone))
		}
	}
	if cronErr == nil && tzErr == nil && duration > 0 {
		if _, err := schedule.NewWindow(sc.Cron, schedule.ScheduleZone(sc.Timezone, ""), duration); err != nil {
			causes = append(causes, "schedule.duration: "+err.Error())
		}
	}
	return sc, causes, nil
}

// applyFields copies the writable fields present in b onto u.
func applyFields(u *store.Update, b *parsedUpdate) {
	if b.Name != nil {
		u.Name = *b.Name
	}
	if b.Enabled != nil {
		u.Enabled = *b.Enabled
	}
	if b.NotifyAdmin != nil {
		u.NotifyAdmin = *b.NotifyAdmin
	}
	if b.Reason != nil {
		u.Reason = *b.Reason
	}
	if b.SortOrder != nil {
		u.SortOrder = *b.SortOrder
	}
	if b.TargetVersion != nil {
		u.TargetVersion = *b.TargetVersion
	}
	if b.AllowDowngrade != nil {
		u.AllowDowngrade = *b.AllowDowngrade
	}
	if b.rolloutSet {
		doc := rollout.ReadDoc(u)
		doc.Policy = b.rollout
		rollout.WriteDoc(u, doc)
	}
	if b.scheduleSet {
		if b.schedule != nil && u.Schedule != nil {
			b.schedule.LastUpdated = u.Schedule.LastUpdated
		}
		u.Schedule = b.schedule
	}
}
