// Package sqlite implements store.Store on an SQLite database file, through
// the pure-Go driver modernc.org/sqlite (no cgo).
//
// The database runs in WAL mode so that report and serve can read while a
// scan writes. Its schema is embedded (migrations/*.sql) and versioned with
// PRAGMA user_version; PRAGMA application_id marks the file as pacswatch's,
// so that Open refuses a file it did not create rather than adding tables
// to it. Open creates, migrates and writes; OpenReadOnly, for report, diff,
// scans and serve, only reads, whatever the file's permissions, and leaves
// no file behind (readonly.go says how). Leases (lease.go) let one process
// at a time run a scan.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/pacswatch/pacswatch/internal/store"
)

// applicationID is PRAGMA application_id of a pacswatch database: "PACW".
const applicationID = 0x50414357

// busyTimeout is how long a statement waits for another connection's lock.
const busyTimeout = 10 * time.Second

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is a store.Store on one SQLite file, opened with Open (read-write)
// or OpenReadOnly.
type Store struct {
	db      *sql.DB   // the read-write handle; nil when opened read-only
	ro      *readOnly // set when opened read-only
	path    string    // as given, for messages
	version int       // schema version: older ones are only read (OpenReadOnly)
	created bool      // Open created the file: only then may it make an empty database a store
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Reader = (*Store)(nil) // what OpenReadOnly gives report, diff, scans and serve
)

// Open opens the pacswatch database at path, creating it (and its schema)
// if no file is there, and migrating an older schema. An existing file that
// is no pacswatch store — empty, not SQLite, an SQLite database without
// tables or of another application — is refused, never made into one.
// A new file is created 0600: it holds the HMAC secret and a list of open
// archives (SQLite gives its -wal and -shm files the same mode). A path
// that is a symbolic link is refused. A file that is not SQLite, or an
// SQLite database of another application, gives an error wrapping
// store.ErrCorrupt; a file or directory that cannot be written gives an
// error saying so.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	created, err := prepareFile(abs)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate") // writers take the lock at BEGIN: no upgrade deadlocks

	db, err := sql.Open("sqlite", dsn(abs, q))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path, created: created}
	if s.version, err = s.migrate(ctx); err != nil {
		db.Close()
		return nil, s.openError(err)
	}
	return s, nil
}

// dsn is the driver's name for the file at abs with query q.
func dsn(abs string, q url.Values) string {
	return "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()
}

// prepareFile gives clear errors for what SQLite would report vaguely (a
// missing directory, a directory, a file that is not SQLite), refuses a
// symbolic link and an empty file it did not create (a store is created
// only where no file is), and creates a missing file 0600, reporting so.
func prepareFile(path string) (created bool, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		// O_EXCL: never through a symbolic link, even one made meanwhile.
		f, cerr := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if cerr == nil {
			return true, f.Close() // an empty file: SQLite makes it a new database
		}
		if !errors.Is(cerr, fs.ErrExist) {
			return false, fmt.Errorf("store: create %s: %w", path, cause(cerr))
		}
		fi, err = os.Lstat(path) // made by another process meanwhile: the checks below are its
	}
	if err != nil {
		return false, fmt.Errorf("store: open %s: %w", path, cause(err))
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return false, fmt.Errorf("store: %s is a symbolic link: give the path of the store itself", path)
	}
	empty, err := checkHeader(path)
	if err == nil && empty {
		return false, &notOursError{path: path, why: "an empty file; a store is created only where no file is"}
	}
	if err == nil {
		err = checkOwner(path)
	}
	return false, err
}

// checkOwner refuses, from the file's header alone, an SQLite database that is not pacswatch's,
// before SQLite opens it for writing (which would switch it to WAL mode: a foreign file must be
// left as it was). PRAGMA application_id is at offset 68 of the header, the size in pages at 28
// (https://sqlite.org/fileformat2.html §1.3). While a -wal file exists, the header may not yet
// hold what a writer committed: then the check is SQLite's own (identify).
func checkOwner(path string) error {
	if _, err := os.Lstat(path + "-wal"); err == nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, cause(err))
	}
	defer f.Close()
	h := make([]byte, 100)
	if _, err := io.ReadFull(f, h); err != nil {
		return &notOursError{path: path, why: "a truncated SQLite header"}
	}
	if h[21] != 64 || h[22] != 32 || h[23] != 32 {
		return nil // a malformed header: SQLite says what is wrong with it
	}
	appID, pages, version := binary.BigEndian.Uint32(h[68:]), binary.BigEndian.Uint32(h[28:]), binary.BigEndian.Uint32(h[60:])
	switch {
	case appID == applicationID:
		return nil
	case appID != 0:
		return &notOursError{path: path, why: fmt.Sprintf("application_id %#x", appID)}
	case pages > 1 || version != 0:
		return &notOursError{path: path, why: "it holds another application's tables"}
	}
	return &notOursError{path: path, why: "an SQLite database without tables; a store is created only where no file is"}
}

// checkHeader checks that path is a file that SQLite can open as a
// database, and reports whether it is empty.
func checkHeader(path string) (empty bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("store: open %s: %w", path, cause(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("store: open %s: %w", path, cause(err))
	}
	if fi.IsDir() {
		return false, fmt.Errorf("store: open %s: is a directory", path)
	}
	header := make([]byte, 16)
	n, err := io.ReadFull(f, header)
	switch {
	case n == 0 && (err == io.EOF || err == nil):
		return true, nil // SQLite treats an empty file as a new database
	case err != nil && err != io.ErrUnexpectedEOF:
		return false, fmt.Errorf("store: open %s: %w", path, cause(err))
	case !bytes.Equal(header[:n], []byte("SQLite format 3\x00")):
		return false, &notOursError{path: path, why: "not an SQLite file"}
	}
	return false, nil
}

// cause returns the system's reason in a file operation's error, without
// the operation and path that *fs.PathError adds: callers name the path.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// notOursError is returned for a file that is not a pacswatch database.
type notOursError struct{ path, why string }

func (e *notOursError) Error() string {
	return fmt.Sprintf("store: %s is not a pacswatch database (%s)", e.path, e.why)
}

func (e *notOursError) Unwrap() error { return store.ErrCorrupt }

// newerError is returned for a database of a newer pacswatch.
type newerError struct {
	path    string
	version int64
	known   int
}

func (e *newerError) Error() string {
	return fmt.Sprintf("store: %s has schema version %d, newer than this pacswatch knows (%d): upgrade pacswatch",
		e.path, e.version, e.known)
}

// openError turns SQLite's result codes from opening into errors naming the
// file and what is wrong with it.
func (s *Store) openError(err error) error {
	var ne *notOursError
	var nw *newerError
	if errors.As(err, &ne) || errors.As(err, &nw) {
		return err
	}
	code := sqliteCode(err)
	if s.ro != nil && (code == sqlite3.SQLITE_CANTOPEN || code == sqlite3.SQLITE_PERM) {
		return s.ro.cannotRead(s.path, err)
	}
	switch code {
	case sqlite3.SQLITE_NOTADB:
		return &notOursError{path: s.path, why: err.Error()}
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM:
		return fmt.Errorf("store: %s is read-only: the file and its directory must be writable: %w", s.path, err)
	}
	return fmt.Errorf("store: open %s: %w", s.path, err)
}

// sqliteCode returns the primary SQLite result code in err, or 0.
func sqliteCode(err error) int {
	var c interface{ Code() int }
	if errors.As(err, &c) {
		return c.Code() & 0xff
	}
	return 0
}

// migrations returns the embedded schema steps in order; step i takes the
// schema from version i to i+1.
func migrations() ([]string, error) { return store.Migrations(migrationFS, "migrations") }

// querier is what reads need of *sql.DB, *sql.Tx and *sql.Conn.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// identify checks that the database is ours, or empty, and returns its
// schema version (0 when empty). known is the newest version this
// pacswatch knows.
func (s *Store) identify(ctx context.Context, q querier, known int) (int, error) {
	var appID, version, objects int64
	if err := q.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return 0, err
	}
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, err
	}
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&objects); err != nil {
		return 0, err
	}
	switch {
	case appID == applicationID:
	case appID != 0:
		return 0, &notOursError{path: s.path, why: fmt.Sprintf("application_id %#x", appID)}
	case objects > 0 || version != 0:
		return 0, &notOursError{path: s.path, why: "it holds another application's tables"}
	}
	if version > int64(known) {
		return 0, &newerError{path: s.path, version: version, known: known}
	}
	return int(version), nil
}

// migrate checks that the database is ours (or empty) and brings its schema
// up to date, in one write transaction: opening also proves the file can
// be written. It returns the schema version.
func (s *Store) migrate(ctx context.Context) (int, error) {
	steps, err := migrations()
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()

	version, err := s.identify(ctx, tx, len(steps))
	if err != nil {
		return 0, err
	}
	if version == 0 && !s.created {
		return 0, &notOursError{path: s.path, why: "an SQLite database without tables; a store is created only where no file is"}
	}
	if version == 0 { // the database this Open created: make it ours
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
			return 0, err
		}
	}
	for v := version; v < len(steps); v++ {
		if _, err := tx.ExecContext(ctx, steps[v]); err != nil {
			return 0, fmt.Errorf("store: migrate %s to schema version %d: %w", s.path, v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(steps))); err != nil {
		return 0, err
	}
	return len(steps), tx.Commit()
}

// Close closes the database.
func (s *Store) Close() error {
	if s.ro != nil {
		return s.ro.close()
	}
	return s.db.Close()
}
