package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/pacswatch/pacswatch/internal/store"
)

// Reading without writing
//
// A WAL database is read through its -wal and -shm files. A connection
// opened with mode=ro creates them when they are missing, and since it may
// not checkpoint it leaves them behind when it closes (tested: this is how
// report used to leave -wal and -shm next to a store it could not write).
// With immutable=1 SQLite takes no lock, ignores the -wal and creates
// nothing, but it trusts that nobody changes the file meanwhile.
//
// So OpenReadOnly chooses at every read, by whether a -wal file exists:
//
//   - a -wal exists: a writer is running (or crashed before its last
//     checkpoint), and it holds committed data that the database file does
//     not. mode=ro reads it with SQLite's own locking, consistent while the
//     writer commits and checkpoints, and adds no file: -wal and -shm are
//     there already (a -shm the reader may not write is read from a private
//     copy, SQLite 3.22 and later).
//   - no -wal: no writer has the database open and the file holds every
//     committed transaction. immutable=1 reads it and creates nothing, in a
//     read-only directory too. Because SQLite then locks nothing, a writer
//     that starts meanwhile is noticed after the read: if the file changed
//     (size, modification time or identity) the read is redone, or fails
//     with a message when results were already handed to a callback.
//
// Handles keep no idle connection, so that each read makes that choice
// afresh (serve reads for days while scans come and go) and no reader holds
// a -wal open after a writer has finished with it.
//
// Limits, all narrow: a -wal without its -shm (a crashed writer's, or a
// copied store) needs a -shm, which mode=ro creates where the process may
// and which OpenReadOnly otherwise asks for in its error; a writer that
// closes between the -wal check and the connection's open makes mode=ro
// create -wal and -shm anew; the change check sees no change made within
// one tick of the filesystem's clock after the last one. Rejected: mode=ro
// with locking_mode=EXCLUSIVE, which keeps the wal-index in memory but
// fails to lock a file opened read-only (SQLITE_IOERR_LOCK).

// readOnly is the state of a store opened with OpenReadOnly.
type readOnly struct {
	abs      string  // the database file, symbolic links resolved as SQLite does
	walDB    *sql.DB // mode=ro: used while a -wal file exists
	frozenDB *sql.DB // immutable=1: used while none exists
}

// readTries is how many times a read whose file changed under it is tried.
const readTries = 3

// OpenReadOnly opens the pacswatch database at path for reading only, for
// report, diff, scans and serve. It works on a file and in a directory the
// process may not write, never migrates or writes (write methods return an
// error wrapping store.ErrReadOnly), leaves no -wal, -shm or -journal file
// that was not there before, and sees what a running writer has committed.
//
// A missing file is an error ("no store at PATH", wrapping fs.ErrNotExist),
// never created. A file that is not a pacswatch database gives an error
// wrapping store.ErrCorrupt, as Open's; an empty file is one. A store of an
// older schema version is read as it is: fields it lacks read as empty.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err == nil {
		// SQLite resolves links too: the -wal lives next to the target.
		abs, err = filepath.EvalSymlinks(abs)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &noStoreError{path: path}
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, cause(err))
	}
	empty, err := checkHeader(abs)
	if err != nil {
		return nil, err
	}
	if empty {
		return nil, &notOursError{path: path, why: "an empty file"}
	}
	steps, err := migrations()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}

	base := url.Values{}
	base.Set("mode", "ro")
	base.Add("_pragma", "query_only(1)")
	wal := cloneValues(base)
	wal.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	frozen := cloneValues(base)
	frozen.Set("immutable", "1")
	ro := &readOnly{abs: abs}
	if ro.walDB, err = sql.Open("sqlite", dsn(abs, wal)); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if ro.frozenDB, err = sql.Open("sqlite", dsn(abs, frozen)); err != nil {
		ro.walDB.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	ro.walDB.SetMaxIdleConns(0)
	ro.frozenDB.SetMaxIdleConns(0)

	s := &Store{ro: ro, path: path}
	err = s.read(true, func(db *sql.DB) error {
		v, err := s.identify(ctx, db, len(steps))
		s.version = v
		return err
	})
	if err == nil && s.version == 0 {
		err = &notOursError{path: path, why: "an empty database"}
	}
	if err != nil {
		ro.close()
		return nil, s.openError(err)
	}
	return s, nil
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// noStoreError is returned by OpenReadOnly for a missing file.
type noStoreError struct{ path string }

func (e *noStoreError) Error() string { return "store: no store at " + e.path }

func (e *noStoreError) Unwrap() error { return fs.ErrNotExist }

// cannotRead explains why SQLite could not open a database for reading.
func (ro *readOnly) cannotRead(path string, err error) error {
	_, walErr := os.Lstat(ro.abs + "-wal")
	_, shmErr := os.Lstat(ro.abs + "-shm")
	if walErr == nil && errors.Is(shmErr, fs.ErrNotExist) {
		// Left by a writer that crashed, or copied without its -shm: the
		// -wal holds committed data that SQLite reads through a -shm.
		return fmt.Errorf("store: cannot read %s: it has a -wal file but no -shm, which this process may not create: "+
			"copy the store with its -wal into a writable directory", path)
	}
	return fmt.Errorf("store: cannot read %s: %w", path, err)
}

func (ro *readOnly) close() error {
	return errors.Join(ro.walDB.Close(), ro.frozenDB.Close())
}

// read runs fn with the handle a read goes through: the store's one handle
// when it was opened read-write; when read-only, the handle the files call
// for now (see "Reading without writing"). When the file changed under an
// immutable read, read runs fn again if retry is true (fn has handed
// nothing to a caller yet), and fails otherwise.
func (s *Store) read(retry bool, fn func(db *sql.DB) error) error {
	if s.ro == nil {
		return fn(s.db)
	}
	for try := 1; ; try++ {
		_, err := os.Lstat(s.ro.abs + "-wal")
		if err == nil {
			return fn(s.ro.walDB)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read %s: %w", s.path, cause(err))
		}
		before, err := os.Stat(s.ro.abs)
		if err != nil {
			return fmt.Errorf("read %s: %w", s.path, cause(err))
		}
		err = fn(s.ro.frozenDB)
		after, statErr := os.Stat(s.ro.abs)
		if statErr == nil && os.SameFile(before, after) && before.Size() == after.Size() &&
			before.ModTime().Equal(after.ModTime()) {
			return err
		}
		if !retry || try == readTries {
			return fmt.Errorf("%s changed while it was read (a scan is writing to it): read it again", s.path)
		}
	}
}

// writable returns nil for a store opened read-write, and for a read-only
// one an error naming the operation.
func (s *Store) writable(op string) error {
	if s.ro == nil {
		return nil
	}
	return fmt.Errorf("%s in %s: %w", op, s.path, store.ErrReadOnly)
}
