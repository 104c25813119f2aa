package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/pacswatch/pacswatch/internal/fileout"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// storeMode is how a command opens its --db: scan writes (and creates the store), the others
// only read one that exists.
type storeMode uint8

const (
	readWrite storeMode = iota // scan: create or migrate, then write
	readOnly                   // report, diff, scans, serve: never create, never write
)

// openDB is the one opener of --db values: a SQLite path (PostgreSQL URLs come later, as one
// more case here). Read-only, a missing store is an error (never created), the handle works on
// a read-only file, and its write methods fail with store.ErrReadOnly.
func openDB(ctx context.Context, dsn string, mode storeMode) (store.Store, error) {
	if isPostgres(dsn) {
		return nil, errors.New("--db: PostgreSQL stores are not supported yet; give a SQLite path")
	}
	if mode == readWrite {
		st, err := sqlite.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	if _, err := os.Stat(dsn); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--db: no store at %s (run pacswatch scan first)", fileout.Show(dsn))
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("--db: %s: %w", fileout.Show(dsn), err)
	}
	st, err := sqlite.OpenReadOnly(ctx, dsn)
	if err != nil {
		return nil, capPath(err, dsn)
	}
	return st, nil
}

// isPostgres reports whether a --db value is a PostgreSQL URL.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openStore opens the store a --db value names for scanning: created when missing, migrated.
func openStore(ctx context.Context, dsn string) (store.Store, error) {
	return openDB(ctx, dsn, readWrite)
}

// openExistingStore opens the store a --db value names for reading only (report, diff, scans):
// never created, never written, usable on a read-only file, and leaving no -wal or -shm behind.
func openExistingStore(ctx context.Context, dsn string) (store.Reader, error) {
	st, err := openDB(ctx, dsn, readOnly)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// openReadOnlyStore opens an existing store for reading only (report, diff, scans): it works on a
// read-only file and leaves no -wal or -shm file behind.
func openReadOnlyStore(ctx context.Context, dsn string) (store.Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return nil, errors.New("--db: PostgreSQL stores are not supported yet; give a SQLite path")
	}
	return sqlite.OpenReadOnly(ctx, dsn)
}
