package storetest

import (
	"testing"
)

// recordingTB records how a helper ended the test, instead of ending it.
type recordingTB struct {
	testing.TB
	ended string
}

type ended struct{}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.ended = "fatal"
	panic(ended{})
}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.ended = "skip"
	panic(ended{})
}

func runPostgresDSN(tb *recordingTB) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(ended); !ok {
				panic(p)
			}
		}
	}()
	PostgresDSN(tb)
}

func TestPostgresDSNWithoutDatabase(t *testing.T) {
	tests := []struct {
		ci   string
		want string
	}{
		{"", "skip"},
		{"false", "skip"},
		{"true", "fatal"},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv(PostgresDSNEnv, "")
			t.Setenv("CI", tt.ci)
			tb := &recordingTB{TB: t}
			runPostgresDSN(tb)
			if tb.ended != tt.want {
				t.Errorf("PostgresDSN ended the test with %q, want %q", tb.ended, tt.want)
			}
		})
	}
}

func TestWithSearchPath(t *testing.T) {
	tests := []struct {
		dsn, want string
	}{
		{"postgres://u:p@h:5432/db?sslmode=disable", "postgres://u:p@h:5432/db?search_path=s1&sslmode=disable"},
		{"postgresql://h/db", "postgresql://h/db?search_path=s1"},
		{"host=h dbname=db", "host=h dbname=db search_path=s1"},
	}
	for _, tt := range tests {
		if got := withSearchPath(t, tt.dsn, "s1"); got != tt.want {
			t.Errorf("withSearchPath(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}
