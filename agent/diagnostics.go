package agent

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/updater"
)

// diagnostics gathers what the failed version printed and its health
// check's last result, for the FAILED report.
func (d *Daemon) diagnostics(ctx context.Context, name string, res updater.Result, err error) *sailpoint.Diagnostics {
	diag := &sailpoint.Diagnostics{Health: res.Health}
	if diag.Health == "" && errors.Is(err, updater.ErrHealthCheck) {
		diag.Health = err.Error()
	}
	if hs := d.svcs[name]; hs != nil {
		diag.Output = hs.failedOutput(ctx)
	}
	diag.Output = tail(diag.Output, sailpoint.MaxDiagnosticsOutput)
	diag.Health = tail(diag.Health, 4<<10)
	if diag.Output == "" && diag.Health == "" {
		return nil
	}
	return diag
}

// tail returns the last n bytes of s as valid UTF-8, cut at a rune start.
func tail(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return s
}
