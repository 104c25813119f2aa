package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// AddCaveats implements store.Store: each marked record is read, changed (store.AddCaveat),
// sanitized and written back with its honeypot and apart columns, in one transaction.
func (s *Store) AddCaveats(ctx context.Context, scanID string, marks []store.Mark) error {
	op := fmt.Sprintf("add caveats to scan %q", scanID)
	if err := s.writable(op); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	defer tx.Rollback()
	seq, err := seq(ctx, tx, scanID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("add caveats to %w", err)
		}
		return err
	}
	for _, m := range marks {
		if err := addCaveat(ctx, tx, seq, scanID, m); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return nil
}

// addCaveat adds one mark's caveat to its record, within tx.
func addCaveat(ctx context.Context, tx *sql.Tx, seq int64, scanID string, m store.Mark) error {
	key := ipKey(m.IP)
	var rec string
	err := tx.QueryRowContext(ctx, `SELECT record FROM results WHERE scan_seq = ? AND ip = ? AND port = ?`,
		seq, key, m.Port).Scan(&rec)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("add caveats: result %s of scan %q: %w", netip.AddrPortFrom(m.IP, m.Port), scanID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: add caveats to scan %q: %w", scanID, err)
	}
	var r probe.Result
	if err := json.Unmarshal([]byte(rec), &r); err != nil {
		return fmt.Errorf("%w: result of scan %q: %v", store.ErrCorrupt, scanID, err)
	}
	if !store.AddCaveat(&r, m.Caveat) {
		return nil
	}
	r.Sanitize()
	b, err := json.Marshal(&r)
	if err != nil {
		return fmt.Errorf("store: add caveats to scan %q: %w", scanID, err)
	}
	honeypot := r.DICOM != nil && r.DICOM.Honeypot
	_, err = tx.ExecContext(ctx, `UPDATE results SET record = ?, honeypot = ?, apart = ?
		WHERE scan_seq = ? AND ip = ? AND port = ?`, string(b), honeypot, int(store.ApartOf(&r)), seq, key, m.Port)
	if err != nil {
		return fmt.Errorf("store: add caveats to scan %q: %w", scanID, err)
	}
	return nil
}
