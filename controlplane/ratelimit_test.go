package controlplane

import (
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	type take struct {
		at        time.Duration // after t0
		key       string
		allowed   bool
		remaining int
		reset     time.Duration // after t0
	}
	tests := []struct {
		name   string
		limit  int
		window time.Duration
		takes  []take
	}{
		{"counts down within a window and refuses past the limit", 2, time.Minute, []take{
			{10 * time.Second, "a", true, 1, time.Minute},
			{20 * time.Second, "a", true, 0, time.Minute},
			{30 * time.Second, "a", false, 0, time.Minute},
		}},
		{"keys are counted apart", 1, time.Minute, []take{
			{0, "a", true, 0, time.Minute},
			{time.Second, "b", true, 0, time.Minute},
			{2 * time.Second, "a", false, 0, time.Minute},
		}},
		{"a new window starts afresh", 1, time.Minute, []take{
			{59 * time.Second, "a", true, 0, time.Minute},
			{60 * time.Second, "a", true, 0, 2 * time.Minute},
			{61 * time.Second, "a", false, 0, 2 * time.Minute},
		}},
		{"a zero limit refuses all", 0, time.Minute, []take{
			{0, "a", false, 0, time.Minute},
			{time.Second, "a", false, 0, time.Minute},
		}},
		{"a sweep after ten windows keeps counting right", 1, time.Minute, []take{
			{0, "a", true, 0, time.Minute},
			{0, "b", true, 0, time.Minute},
			{11 * time.Minute, "a", true, 0, 12 * time.Minute},
			{11 * time.Minute, "a", false, 0, 12 * time.Minute},
			{11 * time.Minute, "b", true, 0, 12 * time.Minute},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			l := newRateLimiter(tt.limit, tt.window, func() time.Time { return now })
			for i, tk := range tt.takes {
				now = t0.Add(tk.at)
				q := l.take(tk.key)
				if q.Allowed != tk.allowed || q.Remaining != tk.remaining || q.Limit != tt.limit || !q.Reset.Equal(t0.Add(tk.reset)) {
					t.Fatalf("take %d (%s at +%v) = %+v; want allowed %v, remaining %d, reset +%v",
						i, tk.key, tk.at, q, tk.allowed, tk.remaining, tk.reset)
				}
			}
		})
	}
}
