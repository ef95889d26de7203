package controlplane

import (
	"testing"
	"time"
)

func TestNextHeartbeatHint(t *testing.T) {
	tests := []struct {
		interval, want time.Duration
	}{
		{time.Second, 0}, // no sooner than the interval itself
		{5 * time.Second, time.Second},
		{30 * time.Second, 3 * time.Second},
		{45 * time.Second, 4 * time.Second},
		{5 * time.Minute, 5 * time.Second},
	}
	for _, tt := range tests {
		if got := nextHeartbeatHint(tt.interval); got != tt.want {
			t.Errorf("nextHeartbeatHint(%s) = %s, want %s", tt.interval, got, tt.want)
		}
	}
}
