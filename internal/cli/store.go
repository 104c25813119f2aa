package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// openStore opens the store a --db value names: a SQLite path (PostgreSQL URLs come later).
func openStore(ctx context.Context, dsn string) (store.Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return nil, errors.New("--db: PostgreSQL stores are not supported yet; give a SQLite path")
	}
	return sqlite.Open(ctx, dsn)
}

// openReadOnlyStore opens an existing store for reading only (report, diff, scans): it works on a
// read-only file and leaves no -wal or -shm file behind.
func openReadOnlyStore(ctx context.Context, dsn string) (store.Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return nil, errors.New("--db: PostgreSQL stores are not supported yet; give a SQLite path")
	}
	return sqlite.OpenReadOnly(ctx, dsn)
}
