package controlplane

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// readBody reads a bounded request body.
func readBody(r *http.Request) ([]byte, *oktaError) {
	return readBodyInto(r, nil)
}

// readBodyInto reads a bounded request body into buf's memory when it is
// large enough. A body of known length (the usual heartbeat) is read in
// one read into a buffer of exactly its size.
func readBodyInto(r *http.Request, buf []byte) ([]byte, *oktaError) {
	if n := r.ContentLength; n >= 0 && n <= MaxBodyBytes {
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		body := buf[:n]
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, errMalformed("the request body could not be read: " + err.Error())
		}
		return body, nil
	}
	b := bytes.NewBuffer(buf[:0])
	_, err := b.ReadFrom(io.LimitReader(r.Body, MaxBodyBytes+1))
	body := b.Bytes()
	if err != nil {
		return nil, errMalformed("the request body could not be read: " + err.Error())
	}
	if len(body) > MaxBodyBytes {
		return nil, errMalformed(fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes))
	}
	return body, nil
}

// decodeJSON decodes one JSON object from body into v. Unknown fields are
// ignored (the SDKs send back whole objects); syntax errors, a wrong JSON
// type for a field and invalid UTF-8 are reported with the field's name.
func decodeJSON(body []byte, v any) *oktaError {
	body, oerr := checkJSONBody(body)
	if oerr != nil {
		return oerr
	}
	if err := json.Unmarshal(body, v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) && strings.Contains(syn.Error(), "after top-level value") {
			return errMalformed("the request body has data after the JSON object")
		}
		return jsonError(err)
	}
	return nil
}

// checkJSONBody trims a body and checks it is UTF-8 and starts an object.
func checkJSONBody(body []byte) ([]byte, *oktaError) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errMalformed("the request body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return nil, errMalformed("the request body is not valid UTF-8")
	}
	if body[0] != '{' {
		return nil, errMalformed("the request body must be a JSON object")
	}
	return body, nil
}

func jsonError(err error) *oktaError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errMalformed(fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return errValidation(fmt.Sprintf("%s: expected %s, got JSON %s", field, typ.Type, typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errMalformed("the request body ends in the middle of the JSON object")
	}
	var fe fieldError
	if errors.As(err, &fe) {
		return errValidation(fe.Error())
	}
	return errMalformed(err.Error())
}

// fieldError is a decoding error raised by a custom unmarshaler.
type fieldError struct{ field, msg string }

func (e fieldError) Error() string { return e.field + ": " + e.msg }
