package logging

import "fmt"

// Validate checks the log_level and log_format settings both programs'
// configs carry, naming the bad key: level is debug, info, warn or error;
// format is auto, console or json. New is more lenient (an empty value
// picks the default) because flags and tests call it directly.
func Validate(level, format string) error {
	switch level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level: %q: want debug, info, warn or error", level)
	}
	switch format {
	case "auto", "console", "json":
	default:
		return fmt.Errorf("log_format: %q: want auto, console or json", format)
	}
	return nil
}
