package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pacswatch/pacswatch/internal/store"
)

// TestMigrateV3: a version 3 store (no tallies table) is read as it is, read-only, with no
// tallies; Open migrates it to the newest version (5), its rows kept, and then stores tallies.
func TestMigrateV3(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v3.db")
	v2Store(t, path)
	v3, err := migrationFS.ReadFile("migrations/0003_systems.sql")
	if err != nil {
		t.Fatal(err)
	}
	rawDB(t, path, string(v3), "PRAGMA user_version = 3")

	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatalf("OpenReadOnly of a version 3 store: %v", err)
	}
	sc, err := r.Scan(ctx, "s")
	if err != nil || sc.Progress.Tallies != nil || sc.Progress.Done != 8 {
		t.Errorf("read-only version 3: Scan = %+v, %v, want Done 8 and no tallies", sc.Progress, err)
	}
	sum, err := r.Summary(ctx, "s")
	if err != nil || sum.Results != 3 || sum.Probed() != 3 {
		t.Errorf("read-only version 3: Summary = %+v, %v, want 3 results, 3 probed", sum, err)
	}
	r.Close()

	s := openTest(t, path)
	defer s.Close()
	if got := query(t, path, "PRAGMA user_version"); got != "5" {
		t.Errorf("after Open, user_version = %s, want 5", got)
	}
	want := store.Progress{Done: 9, Tallies: map[uint16]store.Tally{104: {Closed: 1}}}
	if err := s.PutResults(ctx, "s", nil, want); err != nil {
		t.Fatalf("PutResults after migration: %v", err)
	}
	sc, err = s.Scan(ctx, "s")
	if err != nil || !sc.Progress.Equal(want) {
		t.Errorf("after migration: Progress = %+v, %v, want %+v", sc.Progress, err, want)
	}
	if sum, err := s.Summary(ctx, "s"); err != nil || sum.Results != 3 || sum.Closed != 1 || sum.Probed() != 4 {
		t.Errorf("after migration: Summary = %+v, %v, want 3 results and 1 closed", sum, err)
	}
}
