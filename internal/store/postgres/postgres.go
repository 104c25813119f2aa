// Package postgres implements store.Store on a PostgreSQL database, through pgx (v5), so that
// many scanner processes on many machines write one run: each shard of a run (--shard I/N, the
// same --name and --seed) is its own scan with its own results, checkpoint and lease, and the
// run is finished when all its shards are (SPEC "many machines"; store.Groups).
//
// The schema is embedded (migrations/*.sql) and versioned in the table pacswatch_schema, which
// also marks the database as pacswatch's: Open refuses a schema that holds another
// application's tables rather than adding to it, and a store of a newer pacswatch. Processes
// that open one database at once migrate it one after the other (an advisory lock). Tables live
// in the connection's current schema (search_path), so that one database can hold several
// stores.
//
// Open creates, migrates and writes; OpenReadOnly, for report, diff, scans and serve, only
// reads: its sessions are read-only (default_transaction_read_only), so it works for a role
// with SELECT alone, and its write methods fail with store.ErrReadOnly. Reads of many results
// (Results, Done) go by pages in key order and hold no connection while the caller's function
// runs, so that a merge of many shards' streams (store.MergeResults) needs no connection each.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pacswatch/pacswatch/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// lockKey is the advisory lock under which a store is created and migrated: "PACW".
const lockKey = 0x50414357

// connectTimeout bounds a connection attempt when the URL sets no connect_timeout.
const connectTimeout = 10 * time.Second

// Store is a store.Store on a PostgreSQL database, opened with Open (read-write) or
// OpenReadOnly.
type Store struct {
	pool    *pgxpool.Pool
	ro      bool   // opened read-only
	where   string // user@host/database, never the password: for messages
	version int    // schema version
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Reader = (*Store)(nil)
)

// Open opens the pacswatch store in the PostgreSQL database that url names
// (postgres://USER:PASSWORD@HOST:PORT/DATABASE?..., or a key=value connection string),
// creating its tables in the connection's current schema when there are none, and migrating an
// older schema. A schema that holds other tables gives an error wrapping store.ErrCorrupt.
// Errors name the server and database, never the password.
func Open(ctx context.Context, url string) (*Store, error) { return open(ctx, url, false) }

// OpenReadOnly opens an existing pacswatch store for reading only (report, diff, scans,
// serve). It never creates or migrates anything; a database without a store gives an error
// wrapping fs.ErrNotExist.
func OpenReadOnly(ctx context.Context, url string) (*Store, error) { return open(ctx, url, true) }

func open(ctx context.Context, url string, ro bool) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: the PostgreSQL URL is not valid: %s", parseCause(err))
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = connectTimeout
	}
	if ro {
		cc.RuntimeParams["default_transaction_read_only"] = "on"
	}
	cc.RuntimeParams["application_name"] = "pacswatch"
	s := &Store{ro: ro, where: where(cc)}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, s.wrap("open", err)
	}
	steps, err := migrations()
	if err == nil {
		if ro {
			s.version, err = s.identify(ctx, s.pool, len(steps))
			if err == nil && s.version == 0 {
				err = &noStoreError{where: s.where}
			}
		} else {
			s.version, err = s.migrate(ctx, steps)
		}
	}
	if err != nil {
		s.pool.Close()
		var ne *notOursError
		var nw *newerError
		var ns *noStoreError
		if errors.As(err, &ne) || errors.As(err, &nw) || errors.As(err, &ns) {
			return nil, err
		}
		return nil, s.wrap("open", err)
	}
	return s, nil
}

// where names the database of cc for messages: user, server and database, no password.
func where(cc *pgx.ConnConfig) string {
	host := cc.Host
	if strings.HasPrefix(host, "/") {
		host = path.Join(host, ".s.PGSQL."+strconv.Itoa(int(cc.Port)))
	} else {
		host = net.JoinHostPort(host, strconv.Itoa(int(cc.Port)))
	}
	return fmt.Sprintf("postgresql %s@%s/%s", cc.User, host, cc.Database)
}

// parseCause returns why pgx could not parse a URL, without the URL (it may hold a password).
func parseCause(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return pe.Unwrap().Error()
	}
	if errors.As(err, &pe) {
		return "unrecognized format"
	}
	return "unrecognized format"
}

// wrap turns a driver error into one line naming the store and the operation: the server's own
// message for an error it sent, the network's reason for one that failed to connect.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("store: %s in %s: %w", op, s.where, err)
	case errors.As(err, &pe):
		return &dbError{msg: fmt.Sprintf("store: %s in %s: %s (SQLSTATE %s)", op, s.where, pe.Message, pe.Code), err: err}
	case errors.As(err, &ce):
		var cause any = innermost(ce.Unwrap())
		if errors.As(ce.Unwrap(), &pe) {
			cause = fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
		}
		return &dbError{msg: fmt.Sprintf("store: cannot connect to %s: %v", s.where, cause), err: err}
	}
	return fmt.Errorf("store: %s in %s: %w", op, s.where, err)
}

// innermost returns the deepest error in err's chain (the first of joined ones): the system's
// reason ("connection refused") without the driver's layers around it.
func innermost(err error) error {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			if errs := u.Unwrap(); len(errs) > 0 && errs[0] != nil {
				err = errs[0]
				continue
			}
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				err = next
				continue
			}
		}
		return err
	}
}

// dbError keeps the driver's error for errors.As while printing a message without Go's
// internals.
type dbError struct {
	msg string
	err error
}

func (e *dbError) Error() string { return e.msg }
func (e *dbError) Unwrap() error { return e.err }

// notOursError is returned for a schema that holds another application's tables.
type notOursError struct{ where, why string }

func (e *notOursError) Error() string {
	return fmt.Sprintf("store: %s is not a pacswatch store (%s): give a database or schema of its own", e.where, e.why)
}

func (e *notOursError) Unwrap() error { return store.ErrCorrupt }

// newerError is returned for a store of a newer pacswatch.
type newerError struct {
	where          string
	version, known int
}

func (e *newerError) Error() string {
	return fmt.Sprintf("store: %s has schema version %d, newer than this pacswatch knows (%d): upgrade pacswatch",
		e.where, e.version, e.known)
}

// noStoreError is returned by OpenReadOnly for a database without a store.
type noStoreError struct{ where string }

func (e *noStoreError) Error() string {
	return fmt.Sprintf("store: no pacswatch store in %s (run pacswatch scan first)", e.where)
}

func (e *noStoreError) Unwrap() error { return fs.ErrNotExist }

// migrations returns the embedded schema steps in order; step i takes the schema from version
// i to i+1.
func migrations() ([]string, error) { return store.Migrations(migrationFS, "migrations") }

// querier is what reads need of a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// identify checks that the current schema holds a pacswatch store, or nothing, and returns its
// schema version (0 when it holds nothing). known is the newest version this pacswatch knows.
func (s *Store) identify(ctx context.Context, q querier, known int) (int, error) {
	var (
		schema  *string
		ours    bool
		objects int64
	)
	// pg_class under the statement's snapshot, not to_regclass: a process that waited for the
	// lock while another created the store must see it.
	err := q.QueryRow(ctx, `SELECT current_schema(),
		coalesce(bool_or(c.relname = 'pacswatch_schema' AND c.relkind = 'r'), false), count(c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')`).
		Scan(&schema, &ours, &objects)
	if err != nil {
		return 0, err
	}
	if schema == nil {
		return 0, fmt.Errorf("store: %s: no schema of the search_path exists to hold the store", s.where)
	}
	if !ours {
		if objects > 0 {
			return 0, &notOursError{where: s.where, why: fmt.Sprintf("schema %s holds another application's tables", *schema)}
		}
		return 0, nil
	}
	var version int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM pacswatch_schema`).Scan(&version); err != nil {
		return 0, err
	}
	if version > known {
		return 0, &newerError{where: s.where, version: version, known: known}
	}
	return version, nil
}

// migrate creates or updates the schema in one transaction, under the advisory lock, and
// returns the schema version. A store already at the newest version is not written to.
func (s *Store) migrate(ctx context.Context, steps []string) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	version, err := s.identify(ctx, tx, len(steps))
	if err != nil || version == len(steps) {
		return version, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
		return 0, err
	}
	// Another process may have migrated meanwhile: look again under the lock.
	if version, err = s.identify(ctx, tx, len(steps)); err != nil || version == len(steps) {
		return version, err
	}
	for v := version; v < len(steps); v++ {
		if _, err := tx.Exec(ctx, steps[v]); err != nil {
			return 0, fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM pacswatch_schema`); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO pacswatch_schema (version) VALUES ($1)`, len(steps)); err != nil {
		return 0, err
	}
	return len(steps), tx.Commit(ctx)
}

// writable returns nil for a store opened read-write, and for a read-only one an error naming
// the operation.
func (s *Store) writable(op string) error {
	if !s.ro {
		return nil
	}
	return fmt.Errorf("%s in %s: %w", op, s.where, store.ErrReadOnly)
}

// Close closes the store's connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}
