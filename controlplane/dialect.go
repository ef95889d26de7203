package controlplane

import (
	"net/http"
	"strings"

	"github.com/poolagent/poolagent/api/okta"
)

// The Okta seeds disagree on an agent's lastConnection: the management
// API reference (and so the Go and Java SDKs) types it as an RFC 3339
// date-time, the request field table as Unix milliseconds, and the Python
// SDK (okta 3.x) follows the latter: its Agent model rejects a string, so
// every call returning a pool or an update with an agent fails validation.
// poolserver serves each official client the form it decodes, chosen by
// User-Agent (docs/api.md, "lastConnection").

// pythonGeneratorPrefix and pythonGeneratorSuffix bound the User-Agent
// product token of an OpenAPI Generator python client, which the Python
// SDK sends as is: "OpenAPI-Generator/1.0.0/python".
const (
	pythonGeneratorPrefix = "openapi-generator/"
	pythonGeneratorSuffix = "/python"
)

// wantsEpochMillis reports whether the request comes from a client that
// decodes lastConnection as Unix milliseconds: a User-Agent with a product
// token OpenAPI-Generator/<version>/python (any case, any version, among
// other tokens).
func wantsEpochMillis(r *http.Request) bool {
	for _, token := range strings.Fields(r.Header.Get("User-Agent")) {
		token = strings.ToLower(token)
		if !strings.HasPrefix(token, pythonGeneratorPrefix) || !strings.HasSuffix(token, pythonGeneratorSuffix) ||
			len(token) <= len(pythonGeneratorPrefix)+len(pythonGeneratorSuffix) {
			continue
		}
		version := token[len(pythonGeneratorPrefix) : len(token)-len(pythonGeneratorSuffix)]
		if !strings.Contains(version, "/") {
			return true
		}
	}
	return false
}

// msAgent is an agent with lastConnection in Unix milliseconds. Its own
// LastConnection is shallower than the embedded one, so encoding/json
// writes it instead.
type msAgent struct {
	okta.Agent
	LastConnection *int64 `json:"lastConnection,omitempty"`
}

// msPool and msUpdate carry msAgents in place of the agents.
type msPool struct {
	okta.AgentPool
	Agents []msAgent `json:"agents"`
}

type msUpdate struct {
	okta.AgentPoolUpdate
	Agents []msAgent `json:"agents"`
}

func msAgents(as []okta.Agent) []msAgent {
	out := make([]msAgent, len(as))
	for i, a := range as {
		out[i].Agent = a
		if a.LastConnection != nil {
			ms := a.LastConnection.UnixMilli()
			out[i].LastConnection = &ms
		}
	}
	return out
}

// forClient returns what to encode for v (an AgentPool, an
// AgentPoolUpdate, or a slice of either) for the client of r, and marks
// the reply as varying by User-Agent.
func forClient(w http.ResponseWriter, r *http.Request, v any) any {
	w.Header().Add("Vary", "User-Agent")
	if !wantsEpochMillis(r) {
		return v
	}
	switch v := v.(type) {
	case okta.AgentPoolUpdate:
		return msUpdate{AgentPoolUpdate: v, Agents: msAgents(v.Agents)}
	case []okta.AgentPoolUpdate:
		out := make([]msUpdate, len(v))
		for i, u := range v {
			out[i] = msUpdate{AgentPoolUpdate: u, Agents: msAgents(u.Agents)}
		}
		return out
	case []okta.AgentPool:
		out := make([]msPool, len(v))
		for i, p := range v {
			out[i] = msPool{AgentPool: p, Agents: msAgents(p.Agents)}
		}
		return out
	}
	return v
}
