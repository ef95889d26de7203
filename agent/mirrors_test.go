package agent

import (
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// TestMirrorsFromAMaliciousControlPlane: the sources a job may add are
// gated by this host's config. A control plane naming an origin the host
// did not allow (or any origin, with use_server_mirrors off) is ignored:
// the host never contacts it, and still has its own mirrors and the
// server's URL.
func TestMirrorsFromAMaliciousControlPlane(t *testing.T) {
	server, _ := url.Parse("https://ps.example.com")
	sha := strings.Repeat("b", 64)
	evil := []string{
		"https://attacker.example.net/" + sha,                        // not allowed
		"https://cdn.example.com/x/" + sha,                           // allowed
		"http://cdn.example.com/x/" + sha,                            // plain http
		"https://user:pw@cdn.example.com/x/" + sha,                   // credentials
		"https://cdn.example.com/x/../../etc/" + sha,                 // ..
		"https://ps.example.com/store/" + sha + "?X-Amz-Signature=1", // the server's own origin
		"file:///etc/shadow",
	}
	for _, tc := range []struct {
		name      string
		useServer bool
		own       []string
		want      []string
	}{
		{"server mirrors on the allow-list only", true, nil,
			[]string{"https://cdn.example.com/x/" + sha, "https://ps.example.com/store/" + sha + "?X-Amz-Signature=1"}},
		{"own mirrors first", true, []string{"https://site.example.org/pa/"},
			[]string{"https://site.example.org/pa/" + sha, "https://cdn.example.com/x/" + sha, "https://ps.example.com/store/" + sha + "?X-Amz-Signature=1"}},
		{"server mirrors refused", false, []string{"https://site.example.org"},
			[]string{"https://site.example.org/" + sha}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Artifacts.AllowedURLs = []string{"https://cdn.example.com"}
			cfg.Artifacts.UseServerMirrors = tc.useServer
			cfg.Artifacts.Mirrors = tc.own
			a := &sailpoint.Artifact{SHA256: sha, Mirrors: evil}
			got := mirrors(cfg, server, a, zap.NewNop())
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("sources:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestRefreshArtifact: a repeated job refreshes its artifact's URLs in
// the stored job only when it describes the same file.
func TestRefreshArtifact(t *testing.T) {
	base := goodJob()
	rec := &state.Job{UUID: base.UUID, Name: "ad-agent", Spec: *goodJob()}
	again := goodJob()
	a := *again.ManagedProcessConfiguration["ad-agent"].Artifact
	a.Mirrors = []string{"https://store.example.com/b?X-Amz-Signature=new"}
	mp := again.ManagedProcessConfiguration["ad-agent"]
	mp.Artifact = &a
	again.ManagedProcessConfiguration["ad-agent"] = mp
	if !refreshArtifact(rec, again) {
		t.Fatal("fresh mirrors not taken")
	}
	if got := rec.Spec.ManagedProcessConfiguration["ad-agent"].Artifact.Mirrors; len(got) != 1 || !strings.HasSuffix(got[0], "=new") {
		t.Fatalf("stored mirrors = %q", got)
	}
	if refreshArtifact(rec, again) {
		t.Error("the same URLs again reported a change")
	}
	other := *again.ManagedProcessConfiguration["ad-agent"].Artifact
	other.SHA256 = strings.Repeat("c", 64)
	other.URL = "https://ps.example.com/other"
	mp.Artifact = &other
	again.ManagedProcessConfiguration["ad-agent"] = mp
	if refreshArtifact(rec, again) || rec.Spec.ManagedProcessConfiguration["ad-agent"].Artifact.URL == other.URL {
		t.Error("a job id reused for another file changed the stored artifact")
	}
}
