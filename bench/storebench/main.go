// Command storebench measures how fast a store takes a scan's results: W writers (the shards of
// one run, each its own scan, as shard processes are) write the records of a JSON Lines file
// (scan -o) in the scanner's batches of 500, each batch with its checkpoint, through
// store.Store, at once (the records may also come from a SQLite store). It prints one line: backend, writers, results, seconds, results/s, and
// the bytes the results take in the store (table and indexes; the SQLite file).
//
//	storebench -db STORE -writers W -records FILE.jsonl
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/postgres"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

const batch = 500 // scan.DefaultBatchSize

func main() {
	db := flag.String("db", "", "store: SQLite path or postgres:// URL (a new, empty one)")
	writers := flag.Int("writers", 1, "writers at once, one shard each")
	records := flag.String("records", "", "results to write: JSON Lines (scan -o) or a SQLite store (*.db)")
	flag.Parse()
	if err := run(*db, *writers, *records); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

func open(ctx context.Context, dsn string) (store.Store, error) {
	if strings.HasPrefix(dsn, "postgres") {
		return postgres.Open(ctx, dsn)
	}
	return sqlite.Open(ctx, dsn)
}

func run(dsn string, writers int, records string) error {
	ctx := context.Background()
	rs, err := read(records)
	if err != nil {
		return err
	}
	shards := make([][]probe.Result, writers)
	for i, r := range rs {
		r.ScanID = ""
		shards[i%writers] = append(shards[i%writers], r)
	}
	stores := make([]store.Store, writers)
	ids := make([]string, writers)
	for w := range stores {
		if stores[w], err = open(ctx, dsn); err != nil {
			return err
		}
		defer stores[w].Close()
		sc, err := stores[w].CreateScan(ctx, store.Scan{Name: "bench", Seed: 1, Shard: fmt.Sprintf("%d/%d", w, writers)})
		if err != nil {
			return err
		}
		ids[w] = sc.ID
	}
	start := time.Now()
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			s := shards[w]
			for b := 0; b < len(s); b += batch {
				end := min(b+batch, len(s))
				if err := stores[w].PutResults(ctx, ids[w], s[b:end], store.Progress{Done: uint64(end)}); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for w := range stores {
		if err := stores[w].FinishScan(ctx, ids[w], time.Now()); err != nil {
			return err
		}
	}
	bytes, err := size(ctx, dsn, stores)
	if err != nil {
		return err
	}
	backend := "sqlite"
	if strings.HasPrefix(dsn, "postgres") {
		backend = "postgresql"
	}
	fmt.Printf("%s %d %d %.2f %.0f %d\n", backend, writers, len(rs), secs, float64(len(rs))/secs, bytes)
	return nil
}

// size returns the bytes the results take: PostgreSQL's results table with its indexes and
// TOAST, or the SQLite file after its last checkpoint.
func size(ctx context.Context, dsn string, stores []store.Store) (int64, error) {
	if strings.HasPrefix(dsn, "postgres") {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		var n int64
		err = conn.QueryRow(ctx, `SELECT pg_total_relation_size('results')`).Scan(&n)
		return n, err
	}
	for _, s := range stores {
		s.Close()
	}
	fi, err := os.Stat(dsn)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// read returns the results of a JSON Lines file, or of every scan of a SQLite store (*.db).
func read(path string) ([]probe.Result, error) {
	if strings.HasSuffix(path, ".db") {
		return readStore(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	var rs []probe.Result
	for sc.Scan() {
		var r probe.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

func readStore(path string) ([]probe.Result, error) {
	ctx := context.Background()
	st, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	scans, err := st.Scans(ctx)
	if err != nil {
		return nil, err
	}
	var rs []probe.Result
	for _, sc := range scans {
		if err := st.Results(ctx, sc.ID, func(r probe.Result) error { rs = append(rs, r); return nil }); err != nil {
			return nil, err
		}
	}
	return rs, nil
}
