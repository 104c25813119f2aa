package memstore_test

import (
	"sync"
	"testing"

	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/memstore"
	"github.com/pacswatch/pacswatch/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	var mu sync.Mutex
	dbs := map[string]*memstore.Store{} // by test: a second open reopens the first's database
	storetest.Run(t, func(t *testing.T) store.Store {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := dbs[t.Name()]; ok {
			return s.Reopen()
		}
		s := memstore.New()
		dbs[t.Name()] = s
		return s
	})
}
