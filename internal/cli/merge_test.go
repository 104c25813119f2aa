package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/cli"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/postgres"
	"github.com/pacswatch/pacswatch/internal/store/postgres/pgtest"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

var mergeDay = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// shardResults are shard i's results of a run of n shards over 127.0.0.1-40 port 104: target
// j is in shard j mod n.
func shardResults(i, n int) []probe.Result {
	var rs []probe.Result
	for j := 1; j <= 40; j++ {
		if j%n != i {
			continue
		}
		r := probe.Result{IP: netip.AddrFrom4([4]byte{127, 0, 0, byte(j)}), Port: 104, Time: mergeDay, Status: probe.StatusClosed}
		if j%5 == 0 {
			r.Status = probe.StatusOpen
			r.DICOM = &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP"}
			r.Exposure = &probe.Exposure{Level: probe.LevelQuery, Studies: int64(j), StudiesExact: true}
		}
		rs = append(rs, r)
	}
	return rs
}

// shardStore writes shard sc of a run into a SQLite store of its own, as an offline machine
// does (its scan ID is "1" there, as on every such machine), finished.
func shardStore(t *testing.T, path string, sc store.Scan, rs []probe.Result) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if sc.Started.IsZero() {
		sc.Started = mergeDay
	}
	got, err := st.CreateScan(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutResults(ctx, got.ID, rs, store.Progress{Done: uint64(len(rs))}); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishScan(ctx, got.ID, sc.Started.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// runScan is a shard of the run "december" (seed 42) of n shards.
func runScan(i, n int) store.Scan {
	return store.Scan{Name: "december", Seed: 42, Shard: fmt.Sprintf("%d/%d", i, n), Targets: []string{"127.0.0.1-127.0.0.40"},
		Settings: map[string]string{"ports": "104", "seed": "42", "shard": fmt.Sprintf("%d/%d", i, n), "rate": fmt.Sprint(100 * (i + 1))},
		Started:  mergeDay.Add(time.Duration(i) * time.Minute)}
}

// targetsOf reads the merged store's groups and every result's target, failing on a duplicate.
func targetsOf(t *testing.T, r store.Reader) ([]store.Group, map[netip.AddrPort]probe.Result) {
	t.Helper()
	ctx := context.Background()
	scans, err := r.Scans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[netip.AddrPort]probe.Result{}
	for _, sc := range scans {
		err := r.Results(ctx, sc.ID, func(res probe.Result) error {
			k := netip.AddrPortFrom(res.IP, res.Port)
			if _, dup := got[k]; dup {
				return fmt.Errorf("%v twice", k)
			}
			got[k] = res
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return store.Groups(scans), got
}

// checkMerged: one finished run of n shards holding the 40 targets once, as written.
func checkMerged(t *testing.T, r store.Reader, n int) {
	t.Helper()
	groups, got := targetsOf(t, r)
	if len(groups) != 1 || len(groups[0].Scans) != n || !groups[0].Finished() {
		t.Fatalf("merged store: %d groups, want one finished run of %d shards", len(groups), n)
	}
	for i := range n {
		for _, w := range shardResults(i, n) {
			g, ok := got[netip.AddrPortFrom(w.IP, w.Port)]
			if !ok || g.Status != w.Status || g.Level() != w.Level() {
				t.Fatalf("merged %v: %+v, want %+v", w.IP, g, w)
			}
		}
	}
	if len(got) != 40 {
		t.Errorf("merged %d targets, want 40", len(got))
	}
}

func TestMergeStores(t *testing.T) {
	dir := t.TempDir()
	var args []string
	for i := range 4 {
		path := filepath.Join(dir, fmt.Sprintf("shard%d.db", i))
		shardStore(t, path, runScan(i, 4), shardResults(i, 4))
		args = append(args, path)
	}
	target := filepath.Join(dir, "run.db")
	for round := range 2 { // the second merge adds nothing
		stdout, stderr, code := runCLI(append([]string{"merge", "--db", target}, args...)...)
		if code != cli.ExitOK || strings.Count(stdout, "\n") != 4 || stderr != "" {
			t.Fatalf("merge round %d: exit %d, stdout %q, stderr %q", round, code, stdout, stderr)
		}
		st, err := sqlite.OpenReadOnly(context.Background(), target)
		if err != nil {
			t.Fatal(err)
		}
		checkMerged(t, st, 4)
		st.Close()
	}
	// A shard merged later joins its run.
	target2 := filepath.Join(dir, "run2.db")
	for _, part := range [][]string{args[:2], args[1:]} {
		if _, stderr, code := runCLI(append([]string{"merge", "--db", target2}, part...)...); code != cli.ExitOK {
			t.Fatalf("merge %v: exit %d, %s", part, code, stderr)
		}
	}
	st, err := sqlite.OpenReadOnly(context.Background(), target2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkMerged(t, st, 4)
}

func TestMergeRefuses(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	shardStore(t, path("a0.db"), runScan(0, 2), shardResults(0, 2))
	shardStore(t, path("a1.db"), runScan(1, 2), shardResults(1, 2))
	again := runScan(1, 2)
	again.Started = again.Started.Add(time.Hour) // another run of shard 1
	shardStore(t, path("a1-again.db"), again, shardResults(1, 2))
	ports := runScan(1, 2)
	ports.Settings["ports"] = "104,11112"
	shardStore(t, path("b1.db"), ports, shardResults(1, 2))
	targets := runScan(1, 2)
	targets.Targets = []string{"127.0.0.0/24"}
	shardStore(t, path("c1.db"), targets, shardResults(1, 2))
	depth := runScan(1, 2)
	depth.Settings["depth"] = "echo" // against the default "query" of shard 0
	shardStore(t, path("d1.db"), depth, shardResults(1, 2))
	writeLines(t, path("x.jsonl"), shardResults(0, 2)[:5], "1")
	writeLines(t, path("y.jsonl"), shardResults(0, 2)[4:], "1") // overlaps x
	writeLines(t, path("mixed.jsonl"), append(shardResults(0, 2)[:2], withScan(shardResults(1, 2)[:1], "2")...), "1")
	if err := os.WriteFile(path("junk.bin"), []byte("\x00\x01binary"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{path("a0.db"), path("b1.db")}, "shard 0/2 and shard 1/2 of run \"december\" (seed 42) do not belong together: --ports is \"104\" in one and \"104,11112\" in the other"},
		{[]string{path("a0.db"), path("c1.db")}, "do not belong together: their targets differ"},
		{[]string{path("a0.db"), path("d1.db")}, "--depth is \"query\" in one and \"echo\" in the other"},
		{[]string{path("a0.db"), path("a1.db"), path("a1-again.db")}, "shard 1/2 of run \"december\" (seed 42) comes twice"},
		{[]string{path("x.jsonl"), path("y.jsonl"), "--name", "dec"}, "127.0.0.10:104 is in both"},
		{[]string{path("x.jsonl")}, "give --name"},
		{[]string{path("mixed.jsonl"), "--name", "dec"}, "mixes scans \"1\" and \"2\""},
		{[]string{path("junk.bin")}, "is neither a pacswatch store nor JSON Lines"},
		{[]string{path("target.db")}, "is the target store"},
	} {
		target := path("target.db")
		_, stderr, code := runCLI(append([]string{"merge", "--db", target}, tc.args...)...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.says) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("merge %v: exit %d, stderr %q; want 2 and one line saying %q", tc.args, code, stderr, tc.says)
		}
		if _, err := os.Stat(target); err == nil && !strings.Contains(tc.says, "target") {
			st, err := sqlite.OpenReadOnly(context.Background(), target)
			if err == nil {
				if scans, _ := st.Scans(context.Background()); len(scans) != 0 {
					t.Errorf("merge %v: refused, yet the target holds %d scans", tc.args, len(scans))
				}
				st.Close()
			}
		}
	}
}

func withScan(rs []probe.Result, id string) []probe.Result {
	for i := range rs {
		rs[i].ScanID = id
	}
	return rs
}

// writeLines writes results as scan -o does, of scan id unless they have one.
func writeLines(t *testing.T, path string, rs []probe.Result, id string) {
	t.Helper()
	var b strings.Builder
	for _, r := range rs {
		if r.ScanID == "" {
			r.ScanID = id
		}
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMergeJSONLinesIntoPostgres: JSON Lines of two shards fold into one scan of a PostgreSQL
// store, twice without duplicates, beside a store's shards.
func TestMergeJSONLinesIntoPostgres(t *testing.T) {
	srv, err := pgtest.Start(context.Background(), pgtest.Options{})
	if err != nil {
		if _, binErr := pgtest.Bin(); binErr != nil && os.Getenv("PACSWATCH_REQUIRE_PEERS") != "1" {
			t.Skip(binErr)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	url, err := srv.CreateDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeLines(t, a, shardResults(0, 2), "1")
	writeLines(t, b, shardResults(1, 2), "1") // every offline machine's first scan is "1"
	for round := range 2 {
		stdout, stderr, code := runCLI("merge", "--db", url, "--name", "december", a, b)
		if code != cli.ExitOK || !strings.Contains(stdout, "40 results") {
			t.Fatalf("merge round %d: exit %d, stdout %q, stderr %q", round, code, stdout, stderr)
		}
		st, err := postgres.OpenReadOnly(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		groups, got := targetsOf(t, st)
		st.Close()
		if len(groups) != 1 || len(got) != 40 || !groups[0].Finished() {
			t.Fatalf("round %d: %d groups, %d targets; want one finished scan of 40", round, len(groups), len(got))
		}
	}
	// A password in the URL never shows in a message.
	bad := strings.Replace(url, "@", ":hunter2@", 1) + "&connect_timeout=1&host=/nonexistent"
	_, stderr, code := runCLI("merge", "--db", bad, "--name", "x", a)
	if code != cli.ExitUsage || strings.Contains(stderr, "hunter2") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("merge into an unreachable PostgreSQL: exit %d, %q", code, stderr)
	}
}
