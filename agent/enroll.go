package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/version"
	"github.com/poolagent/poolagent/platform/fsacl"
)

// Enroll exchanges a one-time enrollment token for this host's client id
// and secret (POST /beta/managed-clients) and writes them to the
// credentials file with owner-only permissions. server "" means the
// config's server_url.
func Enroll(ctx context.Context, cfg config.Config, server, token string) (state.Credentials, error) {
	if server == "" {
		server = cfg.ServerURL
	}
	server = strings.TrimSuffix(server, "/")
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return state.Credentials{}, fmt.Errorf("enroll: %q is not the server's http(s) URL (--server or server_url)", server)
	}
	if u.Scheme == "http" && !cfg.Artifacts.AllowInsecureHTTP {
		return state.Credentials{}, fmt.Errorf("enroll: plain http refused for %s: use https or set artifacts.allow_insecure_http", server)
	}
	if token == "" {
		return state.Credentials{}, fmt.Errorf("enroll: --token is required (poolserver enroll-token create prints one)")
	}
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	body, _ := json.Marshal(sailpoint.EnrollRequest{Hostname: host, Type: sailpoint.ClientType(cfg.Type), OS: runtime.GOOS, Arch: runtime.GOARCH})
	tr, err := newTransport(cfg)
	if err != nil {
		return state.Credentials{}, err
	}
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.JoinPath("beta", "managed-clients").String(), bytes.NewReader(body))
	if err != nil {
		return state.Credentials{}, fmt.Errorf("enroll: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "poolagent/"+version.String())
	resp, err := client.Do(req)
	if err != nil {
		return state.Credentials{}, fmt.Errorf("enroll at %s: %w", server, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return state.Credentials{}, fmt.Errorf("enroll at %s: server answered %s: %s", server, resp.Status, bytes.TrimSpace(b))
	}
	var er sailpoint.EnrollReply
	if err := json.Unmarshal(b, &er); err != nil {
		return state.Credentials{}, fmt.Errorf("enroll: decode reply: %w", err)
	}
	id := er.ClientID
	if id == "" {
		id = er.ID
	}
	if id == "" || er.Secret == "" {
		return state.Credentials{}, fmt.Errorf("enroll: the server's reply has no client id or secret")
	}
	c := state.Credentials{ServerURL: server, ClientID: id, ClusterID: er.ClusterID, Secret: er.Secret, EnrolledAt: time.Now().UTC()}
	// The state dir holds the secret: on Windows it gets its protected
	// ACL before the secret is written into it.
	if err := fsacl.MkdirPrivate(cfg.StateDir); err != nil {
		return c, fmt.Errorf("enroll: state dir: %w", err)
	}
	if err := state.WriteCredentials(cfg.Credentials(), c); err != nil {
		return c, err
	}
	return c, nil
}
