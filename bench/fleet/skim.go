package main

import (
	"bytes"
	"errors"
	"io"
	"slices"
)

// skimTop reads one JSON object from r and returns the raw values of the
// given top-level keys, reading everything else in 32 KB chunks without
// holding it: an update of a big pool lists every agent (tens of MB at
// 100,000 hosts), and the simulator polls it twice a second for its
// status only.
func skimTop(r io.Reader, keys ...string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	buf := make([]byte, 32<<10)
	var depth int
	var inStr, esc bool
	var str, val []byte
	capturing := ""
	finish := func() {
		out[capturing] = bytes.TrimSpace(bytes.Clone(val))
		capturing, val = "", val[:0]
	}
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			ends := depth == 1 && !inStr && (c == ',' || c == '}')
			if capturing != "" && !ends {
				val = append(val, c)
			}
			if inStr {
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
				default:
					if depth == 1 && capturing == "" {
						str = append(str, c)
					}
				}
				continue
			}
			switch c {
			case '"':
				inStr, str = true, str[:0]
			case ':':
				if depth == 1 && capturing == "" && slices.Contains(keys, string(str)) {
					capturing = string(str)
				}
			case ',':
				if ends && capturing != "" {
					finish()
				}
			case '{', '[':
				depth++
			case '}', ']':
				if ends && capturing != "" {
					finish()
				}
				if depth--; depth == 0 {
					return out, nil
				}
			}
		}
		if err == io.EOF {
			return out, errors.New("the JSON object ended early")
		}
		if err != nil {
			return out, err
		}
	}
}
