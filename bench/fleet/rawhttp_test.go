package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRawClient(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request line or headers", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/small":
			w.Write(append([]byte("echo:"), body...))
		case "/big": // past net/http's buffer: chunked
			w.Write(bytes.Repeat([]byte("x"), 10000))
			w.(http.Flusher).Flush()
			w.Write([]byte("end"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/limited":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := rawClient{addr: host, host: host, timeout: 5 * time.Second}
	defer c.close()
	tests := []struct {
		path, body string
		status     int
		reply      string
		conns      int32 // connections opened so far
	}{
		{"/small", `{"a":1}`, 200, `echo:{"a":1}`, 1},
		{"/small", `{}`, 200, `echo:{}`, 1}, // kept alive
		{"/big", ``, 200, strings.Repeat("x", 10000) + "end", 1},
		{"/limited", ``, 429, ``, 1},
		{"/close", ``, 200, `bye`, 1},
		{"/small", `again`, 200, `echo:again`, 2}, // a new connection after Connection: close
	}
	var reply bytes.Buffer
	for _, tt := range tests {
		status, err := c.post(tt.path, []byte("Bearer s3cret"), []byte(tt.body), &reply)
		if err != nil || status != tt.status || reply.String() != tt.reply {
			t.Fatalf("POST %s: %d %q %v, want %d %q", tt.path, status, reply.String(), err, tt.status, tt.reply)
		}
		if n := conns.Load(); n != tt.conns {
			t.Errorf("after POST %s: %d connections, want %d", tt.path, n, tt.conns)
		}
	}
	// The server drops idle connections: the next request redials once.
	srv.CloseClientConnections()
	if status, err := c.post("/small", []byte("Bearer s3cret"), []byte("x"), &reply); err != nil || status != 200 || reply.String() != "echo:x" {
		t.Fatalf("after the server closed the connection: %d %q %v", status, reply.String(), err)
	}
}

func TestReadResponseMalformed(t *testing.T) {
	for _, raw := range []string{
		"garbage\r\n\r\n",
		"HTTP/1.1 abc OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	} {
		var reply bytes.Buffer
		if _, _, err := readResponse(bufio.NewReader(strings.NewReader(raw)), &reply); err == nil {
			t.Errorf("readResponse(%q): no error", raw)
		}
	}
}
