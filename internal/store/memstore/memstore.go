// Package memstore implements store.Store in memory: scans, results, checkpoints, the secret
// and leases, lost when the process ends. It passes the same conformance suite
// (store/storetest) as the SQLite backend, so tests of report, diff and the scanner can run on
// it, and it is the plainest statement of the store's contract.
//
// Results are kept as the JSON records a database backend keeps (sanitized, then encoded), so
// that they read back exactly as from one: the same copies, the same time zones, the same
// refusals of what does not encode.
package memstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// ErrClosed is returned by every method of a closed handle.
var ErrClosed = errors.New("memstore: closed")

// Store is a handle on an in-memory database. New makes one; Reopen gives another handle on
// the same database, as opening a file again does.
type Store struct {
	db     *db
	mu     sync.Mutex // protects closed
	closed bool
}

var _ store.Store = (*Store)(nil)

// db is the database that handles share.
type db struct {
	mu     sync.Mutex // protects the fields below
	seq    int64      // the last scan's creation number
	scans  map[string]*scan
	secret []byte
}

// scan is one scan and what was stored with it.
type scan struct {
	seq     int64
	sc      store.Scan
	results map[netip.AddrPort][]byte // sanitized records as JSON
	lease   *store.Lease
}

// New returns a handle on a new, empty database.
func New() *Store { return &Store{db: &db{scans: map[string]*scan{}}} }

// Reopen returns a new handle on s's database; closing one handle leaves the other open.
func (s *Store) Reopen() *Store { return &Store{db: s.db} }

// Close implements store.Reader.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// lock checks the handle and the context, and locks the database; the caller unlocks it.
func (s *Store) lock(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.db.mu.Lock()
	return nil
}

// withScan runs fn on scan id with the database locked; an unknown scan is store.ErrNotFound.
func (s *Store) withScan(ctx context.Context, id string, fn func(sc *scan) error) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.db.mu.Unlock()
	sc, ok := s.db.scans[id]
	if !ok {
		return fmt.Errorf("scan %q: %w", id, store.ErrNotFound)
	}
	return fn(sc)
}

// CreateScan implements store.Store.
func (s *Store) CreateScan(ctx context.Context, sc store.Scan) (store.Scan, error) {
	if sc.Started.IsZero() {
		sc.Started = time.Now()
	}
	sc.Started, sc.Finished = sc.Started.UTC(), sc.Finished.UTC()
	sc.Progress = store.Progress{}
	sc.Targets, sc.Exclusions = orNil(sc.Targets), orNil(sc.Exclusions)
	sc.Settings = maps.Clone(sc.Settings)
	if len(sc.Settings) == 0 {
		sc.Settings = nil
	}
	if err := s.lock(ctx); err != nil {
		return store.Scan{}, err
	}
	defer s.db.mu.Unlock()
	seq := s.db.seq + 1
	if sc.ID == "" {
		for sc.ID = strconv.FormatInt(seq, 10); s.db.scans[sc.ID] != nil; {
			seq++
			sc.ID = strconv.FormatInt(seq, 10)
		}
	} else if s.db.scans[sc.ID] != nil {
		return store.Scan{}, fmt.Errorf("create scan %q: %w", sc.ID, store.ErrExists)
	}
	s.db.seq = seq
	s.db.scans[sc.ID] = &scan{seq: seq, sc: clone(sc), results: map[netip.AddrPort][]byte{}}
	return clone(sc), nil
}

func orNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// clone copies a scan's slices and map, so that no caller shares them with the database.
func clone(sc store.Scan) store.Scan {
	sc.Targets, sc.Exclusions, sc.Settings = slices.Clone(sc.Targets), slices.Clone(sc.Exclusions), maps.Clone(sc.Settings)
	sc.Progress = sc.Progress.Clone()
	return sc
}

// Scan implements store.Reader.
func (s *Store) Scan(ctx context.Context, id string) (store.Scan, error) {
	var out store.Scan
	err := s.withScan(ctx, id, func(sc *scan) error {
		out = clone(sc.sc)
		return nil
	})
	return out, err
}

// ordered returns the scans oldest first (by Started, then creation); the database is locked.
func (s *Store) ordered() []*scan {
	all := slices.Collect(maps.Values(s.db.scans))
	slices.SortFunc(all, func(a, b *scan) int {
		return cmp.Or(a.sc.Started.Compare(b.sc.Started), cmp.Compare(a.seq, b.seq))
	})
	return all
}

// LatestScan implements store.Reader.
func (s *Store) LatestScan(ctx context.Context) (store.Scan, error) {
	if err := s.lock(ctx); err != nil {
		return store.Scan{}, err
	}
	defer s.db.mu.Unlock()
	all := s.ordered()
	if len(all) == 0 {
		return store.Scan{}, fmt.Errorf("latest scan: %w", store.ErrNotFound)
	}
	return clone(all[len(all)-1].sc), nil
}

// Scans implements store.Reader.
func (s *Store) Scans(ctx context.Context) ([]store.Scan, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.db.mu.Unlock()
	var out []store.Scan
	for _, sc := range s.ordered() {
		out = append(out, clone(sc.sc))
	}
	return out, nil
}

// FinishScan implements store.Store.
func (s *Store) FinishScan(ctx context.Context, id string, end time.Time) error {
	err := s.withScan(ctx, id, func(sc *scan) error {
		sc.sc.Finished = end.UTC()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("finish %w", err)
	}
	return err
}

// PutResults implements store.Store.
func (s *Store) PutResults(ctx context.Context, scanID string, rs []probe.Result, p store.Progress) error {
	// Encoded before the lock: a batch that does not encode changes nothing.
	recs := make(map[netip.AddrPort][]byte, len(rs))
	var keys []netip.AddrPort // in batch order: the last of a key wins
	for i := range rs {
		r, err := store.Prepare(scanID, i, rs[i])
		if err != nil {
			return err
		}
		rec, err := json.Marshal(&r)
		if err != nil {
			return fmt.Errorf("store: put results of scan %q: result %d: %w", scanID, i, err)
		}
		k := netip.AddrPortFrom(r.IP, r.Port)
		recs[k] = rec
		keys = append(keys, k)
	}
	err := s.withScan(ctx, scanID, func(sc *scan) error {
		for _, k := range keys {
			sc.results[k] = recs[k]
		}
		sc.sc.Progress = p.Clone()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("put results of %w", err)
	}
	if err != nil {
		return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
	}
	return nil
}

// AddCaveats implements store.Store.
func (s *Store) AddCaveats(ctx context.Context, scanID string, marks []store.Mark) error {
	err := s.withScan(ctx, scanID, func(sc *scan) error {
		// Every record is changed on a copy first: a mark for a result not stored changes
		// nothing.
		out := map[netip.AddrPort][]byte{}
		for _, m := range marks {
			k := netip.AddrPortFrom(m.IP, m.Port)
			rec, ok := out[k]
			if !ok {
				if rec, ok = sc.results[k]; !ok {
					return fmt.Errorf("result %s of scan %q: %w", k, scanID, store.ErrNotFound)
				}
			}
			var r probe.Result
			if err := json.Unmarshal(rec, &r); err != nil {
				return fmt.Errorf("%w: result of scan %q: %v", store.ErrCorrupt, scanID, err)
			}
			store.AddCaveat(&r, m.Caveat)
			r.Sanitize()
			b, err := json.Marshal(&r)
			if err != nil {
				return fmt.Errorf("store: add caveats to scan %q: %w", scanID, err)
			}
			out[k] = b
		}
		maps.Copy(sc.results, out)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("add caveats to %w", err)
	}
	return err
}

// records returns a scan's records ordered by ip then port, for reading without the lock.
func (s *Store) records(ctx context.Context, id string) ([][]byte, []netip.AddrPort, error) {
	var (
		recs [][]byte
		keys []netip.AddrPort
	)
	err := s.withScan(ctx, id, func(sc *scan) error {
		keys = slices.SortedFunc(maps.Keys(sc.results), netip.AddrPort.Compare)
		recs = make([][]byte, len(keys))
		for i, k := range keys {
			recs[i] = sc.results[k]
		}
		return nil
	})
	return recs, keys, err
}

// Done implements store.Reader.
func (s *Store) Done(ctx context.Context, scanID string, fn func(ip netip.Addr, port uint16) error) error {
	_, keys, err := s.records(ctx, scanID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := fn(k.Addr(), k.Port()); err != nil {
			return err
		}
	}
	return nil
}

// Results implements store.Reader. fn runs without the database locked: it may use the store.
func (s *Store) Results(ctx context.Context, scanID string, fn func(probe.Result) error) error {
	recs, _, err := s.records(ctx, scanID)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		var r probe.Result
		if err := json.Unmarshal(rec, &r); err != nil {
			return fmt.Errorf("%w: result of scan %q: %v", store.ErrCorrupt, scanID, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Summary implements store.Reader.
func (s *Store) Summary(ctx context.Context, id string) (store.Summary, error) {
	var sum store.Summary
	err := s.Results(ctx, id, func(r probe.Result) error {
		sum.Add(&r)
		return nil
	})
	if err != nil {
		return store.Summary{}, fmt.Errorf("summary of %w", err)
	}
	sc, err := s.Scan(ctx, id)
	if err != nil {
		return store.Summary{}, fmt.Errorf("summary of %w", err)
	}
	sum.Excluded = sc.Progress.Excluded
	sum.AddTallies(sc.Progress)
	return sum, nil
}

// Systems implements store.Reader with store.SystemsOf.
func (s *Store) Systems(ctx context.Context, scanIDs ...string) (store.Systems, error) {
	var all []probe.Result
	for _, id := range scanIDs {
		err := s.Results(ctx, id, func(r probe.Result) error {
			all = append(all, r)
			return nil
		})
		if err != nil {
			return store.Systems{}, fmt.Errorf("systems of %w", err)
		}
	}
	return store.SystemsOf(all), nil
}

// Secret implements store.Store.
func (s *Store) Secret(ctx context.Context) ([]byte, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.db.mu.Unlock()
	if s.db.secret == nil {
		secret := make([]byte, store.SecretSize)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("store: make secret: %w", err)
		}
		s.db.secret = secret
	}
	return slices.Clone(s.db.secret), nil
}

// AcquireLease implements store.Store. stale is called with the database locked.
func (s *Store) AcquireLease(ctx context.Context, id string, l store.Lease, stale func(store.Lease) bool) (store.Lease, error) {
	if l.Holder == "" {
		return store.Lease{}, fmt.Errorf("store: lease scan %q: the lease has no holder", id)
	}
	l.Expires = l.Expires.UTC()
	var held store.Lease
	err := s.withScan(ctx, id, func(sc *scan) error {
		if cur := sc.lease; cur != nil && cur.Holder != l.Holder && time.Now().Before(cur.Expires) && (stale == nil || !stale(*cur)) {
			held = *cur
			return fmt.Errorf("scan %q is leased to process %d on %s until %s: %w",
				id, cur.PID, cur.Host, cur.Expires.Format(time.RFC3339), store.ErrLeased)
		}
		sc.lease = &l
		return nil
	})
	if err != nil {
		return held, err
	}
	return l, nil
}

// RenewLease implements store.Store. An expired lease that nobody took over is still
// holder's, and renewed.
func (s *Store) RenewLease(ctx context.Context, id, holder string, expires time.Time) error {
	return s.withScan(ctx, id, func(sc *scan) error {
		if sc.lease == nil || sc.lease.Holder != holder {
			return fmt.Errorf("renew the lease of scan %q: another process holds it: %w", id, store.ErrLeased)
		}
		sc.lease.Expires = expires.UTC()
		return nil
	})
}

// ReleaseLease implements store.Store.
func (s *Store) ReleaseLease(ctx context.Context, id, holder string) error {
	return s.withScan(ctx, id, func(sc *scan) error {
		if sc.lease != nil && sc.lease.Holder == holder {
			sc.lease = nil
		}
		return nil
	})
}

// ReadOnly returns a Reader on s's database without the write methods, as report and diff
// hold one; closing it leaves s open.
func (s *Store) ReadOnly() store.Reader { return readOnly{s.Reopen()} }

// readOnly hides a handle's write methods.
type readOnly struct{ store.Reader }
