package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// v1Results are the results of the version 1 fixture: one DICOM service
// exposed at level query, one port that does not speak DICOM, one closed.
func v1Results() []probe.Result {
	t := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	return []probe.Result{
		{ScanID: "1", IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Time: t, Status: probe.StatusOpen,
			DICOM:    &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH"},
			Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: 12, StudiesExact: true}},
		{ScanID: "1", IP: netip.MustParseAddr("127.0.0.2"), Port: 104, Time: t, Status: probe.StatusOpen,
			Exposure: &probe.Exposure{Level: probe.LevelNotDICOM}},
		{ScanID: "1", IP: netip.MustParseAddr("127.0.0.3"), Port: 4242, Time: t, Status: probe.StatusClosed},
	}
}

// v1Store makes, at path, a database as pacswatch wrote it with schema
// version 1: one unfinished scan, its checkpoint and three results.
func v1Store(t *testing.T, path string) {
	t.Helper()
	schema, err := migrationFS.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	setup := []string{
		"PRAGMA journal_mode = WAL",
		fmt.Sprintf("PRAGMA application_id = %d", applicationID),
		string(schema),
		"PRAGMA user_version = 1",
		`INSERT INTO scans (seq, id, name, started, targets, settings, total, seed, shard, done)
			VALUES (1, '1', 'june', '2025-06-01T10:00:00.000000000Z', '["127.0.0.0/24"]', '{"ports":"104,4242"}', 512, 7, '', 300)`,
	}
	for _, r := range v1Results() {
		rec, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		setup = append(setup, fmt.Sprintf(`INSERT INTO results (scan_seq, ip, port, time, status, level, studies, instances, record)
			VALUES (1, x'%x', %d, '2025-06-01T10:00:00.000000000Z', '%s', '%s', 0, 0, '%s')`,
			ipKey(r.IP), r.Port, r.Status, r.Level(), rec))
	}
	rawDB(t, path, setup...)
}

// v1Want is what a version 1 store's scan reads back as.
var v1Want = store.Scan{
	ID: "1", Name: "june", Started: time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC),
	Targets: []string{"127.0.0.0/24"}, Settings: map[string]string{"ports": "104,4242"},
	Total: 512, Seed: 7, Progress: store.Progress{Done: 300},
}

var v1Summary = store.Summary{Results: 3, Open: 2, DICOM: 1, Exposed: 1}

// checkV1 checks what s reads of the version 1 fixture.
func checkV1(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	got, err := s.Scan(ctx, "1")
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if !got.Started.Equal(v1Want.Started) {
		t.Errorf("Started = %v, want %v", got.Started, v1Want.Started)
	}
	got.Started = v1Want.Started
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", v1Want) {
		t.Errorf("Scan =\n%#v\nwant\n%#v", got, v1Want)
	}
	if sum, err := s.Summary(ctx, "1"); err != nil || sum != v1Summary {
		t.Errorf("Summary = %+v, %v, want %+v", sum, err, v1Summary)
	}
	// The studies column of the fixture says 0: read (version 1) or rewritten (version 3) from
	// the records, the figures are the records'.
	if sys, err := s.Systems(ctx, "1"); err != nil || sys != (store.Systems{Found: 1, Accessible: 1, Studies: 12}) {
		t.Errorf("Systems = %+v, %v, want 1 system found and accessible with 12 studies", sys, err)
	}
	var n int
	if err := s.Results(ctx, "1", func(probe.Result) error { n++; return nil }); err != nil || n != 3 {
		t.Errorf("Results gave %d, %v, want 3", n, err)
	}
}

func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "v1.db")
	v1Store(t, path)

	// Read-only, it is read as it is and left alone.
	before := files(t, dir)
	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatalf("OpenReadOnly of a version 1 store: %v", err)
	}
	checkV1(t, r)
	r.Close()
	sameFiles(t, "after OpenReadOnly", dir, before)
	if got := query(t, path, "PRAGMA user_version"); got != "1" {
		t.Fatalf("after OpenReadOnly, user_version = %s, want 1", got)
	}

	// Open migrates it in place.
	s := openTest(t, path)
	defer s.Close()
	if got := query(t, path, "PRAGMA user_version"); got != "5" {
		t.Errorf("after Open, user_version = %s, want 5", got)
	}
	checkV1(t, s)
	// What version 2 added works on the old scan.
	more := []probe.Result{{ScanID: "1", IP: netip.MustParseAddr("127.0.0.4"), Port: 104, Status: probe.StatusError, Error: "reset"}}
	if err := s.PutResults(ctx, "1", more, store.Progress{Done: 310, Excluded: 4}); err != nil {
		t.Fatalf("PutResults: %v", err)
	}
	want := v1Summary
	want.Results, want.Errors, want.Excluded = 4, 1, 4
	if sum, err := s.Summary(ctx, "1"); err != nil || sum != want {
		t.Errorf("after PutResults, Summary = %+v, %v, want %+v", sum, err, want)
	}
	if _, err := s.AcquireLease(ctx, "1", store.Lease{Holder: "h", Expires: time.Now().Add(time.Minute)}, nil); err != nil {
		t.Errorf("AcquireLease: %v", err)
	}
	if got := query(t, path, "SELECT group_concat(association) FROM (SELECT association FROM results ORDER BY ip, port)"); got != "accepted,none,none,none" {
		t.Errorf("association column = %s, want accepted,none,none,none", got)
	}
}

// TestSummaryUsesIndex checks that Summary counts from the results_level
// index, without reading the records.
func TestSummaryUsesIndex(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "plan.db"))
	defer s.Close()
	rows, err := s.db.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT sc.excluded, count(r.scan_seq),
		count(*) FILTER (WHERE r.status = 'open'), count(*) FILTER (WHERE r.association <> 'none'),
		count(*) FILTER (WHERE r.level IN ('query', 'retrieve')), count(*) FILTER (WHERE r.status = 'error')
		FROM scans sc LEFT JOIN results r ON r.scan_seq = sc.seq WHERE sc.id = '1' GROUP BY sc.seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "COVERING INDEX results_level") {
		t.Errorf("Summary's plan: %s, want it to read results only through COVERING INDEX results_level", got)
	}
}

func TestOpenNewFileMode(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "new.db")
	s := openTest(t, path)
	defer s.Close()
	if _, err := s.CreateScan(ctx, store.Scan{}); err != nil { // the -wal exists once written
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), got)
		}
	}
}

func TestOpenRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	openTest(t, real).Close()
	tests := []struct{ name, target string }{
		{"link to a store", real},
		{"dangling link", filepath.Join(dir, "nowhere.db")},
	}
	for _, tt := range tests {
		link := filepath.Join(dir, "link-"+filepath.Base(tt.target))
		if err := os.Symlink(tt.target, link); err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), link)
		if err == nil {
			s.Close()
			t.Errorf("%s: Open = nil error, want a refusal", tt.name)
			continue
		}
		if want := "store: " + link + " is a symbolic link"; !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: Open: err = %q, want one line starting %q", tt.name, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open through a dangling link created its target: %v", err)
	}
}

// TestLeaseTwoStores races two stores on one file, as two processes would
// be: each has its own SQLite connections and locks.
func TestLeaseTwoStores(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "race.db")
	a, b := openTest(t, path), openTest(t, path)
	defer a.Close()
	defer b.Close()
	for round := range 10 {
		sc, err := a.CreateScan(ctx, store.Scan{})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		for i, s := range []*Store{a, b, a, b} {
			wg.Go(func() {
				holder := fmt.Sprint("process-", i)
				_, err := s.AcquireLease(ctx, sc.ID, store.Lease{Holder: holder, Expires: time.Now().Add(time.Hour)}, nil)
				if err != nil && !errors.Is(err, store.ErrLeased) {
					t.Errorf("AcquireLease: %v", err)
				}
				if err == nil {
					mu.Lock()
					winners = append(winners, holder)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Errorf("round %d: %v got the lease, want exactly one", round, winners)
		}
	}
}
