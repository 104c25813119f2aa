package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/postgres"
	"github.com/pacswatch/pacswatch/internal/store/postgres/pgtest"
)

// exec runs statements on the database at url, outside any store.
func exec(t *testing.T, url string, sqls ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range sqls {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// count returns the one integer q selects.
func count(t *testing.T, url, q string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestMigrateAtOnce: shard processes that start together all open one new database; it is
// created once.
func TestMigrateAtOnce(t *testing.T) {
	url := pgtest.DB(t)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	if n := count(t, url, `SELECT count(*) FROM pacswatch_schema`); n != 1 {
		t.Errorf("pacswatch_schema has %d rows, want 1", n)
	}
	if n := count(t, url, `SELECT max(version) FROM pacswatch_schema`); n < 1 {
		t.Errorf("schema version %d, want at least 1", n)
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	foreign := pgtest.DB(t)
	exec(t, foreign, `CREATE TABLE patients (id int)`)
	newer := pgtest.DB(t)
	s, err := postgres.Open(ctx, newer)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	exec(t, newer, `UPDATE pacswatch_schema SET version = 99`)
	empty := pgtest.DB(t)

	tests := []struct {
		name, url string
		ro        bool
		is        error
		says      string
	}{
		{"another application's tables", foreign, false, store.ErrCorrupt, "is not a pacswatch store (schema public holds another application's tables)"},
		{"another application's tables, read-only", foreign, true, store.ErrCorrupt, "is not a pacswatch store"},
		{"newer schema", newer, false, nil, "has schema version 99, newer than this pacswatch knows"},
		{"newer schema, read-only", newer, true, nil, "upgrade pacswatch"},
		{"no store, read-only", empty, true, fs.ErrNotExist, "no pacswatch store in postgresql pacswatch@"},
	}
	for _, tt := range tests {
		open := postgres.Open
		if tt.ro {
			open = postgres.OpenReadOnly
		}
		s, err := open(ctx, tt.url)
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", tt.name)
			continue
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: %v, want an error wrapping %v", tt.name, err, tt.is)
		}
		if !strings.Contains(err.Error(), tt.says) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %q, want one line saying %q", tt.name, err, tt.says)
		}
	}
	if n := count(t, foreign, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`); n != 1 {
		t.Errorf("Open added tables to another application's schema: %d tables", n)
	}
	if n := count(t, empty, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`); n != 0 {
		t.Errorf("OpenReadOnly created %d tables", n)
	}
}

// TestErrorsHidePassword: a server that cannot be reached, or a bad URL, gives one line that
// names the server and never the password.
func TestErrorsHidePassword(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{
		"postgres://scanner:s3cret-pw@127.0.0.1:1/pacswatch?connect_timeout=2",
		"postgres://scanner:s3cret-pw@127.0.0.1:99999/pacswatch",
		"postgres://scanner:s3cret-pw@127.0.0.1/pacswatch?sslmode=sometimes",
	} {
		_, err := postgres.Open(ctx, url)
		if err == nil {
			t.Fatalf("Open(%s) succeeded", url)
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cret") || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "store: ") {
			t.Errorf("Open: %q, want one line starting with store: and without the password", msg)
		}
	}
	_, err := postgres.Open(ctx, "postgres://scanner:s3cret-pw@127.0.0.1:1/pacswatch?connect_timeout=2")
	if want := "store: cannot connect to postgresql scanner@127.0.0.1:1/pacswatch: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Open of a closed port: %v, want %q and the reason", err, want)
	}
}

// TestReadOnlyRole: report, diff, scans and serve work through a role that may only SELECT.
func TestReadOnlyRole(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DB(t)
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sc, err := s.CreateScan(ctx, store.Scan{Name: "monthly"})
	if err != nil {
		t.Fatal(err)
	}
	r := probe.Result{IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Status: probe.StatusClosed}
	if err := s.PutResults(ctx, sc.ID, []probe.Result{r}, store.Progress{Done: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secret(ctx); err != nil {
		t.Fatal(err)
	}
	// Roles are the server's, not the database's: a name of this run's, so that -count=2 runs.
	reader := fmt.Sprintf("reader%d", rand.Uint32())
	exec(t, url, `CREATE ROLE `+reader+` LOGIN`, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO `+reader)
	roURL := strings.Replace(url, "postgres://"+pgtest.User+"@", "postgres://"+reader+"@", 1)

	ro, err := postgres.OpenReadOnly(ctx, roURL)
	if err != nil {
		t.Fatalf("OpenReadOnly as a SELECT-only role: %v", err)
	}
	defer ro.Close()
	var n int
	if err := ro.Results(ctx, sc.ID, func(probe.Result) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("Results as a SELECT-only role: %d, %v, want 1", n, err)
	}
	if _, err := ro.Secret(ctx); err != nil {
		t.Errorf("Secret as a SELECT-only role: %v", err)
	}
	if _, err := ro.CreateScan(ctx, store.Scan{}); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("CreateScan on a read-only store: %v, want ErrReadOnly", err)
	}
	// Read-write with that role: the store is at its version, so opening writes nothing; a
	// write then fails with the server's reason, in one line.
	rw, err := postgres.Open(ctx, roURL)
	if err != nil {
		t.Fatalf("Open as a SELECT-only role of a store at the newest version: %v", err)
	}
	defer rw.Close()
	_, err = rw.CreateScan(ctx, store.Scan{})
	if err == nil || !strings.Contains(err.Error(), "permission denied") || strings.Contains(err.Error(), "\n") {
		t.Errorf("CreateScan as a SELECT-only role: %v, want one line saying permission denied", err)
	}
}

// TestManyStreams: a merge of more shards than the pool has connections, with a callback that
// reads the store too, neither deadlocks nor loses a result, across pages.
func TestManyStreams(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DB(t) + "&pool_max_conns=2"
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const shards, per = 12, 2500 // more than a page each
	var ids []string
	for i := range shards {
		sc, err := s.CreateScan(ctx, store.Scan{Name: "wide", Seed: 1, Shard: fmt.Sprintf("%d/%d", i, shards)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sc.ID)
		rs := make([]probe.Result, per)
		for j := range rs {
			rs[j] = probe.Result{IP: netip.AddrFrom4([4]byte{127, byte(i), byte(j / 250), byte(j%250 + 1)}), Port: 104, Status: probe.StatusClosed}
		}
		if err := s.PutResults(ctx, sc.ID, rs, store.Progress{Done: per}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	err = store.MergeResults(ctx, s, ids, func(r probe.Result) error {
		n++
		if n%1000 == 0 {
			_, err := s.Scan(ctx, r.ScanID)
			return err
		}
		return nil
	})
	if err != nil || n != shards*per {
		t.Errorf("MergeResults: %d results, %v; want %d", n, err, shards*per)
	}
}
