package cli_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/cli"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// TestReportShardedRun: a run of two shards (one unfinished) is reported as one scan, noted
// with its shards, skipped as the default comparison and refused as --compare.
func TestReportShardedRun(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "pacswatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	host := func(ip string, studies int64) []probe.Result {
		return []probe.Result{{IP: netip.MustParseAddr(ip), Port: 104, Time: day, Status: probe.StatusOpen,
			DICOM:    &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP"},
			Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: studies, StudiesExact: true}}}
	}
	for i, sc := range []struct {
		id, name, shard string
		results         []probe.Result
		finished        bool
	}{
		{"march", "march", "", host("127.0.0.1", 100), true},
		{"april-0", "april", "0/2", host("127.0.0.1", 105), true},
		{"april-1", "april", "1/2", host("127.0.0.2", 7), false}, // still running
	} {
		s := store.Scan{ID: sc.id, Name: sc.name, Shard: sc.shard, Seed: 42, Started: day.AddDate(0, i, 0), Total: 1}
		if sc.finished {
			s.Finished = s.Started.Add(time.Hour)
		}
		if _, err := st.CreateScan(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := st.PutResults(ctx, sc.id, sc.results, store.Progress{Done: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := isolated(t, dir, "report", "--format", "json")
	if code != cli.ExitOK || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(stderr, "scan april-0 is not finished (1 of 2 shards finished): its figures are partial") {
		t.Errorf("report on the unfinished run: exit %d, stderr %q, want a note naming its shards", code, stderr)
	}
	for _, want := range []string{`"id": "april-0"`, `"shards": 2`, `"shards_finished": 1`, `"studies": 112`, `"id": "march"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report JSON lacks %s:\n%.2000s", want, stdout)
		}
	}
	_, stderr, code = isolated(t, dir, "report", "--scan", "march", "--compare", "april-1")
	oneLine(t, "--compare april-1", stderr, code, `scan "april-1" is not finished`)
}

// TestOneOpener: every reading command gives the same one line for a PostgreSQL that cannot be
// reached and for a missing store, from the one --db opener.
func TestOneOpener(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.db")
	for _, args := range [][]string{{"report"}, {"diff", "a", "b"}} {
		for db, want := range map[string]string{
			// A PostgreSQL that is not there (a socket directory that does not exist): the
			// server named, never the password.
			"postgres://scan:pw@/pacswatch?host=/nonexistent-pacswatch":   "--db: store: cannot connect to postgresql scan@/nonexistent-pacswatch/.s.PGSQL.5432/pacswatch: no such file or directory",
			"postgresql://scan:pw@/pacswatch?host=/nonexistent-pacswatch": "--db: store: cannot connect to postgresql scan@/nonexistent-pacswatch/.s.PGSQL.5432/pacswatch: no such file or directory",
			missing: "--db: no store at " + missing + " (run pacswatch scan first)",
		} {
			_, stderr, code := runCLI(append(args, "--db", db)...)
			if code != cli.ExitUsage || !strings.Contains(stderr, want) || strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "pw@") {
				t.Errorf("%s --db %s: exit %d, %q; want 2 and %q", args[0], db, code, stderr, want)
			}
		}
	}
}
