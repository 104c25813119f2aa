package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// v2Results are the results of the version 2 fixture: a host whose ports are a honeypot at
// level retrieve and a query port whose retrieve was accepted, and an echo-only host.
func v2Results() []probe.Result {
	t := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	accepted := probe.Result{ScanID: "s", IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Time: t, Status: probe.StatusOpen,
		DICOM:    &probe.DICOM{Association: probe.AssociationAccepted},
		Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: 12, Instances: 340, Retrieve: probe.RetrieveAccepted}}
	honeypot := probe.Result{ScanID: "s", IP: netip.MustParseAddr("127.0.0.1"), Port: 4242, Time: t, Status: probe.StatusOpen,
		DICOM:    &probe.DICOM{Association: probe.AssociationAccepted, Honeypot: true},
		Exposure: &probe.Exposure{Level: probe.LevelRetrieve, Studies: 9999, Instances: 9999}}
	echo := probe.Result{ScanID: "s", IP: netip.MustParseAddr("127.0.0.2"), Port: 104, Time: t, Status: probe.StatusOpen,
		DICOM:    &probe.DICOM{Association: probe.AssociationAccepted},
		Exposure: &probe.Exposure{Level: probe.LevelEcho}}
	return []probe.Result{accepted, honeypot, echo}
}

// v2Systems are the fixture's figures: the honeypot port left out, the query port's retrieve
// counted.
var v2Systems = store.Systems{Found: 2, Accessible: 1, Studies: 12, Images: 340, StudiesImageAccess: 12, ImagesAccessible: 340}

// v2Store makes, at path, a database as pacswatch wrote it with schema version 2: one finished
// scan and the v2Results, with the columns version 2 filled.
func v2Store(t *testing.T, path string) {
	t.Helper()
	setup := []string{"PRAGMA journal_mode = WAL", fmt.Sprintf("PRAGMA application_id = %d", applicationID)}
	for _, name := range []string{"migrations/0001_init.sql", "migrations/0002_runs.sql"} {
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		setup = append(setup, string(b))
	}
	setup = append(setup, "PRAGMA user_version = 2",
		`INSERT INTO scans (seq, id, name, started, finished, targets, settings, total, seed, shard, done, space_digest)
			VALUES (1, 's', 'february', '2026-02-01T10:00:00.000000000Z', '2026-02-01T11:00:00.000000000Z',
			'["127.0.0.0/30"]', '{}', 8, 7, '', 8, 'sha256:00')`)
	for _, r := range v2Results() {
		rec, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		setup = append(setup, fmt.Sprintf(`INSERT INTO results (scan_seq, ip, port, time, status, level, association, studies, instances, record)
			VALUES (1, x'%x', %d, '2026-02-01T10:00:00.000000000Z', '%s', '%s', '%s', %d, %d, '%s')`,
			ipKey(r.IP), r.Port, r.Status, r.Level(), r.DICOM.Association, r.Exposure.Studies, r.Exposure.Instances, rec))
	}
	rawDB(t, path, setup...)
}

func TestMigrateV2(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "v2.db")
	v2Store(t, path)

	// Read-only, it is read as it is (figures from the records) and left alone.
	before := files(t, dir)
	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatalf("OpenReadOnly of a version 2 store: %v", err)
	}
	if sys, err := r.Systems(ctx, "s"); err != nil || sys != v2Systems {
		t.Errorf("read-only version 2: Systems = %+v, %v, want %+v", sys, err, v2Systems)
	}
	r.Close()
	sameFiles(t, "after OpenReadOnly", dir, before)

	// Open migrates it: the new columns filled from the records, time gone, the same figures.
	s := openTest(t, path)
	defer s.Close()
	if got := query(t, path, "PRAGMA user_version"); got != "5" {
		t.Errorf("after Open, user_version = %s, want 5", got)
	}
	if got := query(t, path, "SELECT group_concat(honeypot || ' ' || retrieve, ',') FROM (SELECT * FROM results ORDER BY ip, port)"); got != "0 accepted,1 untested,0 untested" {
		t.Errorf("honeypot and retrieve columns = %s", got)
	}
	if got := query(t, path, "SELECT group_concat(name) FROM pragma_table_info('results')"); strings.Contains(got, "time") {
		t.Errorf("results still has a time column: %s", got)
	}
	if sys, err := s.Systems(ctx, "s"); err != nil || sys != v2Systems {
		t.Errorf("migrated: Systems = %+v, %v, want %+v", sys, err, v2Systems)
	}
	var n int
	if err := s.Results(ctx, "s", func(r probe.Result) error {
		if n++; r.Time.IsZero() {
			t.Errorf("result %v:%d lost its time", r.IP, r.Port)
		}
		return nil
	}); err != nil || n != 3 {
		t.Errorf("Results gave %d, %v, want 3", n, err)
	}
}

// TestSystemsUsesIndex checks that Systems reads the results_level index alone, never the
// records, on one scan and on the shards of a group.
func TestSystemsUsesIndex(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "plan.db"))
	defer s.Close()
	for _, seqs := range []string{"[1]", "[1,2,3]"} {
		rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+s.systemsQuery(), seqs)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		got := strings.Join(plan, "; ")
		if !strings.Contains(got, "COVERING INDEX results_level") || strings.Contains(got, "SCAN results") {
			t.Errorf("Systems' plan for scans %s: %s, want results read only through COVERING INDEX results_level", seqs, got)
		}
	}
}
