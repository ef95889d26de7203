package controlplane

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/poolagent/poolagent/api/sailpoint"
)

// fastDecode runs only the hand-written decoder.
func fastDecode(body []byte) (sailpoint.StatusRequest, bool) {
	var r sailpoint.StatusRequest
	trimmed, oerr := checkJSONBody(body)
	if oerr != nil {
		return r, false
	}
	d := hbDecoder{b: trimmed}
	return r, d.request(&r)
}

// checkSameAsJSON fails when the hand-written decoder takes a body
// encoding/json would decode differently or refuse.
func checkSameAsJSON(t *testing.T, body []byte) (taken bool) {
	t.Helper()
	scratch := append([]byte(nil), body...)
	fast, ok := fastDecode(scratch)
	if !ok {
		return false
	}
	for i := range scratch { // the request must not share the body's memory (it is recycled)
		scratch[i] = 'x'
	}
	var std sailpoint.StatusRequest
	if oerr := decodeJSON(body, &std); oerr != nil {
		t.Fatalf("%q: the fast decoder took a body encoding/json refuses (%v)", body, oerr.causes)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("%q:\nfast %#v\njson %#v", body, fast, std)
	}
	return true
}

func TestStatusDecoderMatchesJSON(t *testing.T) {
	typ := sailpoint.TypeVA
	agentBody, _ := json.Marshal(sailpoint.StatusRequest{Status: sailpoint.StatusNormal, Type: &typ, Timestamp: "2026-01-01T00:00:00.123Z",
		Body: sailpoint.ClientBody{ID: "c1", Hostname: "h.example.com", InternalIP: "10.0.0.1", OS: "linux", Arch: "amd64",
			UptimeSeconds: "864000", AgentVersion: "0.3.0", LastSeen: "1620843964604", Stacktrace: "  ",
			Agents: []sailpoint.AgentReport{{Name: "ad-agent", Type: "AD", Version: "1.0.0", UpdateStatus: "Success",
				Health: &sailpoint.AgentHealth{OK: false, CheckedAt: "2026-01-01T00:00:00Z", Reason: "health check failed: GET http://127.0.0.1:8089/healthz: HTTP 503", Restarts: new(3)}},
				{Name: "f", Type: "fluent", Version: "50"}},
			Jobs: []sailpoint.JobReport{{UUID: "j1", State: sailpoint.JobFailed, Progress: 40, Phase: "health", UpdateMessage: "rolled back <&>",
				Diagnostics: &sailpoint.Diagnostics{Output: "line 1\nline 2\t\"q\"", Health: "HTTP 503"}}}}})
	tests := []struct {
		name  string
		body  string
		taken bool // the fast decoder decodes it itself
	}{
		{"the agent's heartbeat", string(agentBody), true},
		{"the seed's example", `{"body":{"alertKey":"","id":"5678","clusterId":"1234","ccg_etag":"ccg_etag123","ccg_pin":"ccg_pin123","cookbook_etag":"20210420125956-20210511144538","hostname":"megapod-useast1-secret-hostname.sailpoint.com","internal_ip":"127.0.0.1","lastSeen":"1620843964604","sinceSeen":"14708","sinceSeenMillis":"14708","localDev":false,"stacktrace":"","state":null,"status":"NORMAL","uuid":null,"product":"idn","va_version":null,"platform_version":"2","os_version":"2345.3.1","os_type":"flatcar","hypervisor":"unknown"},"status":"NORMAL","type":"CCG","timestamp":"2020-01-01T00:00:00.000000Z"}`, true},
		{"numbers and booleans as Flex", `{"status":"NORMAL","body":{"lastSeen":1620843964604,"uptime":-1.5e3,"state":true,"uuid":false,"id":null}}`, true},
		{"escapes in values", `{"status":"NORM\u0041L","timestamp":"a\/b","body":{"hostname":"h\u00e9\n","agents":[{"name":"a\"b","type":"AD","version":"1"}]}}`, true},
		{"non-ASCII text", `{"status":"NORMAL","body":{"hostname":"hôte-é","stacktrace":"日本"}}`, true},
		{"unknown keys of every kind", `{"x":[1,{"a":[]},"s\n",true,null],"status":"NORMAL","body":{"y":{"z":-0.0e-0},"jobs":[{"uuid":"j","state":"RUNNING","progress":5,"q":1}]}}`, true},
		{"empty and null arrays", `{"status":"NORMAL","body":{"agents":[],"jobs":null}}`, true},
		{"type null", `{"status":"NORMAL","type":null,"body":{}}`, true},
		{"whitespace everywhere", " \r\n{ \"status\" : \"NORMAL\" ,\t\"body\" : { \"agents\" : [ { \"name\" : \"a\" } ] } } \n", true},
		{"diagnostics null", `{"status":"NORMAL","body":{"jobs":[{"uuid":"j","state":"FAILED","diagnostics":null}]}}`, true},
		{"health null", `{"status":"NORMAL","body":{"agents":[{"name":"a","health":null}]}}`, true},
		{"health with unknown keys", `{"status":"NORMAL","body":{"agents":[{"name":"a","health":{"ok":true,"x":[1]}}]}}`, true},
		{"health not an object", `{"status":"NORMAL","body":{"agents":[{"name":"a","health":true}]}}`, false},
		{"key in another case", `{"STATUS":"NORMAL","body":{}}`, false},
		{"key in another case inside", `{"status":"NORMAL","body":{"HostName":"x"}}`, false},
		{"duplicate key", `{"status":"NORMAL","status":"ERROR"}`, false},
		{"duplicate object", `{"body":{"hostname":"a"},"body":{"os":"linux"}}`, false},
		{"escaped key", `{"st\u0061tus":"NORMAL"}`, false},
		{"non-ASCII key", `{"ſtatus":"NORMAL"}`, false},
		{"null status", `{"status":null}`, false},
		{"fractional progress", `{"body":{"jobs":[{"uuid":"j","progress":1.5}]}}`, false},
		{"huge progress", `{"body":{"jobs":[{"uuid":"j","progress":99999999999999999999}]}}`, false},
		{"string as agent", `{"body":{"agents":["a"]}}`, false},
		{"null agent", `{"body":{"agents":[null]}}`, false},
		{"number as name", `{"body":{"agents":[{"name":1}]}}`, false},
		{"object as Flex", `{"body":{"hostname":{}}}`, false},
		{"trailing data", `{"status":"NORMAL"} {}`, false},
		{"trailing comma", `{"status":"NORMAL",}`, false},
		{"leading zero", `{"body":{"uptime":01}}`, false},
		{"bad literal", `{"body":{"uptime":tru}}`, false},
		{"control character", "{\"status\":\"NOR\tMAL\"}", false},
		{"bad escape", `{"status":"\x"}`, false},
		{"not an object", `[]`, false},
		{"truncated", `{"status":"NORMAL","body":{`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if taken := checkSameAsJSON(t, []byte(tt.body)); taken != tt.taken {
				t.Fatalf("fast decoder took it: %v, want %v", taken, tt.taken)
			}
		})
	}
}

func FuzzStatusDecoder(f *testing.F) {
	for _, seed := range []string{
		`{"status":"NORMAL","type":"VA","timestamp":"2026-01-01T00:00:00Z","body":{"hostname":"h","lastSeen":1,"agents":[{"name":"a","type":"AD","version":"1"}],"jobs":[{"uuid":"j","state":"RUNNING","progress":5,"diagnostics":{"output":"o"}}]}}`,
		`{"body":{"x":[{"y":null}],"uptime":-0.5E+2,"stacktrace":"\u2028"},"Status":"x"}`,
		`{"status":"NORMAL","status":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSameAsJSON(t, body)
	})
}
