package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/postgres"
	"github.com/pacswatch/pacswatch/internal/store/postgres/pgtest"
	"github.com/pacswatch/pacswatch/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// databases gives each test its own database: open's first call with a t creates it, the next
// ones reopen it.
type databases struct {
	mu   sync.Mutex
	urls map[string]string
}

func (d *databases) url(t *testing.T) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.urls == nil {
		d.urls = map[string]string{}
	}
	u, ok := d.urls[t.Name()]
	if !ok {
		u = pgtest.DB(t)
		d.urls[t.Name()] = u
	}
	return u
}

func openTest(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	var d databases
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t, d.url(t)) })
}

func TestConformanceReadOnly(t *testing.T) {
	var d databases
	storetest.RunReader(t, func(t *testing.T) store.Store { return openTest(t, d.url(t)) },
		func(t *testing.T) store.Reader {
			r, err := postgres.OpenReadOnly(context.Background(), d.url(t))
			if err != nil {
				t.Fatalf("OpenReadOnly: %v", err)
			}
			return r
		})
}
