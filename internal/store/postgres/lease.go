package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pacswatch/pacswatch/internal/store"
)

// A scan's lease is one row of the leases table. AcquireLease locks the scan's row (SELECT ...
// FOR UPDATE) before it reads the lease: processes on any machine racing for one lease are
// served one after the other, and each sees the lease of the one before. Expiry is judged by
// the clock of the process that asks, as in SQLite: machines of one run keep their clocks
// within a small part of the lease's time (NTP).

// AcquireLease implements store.Store. stale is called with the scan's row locked: it must be
// quick (a check of a local process, not of the network).
func (s *Store) AcquireLease(ctx context.Context, id string, l store.Lease, stale func(store.Lease) bool) (store.Lease, error) {
	op := fmt.Sprintf("lease scan %q", id)
	if err := s.writable(op); err != nil {
		return store.Lease{}, err
	}
	if l.Holder == "" {
		return store.Lease{}, fmt.Errorf("store: %s: the lease has no holder", op)
	}
	l.Expires = l.Expires.UTC()
	expires, err := formatTime(l.Expires)
	if err != nil {
		return store.Lease{}, fmt.Errorf("store: %s: expiry: %w", op, err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return store.Lease{}, s.wrap(op, err)
	}
	defer tx.Rollback(ctx)
	var seq int64
	err = tx.QueryRow(ctx, `SELECT seq FROM scans WHERE id = $1 FOR UPDATE`, id).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Lease{}, fmt.Errorf("scan %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Lease{}, s.wrap(op, err)
	}
	cur, found, err := s.readLease(ctx, tx, id, seq)
	if err != nil {
		return store.Lease{}, err
	}
	if found && cur.Holder != l.Holder && time.Now().Before(cur.Expires) && (stale == nil || !stale(cur)) {
		return cur, fmt.Errorf("scan %q is leased to process %d on %s until %s: %w",
			id, cur.PID, cur.Host, cur.Expires.Format(time.RFC3339), store.ErrLeased)
	}
	_, err = tx.Exec(ctx, `INSERT INTO leases (scan_seq, holder, host, pid, expires) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (scan_seq) DO UPDATE SET holder = excluded.holder, host = excluded.host,
		pid = excluded.pid, expires = excluded.expires`,
		seq, l.Holder, l.Host, l.PID, expires)
	if err != nil {
		return store.Lease{}, s.wrap(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return store.Lease{}, s.wrap(op, err)
	}
	return l, nil
}

// readLease returns the lease of the scan with key seq, if it has one.
func (s *Store) readLease(ctx context.Context, q querier, id string, seq int64) (store.Lease, bool, error) {
	var (
		l       store.Lease
		expires string
	)
	err := q.QueryRow(ctx, `SELECT holder, host, pid, expires FROM leases WHERE scan_seq = $1`, seq).
		Scan(&l.Holder, &l.Host, &l.PID, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Lease{}, false, nil
	}
	if err != nil {
		return store.Lease{}, false, s.wrap(fmt.Sprintf("read lease of scan %q", id), err)
	}
	if l.Expires, err = parseTime(expires); err != nil {
		return store.Lease{}, false, fmt.Errorf("%w: lease of scan %q expires: %v", store.ErrCorrupt, id, err)
	}
	return l, true, nil
}

// RenewLease implements store.Store. An expired lease that nobody took over is still holder's,
// and renewed.
func (s *Store) RenewLease(ctx context.Context, id, holder string, expires time.Time) error {
	op := fmt.Sprintf("renew the lease of scan %q", id)
	if err := s.writable(op); err != nil {
		return err
	}
	exp, err := formatTime(expires)
	if err != nil {
		return fmt.Errorf("store: %s: expiry: %w", op, err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE leases SET expires = $1
		WHERE holder = $2 AND scan_seq = (SELECT seq FROM scans WHERE id = $3)`, exp, holder, id)
	if err != nil {
		return s.wrap(op, err)
	}
	return s.leaseChanged(ctx, id, tag, func() error {
		return fmt.Errorf("renew the lease of scan %q: another process holds it: %w", id, store.ErrLeased)
	})
}

// ReleaseLease implements store.Store.
func (s *Store) ReleaseLease(ctx context.Context, id, holder string) error {
	op := fmt.Sprintf("release the lease of scan %q", id)
	if err := s.writable(op); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM leases
		WHERE holder = $1 AND scan_seq = (SELECT seq FROM scans WHERE id = $2)`, holder, id)
	if err != nil {
		return s.wrap(op, err)
	}
	return s.leaseChanged(ctx, id, tag, func() error { return nil })
}

// leaseChanged returns nil when tag says a row changed, store.ErrNotFound when scan id does not
// exist, and notHeld() otherwise.
func (s *Store) leaseChanged(ctx context.Context, id string, tag pgconn.CommandTag, notHeld func() error) error {
	if tag.RowsAffected() > 0 {
		return nil
	}
	if _, err := s.seq(ctx, id); err != nil {
		return err
	}
	return notHeld()
}
