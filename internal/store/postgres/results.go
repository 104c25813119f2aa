package postgres

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/jackc/pgx/v5"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// batchRows is how many results one INSERT carries: PutResults sends a larger batch in several,
// in its one transaction.
const batchRows = 5000

// pageRows is how many results Results and Done read per query. No connection is held between
// pages, nor while the caller's function runs.
const pageRows = 2000

// columns holds a batch of results column by column, as the INSERT's arrays.
type columns struct {
	ip                         [][]byte
	port                       []int32
	status, level, association []string
	honeypot                   []bool
	retrieve                   []string
	studies, instances         []int64
	apart                      []int16
	record                     []string
	index                      map[netip.AddrPort]int // row of each target: the last result wins
}

// add appends result r (prepared), or replaces the earlier row of its target: one statement
// may not change a row twice.
func (c *columns) add(r *probe.Result, rec []byte) {
	k := netip.AddrPortFrom(r.IP, r.Port)
	i, ok := c.index[k]
	if !ok {
		i = len(c.ip)
		c.index[k] = i
		c.ip, c.port = append(c.ip, ipKey(r.IP)), append(c.port, int32(r.Port))
		c.status, c.level, c.association = append(c.status, ""), append(c.level, ""), append(c.association, "")
		c.honeypot, c.retrieve = append(c.honeypot, false), append(c.retrieve, "")
		c.studies, c.instances, c.record = append(c.studies, 0), append(c.instances, 0), append(c.record, "")
		c.apart = append(c.apart, 0)
	}
	c.apart[i] = int16(store.ApartOf(r))
	c.status[i], c.level[i], c.record[i] = r.Status.String(), r.Level().String(), string(rec)
	c.association[i], c.honeypot[i] = probe.AssociationNone.String(), false
	c.retrieve[i], c.studies[i], c.instances[i] = probe.RetrieveUntested.String(), 0, 0
	if r.DICOM != nil {
		c.association[i], c.honeypot[i] = r.DICOM.Association.String(), r.DICOM.Honeypot
	}
	if r.Exposure != nil {
		c.retrieve[i], c.studies[i], c.instances[i] = r.Exposure.Retrieve.String(), r.Exposure.Studies, r.Exposure.Instances
	}
}

// slice returns the arguments of rows [i, j) for insertSQL, after the scan's key.
func (c *columns) slice(seq int64, i, j int) []any {
	return []any{seq, c.ip[i:j], c.port[i:j], c.status[i:j], c.level[i:j], c.association[i:j], c.honeypot[i:j],
		c.retrieve[i:j], c.studies[i:j], c.instances[i:j], c.record[i:j], c.apart[i:j]}
}

const insertSQL = `INSERT INTO results
	(scan_seq, ip, port, status, level, association, honeypot, retrieve, studies, instances, record, apart)
	SELECT $1, * FROM unnest($2::bytea[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::boolean[],
		$8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::smallint[])
	ON CONFLICT (scan_seq, ip, port) DO UPDATE SET status = excluded.status, level = excluded.level,
		association = excluded.association, honeypot = excluded.honeypot, retrieve = excluded.retrieve,
		studies = excluded.studies, instances = excluded.instances, record = excluded.record, apart = excluded.apart`

// PutResults implements store.Store: the checkpoint and the results in one transaction, the
// results as arrays in a few statements.
func (s *Store) PutResults(ctx context.Context, scanID string, rs []probe.Result, p store.Progress) error {
	op := fmt.Sprintf("put results of scan %q", scanID)
	if err := s.writable(op); err != nil {
		return err
	}
	c := columns{index: make(map[netip.AddrPort]int, len(rs))}
	for i := range rs {
		r, err := store.Prepare(scanID, i, rs[i])
		if err != nil {
			return err
		}
		if _, err := formatTime(r.Time); err != nil {
			return fmt.Errorf("store: %s: result %d: %w", op, i, err)
		}
		rec, err := json.Marshal(&r)
		if err != nil {
			return fmt.Errorf("store: %s: result %d: %w", op, i, err)
		}
		c.add(&r, rec)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap(op, err)
	}
	defer tx.Rollback(ctx)
	var seq int64
	err = tx.QueryRow(ctx, `UPDATE scans SET done = $1, excluded = $2, tallies = $3 WHERE id = $4 RETURNING seq`,
		int64(p.Done), int64(p.Excluded), encodeTallies(p.Tallies), scanID).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("put results of scan %q: %w", scanID, store.ErrNotFound)
	}
	if err != nil {
		return s.wrap(op, err)
	}
	for i := 0; i < len(c.ip); i += batchRows {
		if _, err := tx.Exec(ctx, insertSQL, c.slice(seq, i, min(i+batchRows, len(c.ip)))...); err != nil {
			return s.wrap(op, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// seq returns the internal key of scan id, or store.ErrNotFound.
func (s *Store) seq(ctx context.Context, id string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM scans WHERE id = $1`, id).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("scan %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, s.wrap(fmt.Sprintf("read scan %q", id), err)
	}
	return seq, nil
}

// page is one page of a scan's results: keys and, when asked for, records.
type page struct {
	ips     [][]byte
	ports   []int32
	records []string
}

// pages calls fn with each page of scan seq's results, in key order. The connection is back in
// the pool before fn runs.
func (s *Store) pages(ctx context.Context, seq int64, records bool, fn func(page) error) error {
	cols := `ip, port, ''`
	if records {
		cols = `ip, port, record`
	}
	after, afterPort := []byte{}, int32(-1)
	for {
		rows, err := s.pool.Query(ctx, `SELECT `+cols+` FROM results WHERE scan_seq = $1 AND (ip, port) > ($2, $3)
			ORDER BY ip, port LIMIT $4`, seq, after, afterPort, pageRows)
		if err != nil {
			return err
		}
		var p page
		for rows.Next() {
			var ip []byte
			var port int32
			var rec string
			if err := rows.Scan(&ip, &port, &rec); err != nil {
				rows.Close()
				return err
			}
			p.ips, p.ports, p.records = append(p.ips, ip), append(p.ports, port), append(p.records, rec)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(p.ips) == 0 {
			return nil
		}
		if err := fn(p); err != nil {
			return err
		}
		if len(p.ips) < pageRows {
			return nil
		}
		after, afterPort = p.ips[len(p.ips)-1], p.ports[len(p.ports)-1]
	}
}

// callerError marks an error of the caller's function, returned as it is.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

// Done implements store.Reader.
func (s *Store) Done(ctx context.Context, scanID string, fn func(ip netip.Addr, port uint16) error) error {
	seq, err := s.seq(ctx, scanID)
	if err != nil {
		return err
	}
	err = s.pages(ctx, seq, false, func(p page) error {
		for i, key := range p.ips {
			ip, ok := parseIPKey(key)
			if !ok {
				return fmt.Errorf("%w: scan %q: bad ip key %x", store.ErrCorrupt, scanID, key)
			}
			if err := fn(ip, uint16(p.ports[i])); err != nil {
				return callerError{err}
			}
		}
		return nil
	})
	return s.readError(fmt.Sprintf("read done targets of scan %q", scanID), err)
}

// Results implements store.Reader.
func (s *Store) Results(ctx context.Context, scanID string, fn func(probe.Result) error) error {
	seq, err := s.seq(ctx, scanID)
	if err != nil {
		return err
	}
	err = s.pages(ctx, seq, true, func(p page) error {
		for _, rec := range p.records {
			var r probe.Result
			if err := json.Unmarshal([]byte(rec), &r); err != nil {
				return fmt.Errorf("%w: result of scan %q: %v", store.ErrCorrupt, scanID, err)
			}
			if err := fn(r); err != nil {
				return callerError{err}
			}
		}
		return nil
	})
	return s.readError(fmt.Sprintf("read results of scan %q", scanID), err)
}

// readError returns a caller's error as it is, a corrupt record's as it is, and wraps the rest.
func (s *Store) readError(op string, err error) error {
	var ce callerError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return ce.err
	case errors.Is(err, store.ErrCorrupt):
		return err
	}
	return s.wrap(op, err)
}

// Summary implements store.Reader from the results_level index.
func (s *Store) Summary(ctx context.Context, id string) (store.Summary, error) {
	var sum [6]int64
	var tallies string
	err := s.pool.QueryRow(ctx, `SELECT sc.excluded, sc.tallies, count(r.scan_seq),
		count(*) FILTER (WHERE r.status = $1),
		count(*) FILTER (WHERE r.association <> $2),
		count(*) FILTER (WHERE r.level IN ($3, $4)),
		count(*) FILTER (WHERE r.status = $5)
		FROM scans sc LEFT JOIN results r ON r.scan_seq = sc.seq
		WHERE sc.id = $6 GROUP BY sc.seq, sc.tallies`,
		probe.StatusOpen.String(), probe.AssociationNone.String(),
		probe.LevelQuery.String(), probe.LevelRetrieve.String(), probe.StatusError.String(), id,
	).Scan(&sum[0], &tallies, &sum[1], &sum[2], &sum[3], &sum[4], &sum[5])
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Summary{}, fmt.Errorf("summary of scan %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Summary{}, s.wrap(fmt.Sprintf("summary of scan %q", id), err)
	}
	t, err := decodeTallies(tallies)
	if err != nil {
		return store.Summary{}, fmt.Errorf("%w: scan %q tallies: %v", store.ErrCorrupt, id, err)
	}
	sum2 := store.Summary{
		Excluded: uint64(sum[0]), Results: uint64(sum[1]), Open: uint64(sum[2]),
		DICOM: uint64(sum[3]), Exposed: uint64(sum[4]), Errors: uint64(sum[5]),
	}
	sum2.AddTallies(store.Progress{Tallies: t})
	return sum2, nil
}

// Secret implements store.Store. A store opened read-only returns its secret, but cannot make
// one. Processes that make it at once agree: the first insert wins, the others read it.
func (s *Store) Secret(ctx context.Context) ([]byte, error) {
	secret, err := s.readSecret(ctx)
	if !errors.Is(err, pgx.ErrNoRows) {
		return secret, err
	}
	if err := s.writable("make secret"); err != nil {
		return nil, err
	}
	fresh := make([]byte, store.SecretSize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("store: make secret: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('secret', $1) ON CONFLICT (key) DO NOTHING`, fresh); err != nil {
		return nil, s.wrap("make secret", err)
	}
	secret, err = s.readSecret(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("store: make secret in %s: it is not there after its insert", s.where)
	}
	return secret, err
}

// readSecret returns the stored secret, or pgx.ErrNoRows if there is none.
func (s *Store) readSecret(ctx context.Context) ([]byte, error) {
	var secret []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'secret'`).Scan(&secret)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, err
	case err != nil:
		return nil, s.wrap("read secret", err)
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

// HostResults implements store.HostReader: one address's results of a scan, through the
// results' primary key (scan_seq, ip, port), so that serve's host page and watch's time to fix
// read no other result.
func (s *Store) HostResults(ctx context.Context, scanID string, ip netip.Addr, fn func(probe.Result) error) error {
	seq, err := s.seq(ctx, scanID)
	if err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT record FROM results WHERE scan_seq = $1 AND ip = $2 ORDER BY port`, seq, ipKey(ip))
	if err != nil {
		return s.wrap(fmt.Sprintf("read results of %s in scan %q", ip, scanID), err)
	}
	var records []string
	for rows.Next() {
		var rec string
		if err := rows.Scan(&rec); err != nil {
			rows.Close()
			return s.wrap(fmt.Sprintf("read results of %s in scan %q", ip, scanID), err)
		}
		records = append(records, rec)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s.wrap(fmt.Sprintf("read results of %s in scan %q", ip, scanID), err)
	}
	// fn runs after the rows are closed: it may read the store again without a second connection.
	for _, rec := range records {
		var r probe.Result
		if err := json.Unmarshal([]byte(rec), &r); err != nil {
			return fmt.Errorf("%w: result of scan %q: %v", store.ErrCorrupt, scanID, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

var _ store.HostReader = (*Store)(nil)
