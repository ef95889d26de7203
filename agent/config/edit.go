package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// Setting is one key to write into a configuration file by SetKeys: Table
// is "" for a top-level key or a table's name ("artifacts"), Value a
// string, a bool or a []string.
type Setting struct {
	Table, Key string
	Value      any
}

// SetKeys returns the TOML document doc with each setting written in place:
// the line (or the lines of a multi-line array) holding the key in its
// table is replaced, and everything else (comments, order, other keys) is
// kept. A key not in doc is added at the start of its table; a table not in
// doc is appended. A key of an array of tables ([[agents]]) cannot be set.
func SetKeys(doc []byte, settings ...Setting) ([]byte, error) {
	for _, s := range settings {
		var err error
		if doc, err = setKey(doc, s); err != nil {
			return nil, fmt.Errorf("set %s: %w", s.name(), err)
		}
	}
	return doc, nil
}

func (s Setting) name() string {
	if s.Table == "" {
		return s.Key
	}
	return s.Table + "." + s.Key
}

// line renders "key = value" with the TOML encoder's quoting, without the
// line ending.
func (s Setting) line() (string, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(map[string]any{s.Key: s.Value}); err != nil {
		return "", err
	}
	out := strings.TrimRight(b.String(), "\n")
	if strings.Contains(out, "\n") {
		return "", errors.New("value does not fit on one line")
	}
	return out, nil
}

// tomlLine is one physical line of a document with what a scan learnt.
type tomlLine struct {
	text   string
	table  string // the table the line is in ("" top level)
	header bool   // a [table] or [[array]] header
	array  bool   // the header is an [[array]]
	depth  int    // bracket depth of open values after this line
}

func splitLines(doc []byte) (lines []string, eol string) {
	eol = "\n"
	if bytes.Contains(doc, []byte("\r\n")) {
		eol = "\r\n"
	}
	s := strings.ReplaceAll(string(doc), "\r\n", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil, eol
	}
	return strings.Split(s, "\n"), eol
}

// scan classifies the lines: which table each is in, which are headers,
// and which continue a multi-line array (depth > 0 before them).
func scan(lines []string) []tomlLine {
	out := make([]tomlLine, len(lines))
	table, depth := "", 0
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if depth == 0 && strings.HasPrefix(t, "[") {
			name, array := t, strings.HasPrefix(t, "[[")
			if end := strings.Index(name, "]"); end >= 0 {
				name = name[:end]
			}
			table = strings.TrimSpace(strings.TrimLeft(name, "["))
			out[i] = tomlLine{text: l, table: table, header: true, array: array}
			continue
		}
		depth += bracketDelta(l)
		if depth < 0 {
			depth = 0
		}
		out[i] = tomlLine{text: l, table: table, depth: depth}
	}
	return out
}

// bracketDelta counts '[' minus ']' outside strings and comments.
func bracketDelta(l string) int {
	d := 0
	var quote byte
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case quote == '"' && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return d
		case c == '[':
			d++
		case c == ']':
			d--
		}
	}
	return d
}

// isKeyLine reports whether the line assigns key (bare or quoted).
func isKeyLine(l, key string) bool {
	t := strings.TrimSpace(l)
	for _, k := range []string{key, `"` + key + `"`, "'" + key + "'"} {
		if rest, ok := strings.CutPrefix(t, k); ok && strings.HasPrefix(strings.TrimSpace(rest), "=") {
			return true
		}
	}
	return false
}

func setKey(doc []byte, s Setting) ([]byte, error) {
	newLine, err := s.line()
	if err != nil {
		return nil, err
	}
	lines, eol := splitLines(doc)
	info := scan(lines)
	join := func(ls []string) []byte {
		if len(ls) == 0 {
			return nil
		}
		return []byte(strings.Join(ls, eol) + eol)
	}
	for _, li := range info {
		if li.header && li.array && li.table == s.Table && s.Table != "" {
			return nil, fmt.Errorf("[[%s]] is an array of tables", s.Table)
		}
	}
	inTable := s.Table == ""
	for i := 0; i < len(info); i++ {
		li := info[i]
		if li.header {
			inTable = !li.array && li.table == s.Table
			continue
		}
		prevDepth := 0
		if i > 0 && !info[i-1].header {
			prevDepth = info[i-1].depth
		}
		if !inTable || prevDepth != 0 || !isKeyLine(li.text, s.Key) {
			continue
		}
		end := i
		for end < len(info)-1 && info[end].depth > 0 {
			end++
		}
		if info[end].depth > 0 {
			return nil, errors.New("the value is not closed")
		}
		indent := li.text[:len(li.text)-len(strings.TrimLeft(li.text, " \t"))]
		out := append(append(append([]string{}, lines[:i]...), indent+newLine), lines[end+1:]...)
		return join(out), nil
	}
	// Not there: the first line of its table.
	if s.Table == "" {
		at := len(lines)
		for i, li := range info {
			if li.header {
				at = i
				break
			}
		}
		// Before the comments that head the first table.
		for at > 0 && strings.HasPrefix(strings.TrimSpace(lines[at-1]), "#") {
			at--
		}
		ins := []string{newLine}
		if at > 0 && strings.TrimSpace(lines[at-1]) != "" {
			ins = []string{"", newLine}
		}
		if at < len(lines) && strings.TrimSpace(lines[at]) != "" {
			ins = append(ins, "")
		}
		out := append(append(append([]string{}, lines[:at]...), ins...), lines[at:]...)
		return join(out), nil
	}
	for i, li := range info {
		if li.header && !li.array && li.table == s.Table {
			out := append(append(append([]string{}, lines[:i+1]...), newLine), lines[i+1:]...)
			return join(out), nil
		}
	}
	out := append([]string{}, lines...)
	if len(out) > 0 && strings.TrimSpace(out[len(out)-1]) != "" {
		out = append(out, "")
	}
	out = append(out, "["+s.Table+"]", newLine)
	return join(out), nil
}
