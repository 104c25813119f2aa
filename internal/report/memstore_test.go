package report_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// memStore is a store.Store in memory, enough for reports: scans in creation order and their
// results in (ip, port) order.
type memStore struct {
	mu      sync.Mutex // protects the fields below
	scans   []store.Scan
	results map[string][]probe.Result
}

var _ store.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{results: map[string][]probe.Result{}} }

// add creates scan id if needed and gives it one host, 127.0.0.1:104, with exposure e (none
// when nil).
func (s *memStore) add(id string, e *probe.Exposure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.scans, func(sc store.Scan) bool { return sc.ID == id }) {
		s.scans = append(s.scans, newScan(id, len(s.scans)))
	}
	if e == nil {
		return
	}
	r := probe.Result{ScanID: id, IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Status: probe.StatusOpen,
		DICOM: &probe.DICOM{Association: probe.AssociationAccepted}, Exposure: e}
	s.results[id] = append(s.results[id], r)
}

// newScan is the n-th scan of a memStore (0-based): started on day n+1 of 2026, finished an
// hour later, since reports compare finished scans only.
func newScan(id string, n int) store.Scan {
	started := time.Date(2026, 1, n+1, 0, 0, 0, 0, time.UTC)
	return store.Scan{ID: id, Started: started, Finished: started.Add(time.Hour)}
}

func (s *memStore) put(id string, rs ...probe.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.scans, func(sc store.Scan) bool { return sc.ID == id }) {
		s.scans = append(s.scans, newScan(id, len(s.scans)))
	}
	for _, r := range rs {
		r.ScanID = id
		r.Sanitize()
		s.results[id] = append(s.results[id], r)
	}
	slices.SortStableFunc(s.results[id], func(a, b probe.Result) int {
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
}

func (s *memStore) CreateScan(context.Context, store.Scan) (store.Scan, error) {
	return store.Scan{}, errors.New("memStore: read only")
}

func (s *memStore) Scan(_ context.Context, id string) (store.Scan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range s.scans {
		if sc.ID == id {
			return sc, nil
		}
	}
	return store.Scan{}, fmt.Errorf("scan %q: %w", id, store.ErrNotFound)
}

func (s *memStore) LatestScan(ctx context.Context) (store.Scan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.scans) == 0 {
		return store.Scan{}, store.ErrNotFound
	}
	return s.scans[len(s.scans)-1], nil
}

func (s *memStore) Scans(context.Context) ([]store.Scan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.scans), nil
}

func (s *memStore) FinishScan(context.Context, string, time.Time) error {
	return errors.New("memStore: read only")
}

func (s *memStore) PutResults(context.Context, string, []probe.Result, store.Progress) error {
	return errors.New("memStore: read only")
}

func (s *memStore) Done(context.Context, string, func(netip.Addr, uint16) error) error {
	return errors.New("memStore: not implemented")
}

func (s *memStore) Results(ctx context.Context, id string, fn func(probe.Result) error) error {
	if _, err := s.Scan(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	rs := slices.Clone(s.results[id])
	s.mu.Unlock()
	for _, r := range rs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) Secret(context.Context) ([]byte, error) {
	return make([]byte, store.SecretSize), nil
}

func (s *memStore) AcquireLease(context.Context, string, store.Lease, func(store.Lease) bool) (store.Lease, error) {
	return store.Lease{}, errors.New("memStore: read only")
}

func (s *memStore) RenewLease(context.Context, string, string, time.Time) error {
	return errors.New("memStore: read only")
}

func (s *memStore) ReleaseLease(context.Context, string, string) error {
	return errors.New("memStore: read only")
}

func (s *memStore) Summary(context.Context, string) (store.Summary, error) {
	return store.Summary{}, errors.New("memStore: not implemented")
}

func (s *memStore) Close() error { return nil }
