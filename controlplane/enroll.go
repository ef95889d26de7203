package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
)

// Secret prefixes tell the kinds of secret apart in logs and support cases.
const (
	clientSecretPrefix = "pcs_"
	enrollTokenPrefix  = "pet_"
)

// CreateClient registers a managed client in a pool and returns its
// secret (shown once; only its hash is stored). id "" picks one.
func CreateClient(ctx context.Context, st store.Store, poolID, id string, now time.Time) (string, *store.Client, error) {
	if _, err := st.GetPool(ctx, poolID); err != nil {
		return "", nil, fmt.Errorf("pool %s: %w", poolID, err)
	}
	if id == "" {
		id = store.NewID("mcl")
	}
	if strings.ContainsAny(id, "/\\ ?#%") || len(id) > 128 {
		return "", nil, fmt.Errorf("client id %q: use at most 128 characters without '/', '\\\\', spaces, '?', '#' or '%%'", id)
	}
	secret := NewSecret(clientSecretPrefix)
	c := &store.Client{ID: id, PoolID: poolID, SecretHash: HashSecret(secret), CreatedAt: now.UTC()}
	if err := st.CreateClient(ctx, c); err != nil {
		return "", nil, err
	}
	return secret, c, nil
}

// CreateEnrollToken issues a one-time enrollment token for a pool, valid
// for ttl; `poolagent enroll` exchanges it for a client id and secret.
func CreateEnrollToken(ctx context.Context, st store.Store, poolID string, ttl time.Duration, now time.Time) (string, error) {
	if _, err := st.GetPool(ctx, poolID); err != nil {
		return "", fmt.Errorf("pool %s: %w", poolID, err)
	}
	if ttl <= 0 {
		return "", errors.New("an enrollment token needs a positive lifetime")
	}
	secret := NewSecret(enrollTokenPrefix)
	t := &store.EnrollToken{Hash: HashSecret(secret), PoolID: poolID, CreatedAt: now.UTC(), ExpiresAt: now.Add(ttl).UTC()}
	if err := st.CreateEnrollToken(ctx, t); err != nil {
		return "", err
	}
	return secret, nil
}

// handleEnroll serves POST /beta/managed-clients (extension): a host
// exchanges a one-time enrollment token for its client id and secret.
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	cred, ok := bearer(r)
	if !ok {
		spUnauthorized(w, "send the enrollment token as Authorization: Bearer <token>")
		return
	}
	q := s.ipLimiter.take(clientAddr(r))
	if !q.Allowed {
		s.rateLimited(w, q)
		return
	}
	raw, oerr := readBody(r)
	if oerr != nil {
		spBadRequest(w, oerr.causes...)
		return
	}
	var req sailpoint.EnrollRequest
	if oerr := decodeJSON(raw, &req); oerr != nil {
		spBadRequest(w, oerr.causes...)
		return
	}
	var causes []string
	if strings.TrimSpace(req.Hostname) == "" || len(req.Hostname) > 255 {
		causes = append(causes, "hostname: is required (at most 255 bytes)")
	}
	if req.Type != "" && !req.Type.Valid() {
		causes = append(causes, fmt.Sprintf("type: unknown value %q; want CCG, VA, INTERNAL or IIQ_HARVESTER", req.Type))
	}
	if len(causes) > 0 {
		spBadRequest(w, causes...)
		return
	}
	now := s.clock.Now().UTC()
	secret := NewSecret(clientSecretPrefix)
	c := &store.Client{ID: store.NewID("mcl"), SecretHash: HashSecret(secret), Hostname: req.Hostname, Type: string(req.Type),
		OS: req.OS, Arch: req.Arch, CreatedAt: now}
	expired := errors.New("the enrollment token has expired")
	err := s.store.Enroll(r.Context(), HashSecret(cred), func(t *store.EnrollToken) error {
		if !now.Before(t.ExpiresAt) {
			return expired
		}
		return nil
	}, c)
	switch {
	case errors.Is(err, store.ErrNotFound):
		spUnauthorized(w, "the enrollment token is not valid")
		return
	case errors.Is(err, store.ErrUsed):
		spUnauthorized(w, "the enrollment token was already used")
		return
	case errors.Is(err, expired):
		spUnauthorized(w, expired.Error())
		return
	case err != nil:
		s.log.Error("enroll", zap.Error(err))
		spInternal(w)
		return
	}
	s.log.Info("client enrolled", zap.String("client", c.ID), zap.String("pool", c.PoolID), zap.String("hostname", c.Hostname))
	writeJSON(w, http.StatusCreated, sailpoint.EnrollReply{ID: c.ID, ClientID: c.ID, ClusterID: c.PoolID, Secret: secret})
}
