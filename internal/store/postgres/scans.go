package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pacswatch/pacswatch/internal/store"
)

// scanColumns are the columns scanScan reads.
const scanColumns = `id, name, started, finished, targets, settings, total, seed, shard, done,
	excluded, space_digest, exclusions, tallies`

// CreateScan implements store.Store. Shard processes that start at once each create their own
// scan: numbers come from a sequence, and an assigned ID skips the IDs callers chose.
func (s *Store) CreateScan(ctx context.Context, sc store.Scan) (store.Scan, error) {
	if err := s.writable("create scan"); err != nil {
		return store.Scan{}, err
	}
	row, err := store.EncodeScan(&sc)
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
	}
	chosen := sc.ID != ""
	for {
		var seq int64
		if err := s.pool.QueryRow(ctx, `SELECT nextval('scan_numbers')`).Scan(&seq); err != nil {
			return store.Scan{}, s.wrap("create scan", err)
		}
		if !chosen {
			sc.ID = strconv.FormatInt(seq, 10)
		}
		tag, err := s.pool.Exec(ctx, `INSERT INTO scans
			(seq, id, name, started, finished, targets, settings, total, seed, shard, space_digest, exclusions)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING`,
			seq, sc.ID, sc.Name, row.Started, row.Finished, string(row.Targets), string(row.Settings), row.Total, row.Seed,
			sc.Shard, sc.SpaceDigest, string(row.Exclusions))
		if err != nil {
			return store.Scan{}, s.wrap(fmt.Sprintf("create scan %q", sc.ID), err)
		}
		switch {
		case tag.RowsAffected() == 1:
			return sc, nil
		case chosen:
			return store.Scan{}, fmt.Errorf("create scan %q: %w", sc.ID, store.ErrExists)
		}
		// A caller chose this number as an ID: take the next one.
	}
}

// Scan implements store.Reader.
func (s *Store) Scan(ctx context.Context, id string) (store.Scan, error) {
	sc, err := scanScan(s.pool.QueryRow(ctx, `SELECT `+scanColumns+` FROM scans WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Scan{}, fmt.Errorf("scan %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Scan{}, s.wrap(fmt.Sprintf("read scan %q", id), err)
	}
	return sc, nil
}

// LatestScan implements store.Reader.
func (s *Store) LatestScan(ctx context.Context) (store.Scan, error) {
	sc, err := scanScan(s.pool.QueryRow(ctx, `SELECT `+scanColumns+` FROM scans ORDER BY started DESC, seq DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Scan{}, fmt.Errorf("latest scan: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Scan{}, s.wrap("read latest scan", err)
	}
	return sc, nil
}

// Scans implements store.Reader.
func (s *Store) Scans(ctx context.Context) ([]store.Scan, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+scanColumns+` FROM scans ORDER BY started, seq`)
	if err != nil {
		return nil, s.wrap("list scans", err)
	}
	defer rows.Close()
	var scans []store.Scan
	for rows.Next() {
		sc, err := scanScan(rows)
		if err != nil {
			return nil, s.wrap("list scans", err)
		}
		scans = append(scans, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list scans", err)
	}
	return scans, nil
}

// FinishScan implements store.Store.
func (s *Store) FinishScan(ctx context.Context, id string, end time.Time) error {
	if err := s.writable("finish scan"); err != nil {
		return err
	}
	finished, err := formatTime(end)
	if err != nil {
		return fmt.Errorf("store: finish scan %q: %w", id, err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE scans SET finished = $1 WHERE id = $2`, finished, id)
	if err != nil {
		return s.wrap(fmt.Sprintf("finish scan %q", id), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish scan %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// scanScan reads one row of scanColumns.
func scanScan(r pgx.Row) (store.Scan, error) {
	var (
		sc                            store.Scan
		row                           store.ScanRow
		targets, settings, exclusions string
		tallies                       string
	)
	if err := r.Scan(&sc.ID, &sc.Name, &row.Started, &row.Finished, &targets, &settings, &row.Total, &row.Seed, &sc.Shard, &row.Done,
		&row.Excluded, &sc.SpaceDigest, &exclusions, &tallies); err != nil {
		return store.Scan{}, err
	}
	row.Targets, row.Settings, row.Exclusions = []byte(targets), []byte(settings), []byte(exclusions)
	if err := row.Decode(&sc); err != nil {
		return store.Scan{}, err
	}
	var err error
	if sc.Progress.Tallies, err = decodeTallies(tallies); err != nil {
		return store.Scan{}, fmt.Errorf("%w: scan %q tallies: %v", store.ErrCorrupt, sc.ID, err)
	}
	return sc, nil
}

// The SQL backends' shared column helpers (store.FormatTime and the rest).
var (
	formatTime = store.FormatTime
	parseTime  = store.ParseTime
)
