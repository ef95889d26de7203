// Package tomlconf reads the TOML configuration files of poolserver and
// poolagent the same way: over the caller's defaults, with an unknown key
// an error naming it, and durations written as Go duration strings.
package tomlconf

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Duration is a time.Duration written in TOML as a string ("30s", "2m").
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"30s\" or \"5m\"", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Decode reads the TOML file at path into v, which holds the defaults. A
// syntax error shows its position; a key v has no field for is an error
// naming every such key.
func Decode(path string, v any) error {
	md, err := toml.DecodeFile(path, v)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return fmt.Errorf("config %s: %s", path, perr.ErrorWithPosition())
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	return nil
}
