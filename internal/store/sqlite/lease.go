package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pacswatch/pacswatch/internal/store"
)

// A scan's lease is one row of the leases table. AcquireLease reads and
// replaces it in one transaction begun with BEGIN IMMEDIATE (Open's
// _txlock), which takes SQLite's write lock first: two processes racing
// for a lease are served one after the other, and the second sees the
// first one's lease.

// AcquireLease implements store.Store. A lease is current while the
// present time is before its Expires. stale is called with the database's
// write lock held: it must be quick (a check of a local process, not of
// the network).
func (s *Store) AcquireLease(ctx context.Context, id string, l store.Lease, stale func(store.Lease) bool) (store.Lease, error) {
	if err := s.writable(fmt.Sprintf("lease scan %q", id)); err != nil {
		return store.Lease{}, err
	}
	if l.Holder == "" {
		return store.Lease{}, fmt.Errorf("store: lease scan %q: the lease has no holder", id)
	}
	l.Expires = l.Expires.UTC()
	expires, err := formatTime(l.Expires)
	if err != nil {
		return store.Lease{}, fmt.Errorf("store: lease scan %q: expiry: %w", id, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Lease{}, fmt.Errorf("store: lease scan %q: %w", id, err)
	}
	defer tx.Rollback()
	seq, err := seq(ctx, tx, id)
	if err != nil {
		return store.Lease{}, err
	}
	cur, found, err := readLease(ctx, tx, id, seq)
	if err != nil {
		return store.Lease{}, err
	}
	if found && cur.Holder != l.Holder && time.Now().Before(cur.Expires) && (stale == nil || !stale(cur)) {
		return cur, fmt.Errorf("scan %q is leased to process %d on %s until %s: %w",
			id, cur.PID, cur.Host, cur.Expires.Format(time.RFC3339), store.ErrLeased)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO leases (scan_seq, holder, host, pid, expires) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (scan_seq) DO UPDATE SET holder = excluded.holder, host = excluded.host,
		pid = excluded.pid, expires = excluded.expires`,
		seq, l.Holder, l.Host, l.PID, expires)
	if err != nil {
		return store.Lease{}, fmt.Errorf("store: lease scan %q: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return store.Lease{}, fmt.Errorf("store: lease scan %q: %w", id, err)
	}
	return l, nil
}

// readLease returns the lease of the scan with key seq, if it has one.
func readLease(ctx context.Context, q querier, id string, seq int64) (store.Lease, bool, error) {
	var (
		l       store.Lease
		expires string
	)
	err := q.QueryRowContext(ctx, `SELECT holder, host, pid, expires FROM leases WHERE scan_seq = ?`, seq).
		Scan(&l.Holder, &l.Host, &l.PID, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Lease{}, false, nil
	}
	if err != nil {
		return store.Lease{}, false, fmt.Errorf("store: read lease of scan %q: %w", id, err)
	}
	if l.Expires, err = parseTime(expires); err != nil {
		return store.Lease{}, false, fmt.Errorf("%w: lease of scan %q expires: %v", store.ErrCorrupt, id, err)
	}
	return l, true, nil
}

// RenewLease implements store.Store. An expired lease that nobody took
// over is still holder's, and renewed.
func (s *Store) RenewLease(ctx context.Context, id, holder string, expires time.Time) error {
	if err := s.writable(fmt.Sprintf("renew the lease of scan %q", id)); err != nil {
		return err
	}
	exp, err := formatTime(expires)
	if err != nil {
		return fmt.Errorf("store: renew the lease of scan %q: expiry: %w", id, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE leases SET expires = ?
		WHERE holder = ? AND scan_seq = (SELECT seq FROM scans WHERE id = ?)`, exp, holder, id)
	if err != nil {
		return fmt.Errorf("store: renew the lease of scan %q: %w", id, err)
	}
	return s.leaseChanged(ctx, id, res, func() error {
		return fmt.Errorf("renew the lease of scan %q: another process holds it: %w", id, store.ErrLeased)
	})
}

// ReleaseLease implements store.Store.
func (s *Store) ReleaseLease(ctx context.Context, id, holder string) error {
	if err := s.writable(fmt.Sprintf("release the lease of scan %q", id)); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM leases
		WHERE holder = ? AND scan_seq = (SELECT seq FROM scans WHERE id = ?)`, holder, id)
	if err != nil {
		return fmt.Errorf("store: release the lease of scan %q: %w", id, err)
	}
	return s.leaseChanged(ctx, id, res, func() error { return nil })
}

// leaseChanged returns nil when res changed a row, store.ErrNotFound when
// scan id does not exist, and notHeld() otherwise.
func (s *Store) leaseChanged(ctx context.Context, id string, res sql.Result, notHeld func() error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: lease of scan %q: %w", id, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := seq(ctx, s.db, id); err != nil {
		return err
	}
	return notHeld()
}
