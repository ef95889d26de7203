package controlplane

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os/user"
	"strconv"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
)

// Audit actions: what changed. Lifecycle actions are "update." + the
// action's name (update.pause, update.resume, ...).
const (
	AuditUpdateCreate   = "update.create"
	AuditUpdateModify   = "update.modify"
	AuditUpdateDelete   = "update.delete"
	AuditSettingsChange = "settings.change"
	AuditTokenCreate    = "token.create"
	AuditPoolCreate     = "pool.create"
	AuditClientCreate   = "client.create"
	AuditEnrollCreate   = "enroll-token.create"
	AuditReleasePublish = "release.publish"
)

const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// audit records a change made with tok after it committed. A failure is
// logged, not returned: the change itself stands.
func (s *Server) audit(ctx context.Context, tok *store.Token, e store.AuditEntry) {
	e.Time = s.clock.Now().UTC()
	e.ActorKind, e.ActorID, e.ActorName = store.ActorToken, tok.ID, tok.Name
	if err := s.store.AppendAudit(context.WithoutCancel(ctx), &e); err != nil {
		s.log.Error("write the audit log entry", zap.String("action", e.Action), zap.String("pool", e.PoolID),
			zap.String("update", e.UpdateID), zap.Error(err))
	}
}

// AuditCLI records a change made by a poolserver command, with the OS user
// who ran it as the actor.
func AuditCLI(ctx context.Context, st store.Store, e store.AuditEntry, now time.Time) error {
	e.Time = now.UTC()
	e.ActorKind, e.ActorID = store.ActorCLI, osUser()
	if err := st.AppendAudit(ctx, &e); err != nil {
		return fmt.Errorf("write the audit log entry for %s: %w", e.Action, err)
	}
	return nil
}

// osUser names the OS user running this process.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// AuditView is an audit entry as the API shows it.
func AuditView(e *store.AuditEntry) okta.AuditEntry {
	return okta.AuditEntry{ID: e.ID, Published: e.Time, Actor: okta.AuditActor{Type: e.ActorKind, ID: e.ActorID, Name: e.ActorName},
		Action: e.Action, PoolID: e.PoolID, UpdateID: e.UpdateID, Target: e.Target, StatusBefore: e.StatusBefore,
		StatusAfter: e.StatusAfter, Detail: e.Detail}
}

// handleAuditLog serves GET /api/v1/auditLog (extension): the audit log,
// newest first, paged by the Link header's rel="next".
func (s *Server) handleAuditLog(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	q := r.URL.Query()
	var causes []string
	aq := store.AuditQuery{Limit: defaultAuditLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			causes = append(causes, fmt.Sprintf("limit: must be an integer from 1 to %d, got %q", maxAuditLimit, v))
		}
		aq.Limit = n
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			causes = append(causes, fmt.Sprintf("since: must be an RFC 3339 time such as 2026-03-01T12:00:00Z, got %q", v))
		}
		aq.Since = t
	}
	if v := q.Get("after"); v != "" {
		seq, err := decodeAuditCursor(v)
		if err != nil {
			causes = append(causes, "after: not a cursor this server issued; take it from the Link header's rel=\"next\"")
		}
		aq.BeforeSeq = seq
	}
	if len(causes) > 0 {
		return newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: query parameters", causes...)
	}
	want := aq.Limit
	aq.Limit++
	es, err := s.store.ListAudit(r.Context(), aq)
	if err != nil {
		return err
	}
	more := len(es) > want
	if more {
		es = es[:want]
	}
	out := make([]okta.AuditEntry, len(es))
	for i, e := range es {
		out[i] = AuditView(e)
	}
	self := s.baseURL(r) + "/api/v1/auditLog"
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="self"`, self))
	if more {
		nq := url.Values{}
		nq.Set("limit", strconv.Itoa(want))
		if v := q.Get("since"); v != "" {
			nq.Set("since", v)
		}
		nq.Set("after", encodeAuditCursor(es[len(es)-1].Seq))
		w.Header().Add("Link", fmt.Sprintf(`<%s/api/v1/auditLog?%s>; rel="next"`, s.baseURL(r), nq.Encode()))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// The audit cursor is the Seq of the last entry returned, opaque to
// clients.
func encodeAuditCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("a" + strconv.FormatInt(seq, 10)))
}

func decodeAuditCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 'a' {
		return 0, fmt.Errorf("not an audit cursor")
	}
	n, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("not an audit cursor")
	}
	return n, nil
}
