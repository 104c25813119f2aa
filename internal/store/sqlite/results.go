package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// row is one result encoded for the results table.
type row struct {
	ip                 []byte
	port               uint16
	status, level      string
	association        string // dicom.association, "none" without DICOM
	honeypot           bool   // dicom.honeypot
	retrieve           string // exposure.retrieve, "untested" without an exposure
	studies, instances int64
	apart              store.Apart // store.ApartOf the result
	record             string      // TEXT: the column is STRICT
}

// PutResults implements store.Store.
func (s *Store) PutResults(ctx context.Context, scanID string, rs []probe.Result, p store.Progress) error {
	if err := s.writable(fmt.Sprintf("put results of scan %q", scanID)); err != nil {
		return err
	}
	// Encode before taking the write lock.
	rows := make([]row, len(rs))
	for i := range rs {
		r, err := store.Prepare(scanID, i, rs[i])
		if err != nil {
			return err
		}
		if _, err := formatTime(r.Time); err != nil {
			return fmt.Errorf("store: put results of scan %q: result %d: %w", scanID, i, err)
		}
		rec, err := json.Marshal(&r)
		if err != nil {
			return fmt.Errorf("store: put results of scan %q: result %d: %w", scanID, i, err)
		}
		rows[i] = row{ip: ipKey(r.IP), port: r.Port, status: r.Status.String(), level: r.Level().String(),
			association: probe.AssociationNone.String(), retrieve: probe.RetrieveUntested.String(), record: string(rec),
			apart: store.ApartOf(&r)}
		if r.DICOM != nil {
			rows[i].association, rows[i].honeypot = r.DICOM.Association.String(), r.DICOM.Honeypot
		}
		if r.Exposure != nil {
			rows[i].studies, rows[i].instances = r.Exposure.Studies, r.Exposure.Instances
			rows[i].retrieve = r.Exposure.Retrieve.String()
		}
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
	}
	defer tx.Rollback()
	var seq int64
	err = tx.QueryRowContext(ctx, `UPDATE scans SET done = ?, excluded = ? WHERE id = ? RETURNING seq`,
		int64(p.Done), int64(p.Excluded), scanID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("put results of scan %q: %w", scanID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
	}
	if err := writeTallies(ctx, tx, seq, p); err != nil {
		return fmt.Errorf("store: put results of scan %q: tallies: %w", scanID, err)
	}
	if len(rows) > 0 {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO results
			(scan_seq, ip, port, status, level, association, honeypot, retrieve, studies, instances, apart, record)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (scan_seq, ip, port) DO UPDATE SET status = excluded.status,
			level = excluded.level, association = excluded.association, honeypot = excluded.honeypot,
			retrieve = excluded.retrieve, studies = excluded.studies,
			instances = excluded.instances, apart = excluded.apart, record = excluded.record`)
		if err != nil {
			return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
		}
		defer stmt.Close()
		for _, r := range rows {
			_, err := stmt.ExecContext(ctx, seq, r.ip, r.port, r.status, r.level, r.association,
				r.honeypot, r.retrieve, r.studies, r.instances, int(r.apart), r.record)
			if err != nil {
				return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
	}
	return nil
}

// seq returns the internal key of scan id, or store.ErrNotFound.
func seq(ctx context.Context, q querier, id string) (int64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `SELECT seq FROM scans WHERE id = ?`, id).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("scan %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: read scan %q: %w", id, err)
	}
	return seq, nil
}

// Done implements store.Store.
func (s *Store) Done(ctx context.Context, scanID string, fn func(ip netip.Addr, port uint16) error) error {
	return s.read(false, func(db *sql.DB) error {
		seq, err := seq(ctx, db, scanID)
		if err != nil {
			return err
		}
		rows, err := db.QueryContext(ctx, `SELECT ip, port FROM results WHERE scan_seq = ?`, seq)
		if err != nil {
			return fmt.Errorf("store: read done targets of scan %q: %w", scanID, err)
		}
		defer rows.Close()
		for rows.Next() {
			var key []byte
			var port uint16
			if err := rows.Scan(&key, &port); err != nil {
				return fmt.Errorf("store: read done targets of scan %q: %w", scanID, err)
			}
			ip, ok := parseIPKey(key)
			if !ok {
				return fmt.Errorf("%w: scan %q: bad ip key %x", store.ErrCorrupt, scanID, key)
			}
			if err := fn(ip, port); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: read done targets of scan %q: %w", scanID, err)
		}
		return nil
	})
}

// Results implements store.Store.
func (s *Store) Results(ctx context.Context, scanID string, fn func(probe.Result) error) error {
	return s.read(false, func(db *sql.DB) error {
		seq, err := seq(ctx, db, scanID)
		if err != nil {
			return err
		}
		// The primary key's order: no sort.
		rows, err := db.QueryContext(ctx, `SELECT record FROM results WHERE scan_seq = ? ORDER BY ip, port`, seq)
		if err != nil {
			return fmt.Errorf("store: read results of scan %q: %w", scanID, err)
		}
		defer rows.Close()
		var rec sql.RawBytes
		for rows.Next() {
			if err := rows.Scan(&rec); err != nil {
				return fmt.Errorf("store: read results of scan %q: %w", scanID, err)
			}
			var r probe.Result
			if err := json.Unmarshal(rec, &r); err != nil {
				return fmt.Errorf("%w: result of scan %q: %v", store.ErrCorrupt, scanID, err)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: read results of scan %q: %w", scanID, err)
		}
		return nil
	})
}

// Summary implements store.Store. It reads the results_level index alone,
// which holds every column it counts; a version 1 store (read-only) has no
// association column, and its records are decoded instead.
func (s *Store) Summary(ctx context.Context, id string) (store.Summary, error) {
	association := `r.association`
	if s.version < 2 {
		association = `coalesce(r.record ->> '$.dicom.association', 'none')`
	}
	excluded := `sc.excluded`
	if s.version < 2 {
		excluded = `0`
	}
	query := `SELECT ` + excluded + `, count(r.scan_seq),
		count(*) FILTER (WHERE r.status = ?),
		count(*) FILTER (WHERE ` + association + ` <> ?),
		count(*) FILTER (WHERE r.level IN (?, ?)),
		count(*) FILTER (WHERE r.status = ?)
		FROM scans sc LEFT JOIN results r ON r.scan_seq = sc.seq
		WHERE sc.id = ? GROUP BY sc.seq`
	var sum [6]int64
	var tally store.Tally
	err := s.read(true, func(db *sql.DB) error {
		err := db.QueryRowContext(ctx, query,
			probe.StatusOpen.String(), probe.AssociationNone.String(),
			probe.LevelQuery.String(), probe.LevelRetrieve.String(), probe.StatusError.String(), id,
		).Scan(&sum[0], &sum[1], &sum[2], &sum[3], &sum[4], &sum[5])
		if err != nil {
			return err
		}
		tally, err = s.sumTallies(ctx, db, id)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Summary{}, fmt.Errorf("summary of scan %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Summary{}, fmt.Errorf("store: summary of scan %q: %w", id, err)
	}
	return store.Summary{
		Excluded: uint64(sum[0]), Results: uint64(sum[1]), Open: uint64(sum[2]),
		DICOM: uint64(sum[3]), Exposed: uint64(sum[4]), Errors: uint64(sum[5]),
		Closed: tally.Closed, Filtered: tally.Filtered, Unreachable: tally.Unreachable,
	}, nil
}

// Secret implements store.Store. A store opened read-only returns its
// secret, but cannot make one.
func (s *Store) Secret(ctx context.Context) ([]byte, error) {
	var secret []byte
	err := s.read(true, func(db *sql.DB) (err error) {
		secret, err = s.readSecret(ctx, db)
		return err
	})
	if !errors.Is(err, sql.ErrNoRows) {
		return secret, err
	}
	if err := s.writable("make secret"); err != nil {
		return nil, err
	}
	// First use. Another process may be doing the same: whoever commits
	// first wins, and both return the stored secret.
	fresh := make([]byte, store.SecretSize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("store: make secret: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: make secret: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('secret', ?) ON CONFLICT (key) DO NOTHING`, fresh); err != nil {
		return nil, fmt.Errorf("store: make secret: %w", err)
	}
	if secret, err = s.readSecret(ctx, tx); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: make secret: %w", err)
	}
	return secret, nil
}

// readSecret returns the stored secret, or sql.ErrNoRows if there is none.
func (s *Store) readSecret(ctx context.Context, q querier) ([]byte, error) {
	var secret []byte
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'secret'`).Scan(&secret)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("store: read secret: %w", err)
	case len(secret) != store.SecretSize:
		return nil, fmt.Errorf("%w: secret is %d bytes, want %d", store.ErrCorrupt, len(secret), store.SecretSize)
	}
	return secret, nil
}

// ipKey and parseIPKey are the store's shared key encoding (store.IPKey).
var (
	ipKey      = store.IPKey
	parseIPKey = store.ParseIPKey
)

var _ store.HostReader = (*Store)(nil)

// HostResults implements store.HostReader: a range of the primary key, whatever the scan's size.
func (s *Store) HostResults(ctx context.Context, scanID string, ip netip.Addr, fn func(probe.Result) error) error {
	return s.read(false, func(db *sql.DB) error {
		seq, err := seq(ctx, db, scanID)
		if err != nil {
			return err
		}
		rows, err := db.QueryContext(ctx, `SELECT record FROM results WHERE scan_seq = ? AND ip = ? ORDER BY port`, seq, ipKey(ip))
		if err != nil {
			return fmt.Errorf("store: read results of %s in scan %q: %w", ip, scanID, err)
		}
		defer rows.Close()
		var rec sql.RawBytes
		for rows.Next() {
			if err := rows.Scan(&rec); err != nil {
				return fmt.Errorf("store: read results of %s in scan %q: %w", ip, scanID, err)
			}
			var r probe.Result
			if err := json.Unmarshal(rec, &r); err != nil {
				return fmt.Errorf("%w: result of scan %q: %v", store.ErrCorrupt, scanID, err)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: read results of %s in scan %q: %w", ip, scanID, err)
		}
		return nil
	})
}
