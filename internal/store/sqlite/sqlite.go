// Package sqlite implements store.Store on an SQLite database file, through
// the pure-Go driver modernc.org/sqlite (no cgo).
//
// The database runs in WAL mode so that report and serve can read while a
// scan writes. Its schema is embedded (migrations/*.sql) and versioned with
// PRAGMA user_version; PRAGMA application_id marks the file as pacswatch's,
// so that Open refuses a file it did not create rather than adding tables
// to it.
package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// applicationID is PRAGMA application_id of a pacswatch database: "PACW".
const applicationID = 0x50414357

// busyTimeout is how long a statement waits for another connection's lock.
const busyTimeout = 10 * time.Second

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is a store.Store on one SQLite file.
type Store struct {
	db   *sql.DB
	path string
}

var _ store.Store = (*Store)(nil)

// Open opens the pacswatch database at path, creating it (and its schema)
// if the file does not exist or is empty, and migrating an older schema.
// A file that is not SQLite, or an SQLite database of another application,
// gives an error wrapping store.ErrCorrupt; a file or directory that cannot
// be written gives an error saying so.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := checkFile(abs); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate") // writers take the lock at BEGIN: no upgrade deadlocks
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, s.openError(err)
	}
	return s, nil
}

// checkFile gives clear errors for what SQLite would report vaguely:
// a missing directory, a directory, a file that is not SQLite.
func checkFile(path string) error {
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // created on open
	}
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("store: open %s: is a directory", path)
	}
	header := make([]byte, 16)
	n, err := io.ReadFull(f, header)
	switch {
	case n == 0 && (err == io.EOF || err == nil):
		return nil // empty file: SQLite treats it as a new database
	case err != nil && err != io.ErrUnexpectedEOF:
		return fmt.Errorf("store: open %s: %w", path, err)
	case !bytes.Equal(header[:n], []byte("SQLite format 3\x00")):
		return &notOursError{path: path, why: "not an SQLite file"}
	}
	return nil
}

// notOursError is returned for a file that is not a pacswatch database.
type notOursError struct{ path, why string }

func (e *notOursError) Error() string {
	return fmt.Sprintf("store: %s is not a pacswatch database (%s)", e.path, e.why)
}

func (e *notOursError) Unwrap() error { return store.ErrCorrupt }

// openError turns SQLite's result codes from opening into errors naming the
// file and what is wrong with it.
func (s *Store) openError(err error) error {
	var ne *notOursError
	if errors.As(err, &ne) {
		return err
	}
	switch sqliteCode(err) {
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
func migrations() ([]string, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	steps := make([]string, len(names)) // Glob sorts names
	for i, name := range names {
		v, _, _ := strings.Cut(filepath.Base(name), "_")
		if n, err := strconv.Atoi(v); err != nil || n != i+1 {
			return nil, fmt.Errorf("migration %s out of sequence, want version %d", name, i+1)
		}
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		steps[i] = string(b)
	}
	return steps, nil
}

// migrate checks that the database is ours (or empty) and brings its schema
// up to date, in one write transaction: opening also proves the file can
// be written.
func (s *Store) migrate(ctx context.Context) error {
	steps, err := migrations()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	var appID, version, objects int64
	if err := tx.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&objects); err != nil {
		return err
	}
	switch {
	case appID == applicationID:
	case appID != 0:
		return &notOursError{path: s.path, why: fmt.Sprintf("application_id %#x", appID)}
	case objects > 0 || version != 0:
		return &notOursError{path: s.path, why: "it holds another application's tables"}
	default: // an empty database: make it ours
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
			return err
		}
	}
	if version > int64(len(steps)) {
		return fmt.Errorf("store: %s has schema version %d, newer than this pacswatch knows (%d): upgrade pacswatch",
			s.path, version, len(steps))
	}
	for v := version; v < int64(len(steps)); v++ {
		if _, err := tx.ExecContext(ctx, steps[v]); err != nil {
			return fmt.Errorf("store: migrate %s to schema version %d: %w", s.path, v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(steps))); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

const scanColumns = `id, name, started, finished, targets, settings, total, seed, shard, done`

// CreateScan implements store.Store.
func (s *Store) CreateScan(ctx context.Context, sc store.Scan) (store.Scan, error) {
	if sc.Started.IsZero() {
		sc.Started = time.Now()
	}
	sc.Started = sc.Started.UTC()
	sc.Finished = sc.Finished.UTC()
	sc.Progress = store.Progress{}
	if len(sc.Targets) == 0 {
		sc.Targets = nil
	}
	if len(sc.Settings) == 0 {
		sc.Settings = nil
	}
	started, err := formatTime(sc.Started)
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: started: %w", err)
	}
	var finished sql.NullString
	if !sc.Finished.IsZero() {
		if finished.String, err = formatTime(sc.Finished); err != nil {
			return store.Scan{}, fmt.Errorf("store: create scan: finished: %w", err)
		}
		finished.Valid = true
	}
	targets, err := json.Marshal(orEmpty(sc.Targets))
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
	}
	settings, err := json.Marshal(orEmptyMap(sc.Settings))
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
	}
	defer tx.Rollback()
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM scans`).Scan(&seq); err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
	}
	if sc.ID == "" {
		// The next sequence number, unless a caller chose it as an ID.
		for ; ; seq++ {
			sc.ID = strconv.FormatInt(seq, 10)
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM scans WHERE id = ?`, sc.ID).Scan(&n); err != nil {
				return store.Scan{}, fmt.Errorf("store: create scan: %w", err)
			}
			if n == 0 {
				break
			}
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO scans (seq, `+scanColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
		ON CONFLICT (id) DO NOTHING`,
		seq, sc.ID, sc.Name, started, finished, string(targets), string(settings), int64(sc.Total), int64(sc.Seed), sc.Shard)
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan %q: %w", sc.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan %q: %w", sc.ID, err)
	} else if n == 0 {
		return store.Scan{}, fmt.Errorf("create scan %q: %w", sc.ID, store.ErrExists)
	}
	if err := tx.Commit(); err != nil {
		return store.Scan{}, fmt.Errorf("store: create scan %q: %w", sc.ID, err)
	}
	return sc, nil
}

// Scan implements store.Store.
func (s *Store) Scan(ctx context.Context, id string) (store.Scan, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+scanColumns+` FROM scans WHERE id = ?`, id)
	sc, err := scanScan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Scan{}, fmt.Errorf("scan %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: read scan %q: %w", id, err)
	}
	return sc, nil
}

// LatestScan implements store.Store.
func (s *Store) LatestScan(ctx context.Context) (store.Scan, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+scanColumns+` FROM scans ORDER BY started DESC, seq DESC LIMIT 1`)
	sc, err := scanScan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Scan{}, fmt.Errorf("latest scan: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Scan{}, fmt.Errorf("store: read latest scan: %w", err)
	}
	return sc, nil
}

// Scans implements store.Store.
func (s *Store) Scans(ctx context.Context) ([]store.Scan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+scanColumns+` FROM scans ORDER BY started, seq`)
	if err != nil {
		return nil, fmt.Errorf("store: list scans: %w", err)
	}
	defer rows.Close()
	var scans []store.Scan
	for rows.Next() {
		sc, err := scanScan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list scans: %w", err)
		}
		scans = append(scans, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list scans: %w", err)
	}
	return scans, nil
}

// FinishScan implements store.Store.
func (s *Store) FinishScan(ctx context.Context, id string, end time.Time) error {
	finished, err := formatTime(end)
	if err != nil {
		return fmt.Errorf("store: finish scan %q: %w", id, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE scans SET finished = ? WHERE id = ?`, finished, id)
	if err != nil {
		return fmt.Errorf("store: finish scan %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: finish scan %q: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("finish scan %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// row is one result encoded for the results table.
type row struct {
	ip                 []byte
	port               uint16
	time               string
	status, level      string
	studies, instances int64
	record             string // TEXT: the column is STRICT
}

// PutResults implements store.Store.
func (s *Store) PutResults(ctx context.Context, scanID string, rs []probe.Result, p store.Progress) error {
	// Encode before taking the write lock.
	rows := make([]row, len(rs))
	for i := range rs {
		r := rs[i] // Sanitize replaces, never writes through, r's pointers
		if r.ScanID == "" {
			r.ScanID = scanID
		} else if r.ScanID != scanID {
			return fmt.Errorf("store: put results of scan %q: result %d is of scan %q", scanID, i, r.ScanID)
		}
		if !r.IP.IsValid() {
			return fmt.Errorf("store: put results of scan %q: result %d has no IP address", scanID, i)
		}
		r.Sanitize()
		t, err := formatTime(r.Time)
		if err != nil {
			return fmt.Errorf("store: put results of scan %q: result %d: %w", scanID, i, err)
		}
		rec, err := json.Marshal(&r)
		if err != nil {
			return fmt.Errorf("store: put results of scan %q: result %d: %w", scanID, i, err)
		}
		rows[i] = row{ip: ipKey(r.IP), port: r.Port, time: t, status: r.Status.String(), level: r.Level().String(), record: string(rec)}
		if r.Exposure != nil {
			rows[i].studies, rows[i].instances = r.Exposure.Studies, r.Exposure.Instances
		}
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
	}
	defer tx.Rollback()
	var seq int64
	err = tx.QueryRowContext(ctx, `UPDATE scans SET done = ? WHERE id = ? RETURNING seq`, int64(p.Done), scanID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("put results of scan %q: %w", scanID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
	}
	if len(rows) > 0 {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO results
			(scan_seq, ip, port, time, status, level, studies, instances, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (scan_seq, ip, port) DO UPDATE SET time = excluded.time, status = excluded.status,
			level = excluded.level, studies = excluded.studies, instances = excluded.instances, record = excluded.record`)
		if err != nil {
			return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
		}
		defer stmt.Close()
		for _, r := range rows {
			_, err := stmt.ExecContext(ctx, seq, r.ip, r.port, r.time, r.status, r.level, r.studies, r.instances, r.record)
			if err != nil {
				return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: put results of scan %q: %w", scanID, err)
	}
	return nil
}

// seq returns the internal key of scan id, or store.ErrNotFound.
func (s *Store) seq(ctx context.Context, id string) (int64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM scans WHERE id = ?`, id).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("scan %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: read scan %q: %w", id, err)
	}
	return seq, nil
}

// Done implements store.Store.
func (s *Store) Done(ctx context.Context, scanID string, fn func(ip netip.Addr, port uint16) error) error {
	seq, err := s.seq(ctx, scanID)
	if err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT ip, port FROM results WHERE scan_seq = ?`, seq)
	if err != nil {
		return fmt.Errorf("store: read done targets of scan %q: %w", scanID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var key []byte
		var port uint16
		if err := rows.Scan(&key, &port); err != nil {
			return fmt.Errorf("store: read done targets of scan %q: %w", scanID, err)
		}
		ip, ok := parseIPKey(key)
		if !ok {
			return fmt.Errorf("%w: scan %q: bad ip key %x", store.ErrCorrupt, scanID, key)
		}
		if err := fn(ip, port); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read done targets of scan %q: %w", scanID, err)
	}
	return nil
}

// Results implements store.Store.
func (s *Store) Results(ctx context.Context, scanID string, fn func(probe.Result) error) error {
	seq, err := s.seq(ctx, scanID)
	if err != nil {
		return err
	}
	// The primary key's order: no sort.
	rows, err := s.db.QueryContext(ctx, `SELECT record FROM results WHERE scan_seq = ? ORDER BY ip, port`, seq)
	if err != nil {
		return fmt.Errorf("store: read results of scan %q: %w", scanID, err)
	}
	defer rows.Close()
	var rec sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&rec); err != nil {
			return fmt.Errorf("store: read results of scan %q: %w", scanID, err)
		}
		var r probe.Result
		if err := json.Unmarshal(rec, &r); err != nil {
			return fmt.Errorf("%w: result of scan %q: %v", store.ErrCorrupt, scanID, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read results of scan %q: %w", scanID, err)
	}
	return nil
}

// Secret implements store.Store.
func (s *Store) Secret(ctx context.Context) ([]byte, error) {
	secret, err := s.readSecret(ctx, s.db)
	if !errors.Is(err, sql.ErrNoRows) {
		return secret, err
	}
	// First use. Another process may be doing the same: whoever commits
	// first wins, and both return the stored secret.
	fresh := make([]byte, store.SecretSize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("store: make secret: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: make secret: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('secret', ?) ON CONFLICT (key) DO NOTHING`, fresh); err != nil {
		return nil, fmt.Errorf("store: make secret: %w", err)
	}
	if secret, err = s.readSecret(ctx, tx); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: make secret: %w", err)
	}
	return secret, nil
}

// readSecret returns the stored secret, or sql.ErrNoRows if there is none.
func (s *Store) readSecret(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) ([]byte, error) {
	var secret []byte
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'secret'`).Scan(&secret)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("store: read secret: %w", err)
	case len(secret) != store.SecretSize:
		return nil, fmt.Errorf("%w: secret is %d bytes, want %d", store.ErrCorrupt, len(secret), store.SecretSize)
	}
	return secret, nil
}

// scanScan reads one row of scanColumns.
func scanScan(r interface{ Scan(...any) error }) (store.Scan, error) {
	var (
		sc                store.Scan
		started           string
		finished          sql.NullString
		targets, settings []byte
		total, seed, done int64
	)
	if err := r.Scan(&sc.ID, &sc.Name, &started, &finished, &targets, &settings, &total, &seed, &sc.Shard, &done); err != nil {
		return store.Scan{}, err
	}
	var err error
	if sc.Started, err = parseTime(started); err != nil {
		return store.Scan{}, fmt.Errorf("%w: scan %q started: %v", store.ErrCorrupt, sc.ID, err)
	}
	if finished.Valid {
		if sc.Finished, err = parseTime(finished.String); err != nil {
			return store.Scan{}, fmt.Errorf("%w: scan %q finished: %v", store.ErrCorrupt, sc.ID, err)
		}
	}
	if err := json.Unmarshal(targets, &sc.Targets); err != nil {
		return store.Scan{}, fmt.Errorf("%w: scan %q targets: %v", store.ErrCorrupt, sc.ID, err)
	}
	if err := json.Unmarshal(settings, &sc.Settings); err != nil {
		return store.Scan{}, fmt.Errorf("%w: scan %q settings: %v", store.ErrCorrupt, sc.ID, err)
	}
	if len(sc.Targets) == 0 {
		sc.Targets = nil
	}
	if len(sc.Settings) == 0 {
		sc.Settings = nil
	}
	sc.Total, sc.Seed, sc.Progress.Done = uint64(total), uint64(seed), uint64(done)
	return sc, nil
}

// timeLayout is fixed-width UTC, so that stored times sort as times.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("time %v out of range", t)
	}
	return t.Format(timeLayout), nil
}

func parseTime(s string) (time.Time, error) { return time.Parse(timeLayout, s) }

// ipKey encodes ip so that keys sort as netip.Addr.Compare: IPv4 (0x04 and
// 4 bytes) before IPv6 (0x06, 16 bytes, then the zone).
func ipKey(ip netip.Addr) []byte {
	if ip.Is4() {
		a := ip.As4()
		return append([]byte{4}, a[:]...)
	}
	a := ip.As16()
	return append(append([]byte{6}, a[:]...), ip.Zone()...)
}

// parseIPKey decodes ipKey's encoding.
func parseIPKey(b []byte) (netip.Addr, bool) {
	switch {
	case len(b) == 5 && b[0] == 4:
		return netip.AddrFrom4([4]byte(b[1:])), true
	case len(b) >= 17 && b[0] == 6:
		return netip.AddrFrom16([16]byte(b[1:17])).WithZone(string(b[17:])), true
	}
	return netip.Addr{}, false
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
