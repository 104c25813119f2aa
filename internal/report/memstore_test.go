package report_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/memstore"
)

// memStore is the in-memory store with the shortcuts report tests set up scans with.
type memStore struct {
	*memstore.Store
	n int // scans created
}

func newMemStore() *memStore { return &memStore{Store: memstore.New()} }

// create makes scan id, the n-th of the store (0-based): started on day n+1 of 2026, and, when
// finished, finished an hour later, since reports compare finished scans only.
func (s *memStore) create(id, name, shard string, finished bool) {
	started := time.Date(2026, 1, s.n+1, 0, 0, 0, 0, time.UTC)
	sc := store.Scan{ID: id, Name: name, Shard: shard, Started: started}
	if finished {
		sc.Finished = started.Add(time.Hour)
	}
	if _, err := s.CreateScan(context.Background(), sc); err != nil {
		panic(err)
	}
	s.n++
}

// ensure creates scan id, finished, unless it exists.
func (s *memStore) ensure(id string) {
	if _, err := s.Scan(context.Background(), id); errors.Is(err, store.ErrNotFound) {
		s.create(id, "", "", true)
	}
}

// add creates scan id if needed and gives it one host, 127.0.0.1:104, with exposure e (none
// when nil).
func (s *memStore) add(id string, e *probe.Exposure) {
	s.ensure(id)
	if e == nil {
		return
	}
	s.put(id, probe.Result{IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Status: probe.StatusOpen,
		DICOM: &probe.DICOM{Association: probe.AssociationAccepted}, Exposure: e})
}

// addUnfinished creates scan id, unfinished and empty, as a failed start leaves one.
func (s *memStore) addUnfinished(id string) { s.create(id, "", "", false) }

// put creates scan id if needed and stores rs in it.
func (s *memStore) put(id string, rs ...probe.Result) {
	s.ensure(id)
	for i := range rs {
		rs[i].ScanID = id
	}
	if err := s.PutResults(context.Background(), id, rs, store.Progress{}); err != nil {
		panic(err)
	}
}

// stored returns scan id's results as the store keeps them (sanitized).
func (s *memStore) stored(id string) []probe.Result {
	var rs []probe.Result
	if err := s.Results(context.Background(), id, func(r probe.Result) error {
		rs = append(rs, r)
		return nil
	}); err != nil {
		panic(fmt.Sprintf("results of %s: %v", id, err))
	}
	return rs
}
