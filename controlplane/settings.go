package controlplane

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
)

// settingsView renders a pool's update settings. latestVersion is the
// pinned one, or the newest release of the pool's type on its channel.
func (s *Server) settingsView(r *http.Request, p *store.Pool) okta.AgentPoolUpdateSetting {
	cat, _ := s.catalog(r.Context())
	return okta.AgentPoolUpdateSetting{
		AgentType:               p.Type,
		ContinueOnError:         p.Settings.ContinueOnError,
		LatestVersion:           effectiveLatest(p, cat),
		MinimalSupportedVersion: p.Settings.MinimalSupportedVersion,
		PoolID:                  p.ID,
		PoolName:                p.Name,
		ReleaseChannel:          p.Settings.ReleaseChannel,
		MaxUnavailable:          max(p.Settings.MaxUnavailable, 1),
		MinOperational:          p.Settings.MinOperational,
		RequireAllConnected:     p.Settings.RequireAllConnected,
		ArtifactMirrors:         p.Settings.ArtifactMirrors,
	}
}

// handleGetSettings serves GET /api/v1/agentPools/{poolId}/updates/settings.
func (s *Server) handleGetSettings(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.settingsView(r, p))
	return nil
}

// settingsBody is a settings POST; absent fields keep their values.
type settingsBody struct {
	AgentType               *okta.AgentType      `json:"agentType"`
	ContinueOnError         *bool                `json:"continueOnError"`
	LatestVersion           *string              `json:"latestVersion"`
	MinimalSupportedVersion *string              `json:"minimalSupportedVersion"`
	PoolName                *string              `json:"poolName"`
	ReleaseChannel          *okta.ReleaseChannel `json:"releaseChannel"`
	MaxUnavailable          *int                 `json:"maxUnavailable"` // extension
	MinOperational          *int                 `json:"minOperational"` // extension
	RequireAllConnected     *bool                `json:"requireAllConnected"`
	ArtifactMirrors         *[]string            `json:"artifactMirrors"` // extension
}

// handleSetSettings serves POST /api/v1/agentPools/{poolId}/updates/settings.
func (s *Server) handleSetSettings(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	raw, oerr := readBody(r)
	if oerr != nil {
		return oerr
	}
	var b settingsBody
	if oerr := decodeJSON(raw, &b); oerr != nil {
		return oerr
	}
	var causes []string
	if b.AgentType != nil && *b.AgentType != "" && *b.AgentType != p.Type {
		if !b.AgentType.Valid() {
			causes = append(causes, fmt.Sprintf("agentType: unknown agent type %q; want one of %s", *b.AgentType, joinTypes()))
		} else {
			causes = append(causes, fmt.Sprintf("agentType: the pool holds %s agents, not %s", p.Type, *b.AgentType))
		}
	}
	if b.ReleaseChannel != nil && !b.ReleaseChannel.Valid() {
		causes = append(causes, fmt.Sprintf("releaseChannel: unknown channel %q; want one of BETA, EA, GA, TEST", *b.ReleaseChannel))
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"latestVersion", b.LatestVersion}, {"minimalSupportedVersion", b.MinimalSupportedVersion}} {
		if f.v != nil && *f.v != "" {
			if msg := checkVersion(*f.v); msg != "" {
				causes = append(causes, f.name+": "+msg)
			}
		}
	}
	if b.MinOperational != nil && (*b.MinOperational < 0 || *b.MinOperational > 1000000) {
		causes = append(causes, fmt.Sprintf("minOperational: must be from 0 to 1000000, got %d", *b.MinOperational))
	}
	if b.MaxUnavailable != nil && (*b.MaxUnavailable < 1 || *b.MaxUnavailable > 1000000) {
		causes = append(causes, fmt.Sprintf("maxUnavailable: must be from 1 to 1000000, got %d", *b.MaxUnavailable))
	}
	if b.ArtifactMirrors != nil {
		causes = append(causes, checkMirrors(*b.ArtifactMirrors)...)
	}
	if b.PoolName != nil && (strings.TrimSpace(*b.PoolName) == "" || len(*b.PoolName) > 255) {
		causes = append(causes, "poolName: must be 1 to 255 characters")
	}
	if len(causes) > 0 {
		return newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: agentPoolUpdateSetting", causes...)
	}
	p, err = s.store.ModifyPool(r.Context(), p.ID, func(p *store.Pool) error {
		if b.ContinueOnError != nil {
			p.Settings.ContinueOnError = *b.ContinueOnError
		}
		if b.LatestVersion != nil {
			p.Settings.LatestVersion = *b.LatestVersion
		}
		if b.MinimalSupportedVersion != nil {
			p.Settings.MinimalSupportedVersion = *b.MinimalSupportedVersion
		}
		if b.PoolName != nil {
			p.Name = *b.PoolName
		}
		if b.ReleaseChannel != nil {
			p.Settings.ReleaseChannel = *b.ReleaseChannel
		}
		if b.MaxUnavailable != nil {
			p.Settings.MaxUnavailable = *b.MaxUnavailable
		}
		if b.MinOperational != nil {
			p.Settings.MinOperational = *b.MinOperational
		}
		if b.RequireAllConnected != nil {
			p.Settings.RequireAllConnected = *b.RequireAllConnected
		}
		if b.ArtifactMirrors != nil {
			p.Settings.ArtifactMirrors = normalizeMirrors(*b.ArtifactMirrors)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("pool settings changed", zap.String("pool", p.ID))
	s.audit(r.Context(), tok, store.AuditEntry{Action: AuditSettingsChange, PoolID: p.ID, Detail: settingsDetail(p)})
	s.notify(p.ID)
	writeJSON(w, http.StatusCreated, s.settingsView(r, p))
	return nil
}

// settingsDetail is a pool's settings after a change, for the audit log.
func settingsDetail(p *store.Pool) string {
	st := p.Settings
	return fmt.Sprintf("poolName=%q releaseChannel=%s continueOnError=%t latestVersion=%q minimalSupportedVersion=%q maxUnavailable=%d minOperational=%d requireAllConnected=%t artifactMirrors=%q",
		p.Name, st.ReleaseChannel, st.ContinueOnError, st.LatestVersion, st.MinimalSupportedVersion, st.MaxUnavailable, st.MinOperational, st.RequireAllConnected,
		st.ArtifactMirrors)
}

// maxMirrors bounds a pool's artifactMirrors: each is one more source an
// agent may try before poolserver.
const maxMirrors = 16

// checkMirrors validates artifactMirrors: http(s) base URLs without
// credentials, query or fragment (an agent appends /<sha256>).
func checkMirrors(ms []string) []string {
	var causes []string
	if len(ms) > maxMirrors {
		causes = append(causes, fmt.Sprintf("artifactMirrors: at most %d mirrors, got %d", maxMirrors, len(ms)))
	}
	for i, m := range ms {
		u, err := url.Parse(m)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || len(m) > 2048 {
			causes = append(causes, fmt.Sprintf("artifactMirrors[%d]: %q is not an http(s) base URL without credentials, query or fragment", i, m))
		}
	}
	return causes
}

// normalizeMirrors drops trailing slashes, so <base>/<sha256> has one.
func normalizeMirrors(ms []string) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, strings.TrimRight(m, "/"))
	}
	return out
}
