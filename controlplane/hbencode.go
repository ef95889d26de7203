package controlplane

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/poolagent/poolagent/api/sailpoint"
)

// appendStatusReply appends r as encoding/json marshals it, byte for
// byte, without reflection for the reply's fixed frame: the jobs, the
// connector services and any string that needs escaping go through
// encoding/json itself. TestStatusReplyEncoderMatchesJSON holds the two
// to the same bytes.
func appendStatusReply(b []byte, r *sailpoint.StatusReply) ([]byte, error) {
	var err error
	body := &r.Body
	b = append(b, `{"body":{"id":`...)
	b = appendJSONString(b, body.ID)
	b = append(b, `,"clientId":`...)
	b = appendJSONString(b, body.ClientID)
	b = append(b, `,"clusterId":`...)
	b = appendJSONString(b, body.ClusterID)
	b = append(b, `,"orgType":`...)
	b = appendJSONString(b, body.OrgType)
	b = append(b, `,"vaDownloadUrl":`...)
	b = appendJSONString(b, body.VADownloadURL)
	b = append(b, `,"clusterJobCount":`...)
	b = strconv.AppendInt(b, int64(body.ClusterJobCount), 10)
	b = append(b, `,"configuration":`...)
	b = appendStringMap(b, body.Configuration)
	b = append(b, `,"connectorServices":`...)
	if b, err = appendMarshalled(b, body.ConnectorServices, body.ConnectorServices == nil); err != nil {
		return nil, err
	}
	b = append(b, `,"jobs":`...)
	if b, err = appendMarshalled(b, body.Jobs, body.Jobs == nil); err != nil {
		return nil, err
	}
	b = append(b, `,"queue":`...)
	if q := body.Queue; q == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"name":`...)
		b = appendJSONString(b, q.Name)
		b = append(b, `,"region":`...)
		b = appendJSONString(b, q.Region)
		b = append(b, '}')
	}
	b = append(b, `,"maintenance":`...)
	if m := body.Maintenance; m == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"window":`...)
		b = appendJSONString(b, m.Window)
		b = append(b, `,"windowStartTime":`...)
		b = appendJSONString(b, m.WindowStartTime)
		b = append(b, `,"windowClusterTime":`...)
		b = appendJSONString(b, m.WindowClusterTime)
		b = append(b, `,"windowFinishTime":`...)
		b = appendJSONString(b, m.WindowFinishTime)
		b = append(b, '}')
	}
	b = append(b, `,"warnings":`...)
	if body.Warnings == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, w := range body.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, w)
		}
		b = append(b, ']')
	}
	b = append(b, `},"status":`...)
	b = appendJSONString(b, string(r.Status))
	b = append(b, `,"type":`...)
	if r.Type == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, string(*r.Type))
	}
	b = append(b, `,"timestamp":`...)
	if b, err = appendJSONTime(b, r.Timestamp); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendJSONString appends s quoted as encoding/json does: a string of
// printable ASCII without ", \, <, > or & as it is, any other through
// encoding/json (HTML-safe escapes, U+FFFD for invalid UTF-8, \u2028).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendStringMap appends a map[string]string with its keys sorted, as
// encoding/json does.
func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var arr [16]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// appendMarshalled appends v as encoding/json marshals it ("null" when
// isNil, "[]" for an empty slice without calling it).
func appendMarshalled[T any](b []byte, v []T, isNil bool) ([]byte, error) {
	switch {
	case isNil:
		return append(b, "null"...), nil
	case len(v) == 0:
		return append(b, "[]"...), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds; a year or zone it refuses goes to it for the error).
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off <= -24*3600 || off >= 24*3600 {
		j, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		return append(b, j...), nil
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// replyBufs recycles the buffers heartbeat replies are encoded in.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// contentTypeJSON is the Content-Type header value of JSON replies,
// shared (net/http only reads it).
var contentTypeJSON = []string{"application/json"}

// writeStatusReply writes a heartbeat's 200 reply: the same bytes as
// writeJSON, encoded without reflection into a recycled buffer.
func writeStatusReply(w http.ResponseWriter, r *sailpoint.StatusReply) {
	bp := replyBufs.Get().(*[]byte)
	body, err := appendStatusReply((*bp)[:0], r)
	if err != nil {
		replyBufs.Put(bp)
		writeJSON(w, http.StatusOK, r) // the same error reply as ever
		return
	}
	body = append(body, '\n')
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	if cap(body) <= 64<<10 { // a reply with many jobs is not kept
		*bp = body
		replyBufs.Put(bp)
	}
}
