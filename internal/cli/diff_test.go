package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/cli"
)

func TestDiffCommand(t *testing.T) {
	db, city, asn := reportFixture(t)
	stdout, stderr, code := runCLI("diff", "--db", db, "--geo", city, "--asn", asn, "--group", "region", "s2019-10", "s2019-11")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"appeared  127.1.0.2", "closed    127.10.0.1", "shrank    127.4.0.2",
		"3 appeared, 1 closed, 3 grew, 1 shrank, 0 not rescanned, 2 unchanged",
		"By region (state)", "Maharashtra",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text diff lacks %q:\n%s", want, stdout)
		}
	}

	stdout, stderr, code = runCLI("diff", "--db", db, "--format", "json", "s2019-10", "s2019-11")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var doc struct {
		Changes []struct{ IP, Change string }
		Summary struct{ Counts map[string]int64 }
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("JSON diff: %v\n%s", err, stdout)
	}
	if len(doc.Changes) != 8 || doc.Summary.Counts["appeared"] != 3 || doc.Summary.Counts["closed"] != 1 {
		t.Errorf("JSON diff: %d changes, counts %v; want 8, 3 appeared, 1 closed", len(doc.Changes), doc.Summary.Counts)
	}
}

func TestDiffBadInput(t *testing.T) {
	db, _, asn := reportFixture(t)
	missing := filepath.Join(t.TempDir(), "none.db")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"one scan", []string{"diff", "--db", db, "s2019-10"}, "accepts 2 arg(s)"},
		{"no store", []string{"diff", "--db", missing, "a", "b"}, "no store at"},
		{"unknown old", []string{"diff", "--db", db, "nope", "s2019-11"}, `scan "nope"`},
		{"unknown new", []string{"diff", "--db", db, "s2019-10", "nah"}, `scan "nah"`},
		{"bad format", []string{"diff", "--db", db, "--format", "yaml", "s2019-10", "s2019-11"}, `"yaml"`},
		{"asn as geo", []string{"diff", "--db", db, "--geo", asn, "s2019-10", "s2019-11"}, "holds ASN records"},
		{"group needs asn", []string{"diff", "--db", db, "--group", "asn", "s2019-10", "s2019-11"}, "--asn"},
		{"unknown scan named once", []string{"diff", "--db", db, "s2019-10", "2"}, `diff: scan "2": store: not found`},
		{"huge scan", []string{"diff", "--db", db, strings.Repeat("x", 70000), "s2019-11"}, `scan "` + strings.Repeat("x", 200) + `…"`},
		{"huge format", []string{"diff", "--db", db, "--format", strings.Repeat("x", 70000), "s2019-10", "s2019-11"}, `--format: "` + strings.Repeat("x", 200) + `…"`},
		{"not a number", []string{"diff", "--db", db, "--good-drop", "abc", "s2019-10", "s2019-11"}, `--good-drop: "abc" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(tc.args...)
			if code != cli.ExitUsage || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and one line containing %q", code, stderr, cli.ExitUsage, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if len(stderr) > 400 || strings.Contains(stderr, "strconv.") || strings.Contains(stderr, `scan "2": scan "2"`) {
				t.Errorf("stderr %.400q: over 400 bytes, or with Go internals", stderr)
			}
		})
	}
}
