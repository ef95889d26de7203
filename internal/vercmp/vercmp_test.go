package vercmp

import "testing"

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0},
		{"v1.0.0", "1.0.0", 0},
		{"1.0", "1.0.0", 0},
		{"1.0", "1.0.1", -1},
		{"1.10.0", "1.9.2", 1},
		{"2", "1.99", 1},
		{"345", "89", 1},
		{"415_583_79.0.0", "415_583_80.0.0", -1},
		{"1.2.0-rc1", "1.2.0", -1},
		{"1.2.0-rc2", "1.2.0-rc10", -1},
		{"1.2.0+build5", "1.2.0", 0},
		{"1.1.0", "1.2.0", -1},
		{"0001.2", "1.2", 0},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Compare(tt.b, tt.a); got != -tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"1.2.3", true},
		{"v1.2.3", true},
		{"415_583_79.0.0", true},
		{"1.2.0-rc.1+b5", true},
		{"", false},
		{"latest", false},
		{"1.2/../3", false},
		{"1 2", false},
	}
	for _, tt := range tests {
		if got := Valid(tt.in); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
