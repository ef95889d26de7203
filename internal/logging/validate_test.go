package logging

import "testing"

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		want          string // "" for valid
	}{
		{"info", "auto", ""},
		{"debug", "console", ""},
		{"warn", "json", ""},
		{"error", "json", ""},
		{"", "auto", `log_level: "": want debug, info, warn or error`},
		{"verbose", "auto", `log_level: "verbose": want debug, info, warn or error`},
		{"panic", "auto", `log_level: "panic": want debug, info, warn or error`},
		{"info", "", `log_format: "": want auto, console or json`},
		{"info", "text", `log_format: "text": want auto, console or json`},
	} {
		err := Validate(tc.level, tc.format)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Validate(%q, %q) = %q, want %q", tc.level, tc.format, got, tc.want)
		}
	}
}
