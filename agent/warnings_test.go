package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/platform/hostinfo"
)

// lockedBuffer is a log sink read while the daemon writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServerWarningsAreLoggedAndKept heartbeats against a real HTTP
// server: the reply's warnings are logged once and kept for `poolagent
// status` with the pool type (from poolType, or from clusterType of a
// server older than poolType, whose silence about warnings makes the
// daemon compare the types itself).
func TestServerWarningsAreLoggedAndKept(t *testing.T) {
	const warn = `TYPE_MISMATCH: managed agent "radius-agent" has type "Radius", which is not its pool's type "AD": it is not one of the pool's agents and gets no updates`
	tests := []struct {
		name   string
		config map[string]string
		body   string // the reply's body fields besides configuration and jobs
		pool   string
		want   []string
	}{
		{"server warns", map[string]string{"poolType": "AD", "clusterType": ""}, `"warnings":["` + strings.ReplaceAll(warn, `"`, `\"`) + `"]`, "AD", []string{warn}},
		{"server content", map[string]string{"poolType": "Radius", "clusterType": ""}, `"warnings":[]`, "Radius", nil},
		{"older server: pool type as clusterType", map[string]string{"clusterType": "AD"}, "", "AD", []string{warn}},
		{"older server, same type", map[string]string{"clusterType": "RADIUS"}, "", "Radius", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got sailpoint.StatusRequest
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				cfg, _ := json.Marshal(tt.config)
				body := `{"id":"c1","clientId":"c1","clusterId":"p1","configuration":` + string(cfg) + `,"jobs":[]`
				if tt.body != "" {
					body += "," + tt.body
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"status":"NORMAL","type":"VA","timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","body":` + body + `}}`))
			}))
			defer srv.Close()
			var logs lockedBuffer
			d := testDaemon(t, func(deps *Deps) {
				deps.Server, _ = url.Parse(srv.URL)
				deps.Transport = srv.Client().Transport
				deps.Creds = state.Credentials{ClientID: "c1", Secret: "pcs_x"}
				deps.Facts = hostinfo.NewCollector(hostinfo.CollectorOptions{})
			})
			d.log = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zap.InfoLevel))
			d.cfg.Agents = []config.Agent{{Name: "radius-agent", Type: "Radius", Binary: "/opt/okta/radius/agent", Version: "1.0.0"}}
			for i := range 3 {
				if _, err := d.beat(context.Background()); err != nil {
					t.Fatalf("heartbeat %d: %v", i, err)
				}
			}
			if len(got.Body.Agents) == 0 || got.Body.Agents[0].Type != "Radius" {
				t.Errorf("reported agents %+v", got.Body.Agents)
			}
			st := d.Status()
			if st.PoolType != tt.pool {
				t.Errorf("status poolType %q, want %q", st.PoolType, tt.pool)
			}
			if strings.Join(st.Warnings, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("status warnings %q, want %q", st.Warnings, tt.want)
			}
			if n := strings.Count(logs.String(), "TYPE_MISMATCH"); n != len(tt.want) {
				t.Errorf("logged %d warnings over 3 heartbeats, want %d (once each):\n%s", n, len(tt.want), logs.String())
			}
		})
	}
}
