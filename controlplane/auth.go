package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
)

// tokenPrefix starts every API token poolserver issues, like Okta's "00".
const tokenPrefix = "00"

// HashSecret returns the SHA-256 of a token or client secret: the only form
// in which poolserver stores them. Secrets are 240-bit random strings, so a
// plain hash is enough (no password stretching needed).
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// NewSecret returns a random secret: prefix and 40 base62 characters.
func NewSecret(prefix string) string {
	b := make([]byte, 40)
	_, _ = rand.Read(b)
	out := []byte(prefix)
	for _, c := range b {
		out = append(out, errorIDAlphabet[int(c)%len(errorIDAlphabet)])
	}
	return string(out)
}

// ParseScopes checks scope names given on the command line or in config.
func ParseScopes(names []string) ([]store.Scope, error) {
	if len(names) == 0 {
		return nil, errors.New("at least one scope is required: okta.agentPools.read or okta.agentPools.manage")
	}
	out := make([]store.Scope, 0, len(names))
	for _, n := range names {
		switch s := store.Scope(n); s {
		case store.ScopeRead, store.ScopeManage:
			out = append(out, s)
		default:
			return nil, fmt.Errorf("unknown scope %q: want okta.agentPools.read or okta.agentPools.manage", n)
		}
	}
	return out, nil
}

// CreateToken issues an API token with the given scopes and returns its
// secret, which is shown once and never stored. ttl 0 means no expiry.
func CreateToken(ctx context.Context, st store.Store, name string, scopes []store.Scope, ttl time.Duration, now time.Time) (string, *store.Token, error) {
	secret := NewSecret(tokenPrefix)
	t := &store.Token{ID: store.NewID("tok"), Name: name, Hash: HashSecret(secret), Scopes: scopes, CreatedAt: now}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	if err := st.CreateToken(ctx, t); err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

// The token cache (Server.tokens) keeps recently authenticated tokens so
// the hot path does not hit the store on every request. Entries live for
// tokenCacheTTL; unknown tokens are never cached, so a token created by
// the CLI works at once.
const (
	tokenCacheTTL = 30 * time.Second
	maxTokens     = 10000
)

// bearer extracts the credential from "SSWS <t>" or "Bearer <t>". The
// space may be missing ("SSWS<t>", "Bearer<t>"): the Python SDK (okta 3.x)
// joins its api_key_prefix and the token without one.
func bearer(r *http.Request) (string, bool) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	for _, scheme := range []string{"SSWS", "Bearer"} {
		if len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) {
			cred := strings.TrimSpace(h[len(scheme):])
			return cred, cred != ""
		}
	}
	return "", false
}

// authenticate returns the API token of the request, or an Okta error.
func (s *Server) authenticate(r *http.Request) (*store.Token, *oktaError) {
	cred, ok := bearer(r)
	if !ok {
		return nil, newOktaError(http.StatusUnauthorized, okta.CodeAuthentication, "Authentication exception: send an API token as 'Authorization: SSWS <token>' or 'Bearer <token>'")
	}
	invalid := newOktaError(http.StatusUnauthorized, okta.CodeInvalidToken, "Invalid token provided")
	hash := HashSecret(cred)
	key := [32]byte(hash)
	tok, hit := s.tokens.get(key)
	if !hit {
		var err error
		tok, err = s.store.TokenByHash(r.Context(), hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalid
		}
		if err != nil {
			s.log.Error("look up token", zap.Error(err))
			return nil, newOktaError(http.StatusInternalServerError, okta.CodeInternal, "Internal Server Error")
		}
		s.tokens.put(key, tok)
	}
	if subtle.ConstantTimeCompare(tok.Hash, hash) != 1 {
		return nil, invalid
	}
	if !tok.ExpiresAt.IsZero() && !s.clock.Now().Before(tok.ExpiresAt) {
		return nil, invalid
	}
	return tok, nil
}

// setRateHeaders writes Okta's rate limit headers.
func setRateHeaders(w http.ResponseWriter, q quota) {
	h := w.Header()
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(q.Limit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(q.Remaining))
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(q.Reset.Unix(), 10))
}

// retryAfterSeconds is how long a rate-limited client should wait.
func retryAfterSeconds(q quota, now time.Time) int {
	s := int(q.Reset.Sub(now).Round(time.Second) / time.Second)
	return max(s, 1)
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// oktaAPI wraps an Agent Pools handler with authentication, rate limiting
// and the scope check.
func (s *Server) oktaAPI(scope store.Scope, h func(w http.ResponseWriter, r *http.Request, tok *store.Token) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Okta-Request-Id", newTrackingID())
		tok, aerr := s.authenticate(r)
		key := "ip:" + clientAddr(r)
		if tok != nil {
			key = "tok:" + tok.ID
		}
		q := s.limiter.take(key)
		setRateHeaders(w, q)
		if !q.Allowed {
			s.metrics.rateLimited.WithLabelValues("api").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(q, s.clock.Now())))
			writeOktaError(w, newOktaError(http.StatusTooManyRequests, okta.CodeRateLimit, "API call exceeded rate limit due to too many requests."))
			return
		}
		if aerr != nil {
			w.Header().Set("WWW-Authenticate", `SSWS realm="poolserver"`)
			writeOktaError(w, aerr)
			return
		}
		if !tok.Has(scope) {
			writeOktaError(w, newOktaError(http.StatusForbidden, okta.CodeForbidden,
				"You do not have permission to perform the requested action", "the token lacks the scope "+string(scope)))
			return
		}
		if err := h(w, r, tok); err != nil {
			s.writeErr(w, r, err)
		}
	}
}

// writeErr turns a handler's error into Okta's error object.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oktaError
	switch {
	case errors.As(err, &oe):
	case errors.Is(err, store.ErrNotFound):
		oe = errNotFound(r.URL.Path)
	case errors.Is(err, context.Canceled):
		return
	default:
		s.log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		oe = newOktaError(http.StatusInternalServerError, okta.CodeInternal, "Internal Server Error")
	}
	writeOktaError(w, oe)
}
