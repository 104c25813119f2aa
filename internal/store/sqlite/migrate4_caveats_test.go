package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// TestMigrateCaveats: a version 3 store whose records hold caveats (written by a pacswatch
// whose probe filled them before schema 4) reads the same figures read-only (from the records)
// and migrated (from the new apart column).
func TestMigrateCaveats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "v3.db")
	setup := []string{"PRAGMA journal_mode = WAL", fmt.Sprintf("PRAGMA application_id = %d", applicationID)}
	for _, name := range []string{"migrations/0001_init.sql", "migrations/0002_runs.sql", "migrations/0003_systems.sql"} {
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		setup = append(setup, string(b))
	}
	setup = append(setup, "PRAGMA user_version = 3",
		`INSERT INTO scans (seq, id, name, started, finished, targets, settings, total, seed, shard, done, space_digest)
			VALUES (1, 's', 'march', '2026-03-01T10:00:00.000000000Z', '2026-03-01T11:00:00.000000000Z',
			'["127.0.0.0/29"]', '{}', 8, 7, '', 8, 'sha256:00')`)
	tm := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	res := func(ip string, studies int64, cs ...probe.Caveat) probe.Result {
		return probe.Result{ScanID: "s", IP: netip.MustParseAddr(ip), Port: 104, Time: tm, Status: probe.StatusOpen,
			DICOM:    &probe.DICOM{Association: probe.AssociationAccepted},
			Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: studies, Instances: 10 * studies, Caveats: cs}}
	}
	for _, r := range []probe.Result{
		res("127.0.0.1", 12),
		res("127.0.0.2", 100, probe.Caveat{Kind: probe.CaveatCapped}),
		res("127.0.0.3", 1e9, probe.Caveat{Kind: probe.CaveatImplausible, Reason: "1000000000 studies"}),
		res("127.0.0.4", 9, probe.Caveat{Kind: probe.CaveatEstimate}, probe.Caveat{Kind: probe.CaveatHoneypot}),
	} {
		rec, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		setup = append(setup, fmt.Sprintf(`INSERT INTO results (scan_seq, ip, port, status, level, association, honeypot, retrieve, studies, instances, record)
			VALUES (1, x'%x', 104, 'open', 'query', 'accepted', 0, 'untested', %d, %d, '%s')`,
			ipKey(r.IP), r.Exposure.Studies, r.Exposure.Instances, rec))
	}
	rawDB(t, path, setup...)
	want := store.Systems{Found: 2, Accessible: 2, Studies: 12, Images: 120}

	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if sys, err := r.Systems(ctx, "s"); err != nil || sys != want {
		t.Errorf("read-only version 3: Systems = %+v, %v, want %+v", sys, err, want)
	}
	r.Close()

	s := openTest(t, path)
	defer s.Close()
	if got := query(t, path, "SELECT group_concat(apart, ',') FROM (SELECT apart FROM results ORDER BY ip)"); got != "0,1,2,2" {
		t.Errorf("apart column after migration = %s, want 0,1,2,2", got)
	}
	if sys, err := s.Systems(ctx, "s"); err != nil || sys != want {
		t.Errorf("migrated: Systems = %+v, %v, want %+v", sys, err, want)
	}
}
