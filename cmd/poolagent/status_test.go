package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/agent/localapi"
)

// TestPrintStatusShowsWarnings: the server's warnings and the pool type
// are shown to the operator.
func TestPrintStatusShowsWarnings(t *testing.T) {
	now := time.Now()
	var b bytes.Buffer
	printStatus(&b, localapi.Status{Version: "1.0.0", StartedAt: now, ClientID: "mcl1", ClusterID: "pol1", PoolType: "Radius",
		Warnings: []string{"TYPE_MISMATCH: managed agent \"r\" has type \"RADIUS\", which is not its pool's type \"Radius\""}}, now)
	out := b.String()
	for _, want := range []string{"pool pol1 (Radius)", "WARNING:         TYPE_MISMATCH: managed agent \"r\""} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
