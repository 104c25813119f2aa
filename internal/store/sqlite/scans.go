package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pacswatch/pacswatch/internal/store"
)

const scanColumns = `id, name, started, finished, targets, settings, total, seed, shard, done`

// CreateScan implements store.Store.
func (s *Store) CreateScan(ctx context.Context, sc store.Scan) (store.Scan, error) {
	if sc.Started.IsZero() {
		sc.Started = time.Now()
	}
	sc.Started = sc.Started.UTC()
	sc.Finished = sc.Finished.UTC()
	sc.Progress = store.Progress{}
	if len(sc.Targets) == 0 {
		sc.Targets = nil
	}
	if len(sc.Settings) == 0 {
		sc.Settings = nil
	}
	started, err := formatTime(sc.Started)
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: started: %w", err)
	}
	var finished sql.NullString
	if !sc.Finished.IsZero() {
		if finished.String, err = formatTime(sc.Finished); err != nil {
			return store.Scan{}, fmt.Errorf("store: create scan: finished: %w", err)
		}
		finished.Valid = true
	}
	targets, err := json.Marshal(orEmpty(sc.Targets))
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
	}
	settings, err := json.Marshal(orEmptyMap(sc.Settings))
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
	res, err := tx.ExecContext(ctx, `INSERT INTO scans (seq, `+scanColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
		ON CONFLICT (id) DO NOTHING`,
		seq, sc.ID, sc.Name, started, finished, string(targets), string(settings), int64(sc.Total), int64(sc.Seed), sc.Shard)
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
	row := s.db.QueryRowContext(ctx, `SELECT `+scanColumns+` FROM scans WHERE id = ?`, id)
	sc, err := scanScan(row)
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
	row := s.db.QueryRowContext(ctx, `SELECT `+scanColumns+` FROM scans ORDER BY started DESC, seq DESC LIMIT 1`)
	sc, err := scanScan(row)
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
	rows, err := s.db.QueryContext(ctx, `SELECT `+scanColumns+` FROM scans ORDER BY started, seq`)
	if err != nil {
		return nil, fmt.Errorf("store: list scans: %w", err)
	}
	defer rows.Close()
	var scans []store.Scan
	for rows.Next() {
		sc, err := scanScan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list scans: %w", err)
		}
		scans = append(scans, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list scans: %w", err)
	}
	return scans, nil
}

// FinishScan implements store.Store.
func (s *Store) FinishScan(ctx context.Context, id string, end time.Time) error {
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
		sc                store.Scan
		started           string
		finished          sql.NullString
		targets, settings []byte
		total, seed, done int64
	)
	if err := r.Scan(&sc.ID, &sc.Name, &started, &finished, &targets, &settings, &total, &seed, &sc.Shard, &done); err != nil {
		return store.Scan{}, err
	}
	var err error
	if sc.Started, err = parseTime(started); err != nil {
		return store.Scan{}, fmt.Errorf("%w: scan %q started: %v", store.ErrCorrupt, sc.ID, err)
	}
	if finished.Valid {
		if sc.Finished, err = parseTime(finished.String); err != nil {
			return store.Scan{}, fmt.Errorf("%w: scan %q finished: %v", store.ErrCorrupt, sc.ID, err)
		}
	}
	if err := json.Unmarshal(targets, &sc.Targets); err != nil {
		return store.Scan{}, fmt.Errorf("%w: scan %q targets: %v", store.ErrCorrupt, sc.ID, err)
	}
	if err := json.Unmarshal(settings, &sc.Settings); err != nil {
		return store.Scan{}, fmt.Errorf("%w: scan %q settings: %v", store.ErrCorrupt, sc.ID, err)
	}
	if len(sc.Targets) == 0 {
		sc.Targets = nil
	}
	if len(sc.Settings) == 0 {
		sc.Settings = nil
	}
	sc.Total, sc.Seed, sc.Progress.Done = uint64(total), uint64(seed), uint64(done)
	return sc, nil
}

// timeLayout is fixed-width UTC, so that stored times sort as times.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("time %v out of range", t)
	}
	return t.Format(timeLayout), nil
}

func parseTime(s string) (time.Time, error) { return time.Parse(timeLayout, s) }

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
