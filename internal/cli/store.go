package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/pacswatch/pacswatch/internal/fileout"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/postgres"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// storeMode is how a command opens its --db: scan writes (and creates the store), the others
// only read one that exists.
type storeMode uint8

const (
	readWrite storeMode = iota // scan: create or migrate, then write
	readOnly                   // report, diff, scans, serve: never create, never write
)

// openDB is the one opener of --db values: a SQLite path, or a PostgreSQL URL (postgres:// or
// postgresql://, where many shard processes write one run). Read-only, a missing store is an
// error (never created), the handle works on a read-only file or through a role that may only
// SELECT, and its write methods fail with store.ErrReadOnly.
func openDB(ctx context.Context, dsn string, mode storeMode) (store.Store, error) {
	if isPostgres(dsn) {
		return openPostgres(ctx, dsn, mode)
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

// openPostgres opens a PostgreSQL store. Its errors name the server and database, never the
// URL: it may hold a password.
func openPostgres(ctx context.Context, url string, mode storeMode) (store.Store, error) {
	open := postgres.Open
	if mode == readOnly {
		open = postgres.OpenReadOnly
	}
	st, err := open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("--db: %w", err)
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

// showDB returns a --db value as messages may show it: a PostgreSQL URL without its password
// (a Secret's URL must never reach a log), a path as fileout.Show shows it.
func showDB(dsn string) string {
	if !isPostgres(dsn) {
		return fileout.Show(dsn)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…" // unparsable: show nothing of it
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
