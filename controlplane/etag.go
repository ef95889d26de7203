package controlplane

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// withETag gives the 200 replies of a GET route an ETag (a hash of the
// body) and answers a matching If-None-Match with 304 and no body, so a
// poller (the dashboard) re-downloads a list only when it changed. The
// handler still runs: the saving is the transfer and the client's work,
// not the server's. Other methods and statuses pass through untouched.
//
// A handler that sets its own ETag header before it writes (a reply too
// big to buffer: updateread.go) is trusted with it and with If-None-Match:
// its reply goes straight to the client, unbuffered.
func withETag(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		buf := &bufferedReply{header: http.Header{}, status: http.StatusOK, w: w}
		next.ServeHTTP(buf, r)
		if buf.direct {
			return
		}
		h := w.Header()
		for k, v := range buf.header {
			h[k] = v
		}
		if buf.status != http.StatusOK {
			w.WriteHeader(buf.status)
			_, _ = w.Write(buf.body.Bytes())
			return
		}
		sum := sha256.Sum256(buf.body.Bytes())
		tag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
		h.Set("ETag", tag)
		h.Set("Cache-Control", "no-cache")
		if etagMatches(r.Header.Get("If-None-Match"), tag) {
			for _, k := range []string{"Content-Type", "Content-Length"} {
				h.Del(k)
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf.body.Bytes())
	})
}

// etagMatches reports whether an If-None-Match header names tag (weak
// comparison, as RFC 9110 asks for If-None-Match) or is "*".
func etagMatches(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == tag {
			return true
		}
	}
	return false
}

// bufferedReply holds a handler's reply until its ETag is known, unless
// the handler set an ETag itself (direct: the reply goes on to w).
type bufferedReply struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
	w           http.ResponseWriter
	direct      bool
}

func (b *bufferedReply) Header() http.Header { return b.header }

func (b *bufferedReply) WriteHeader(code int) {
	if b.wroteHeader {
		return
	}
	b.status, b.wroteHeader = code, true
	if b.header.Get("ETag") != "" {
		b.direct = true
		h := b.w.Header()
		for k, v := range b.header {
			h[k] = v
		}
		b.w.WriteHeader(code)
	}
}

func (b *bufferedReply) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	if b.direct {
		return b.w.Write(p)
	}
	return b.body.Write(p)
}
