package memstore_test

import (
	"sync"
	"testing"

	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/memstore"
	"github.com/pacswatch/pacswatch/internal/store/storetest"
)

// opener returns storetest's open: a new database the first time a test opens one, another
// handle on it the next times.
func opener() (open func(t *testing.T) store.Store, db func(t *testing.T) *memstore.Store) {
	var mu sync.Mutex
	dbs := map[string]*memstore.Store{}
	db = func(t *testing.T) *memstore.Store {
		mu.Lock()
		defer mu.Unlock()
		s, ok := dbs[t.Name()]
		if !ok {
			s = memstore.New()
			dbs[t.Name()] = s
		}
		return s
	}
	return func(t *testing.T) store.Store { return db(t).Reopen() }, db
}

func TestConformance(t *testing.T) {
	open, _ := opener()
	storetest.Run(t, open)
}

func TestReader(t *testing.T) {
	open, db := opener()
	storetest.RunReader(t, open, func(t *testing.T) store.Reader { return db(t).ReadOnly() })
}

// TestClosed: a closed handle refuses every call; another handle on the database still works.
func TestClosed(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	other := s.Reopen()
	if _, err := s.CreateScan(ctx, store.Scan{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(ctx, "a"); err != memstore.ErrClosed {
		t.Errorf("Scan on a closed handle: %v, want ErrClosed", err)
	}
	if _, err := other.Scan(ctx, "a"); err != nil {
		t.Errorf("Scan on another handle: %v", err)
	}
}
