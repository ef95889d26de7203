package controlplane

import (
	"crypto/rand"
	"encoding/json"
	"net/http"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// writeJSON writes v as a JSON reply with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"errorCode":"E0000009","errorSummary":"Internal Server Error","errorLink":"E0000009","errorId":"","errorCauses":[]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// oktaError is an error in Okta's format with its HTTP status.
type oktaError struct {
	status  int
	code    string
	summary string
	causes  []string
}

func (e *oktaError) Error() string { return e.summary }

func newOktaError(status int, code, summary string, causes ...string) *oktaError {
	return &oktaError{status: status, code: code, summary: summary, causes: causes}
}

// Okta's summaries for its codes.
func errValidation(causes ...string) *oktaError {
	return newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: agentPoolUpdate", causes...)
}

func errMalformed(causes ...string) *oktaError {
	return newOktaError(http.StatusBadRequest, okta.CodeMalformedBody, "The request body was not well-formed.", causes...)
}

func errNotFound(what string) *oktaError {
	return newOktaError(http.StatusNotFound, okta.CodeNotFound, "Not found: Resource not found: "+what)
}

func writeOktaError(w http.ResponseWriter, e *oktaError) {
	causes := make([]okta.ErrorCause, 0, len(e.causes))
	for _, c := range e.causes {
		causes = append(causes, okta.ErrorCause{ErrorSummary: c})
	}
	writeJSON(w, e.status, okta.Error{
		ErrorCode:    e.code,
		ErrorSummary: e.summary,
		ErrorLink:    e.code,
		ErrorID:      newErrorID(),
		ErrorCauses:  causes,
	})
}

const errorIDAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newErrorID returns a random id for one error reply, like Okta's "oae..." ids.
func newErrorID() string {
	b := make([]byte, 22)
	_, _ = rand.Read(b)
	out := []byte("oae")
	for _, c := range b {
		out = append(out, errorIDAlphabet[int(c)%len(errorIDAlphabet)])
	}
	return string(out)
}

// SailPoint's error replies.

func writeSPError(w http.ResponseWriter, status int, detail, text string, causes ...string) {
	msg := func(s string) sailpoint.Message {
		return sailpoint.Message{Locale: "en-US", LocaleOrigin: "DEFAULT", Text: s}
	}
	e := sailpoint.Error{DetailCode: detail, TrackingID: newTrackingID(), Messages: []sailpoint.Message{msg(text)}, Causes: []sailpoint.Message{}}
	for _, c := range causes {
		e.Causes = append(e.Causes, msg(c))
	}
	writeJSON(w, status, e)
}

func spBadRequest(w http.ResponseWriter, causes ...string) {
	writeSPError(w, http.StatusBadRequest, "400.1 Bad Request Content",
		"The request was syntactically correct but its content is semantically invalid.", causes...)
}

func spUnauthorized(w http.ResponseWriter, why string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="poolserver"`)
	writeJSON(w, http.StatusUnauthorized, sailpoint.AuthError{Error: why})
}

func spForbidden(w http.ResponseWriter, why string) {
	writeSPError(w, http.StatusForbidden, "403 Forbidden", "The server understood the request but refuses to authorize it.", why)
}

func spNotFound(w http.ResponseWriter, why string) {
	writeSPError(w, http.StatusNotFound, "404 Not found", "The server did not find a current representation for the target resource.", why)
}

func spInternal(w http.ResponseWriter) {
	writeSPError(w, http.StatusInternalServerError, "500.0 Internal Fault", "An internal fault occurred.")
}

func newTrackingID() string {
	id := newErrorID()
	return id[3:]
}
