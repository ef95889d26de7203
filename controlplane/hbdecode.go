package controlplane

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/poolagent/poolagent/api/sailpoint"
)

// decodeStatusRequest decodes a heartbeat's body. A hand-written decoder
// takes the usual heartbeat in one pass without reflection; whatever it
// does not handle exactly as encoding/json would (an escape in a key, a
// key in another case, a duplicate key, a value of an unexpected JSON
// type, a syntax error) is decoded again by decodeJSON, which gives the
// same result and the same error as before. TestStatusDecoderMatchesJSON
// and FuzzStatusDecoder hold the two to the same result.
func decodeStatusRequest(body []byte, req *sailpoint.StatusRequest) *oktaError {
	if trimmed, oerr := checkJSONBody(body); oerr == nil {
		var fast sailpoint.StatusRequest
		d := hbDecoder{b: trimmed}
		if d.request(&fast) {
			*req = fast
			return nil
		}
	}
	return decodeJSON(body, req)
}

// hbDecoder scans one JSON document. Each method reports false when the
// input is anything it does not take exactly as encoding/json does.
type hbDecoder struct {
	b []byte
	i int
}

func (d *hbDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace (0 at the end).
func (d *hbDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *hbDecoder) eat(c byte) bool {
	if d.peek() == c {
		d.i++
		return true
	}
	return false
}

// rawString returns the bytes of a string literal without escapes
// (ok false on an escape, a control character or no string).
func (d *hbDecoder) rawString() ([]byte, bool) {
	if !d.eat('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		d.i++
	}
	return nil, false
}

// str decodes a string literal; one with escapes is unquoted by
// encoding/json itself.
func (d *hbDecoder) str() (string, bool) {
	save := d.i
	if b, ok := d.rawString(); ok {
		return string(b), true
	}
	d.i = save
	if d.peek() != '"' {
		return "", false
	}
	start := d.i
	if !d.skipString() {
		return "", false
	}
	var s string
	if json.Unmarshal(d.b[start:d.i], &s) != nil {
		return "", false
	}
	return s, true
}

// skipString skips a string literal, escapes included, validating them.
func (d *hbDecoder) skipString() bool {
	if !d.eat('"') {
		return false
	}
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return false
			}
			switch d.b[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				if d.i+6 > len(d.b) {
					return false
				}
				for _, h := range d.b[d.i+2 : d.i+6] {
					if !isHex(h) {
						return false
					}
				}
				d.i += 6
			default:
				return false
			}
			continue
		}
		d.i++
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// number returns a JSON number literal.
func (d *hbDecoder) number() ([]byte, bool) {
	d.ws()
	b, i := d.b, d.i
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return nil, false
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return nil, false
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return b[start:i], true
}

// literal takes true, false or null.
func (d *hbDecoder) literal(word string) bool {
	d.ws()
	if bytes.HasPrefix(d.b[d.i:], []byte(word)) {
		d.i += len(word)
		return true
	}
	return false
}

// skip skips any JSON value, validating it.
func (d *hbDecoder) skip(depth int) bool {
	if depth > 64 {
		return false
	}
	switch d.peek() {
	case '"':
		return d.skipString()
	case '{':
		d.i++
		if d.eat('}') {
			return true
		}
		for {
			if d.peek() != '"' || !d.skipString() || !d.eat(':') || !d.skip(depth+1) {
				return false
			}
			if d.eat('}') {
				return true
			}
			if !d.eat(',') {
				return false
			}
		}
	case '[':
		d.i++
		if d.eat(']') {
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			if d.eat(']') {
				return true
			}
			if !d.eat(',') {
				return false
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		_, ok := d.number()
		return ok
	}
}

// flex decodes a sailpoint.Flex: a string, number, boolean or null.
func (d *hbDecoder) flex() (sailpoint.Flex, bool) {
	switch d.peek() {
	case '"':
		s, ok := d.str()
		return sailpoint.Flex(s), ok
	case 't':
		return "true", d.literal("true")
	case 'f':
		return "false", d.literal("false")
	case 'n':
		return "", d.literal("null")
	default:
		n, ok := d.number()
		return sailpoint.Flex(n), ok
	}
}

// object calls field for each key of an object. A key with an escape, a
// key another case of a known one, and a repeated known key are not taken.
func (d *hbDecoder) object(known []string, field func(k int) bool) bool {
	if !d.eat('{') {
		return false
	}
	if d.eat('}') {
		return true
	}
	var seen uint64
	for {
		key, ok := d.rawString()
		if !ok || !d.eat(':') {
			return false
		}
		k := -1
		for n, name := range known {
			if string(key) == name {
				k = n
				break
			}
		}
		if k < 0 {
			for _, name := range known {
				if bytes.EqualFold(key, []byte(name)) {
					return false
				}
			}
			for _, c := range key {
				if c >= 0x80 { // encoding/json folds some non-ASCII letters
					return false
				}
			}
			if !d.skip(0) {
				return false
			}
		} else {
			if seen&(1<<k) != 0 {
				return false
			}
			seen |= 1 << k
			if !field(k) {
				return false
			}
		}
		if d.eat('}') {
			return true
		}
		if !d.eat(',') {
			return false
		}
	}
}

// array calls elem for each element of an array; null is a nil slice.
func (d *hbDecoder) array(isNull *bool, elem func() bool) bool {
	if d.peek() == 'n' {
		*isNull = true
		return d.literal("null")
	}
	if !d.eat('[') {
		return false
	}
	if d.eat(']') {
		return true
	}
	for {
		if d.peek() != '{' || !elem() {
			return false
		}
		if d.eat(']') {
			return true
		}
		if !d.eat(',') {
			return false
		}
	}
}

var requestKeys = []string{"body", "status", "type", "timestamp"}

// request decodes a whole StatusRequest.
func (d *hbDecoder) request(r *sailpoint.StatusRequest) bool {
	ok := d.object(requestKeys, func(k int) bool {
		switch k {
		case 0:
			return d.body(&r.Body)
		case 1:
			s, ok := d.str()
			r.Status = sailpoint.ClientStatus(s)
			return ok
		case 2:
			if d.peek() == 'n' {
				r.Type = nil
				return d.literal("null")
			}
			s, ok := d.str()
			t := sailpoint.ClientType(s)
			r.Type = &t
			return ok
		default:
			var ok bool
			r.Timestamp, ok = d.str()
			return ok
		}
	})
	d.ws()
	return ok && d.i == len(d.b)
}

var bodyKeys = []string{"id", "clusterId", "alertKey", "hostname", "internal_ip", "lastSeen", "sinceSeen", "sinceSeenMillis",
	"stacktrace", "state", "status", "uuid", "product", "va_version", "platform_version", "os_version", "os_type", "hypervisor",
	"os", "arch", "uptime", "poolagent_version", "timezone", "lastJobSequence", "agents", "jobs"}

func (d *hbDecoder) body(b *sailpoint.ClientBody) bool {
	flex := [...]*sailpoint.Flex{&b.ID, &b.ClusterID, &b.AlertKey, &b.Hostname, &b.InternalIP, &b.LastSeen, &b.SinceSeen,
		&b.SinceSeenMillis, &b.Stacktrace, &b.State, &b.Status, &b.UUID, &b.Product, &b.VAVersion, &b.PlatformVersion,
		&b.OSVersion, &b.OSType, &b.Hypervisor, &b.OS, &b.Arch, &b.UptimeSeconds, &b.AgentVersion, &b.Timezone, &b.Sequence}
	return d.object(bodyKeys, func(k int) bool {
		if k < len(flex) {
			var ok bool
			*flex[k], ok = d.flex()
			return ok
		}
		if k == len(flex) {
			return d.agents(&b.Agents)
		}
		return d.jobs(&b.Jobs)
	})
}

var agentKeys = []string{"name", "type", "version", "updateStatus", "updateMessage", "sha256", "health"}

func (d *hbDecoder) agents(out *[]sailpoint.AgentReport) bool {
	agents := make([]sailpoint.AgentReport, 0, 4)
	null := false
	ok := d.array(&null, func() bool {
		var a sailpoint.AgentReport
		fields := [...]*string{&a.Name, &a.Type, &a.Version, &a.UpdateStatus, &a.UpdateMessage, &a.SHA256}
		if !d.object(agentKeys, func(k int) bool {
			if k == len(fields) {
				if d.peek() == 'n' {
					a.Health = nil
					return d.literal("null")
				}
				start := d.i
				if d.peek() != '{' || !d.skip(0) {
					return false
				}
				a.Health = &sailpoint.AgentHealth{}
				return json.Unmarshal(d.b[start:d.i], a.Health) == nil
			}
			var ok bool
			*fields[k], ok = d.str()
			return ok
		}) {
			return false
		}
		agents = append(agents, a)
		return true
	})
	if null {
		agents = nil
	}
	*out = agents
	return ok
}

var jobKeys = []string{"uuid", "state", "progress", "phase", "updateStatus", "updateMessage", "diagnostics"}

func (d *hbDecoder) jobs(out *[]sailpoint.JobReport) bool {
	var jobs []sailpoint.JobReport
	null := false
	ok := d.array(&null, func() bool {
		var j sailpoint.JobReport
		var state string
		fields := [...]*string{&j.UUID, &state, nil, &j.Phase, &j.UpdateStatus, &j.UpdateMessage}
		if !d.object(jobKeys, func(k int) bool {
			switch k {
			case 2:
				n, ok := d.number()
				if !ok {
					return false
				}
				p, err := strconv.ParseInt(string(n), 10, strconv.IntSize)
				j.Progress = int(p)
				return err == nil
			case 6:
				if d.peek() == 'n' {
					j.Diagnostics = nil
					return d.literal("null")
				}
				start := d.i
				if d.peek() != '{' || !d.skip(0) {
					return false
				}
				j.Diagnostics = &sailpoint.Diagnostics{}
				return json.Unmarshal(d.b[start:d.i], j.Diagnostics) == nil
			default:
				var ok bool
				*fields[k], ok = d.str()
				return ok
			}
		}) {
			return false
		}
		j.State = sailpoint.JobState(state)
		jobs = append(jobs, j)
		return true
	})
	if !null && jobs == nil {
		jobs = []sailpoint.JobReport{}
	}
	*out = jobs
	return ok
}
