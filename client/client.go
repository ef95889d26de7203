// Package client is a small typed client of poolserver's API (the Agent
// Pools API and its extensions) for operators' tools such as the
// poolserver CLI. It depends only on the wire types in api/okta.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
)

// Client talks to one poolserver with one API token.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// Option configures a Client.
type Option func(*Client) error

// WithCA trusts the PEM certificates in caPEM (a private CA) instead of
// the system roots.
func WithCA(caPEM []byte) Option {
	return func(c *Client) error {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return errors.New("the CA file holds no PEM certificate")
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		c.hc = &http.Client{Transport: tr, Timeout: c.hc.Timeout}
		return nil
	}
}

// New returns a client of the poolserver at baseURL (e.g.
// https://poolserver.example.com) that authenticates with token.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	if baseURL == "" {
		return nil, errors.New("no server URL: give --server or set POOLSERVER_URL")
	}
	if token == "" {
		return nil, errors.New("no API token: give --token or set POOLSERVER_TOKEN")
	}
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://HOST[:PORT]", baseURL)
	}
	c := &Client{base: u, token: token, hc: &http.Client{Timeout: 60 * time.Second}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Error is an error reply of the API: Okta's error object.
type Error struct {
	Status  int
	Code    string
	Summary string
	Causes  []string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s (HTTP %d", e.Summary, e.Status)
	if e.Code != "" {
		msg += ", " + e.Code
	}
	msg += ")"
	for _, c := range e.Causes {
		msg += "\n  - " + c
	}
	return msg
}

// do sends one request and decodes a 2xx JSON reply into out (when not
// nil); it returns the reply's "next" link, if any.
func (c *Client) do(ctx context.Context, method, pathAndQuery string, body, out any) (next string, err error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return "", fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	target := pathAndQuery
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		target = c.base.String() + pathAndQuery
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "SSWS "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", method, pathAndQuery, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", fmt.Errorf("%s %s: read reply: %w", method, pathAndQuery, err)
	}
	if resp.StatusCode >= 300 {
		var oe okta.Error
		if json.Unmarshal(raw, &oe) == nil && oe.ErrorSummary != "" {
			e := &Error{Status: resp.StatusCode, Code: oe.ErrorCode, Summary: oe.ErrorSummary}
			for _, c := range oe.ErrorCauses {
				e.Causes = append(e.Causes, c.ErrorSummary)
			}
			return "", e
		}
		return "", &Error{Status: resp.StatusCode, Summary: strings.TrimSpace(http.StatusText(resp.StatusCode) + " " + truncate(string(raw), 200))}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return "", fmt.Errorf("%s %s: decode reply: %w", method, pathAndQuery, err)
		}
	}
	for _, l := range resp.Header.Values("Link") {
		if m := nextLink.FindStringSubmatch(l); m != nil {
			next = m[1]
		}
	}
	return next, nil
}

var nextLink = regexp.MustCompile(`^<([^>]+)>;\s*rel="next"$`)

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// ListPools returns every agent pool with its agents, following the
// pages.
func (c *Client) ListPools(ctx context.Context) ([]okta.AgentPool, error) {
	var all []okta.AgentPool
	path := "/api/v1/agentPools?limitPerPoolType=200"
	for path != "" {
		var page []okta.AgentPool
		next, err := c.do(ctx, "GET", path, nil, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		path = next
	}
	return all, nil
}

// ListUpdates returns a pool's updates in creation order.
func (c *Client) ListUpdates(ctx context.Context, poolID string) ([]okta.AgentPoolUpdate, error) {
	var out []okta.AgentPoolUpdate
	_, err := c.do(ctx, "GET", "/api/v1/agentPools/"+url.PathEscape(poolID)+"/updates", nil, &out)
	return out, err
}

// GetUpdate returns one update with each agent's status.
func (c *Client) GetUpdate(ctx context.Context, poolID, updateID string) (*okta.AgentPoolUpdate, error) {
	var out okta.AgentPoolUpdate
	if _, err := c.do(ctx, "GET", updatePath(poolID, updateID), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// NewUpdate is what CreateUpdate sends: only the fields set.
type NewUpdate struct {
	Name          string                   `json:"name,omitempty"`
	TargetVersion string                   `json:"targetVersion"`
	Schedule      *okta.AutoUpdateSchedule `json:"schedule,omitempty"`
}

// CreateUpdate creates an update of a pool's agents: ad hoc, or in a
// maintenance schedule.
func (c *Client) CreateUpdate(ctx context.Context, poolID string, u NewUpdate) (*okta.AgentPoolUpdate, error) {
	var out okta.AgentPoolUpdate
	if _, err := c.do(ctx, "POST", "/api/v1/agentPools/"+url.PathEscape(poolID)+"/updates", u, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Do applies a lifecycle action (one of the POST actions, not
// okta.ActionDelete) to an update and returns it after.
func (c *Client) Do(ctx context.Context, poolID, updateID string, a okta.UpdateAction) (*okta.AgentPoolUpdate, error) {
	var out okta.AgentPoolUpdate
	if _, err := c.do(ctx, "POST", updatePath(poolID, updateID)+"/"+string(a), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StopWithRollback stops an update and rolls back every host it moved to
// the version it ran before (POST .../stop?rollback=true, extension); on
// an update already Failed or Cancelled it starts the rollback alone.
func (c *Client) StopWithRollback(ctx context.Context, poolID, updateID string) (*okta.AgentPoolUpdate, error) {
	var out okta.AgentPoolUpdate
	if _, err := c.do(ctx, "POST", updatePath(poolID, updateID)+"/"+string(okta.ActionStop)+"?rollback=true", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListReleases returns the release catalog, oldest first.
func (c *Client) ListReleases(ctx context.Context) ([]okta.Release, error) {
	var out []okta.Release
	_, err := c.do(ctx, "GET", "/api/v1/releases", nil, &out)
	return out, err
}

// AuditLog returns up to limit audit log entries, newest first.
func (c *Client) AuditLog(ctx context.Context, limit int) ([]okta.AuditEntry, error) {
	var out []okta.AuditEntry
	_, err := c.do(ctx, "GET", fmt.Sprintf("/api/v1/auditLog?limit=%d", limit), nil, &out)
	return out, err
}

func updatePath(poolID, updateID string) string {
	return "/api/v1/agentPools/" + url.PathEscape(poolID) + "/updates/" + url.PathEscape(updateID)
}

// PoolCompliance returns a pool's compliance (extension): its agents
// counted by compliance state, with up to limit of its non-compliant
// agents (following the pages; limit <= 0: all of them).
func (c *Client) PoolCompliance(ctx context.Context, poolID string, limit int) (*okta.PoolCompliance, error) {
	const page = 1000
	n := page
	if limit > 0 && limit < page {
		n = limit
	}
	path := fmt.Sprintf("/api/v1/agentPools/%s/compliance?limit=%d", url.PathEscape(poolID), n)
	var out *okta.PoolCompliance
	for path != "" {
		var p okta.PoolCompliance
		next, err := c.do(ctx, "GET", path, nil, &p)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = &p
		} else {
			out.NonCompliant = append(out.NonCompliant, p.NonCompliant...)
		}
		if limit > 0 && len(out.NonCompliant) >= limit {
			out.NonCompliant = out.NonCompliant[:limit]
			break
		}
		path = next
	}
	return out, nil
}
