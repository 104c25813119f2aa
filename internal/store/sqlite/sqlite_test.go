package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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
	"github.com/pacswatch/pacswatch/internal/store/storetest"
)

// readOnlyChildEnv names the database a re-executed test binary opens as
// an unprivileged user (see TestOpenReadOnly).
const readOnlyChildEnv = "PACSWATCH_SQLITE_READONLY_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(readOnlyChildEnv); path != "" {
		s, err := Open(context.Background(), path)
		if err == nil {
			s.Close()
			fmt.Println("opened")
		} else {
			fmt.Println(err)
		}
		os.Exit(0)
	}
	if path := os.Getenv(readerChildEnv); path != "" {
		fmt.Println(readAll(path))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	storetest.Run(t, func(t *testing.T) store.Store {
		// One file per test, so that a second open reopens it.
		name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
		return openTest(t, filepath.Join(dir, name+".db"))
	})
}

func TestConformanceReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := func(t *testing.T) string {
		return filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+".db")
	}
	storetest.RunReader(t, func(t *testing.T) store.Store { return openTest(t, path(t)) },
		func(t *testing.T) store.Reader {
			r, err := OpenReadOnly(context.Background(), path(t))
			if err != nil {
				t.Fatalf("OpenReadOnly: %v", err)
			}
			return r
		})
}

func TestOpenCreates(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub dir?#%", "pacswatch.db") // characters a URI must escape
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path)
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not at %s: %v", path, err)
	}
	steps, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pragma string
		want   string
	}{
		{"application_id", fmt.Sprint(applicationID)},
		{"user_version", fmt.Sprint(len(steps))},
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
		{"synchronous", "1"}, // NORMAL
	}
	for _, tt := range tests {
		var got string
		if err := s.db.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %s, want %s", tt.pragma, got, tt.want)
		}
	}
}

// TestOpenEmptyFile: a store is created only where no file is (issue 18 item 4): an empty file,
// or an SQLite database without tables, is refused and left as it was.
func TestOpenEmptyFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare.db")
	rawDB(t, bare, "PRAGMA user_version = 0")
	other := filepath.Join(dir, "other.db")
	rawDB(t, other, "CREATE TABLE patients (name TEXT)")
	for path, want := range map[string]string{empty: "only where no file is", bare: "only where no file is", other: "another application's tables"} {
		before, _ := os.ReadFile(path)
		s, err := Open(context.Background(), path)
		if err == nil {
			s.Close()
			t.Errorf("%s: opened as a store", filepath.Base(path))
			continue
		}
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", filepath.Base(path), err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("%s: changed by the refused open", filepath.Base(path))
		}
	}
}

// rawDB makes an SQLite file with setup run on it, without our schema.
func rawDB(t *testing.T, path string, setup ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range setup {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestOpenNotPacswatch(t *testing.T) {
	tests := []struct {
		name  string
		make  func(t *testing.T, path string)
		why   string
		check string // a query whose answer must not change
	}{
		{
			name: "text file",
			make: func(t *testing.T, path string) { writeFile(t, path, []byte("ip,port\n127.0.0.1,104\n")) },
			why:  "not an SQLite file",
		},
		{
			name: "short file",
			make: func(t *testing.T, path string) { writeFile(t, path, []byte("SQLite")) },
			why:  "not an SQLite file",
		},
		{
			name: "SQLite header, garbage after",
			make: func(t *testing.T, path string) {
				b := append([]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0xff}, 4096)...)
				writeFile(t, path, b)
			},
			why: "not a database",
		},
		{
			name:  "another application's tables",
			make:  func(t *testing.T, path string) { rawDB(t, path, "CREATE TABLE users (name TEXT)") },
			why:   "another application's tables",
			check: "SELECT group_concat(name) FROM sqlite_schema",
		},
		{
			name:  "another application_id",
			make:  func(t *testing.T, path string) { rawDB(t, path, "PRAGMA application_id = 42") },
			why:   "application_id 0x2a",
			check: "PRAGMA application_id",
		},
		{
			name:  "user_version without our id",
			make:  func(t *testing.T, path string) { rawDB(t, path, "PRAGMA user_version = 1") },
			why:   "another application's tables",
			check: "PRAGMA user_version",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "other.db")
			tt.make(t, path)
			before, _ := os.ReadFile(path)
			var checkBefore string
			if tt.check != "" {
				checkBefore = query(t, path, tt.check)
			}

			s, err := Open(context.Background(), path)
			if err == nil {
				s.Close()
				t.Fatal("Open = nil error, want ErrCorrupt")
			}
			if !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("Open: err = %v, want ErrCorrupt", err)
			}
			if want := "store: " + path + " is not a pacswatch database"; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Open: err = %q, want it to start %q", err, want)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Open: err = %q, want it to say %q", err, tt.why)
			}
			if tt.check == "" {
				if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
					t.Error("Open changed a file that is not ours")
				}
			} else if got := query(t, path, tt.check); got != checkBefore {
				t.Errorf("after Open, %s = %q, want %q", tt.check, got, checkBefore)
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// query returns the one value a query on the file at path gives.
func query(t *testing.T, path, q string) string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v sql.NullString
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v.String
}

func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "future.db")
	openTest(t, path).Close()
	rawDB(t, path, "PRAGMA user_version = 99")

	s, err := Open(context.Background(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema = nil error")
	}
	if errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "schema version 99, newer") {
		t.Errorf("Open: err = %v, want a newer-schema error", err)
	}
	if got := query(t, path, "PRAGMA user_version"); got != "99" {
		t.Errorf("user_version after Open = %s, want 99 untouched", got)
	}
}

func TestOpenBadPath(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"directory", dir, "is a directory"},
		{"missing directory", filepath.Join(dir, "nope", "x.db"), "no such file or directory"},
	}
	for _, tt := range tests {
		s, err := Open(context.Background(), tt.path)
		if err == nil {
			s.Close()
			t.Errorf("%s: Open = nil error", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Open: err = %q, want it to name %s and say %q", tt.name, err, tt.path, tt.want)
		}
	}
}

// TestOpenReadOnly opens a database its process may read but not write.
// Root may write anything, so as root the test binary re-runs itself as
// the unprivileged user 65534.
func TestOpenReadOnly(t *testing.T) {
	dir, err := os.MkdirTemp("", "pacswatch-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Chmod(dir, 0o755)
		os.RemoveAll(dir)
	})
	path := filepath.Join(dir, "pacswatch.db")
	openTest(t, path).Close()

	var got string
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), path)
		if err == nil {
			s.Close()
			got = "opened"
		} else {
			got = err.Error()
		}
	} else {
		got = runAsNobody(t, dir, path)
	}
	want := "store: " + path + " is read-only"
	if !strings.HasPrefix(got, want) {
		t.Errorf("Open of a read-only database: %q, want an error starting %q", got, want)
	}
}

// runAsNobody runs Open(path) in a copy of the test binary as uid 65534
// and returns what it printed.
func runAsNobody(t *testing.T, dir, path string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "child.test")
	if err := copyFile(bin, exe); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, path, bin} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = []string{readOnlyChildEnv + "=" + path, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as uid 65534: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func TestMigrationsApplyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "again.db")
	s := openTest(t, path)
	sc, err := s.CreateScan(context.Background(), store.Scan{Name: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for range 2 {
		s := openTest(t, path)
		got, err := s.Scan(context.Background(), sc.ID)
		s.Close()
		if err != nil || got.Name != "kept" {
			t.Errorf("after reopening, Scan = %+v, %v, want the scan kept", got, err)
		}
	}
}

func TestIPKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var addrs []netip.Addr
	for range 2000 {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(4)) // small alphabet: many shared prefixes
		}
		a := netip.AddrFrom16(b)
		switch rng.UintN(4) {
		case 0:
			a = a.Unmap()
			if a.Is6() {
				a = netip.AddrFrom4([4]byte(b[12:]))
			}
		case 1:
			a = a.WithZone([]string{"lo", "eth0", "l"}[rng.UintN(3)])
		}
		addrs = append(addrs, a)
	}
	addrs = append(addrs, netip.MustParseAddr("127.0.0.9"), netip.MustParseAddr("127.0.0.10"),
		netip.MustParseAddr("::1"), netip.MustParseAddr("::ffff:127.0.0.1"))

	for _, a := range addrs {
		if got, ok := parseIPKey(ipKey(a)); !ok || got != a {
			t.Fatalf("parseIPKey(ipKey(%v)) = %v, %v", a, got, ok)
		}
	}
	byKey := slices.Clone(addrs)
	slices.SortFunc(byKey, func(a, b netip.Addr) int { return bytes.Compare(ipKey(a), ipKey(b)) })
	byAddr := slices.Clone(addrs)
	slices.SortFunc(byAddr, netip.Addr.Compare)
	if !slices.Equal(byKey, byAddr) {
		for i := range byKey {
			if byKey[i] != byAddr[i] {
				t.Fatalf("key order differs from netip order at %d: %v vs %v", i, byKey[i], byAddr[i])
			}
		}
	}
}

func TestTimeFormat(t *testing.T) {
	tests := []struct {
		in      time.Time
		want    string
		wantErr bool
	}{
		{time.Date(2026, 11, 4, 12, 0, 0, 0, time.UTC), "2026-11-04T12:00:00.000000000Z", false},
		{time.Date(2026, 11, 4, 13, 0, 0, 5, time.FixedZone("CET", 3600)), "2026-11-04T12:00:00.000000005Z", false},
		{time.Time{}, "0001-01-01T00:00:00.000000000Z", false},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "", true},
		{time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), "", true},
	}
	for _, tt := range tests {
		got, err := formatTime(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("formatTime(%v) = %q, %v, want %q (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			continue
		}
		if err == nil {
			if back, err := parseTime(got); err != nil || !back.Equal(tt.in) {
				t.Errorf("parseTime(%q) = %v, %v, want %v", got, back, err, tt.in)
			}
		}
	}
}

// benchResults makes n results shaped like a real scan: most ports closed
// or filtered, one in ten open with DICOM and exposure.
func benchResults(scanID string, first, n int) []probe.Result {
	t := time.Date(2026, 11, 4, 12, 0, 0, 0, time.UTC)
	rs := make([]probe.Result, n)
	for i := range rs {
		j := first + i
		r := probe.Result{
			ScanID: scanID,
			IP:     netip.AddrFrom4([4]byte{127, byte(j >> 16), byte(j >> 8), byte(j)}),
			Port:   104,
			Time:   t.Add(time.Duration(j) * time.Millisecond),
			Status: probe.StatusClosed,
		}
		if j%10 == 0 {
			r.Status = probe.StatusOpen
			r.DICOM = &probe.DICOM{
				Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH", AECheck: probe.AECheckNone,
				ImplementationClassUID: "1.2.276.0.7230010.3.0.3.6.7", ImplementationVersion: "OFFIS_DCMTK_367",
				Product: "Orthanc", MaxPDU: 16384, Services: probe.Services{Echo: true, FindStudy: true},
			}
			r.Exposure = &probe.Exposure{
				Level: probe.LevelQuery, Studies: 1004, StudiesExact: true, Instances: 70312,
				InstancesSource: probe.InstancesSourceStudyAttr, Modalities: map[string]int64{"CT": 600, "MR": 404},
			}
		}
		rs[i] = r
	}
	return rs
}

func BenchmarkPutResults(b *testing.B) {
	const batch = 500
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sc, err := s.CreateScan(ctx, store.Scan{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	rs := benchResults(sc.ID, 0, batch)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for k := range rs { // new targets each time: inserts, not replacements
			j := i*batch + k
			rs[k].IP = netip.AddrFrom4([4]byte{127, byte(j >> 16), byte(j >> 8), byte(j)})
		}
		if err := s.PutResults(ctx, sc.ID, rs, store.Progress{Done: uint64(i+1) * batch}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "results/s")
}

// benchStore is a store with one scan of n results stored (benchResults), and that scan.
func benchStore(b *testing.B, n int) (*Store, store.Scan) {
	const batch = 5000
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	sc, err := s.CreateScan(ctx, store.Scan{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += batch {
		if err := s.PutResults(ctx, sc.ID, benchResults(sc.ID, i, batch), store.Progress{Done: uint64(i + batch)}); err != nil {
			b.Fatal(err)
		}
	}
	return s, sc
}

// BenchmarkSummary counts a scan of 100,000 stored results.
func BenchmarkSummary(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	s, sc := benchStore(b, n)
	b.ResetTimer()
	for b.Loop() {
		sum, err := s.Summary(ctx, sc.ID)
		if err != nil || sum.Results != n || sum.Open != n/10 {
			b.Fatalf("Summary = %+v, %v", sum, err)
		}
	}
}

// BenchmarkSystems figures a scan of 100,000 stored results per system.
func BenchmarkSystems(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	s, sc := benchStore(b, n)
	b.ResetTimer()
	for b.Loop() {
		sys, err := s.Systems(ctx, sc.ID)
		if err != nil || sys.Accessible != n/10 {
			b.Fatalf("Systems = %+v, %v", sys, err)
		}
	}
}
