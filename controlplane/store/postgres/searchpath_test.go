package postgres_test

import (
	"testing"

	"github.com/poolagent/poolagent/controlplane/store/postgres"
)

func TestWithSearchPath(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://u@db:5432/pa", "postgres://u@db:5432/pa?search_path=s1"},
		{"postgresql://u@db/pa?sslmode=disable", "postgresql://u@db/pa?search_path=s1&sslmode=disable"},
		{"postgres://u@db/pa?search_path=old", "postgres://u@db/pa?search_path=s1"},
		{"host=/run/pg dbname=pa", "host=/run/pg dbname=pa search_path=s1"},
	}
	for _, tt := range tests {
		if got := postgres.WithSearchPath(tt.dsn, "s1"); got != tt.want {
			t.Errorf("WithSearchPath(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}
