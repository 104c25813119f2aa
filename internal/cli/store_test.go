package cli

import (
	"strings"
	"testing"
)

func TestShowDB(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://scan:s3cret@db.example:5432/pacswatch?sslmode=verify-full", "postgres://scan:xxxxx@db.example:5432/pacswatch?sslmode=verify-full"},
		{"postgresql://scan@/pacswatch?host=/run/pg&password=s3cret", "postgresql://scan@/pacswatch?host=%2Frun%2Fpg&password=xxxxx"},
		{"postgres://scan:s3cret@db.example:bad/x", "postgres://…"},
		{"pacswatch.db", "pacswatch.db"},
	} {
		got := showDB(tc.in)
		if got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("showDB(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
