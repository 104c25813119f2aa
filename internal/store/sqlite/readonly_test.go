package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// readerChildEnv names the database a re-executed test binary reads with
// OpenReadOnly, as an unprivileged user (see runReader).
const readerChildEnv = "PACSWATCH_SQLITE_READER_CHILD"

// readAll opens path read-only, reads every scan, result and summary, and
// tries a write. It returns one line saying what it saw, or the error.
func readAll(path string) string {
	ctx := context.Background()
	s, err := OpenReadOnly(ctx, path)
	if err != nil {
		return "error: " + err.Error()
	}
	defer s.Close()
	scans, err := s.Scans(ctx)
	if err != nil {
		return "error: " + err.Error()
	}
	var names []string
	var results, open uint64
	for _, sc := range scans {
		names = append(names, sc.Name)
		if err := s.Results(ctx, sc.ID, func(probe.Result) error { results++; return nil }); err != nil {
			return "error: " + err.Error()
		}
		sum, err := s.Summary(ctx, sc.ID)
		if err != nil {
			return "error: " + err.Error()
		}
		open += sum.Open
	}
	write := "refused"
	if _, err := s.CreateScan(ctx, store.Scan{Name: "written"}); !errors.Is(err, store.ErrReadOnly) {
		write = fmt.Sprintf("%v", err)
	}
	return fmt.Sprintf("scans=%s results=%d open=%d write=%s", strings.Join(names, ","), results, open, write)
}

// fixture makes a store at path with two scans, and returns what readAll
// says of it.
func fixture(t *testing.T, path string) string {
	t.Helper()
	ctx := context.Background()
	s := openTest(t, path)
	defer s.Close()
	for i, name := range []string{"january", "february"} {
		sc, err := s.CreateScan(ctx, store.Scan{Name: name, SpaceDigest: "digest-" + name})
		if err != nil {
			t.Fatal(err)
		}
		rs := benchResults(sc.ID, 0, 20*(i+1)) // one in ten open
		if err := s.PutResults(ctx, sc.ID, rs, store.Progress{Done: uint64(len(rs))}); err != nil {
			t.Fatal(err)
		}
	}
	return "scans=january,february results=60 open=6 write=refused"
}

// files returns the names in dir and a digest of each file's content.
func files(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string][32]byte)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil && !e.IsDir() {
			t.Fatal(err)
		}
		m[e.Name()] = sha256.Sum256(b)
	}
	return m
}

// sameFiles fails the test if dir's files changed since before.
func sameFiles(t *testing.T, when, dir string, before map[string][32]byte) {
	t.Helper()
	after := files(t, dir)
	for name, sum := range after {
		if old, ok := before[name]; !ok {
			t.Errorf("%s: %s was created", when, name)
		} else if old != sum {
			t.Errorf("%s: %s was modified", when, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			t.Errorf("%s: %s was removed", when, name)
		}
	}
}

// nobodyDir makes a directory that uid 65534 can enter, removed (made
// writable first) when the test ends.
func nobodyDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pacswatch-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Chmod(dir, 0o755)
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runReader runs readAll(path) in a copy of the test binary as uid 65534
// (root ignores file permissions) and returns what it printed. As another
// user, it returns "" and the test reads in its own process only.
func runReader(t *testing.T, path string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return ""
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(nobodyDir(t), "child.test")
	if err := copyFile(bin, exe); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = []string{readerChildEnv + "=" + path, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as uid 65534: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestOpenReadOnlyPermissions(t *testing.T) {
	tests := []struct {
		name              string
		fileMode, dirMode os.FileMode
	}{
		{"read-only file", 0o444, 0o755},
		{"read-only directory", 0o644, 0o555},
		{"both", 0o444, 0o555},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := nobodyDir(t)
			path := filepath.Join(dir, "pacswatch.db")
			want := fixture(t, path)
			if err := os.Chmod(path, tt.fileMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			before := files(t, dir)

			if got := readAll(path); got != want {
				t.Errorf("OpenReadOnly and read: %s, want %s", got, want)
			}
			sameFiles(t, "after reading", dir, before)
			if got := runReader(t, path); got != "" && got != want {
				t.Errorf("as uid 65534, OpenReadOnly and read: %s, want %s", got, want)
			}
			sameFiles(t, "after reading as uid 65534", dir, before)
		})
	}
}

func TestOpenReadOnlyWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := nobodyDir(t)
	path := filepath.Join(dir, "pacswatch.db")
	fixture(t, path)
	// The writer's -wal and -shm take this mode: the reader, uid 65534, may
	// read them but not write them.
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}

	w := openTest(t, path) // root writes whatever the mode; see runReader
	defer w.Close()
	// Committed into the -wal only: no checkpoint has copied it yet.
	if _, err := w.CreateScan(ctx, store.Scan{Name: "march"}); err != nil {
		t.Fatal(err)
	}
	// A write transaction left open, as a scan's batch in flight.
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO scans (id, name, started, targets, settings, total, seed, shard)
		VALUES ('uncommitted', 'april', '2026-04-01T00:00:00.000000000Z', '[]', '{}', 0, 0, '')`); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	before := files(t, dir)
	if _, ok := before["pacswatch.db-wal"]; !ok {
		t.Fatalf("no -wal while a writer runs: %v", before)
	}

	want := "scans=january,february,march results=60 open=6 write=refused"
	if got := readAll(path); got != want {
		t.Errorf("OpenReadOnly and read while a writer runs: %s, want %s", got, want)
	}
	if got := runReader(t, path); got != "" && got != want {
		t.Errorf("as uid 65534, OpenReadOnly and read while a writer runs: %s, want %s", got, want)
	}
	for name := range files(t, dir) {
		if _, ok := before[name]; !ok {
			t.Errorf("reading created %s", name)
		}
	}

	// The writer finishes: no reader keeps its -wal and -shm alive.
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(files(t, dir))), []string{"pacswatch.db"}; !slices.Equal(got, want) {
		t.Errorf("after the writer closed, %s holds %v, want %v", dir, got, want)
	}
}

// TestOpenReadOnlyFollowsWriters keeps one read-only store open, as serve
// does, while writers come and go.
func TestOpenReadOnlyFollowsWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pacswatch.db")
	fixture(t, path)
	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	count := func(when string, want int) {
		t.Helper()
		scans, err := r.Scans(ctx)
		if err != nil || len(scans) != want {
			t.Errorf("%s: Scans = %d scans, %v, want %d", when, len(scans), err, want)
		}
	}
	count("before any writer", 2)

	w := openTest(t, path)
	if _, err := w.CreateScan(ctx, store.Scan{Name: "march"}); err != nil {
		t.Fatal(err)
	}
	count("while a writer runs", 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	count("after the writer", 3)

	w = openTest(t, path)
	if _, err := w.CreateScan(ctx, store.Scan{Name: "april"}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	count("after a second writer", 4)
}

// TestOpenReadOnlyChangedUnderRead starts a writer in the middle of a read
// that SQLite does not lock (no -wal when it began).
func TestOpenReadOnlyChangedUnderRead(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pacswatch.db")
	fixture(t, path)
	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	write := func() {
		w := openTest(t, path)
		defer w.Close()
		sc, err := w.CreateScan(ctx, store.Scan{Name: "meanwhile"})
		if err != nil {
			t.Fatal(err)
		}
		rs := benchResults(sc.ID, 0, 2000)
		if err := w.PutResults(ctx, sc.ID, rs, store.Progress{Done: 2000}); err != nil {
			t.Fatal(err)
		}
	} // its Close copies the -wal into the database file

	scans, _ := r.Scans(ctx)
	calls := 0
	err = r.Results(ctx, scans[0].ID, func(probe.Result) error {
		if calls++; calls == 1 {
			write()
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), path+" changed while it was read") {
		t.Errorf("Results with a writer changing the file meanwhile: err = %v, want it to say the file changed", err)
	}

	// A read that handed nothing out yet is done again.
	calls = 0
	err = r.read(true, func(db *sql.DB) error {
		if calls++; calls == 1 {
			write()
		}
		var n int
		return db.QueryRowContext(ctx, `SELECT count(*) FROM scans`).Scan(&n)
	})
	if err != nil || calls != 2 {
		t.Errorf("read with retry while the file changed: %v after %d calls, want nil after 2", err, calls)
	}
	if scans, err := r.Scans(ctx); err != nil || len(scans) != 4 {
		t.Errorf("Scans after the writers = %d scans, %v, want 4", len(scans), err)
	}
}

func TestOpenReadOnlyWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "pacswatch.db")
	fixture(t, path)
	before := files(t, dir)
	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	later := time.Now().Add(time.Hour)
	_, createErr := r.CreateScan(ctx, store.Scan{Name: "x"})
	_, leaseErr := r.AcquireLease(ctx, "1", store.Lease{Holder: "h", Expires: later}, nil)
	_, secretErr := r.Secret(ctx) // none yet: it would have to be made
	tests := []struct {
		name string
		err  error
	}{
		{"CreateScan", createErr},
		{"FinishScan", r.FinishScan(ctx, "1", later)},
		{"PutResults", r.PutResults(ctx, "1", benchResults("1", 100, 1), store.Progress{Done: 21})},
		{"AcquireLease", leaseErr},
		{"RenewLease", r.RenewLease(ctx, "1", "h", later)},
		{"ReleaseLease", r.ReleaseLease(ctx, "1", "h")},
		{"AddCaveats", r.AddCaveats(ctx, "1", []store.Mark{{IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Caveat: probe.Caveat{Kind: probe.CaveatHoneypot}}})},
		{"Secret", secretErr},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, store.ErrReadOnly) || !strings.Contains(tt.err.Error(), path) {
			t.Errorf("%s on a read-only store: err = %v, want ErrReadOnly naming %s", tt.name, tt.err, path)
		}
	}
	sameFiles(t, "after writes", dir, before)

	// A secret that exists is read.
	w := openTest(t, path)
	secret, err := w.Secret(ctx)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Secret(ctx); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Secret on a read-only store = %x, %v, want %x", got, err, secret)
	}
}

func TestOpenReadOnlyBadFiles(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.db")
	openTest(t, newer).Close()
	rawDB(t, newer, "PRAGMA user_version = 99")
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		want string // the error's beginning; PATH stands for the path
		is   error
	}{
		{"missing", func(*testing.T, string) {}, "store: no store at PATH", fs.ErrNotExist},
		{"empty file", func(t *testing.T, path string) { writeFile(t, path, nil) },
			"store: PATH is not a pacswatch database (an empty file)", store.ErrCorrupt},
		{"text file", func(t *testing.T, path string) { writeFile(t, path, []byte("ip,port\n")) },
			"store: PATH is not a pacswatch database (not an SQLite file)", store.ErrCorrupt},
		{"another application's tables", func(t *testing.T, path string) { rawDB(t, path, "CREATE TABLE users (name TEXT)") },
			"store: PATH is not a pacswatch database (it holds another application's tables)", store.ErrCorrupt},
		{"another application_id", func(t *testing.T, path string) { rawDB(t, path, "PRAGMA application_id = 42") },
			"store: PATH is not a pacswatch database (application_id 0x2a)", store.ErrCorrupt},
		{"newer schema", func(t *testing.T, path string) { copyFile(path, newer) },
			"store: PATH has schema version 99, newer than this pacswatch knows", nil},
		{"directory", func(t *testing.T, path string) { os.Mkdir(path, 0o755) }, "store: open PATH: is a directory", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "store.db")
			tt.make(t, path)
			before := files(t, dir)
			s, err := OpenReadOnly(context.Background(), path)
			if err == nil {
				s.Close()
				t.Fatal("OpenReadOnly = nil error")
			}
			if want := strings.ReplaceAll(tt.want, "PATH", path); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("OpenReadOnly: err = %q, want it to start %q", err, want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("OpenReadOnly: err = %q, want one line", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("OpenReadOnly: err = %v, want it to wrap %v", err, tt.is)
			}
			sameFiles(t, "after OpenReadOnly", dir, before)
		})
	}
}

// TestOpenReadOnlyMatchesOpen reads one database both ways.
func TestOpenReadOnlyMatchesOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pacswatch.db")
	fixture(t, path)
	w := openTest(t, path)
	defer w.Close()
	sc, err := w.CreateScan(ctx, store.Scan{Name: "march", Exclusions: []string{"127.0.0.0/30"}, SpaceDigest: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PutResults(ctx, sc.ID, benchResults(sc.ID, 7, 31), store.Progress{Done: 40, Excluded: 9}); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if d := compareStores(ctx, w, r); d != "" {
		t.Errorf("while the writer is open: %s", d)
	}
	w.Close()
	if d := compareStores(ctx, openTest(t, path), r); d != "" {
		t.Errorf("after the writer closed: %s", d)
	}
}

// compareStores describes the first difference between what a and b read,
// or returns "".
func compareStores(ctx context.Context, a, b store.Store) string {
	dump := func(s store.Store) string {
		var out strings.Builder
		scans, err := s.Scans(ctx)
		fmt.Fprintf(&out, "scans %+v %v\n", scans, err)
		latest, err := s.LatestScan(ctx)
		fmt.Fprintf(&out, "latest %+v %v\n", latest, err)
		for _, sc := range scans {
			one, err := s.Scan(ctx, sc.ID)
			fmt.Fprintf(&out, "scan %+v %v\n", one, err)
			sum, err := s.Summary(ctx, sc.ID)
			fmt.Fprintf(&out, "summary %+v %v\n", sum, err)
			err = s.Results(ctx, sc.ID, func(r probe.Result) error {
				fmt.Fprintf(&out, "result %v %d %v %v\n", r.IP, r.Port, r.Status, r.Level())
				return nil
			})
			fmt.Fprintf(&out, "results %v\n", err)
			var done []netip.AddrPort
			err = s.Done(ctx, sc.ID, func(ip netip.Addr, port uint16) error {
				done = append(done, netip.AddrPortFrom(ip, port))
				return nil
			})
			slices.SortFunc(done, netip.AddrPort.Compare)
			fmt.Fprintf(&out, "done %v %v\n", done, err)
		}
		return out.String()
	}
	if da, db := dump(a), dump(b); da != db {
		return fmt.Sprintf("\nread-write:\n%s\nread-only:\n%s", da, db)
	}
	return ""
}

// TestOpenReadOnlySymlink reads through a link: the -wal SQLite uses is
// the one next to the link's target.
func TestOpenReadOnlySymlink(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "real.db")
	fixture(t, path)
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	w := openTest(t, path)
	defer w.Close()
	if _, err := w.CreateScan(ctx, store.Scan{Name: "march"}); err != nil {
		t.Fatal(err)
	}
	want := "scans=january,february,march results=60 open=6 write=refused"
	if got := readAll(link); got != want {
		t.Errorf("OpenReadOnly through a link while a writer runs: %s, want %s", got, want)
	}
	if got := slices.Sorted(maps.Keys(files(t, filepath.Dir(link)))); !slices.Equal(got, []string{"link.db"}) {
		t.Errorf("the link's directory holds %v, want only the link", got)
	}
}

// TestOpenReadOnlyLeftovers reads a store that a writer left with a -wal
// (it crashed, or the store was copied while it ran): the -wal holds
// committed data.
func TestOpenReadOnlyLeftovers(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "pacswatch.db")
	fixture(t, src)
	w := openTest(t, src)
	defer w.Close()
	if _, err := w.CreateScan(ctx, store.Scan{Name: "march"}); err != nil {
		t.Fatal(err)
	}
	want := "scans=january,february,march results=60 open=6 write=refused"

	// Copies of the store as the writer left it, in a read-only directory.
	leftovers := func(t *testing.T, suffixes ...string) string {
		dir := nobodyDir(t)
		path := filepath.Join(dir, "pacswatch.db")
		for _, suffix := range suffixes {
			if err := copyFile(path+suffix, src+suffix); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path+suffix, 0o444); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("-wal and -shm", func(t *testing.T) {
		path := leftovers(t, "", "-wal", "-shm")
		before := files(t, filepath.Dir(path))
		if got := readAll(path); got != want {
			t.Errorf("OpenReadOnly and read: %s, want %s", got, want)
		}
		if got := runReader(t, path); got != "" && got != want {
			t.Errorf("as uid 65534, OpenReadOnly and read: %s, want %s", got, want)
		}
		// SQLite may rewrite the -shm, its index of the -wal.
		delete(before, "pacswatch.db-shm")
		after := files(t, filepath.Dir(path))
		delete(after, "pacswatch.db-shm")
		if !maps.Equal(after, before) {
			t.Errorf("reading changed the store's files")
		}
	})
	t.Run("-wal without -shm", func(t *testing.T) {
		// SQLite needs a -shm to read a -wal: a process that may not
		// create one is told so. (One that may, root here, creates it.)
		path := leftovers(t, "", "-wal")
		if os.Geteuid() != 0 {
			t.Skip("needs root to run the reader as uid 65534")
		}
		got := runReader(t, path)
		if want := "error: store: cannot read " + path + ": it has a -wal file but no -shm"; !strings.HasPrefix(got, want) {
			t.Errorf("as uid 65534, OpenReadOnly: %s, want it to start %q", got, want)
		}
		if got := readAll(path); got != want {
			t.Errorf("as root, OpenReadOnly and read: %s, want %s", got, want)
		}
	})
}
