package sqlite

import (
	"context"
	"database/sql"

	"github.com/pacswatch/pacswatch/internal/store"
)

// Tallies (store.Progress.Tallies) live in the tallies table of schema version 4, a row per
// scan and port, replaced with every checkpoint.

// talliesColumn is the scan column scanScan reads the tallies from: a JSON array of
// [port, closed, filtered, unreachable, excluded] arrays. Before version 4 there are none.
func (s *Store) talliesColumn() string {
	if s.version < 4 {
		return `'[]'`
	}
	return `(SELECT json_group_array(json_array(t.port, t.closed, t.filtered, t.unreachable, t.excluded))
		FROM tallies t WHERE t.scan_seq = scans.seq)`
}

// parseTallies decodes talliesColumn (store.DecodeTallies); nil when there are none.
var parseTallies = store.DecodeTallies

// writeTallies replaces scan seq's tallies with p's, in tx.
func writeTallies(ctx context.Context, tx *sql.Tx, seq int64, p store.Progress) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM tallies WHERE scan_seq = ?`, seq); err != nil {
		return err
	}
	for port, t := range p.Tallies {
		if t == (store.Tally{}) {
			continue
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tallies (scan_seq, port, closed, filtered, unreachable, excluded)
			VALUES (?, ?, ?, ?, ?, ?)`, seq, int64(port), int64(t.Closed), int64(t.Filtered), int64(t.Unreachable), int64(t.Excluded))
		if err != nil {
			return err
		}
	}
	return nil
}

// sumTallies returns scan seq's tallies, every port added up.
func (s *Store) sumTallies(ctx context.Context, q querier, id string) (store.Tally, error) {
	var sum store.Tally
	if s.version < 4 {
		return sum, nil
	}
	var t [3]int64
	err := q.QueryRowContext(ctx, `SELECT coalesce(sum(t.closed), 0), coalesce(sum(t.filtered), 0),
		coalesce(sum(t.unreachable), 0) FROM tallies t JOIN scans sc ON t.scan_seq = sc.seq WHERE sc.id = ?`, id).
		Scan(&t[0], &t[1], &t[2])
	sum.Closed, sum.Filtered, sum.Unreachable = uint64(t[0]), uint64(t[1]), uint64(t[2])
	return sum, err
}
