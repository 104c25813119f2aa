package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/jackc/pgx/v5"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// AddCaveats implements store.Store: the caveats of marks added to their stored results in one
// transaction (each caveat once; a honeypot caveat also sets dicom.honeypot), the apart column
// following; an unknown result fails the whole batch with store.ErrNotFound.
func (s *Store) AddCaveats(ctx context.Context, scanID string, marks []store.Mark) error {
	op := fmt.Sprintf("add caveats to scan %q", scanID)
	if err := s.writable(op); err != nil {
		return err
	}
	seq, err := s.seq(ctx, scanID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("add caveats to %w", err)
		}
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap(op, err)
	}
	defer tx.Rollback(ctx)
	for _, m := range marks {
		var rec string
		err := tx.QueryRow(ctx, `SELECT record FROM results WHERE scan_seq = $1 AND ip = $2 AND port = $3 FOR UPDATE`,
			seq, ipKey(m.IP), int32(m.Port)).Scan(&rec)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("add caveats: result %s of scan %q: %w", netip.AddrPortFrom(m.IP, m.Port), scanID, store.ErrNotFound)
		}
		if err != nil {
			return s.wrap(op, err)
		}
		var r probe.Result
		if err := json.Unmarshal([]byte(rec), &r); err != nil {
			return fmt.Errorf("%w: result of scan %q: %v", store.ErrCorrupt, scanID, err)
		}
		if !store.AddCaveat(&r, m.Caveat) {
			continue
		}
		r.Sanitize()
		b, err := json.Marshal(&r)
		if err != nil {
			return fmt.Errorf("store: %s: %w", op, err)
		}
		honeypot := r.DICOM != nil && r.DICOM.Honeypot
		if _, err := tx.Exec(ctx, `UPDATE results SET record = $1, honeypot = $2, apart = $3
			WHERE scan_seq = $4 AND ip = $5 AND port = $6`, string(b), honeypot, int16(store.ApartOf(&r)), seq, ipKey(m.IP), int32(m.Port)); err != nil {
			return s.wrap(op, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return s.wrap(op, err)
	}
	return nil
}
