package ui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/controlplane/ui"
)

func get(t *testing.T, h http.Handler, path, ifNoneMatch string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHandlerServesEmbeddedAssets(t *testing.T) {
	h := ui.Handler()
	for _, tt := range []struct{ path, typ, contains string }{
		{"/ui/", "text/html", `<script src="app.js" defer></script>`},
		{"/ui/index.html", "text/html", `<label for="token">API token</label>`},
		{"/ui/app.js", "javascript", `"SSWS "`},
		{"/ui/style.css", "text/css", ":focus-visible"},
	} {
		resp, body := get(t, h, tt.path, "")
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tt.typ) || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.contains, strings.Contains(body, tt.contains))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q", tt.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: headers %v", tt.path, resp.Header)
		}
		tag := resp.Header.Get("ETag")
		if r, b := get(t, h, tt.path, tag); tag == "" || r.StatusCode != 304 || b != "" {
			t.Errorf("GET %s If-None-Match %q: %d", tt.path, tag, r.StatusCode)
		}
	}
	if resp, _ := get(t, h, "/ui/nope.js", ""); resp.StatusCode != 404 {
		t.Errorf("unknown asset: %d", resp.StatusCode)
	}
}

// The page must not load anything from another origin or run inline
// script (the CSP would block it; this catches it before a browser does).
func TestAssetsAreSelfContained(t *testing.T) {
	h := ui.Handler()
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/style.css"} {
		_, body := get(t, h, p, "")
		for _, bad := range []string{"http://", "https://", "//cdn", "<script>", "onclick=\"", "style=\"", "innerHTML", "eval("} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
	}
}
