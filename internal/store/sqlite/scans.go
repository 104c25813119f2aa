package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pacswatch/pacswatch/internal/store"
)

// scanColumns are the columns scanScan reads, as of schema version 2, but
// for the tallies (talliesColumn).
const scanColumns = `id, name, started, finished, targets, settings, total, seed, shard, done,
	excluded, space_digest, exclusions`

// scanColumnsV1 reads a version 1 database (OpenReadOnly only): the columns
// version 2 added read as their defaults.
const scanColumnsV1 = `id, name, started, finished, targets, settings, total, seed, shard, done,
	0, '', '[]'`

// scanColumns returns the columns scanScan reads in s's schema.
func (s *Store) scanColumns() string {
	if s.version < 2 {
		return scanColumnsV1 + `, ` + s.talliesColumn()
	}
	return scanColumns + `, ` + s.talliesColumn()
}

// CreateScan implements store.Store.
func (s *Store) CreateScan(ctx context.Context, sc store.Scan) (store.Scan, error) {
	if err := s.writable("create scan"); err != nil {
		return store.Scan{}, err
	}
	row, err := store.EncodeScan(&sc)
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
	}
	defer tx.Rollback()
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM scans`).Scan(&seq); err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
	}
	if sc.ID == "" {
		// The next sequence number, unless a caller chose it as an ID.
		for ; ; seq++ {
			sc.ID = strconv.FormatInt(seq, 10)
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM scans WHERE id = ?`, sc.ID).Scan(&n); err != nil {
				return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
			}
			if n == 0 {
				break
			}
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO scans
		(seq, id, name, started, finished, targets, settings, total, seed, shard, space_digest, exclusions)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		seq, sc.ID, sc.Name, row.Started, row.Finished, string(row.Targets), string(row.Settings), row.Total, row.Seed, sc.Shard,
		sc.SpaceDigest, string(row.Exclusions))
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan %q: %w", sc.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan %q: %w", sc.ID, err)
	} else if n == 0 {
		return store.Scan{}, fmt.Errorf("create scan %q: %w", sc.ID, store.ErrExists)
	}
	if err := tx.Commit(); err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan %q: %w", sc.ID, err)
	}
	return sc, nil
}

// Scan implements store.Store.
func (s *Store) Scan(ctx context.Context, id string) (store.Scan, error) {
	var sc store.Scan
	err := s.read(true, func(db *sql.DB) (err error) {
		sc, err = scanScan(db.QueryRowContext(ctx, `SELECT `+s.scanColumns()+` FROM scans WHERE id = ?`, id))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Scan{}, fmt.Errorf("scan %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: read scan %q: %w", id, err)
	}
	return sc, nil
}

// LatestScan implements store.Store.
func (s *Store) LatestScan(ctx context.Context) (store.Scan, error) {
	var sc store.Scan
	err := s.read(true, func(db *sql.DB) (err error) {
		sc, err = scanScan(db.QueryRowContext(ctx, `SELECT `+s.scanColumns()+` FROM scans ORDER BY started DESC, seq DESC LIMIT 1`))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Scan{}, fmt.Errorf("latest scan: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: read latest scan: %w", err)
	}
	return sc, nil
}

// Scans implements store.Store.
func (s *Store) Scans(ctx context.Context) ([]store.Scan, error) {
	var scans []store.Scan
	err := s.read(true, func(db *sql.DB) error {
		scans = nil
		rows, err := db.QueryContext(ctx, `SELECT `+s.scanColumns()+` FROM scans ORDER BY started, seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			sc, err := scanScan(rows)
			if err != nil {
				return err
			}
			scans = append(scans, sc)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: list scans: %w", err)
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
	res, err := s.db.ExecContext(ctx, `UPDATE scans SET finished = ? WHERE id = ?`, finished, id)
	if err != nil {
		return fmt.Errorf("store: finish scan %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: finish scan %q: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("finish scan %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// scanScan reads one row of scanColumns.
func scanScan(r interface{ Scan(...any) error }) (store.Scan, error) {
	var (
		sc       store.Scan
		row      store.ScanRow
		finished sql.NullString
		tallies  []byte
	)
	if err := r.Scan(&sc.ID, &sc.Name, &row.Started, &finished, &row.Targets, &row.Settings, &row.Total, &row.Seed, &sc.Shard, &row.Done,
		&row.Excluded, &sc.SpaceDigest, &row.Exclusions, &tallies); err != nil {
		return store.Scan{}, err
	}
	if finished.Valid {
		row.Finished = &finished.String
	}
	if err := row.Decode(&sc); err != nil {
		return store.Scan{}, err
	}
	var err error
	if sc.Progress.Tallies, err = parseTallies(tallies); err != nil {
		return store.Scan{}, fmt.Errorf("%w: scan %q tallies: %v", store.ErrCorrupt, sc.ID, err)
	}
	return sc, nil
}

// The SQL backends' shared column helpers (store.FormatTime and the rest).
var (
	formatTime = store.FormatTime
	parseTime  = store.ParseTime
)
