package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// BenchmarkHeartbeat measures the heartbeat handler in process (no
// network): unchanged heartbeats (the steady state) and heartbeats that
// change the host's state (a write each, group-committed).
func BenchmarkHeartbeat(b *testing.B) {
	for _, changing := range []bool{false, true} {
		b.Run(fmt.Sprint("changing=", changing), func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			cfg := controlplane.DefaultConfig()
			cfg.Heartbeat.RateLimit = 1 << 30
			srv := controlplane.New(cfg, st, nil)
			defer srv.Close()
			p := &store.Pool{ID: store.NewID("pol"), Name: "b", Type: okta.AgentTypeAD, CreatedAt: time.Now()}
			st.CreatePool(ctx, p)
			const hosts = 1000
			type h struct{ id, secret string }
			hs := make([]h, hosts)
			for i := range hs {
				secret, c, _ := controlplane.CreateClient(ctx, st, p.ID, "", time.Now())
				hs[i] = h{c.ID, secret}
			}
			body := func(i, v int) []byte {
				typ := sailpoint.TypeVA
				bb, _ := json.Marshal(sailpoint.StatusRequest{Status: sailpoint.StatusNormal, Type: &typ, Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
					Body: sailpoint.ClientBody{Hostname: sailpoint.Flex(hs[i].id + ".example.com"), InternalIP: "10.0.0.1", OSType: "ubuntu",
						OSVersion: "24.04", Hypervisor: "kvm", OS: "linux", Arch: "amd64", AgentVersion: "0.3.0",
						Agents: []sailpoint.AgentReport{{Name: "ad-agent", Type: "AD", Version: fmt.Sprintf("1.0.%d", v)}, {Name: "fluent", Type: "fluent", Version: "50"}}}})
				return bb
			}
			bodies := make([][]byte, hosts)
			for i := range bodies {
				bodies[i] = body(i, 0)
			}
			handler := srv.Handler()
			b.ResetTimer()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					k := i % hosts
					bb := bodies[k]
					if changing {
						bb = body(k, i)
					}
					req := httptest.NewRequest("POST", "/beta/managed-clients/"+hs[k].id+"/status", bytes.NewReader(bb))
					req.Header.Set("Authorization", "Bearer "+hs[k].secret)
					rec := httptest.NewRecorder()
					handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
					}
				}
			})
		})
	}
}
