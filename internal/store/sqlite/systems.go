package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// Systems implements store.Reader with one aggregate over the results_level index: a window
// ranks each host's ports as store.Outranks does and the first of each host is counted. Sums
// are taken in two halves (bits 32 and up, and the low 32 bits), which cannot overflow SQLite's
// 64-bit sum, and joined here saturating, as store.Systems documents. A store of schema
// version 1 or 2 (read-only) has no honeypot and retrieve columns, and one older than 4 no
// apart column: they are read from the records instead.
func (s *Store) Systems(ctx context.Context, scanIDs ...string) (store.Systems, error) {
	if len(scanIDs) == 0 {
		return store.Systems{}, nil
	}
	ids, err := json.Marshal(scanIDs)
	if err != nil {
		return store.Systems{}, fmt.Errorf("store: systems: %w", err)
	}
	var sums [10]int64
	err = s.read(true, func(db *sql.DB) error {
		seqs, err := s.seqs(ctx, db, scanIDs, ids)
		if err != nil {
			return err
		}
		args := []any{seqs}
		dest := make([]any, len(sums))
		for i := range sums {
			dest[i] = &sums[i]
		}
		return db.QueryRowContext(ctx, s.systemsQuery(), args...).Scan(dest...)
	})
	if err != nil {
		return store.Systems{}, err
	}
	return store.Systems{
		Found: sums[0], Accessible: sums[1],
		Studies: join(sums[2], sums[3]), Images: join(sums[4], sums[5]),
		StudiesImageAccess: join(sums[6], sums[7]), ImagesAccessible: join(sums[8], sums[9]),
	}, nil
}

// seqs returns the internal keys of the scans whose IDs ids (a JSON array) holds, as a JSON
// array; an unknown ID is store.ErrNotFound.
func (s *Store) seqs(ctx context.Context, db *sql.DB, scanIDs []string, ids []byte) (string, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, seq FROM scans WHERE id IN (SELECT value FROM json_each(?))`, ids)
	if err != nil {
		return "", fmt.Errorf("store: systems: %w", err)
	}
	defer rows.Close()
	found := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return "", fmt.Errorf("store: systems: %w", err)
		}
		found[id] = seq
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("store: systems: %w", err)
	}
	seqs := make([]int64, 0, len(found))
	for _, id := range scanIDs {
		seq, ok := found[id]
		if !ok {
			return "", fmt.Errorf("systems of scan %q: %w", id, store.ErrNotFound)
		}
		seqs = append(seqs, seq)
	}
	b, err := json.Marshal(seqs)
	return string(b), err
}

// systemsQuery is Systems' query in s's schema; its one argument is a JSON array of scan keys.
func (s *Store) systemsQuery() string {
	honeypot, retrieve, studies, instances, apart := `honeypot`, `retrieve`, `studies`, `instances`, `apart`
	if s.version < 5 {
		apart = apartFromRecord
	}
	if s.version < 3 {
		honeypot = `coalesce(record ->> '$.dicom.honeypot', 0)`
		retrieve = `coalesce(record ->> '$.exposure.retrieve', 'untested')`
		studies = `coalesce(record ->> '$.exposure.studies', 0)`
		instances = `coalesce(record ->> '$.exposure.instances', 0)`
	}
	var rank strings.Builder
	rank.WriteString(`CASE level`)
	for l := probe.LevelClosed; l <= probe.LevelRetrieve; l++ {
		fmt.Fprintf(&rank, ` WHEN '%s' THEN %d`, l, l)
	}
	rank.WriteString(` ELSE 0 END`)
	// A host whose ports are all below level protected counts for nothing, whichever
	// represents it: such ports are left out before the ranking.
	var levels []string
	for l := probe.LevelProtected; l <= probe.LevelRetrieve; l++ {
		levels = append(levels, fmt.Sprintf(`'%s'`, l))
	}
	counted := strings.Join(levels, ", ")
	accessible := fmt.Sprintf(`lvl >= %d`, probe.LevelQuery)
	// Only counts no caveat sets apart are summed (store.Systems).
	summed := fmt.Sprintf(`lvl >= %d AND apart = %d`, probe.LevelQuery, store.ApartNone)
	imageAccess := fmt.Sprintf(`%s AND (lvl >= %d OR retrieve IN ('%s', '%s'))`,
		summed, probe.LevelRetrieve, probe.RetrieveAccepted, probe.RetrieveVerified)
	halves := func(col, filter string) string {
		return fmt.Sprintf(`coalesce(sum(%[1]s >> 32) FILTER (WHERE %[2]s), 0), coalesce(sum(%[1]s & 4294967295) FILTER (WHERE %[2]s), 0)`, col, filter)
	}
	return `WITH ports AS (
			SELECT ip, port, ` + rank.String() + ` AS lvl, ` + retrieve + ` AS retrieve,
				` + studies + ` AS studies, ` + instances + ` AS instances, ` + apart + ` AS apart
			FROM results WHERE scan_seq IN (SELECT value FROM json_each(?1)) AND ` + honeypot + ` = 0
				AND level IN (` + counted + `) AND ` + apart + fmt.Sprintf(` < %d`, store.ApartLeftOut) + `
		), reps AS (
			SELECT lvl, retrieve, studies, instances, apart,
				row_number() OVER (PARTITION BY ip ORDER BY lvl DESC, studies DESC, instances DESC, port) AS n
			FROM ports
		)
		SELECT count(*), count(*) FILTER (WHERE ` + accessible + `), ` +
		halves("studies", summed) + `, ` + halves("instances", summed) + `, ` +
		halves("studies", imageAccess) + `, ` + halves("instances", imageAccess) + `
		FROM reps WHERE n = 1`
}

// apartFromRecord is store.ApartOf in SQL over a result's record, for stores older than
// version 5 (read-only), which have no apart column; migration 0005 fills the column with it.
const apartFromRecord = `(CASE
	WHEN coalesce(record ->> '$.dicom.honeypot', 0) THEN 2
	WHEN EXISTS (SELECT 1 FROM json_each(record, '$.exposure.caveats')
		WHERE value ->> '$.kind' IN ('honeypot', 'implausible')) THEN 2
	WHEN EXISTS (SELECT 1 FROM json_each(record, '$.exposure.caveats')
		WHERE value ->> '$.kind' = 'capped') THEN 1
	ELSE 0 END)`

// join returns hi·2³² + lo, saturating at math.MaxInt64.
func join(hi, lo int64) int64 {
	if hi > math.MaxInt64>>32 {
		return math.MaxInt64
	}
	v := hi << 32
	if lo > math.MaxInt64-v {
		return math.MaxInt64
	}
	return v + lo
}
