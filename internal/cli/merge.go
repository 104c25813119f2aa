package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/fileout"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// mergeBatch is how many results merge writes per transaction.
const mergeBatch = 5000

// maxMergeLine caps one JSON Lines record (a result record is a few kB).
const maxMergeLine = 4 << 20

const mergeExamples = `  # Four machines each scanned one shard into their own store: fold them into one
  pacswatch merge shard0.db shard1.db shard2.db shard3.db --db run.db

  # The same into PostgreSQL (merging again adds nothing twice)
  pacswatch merge shard*.db --db postgres://pacswatch@db.example/pacswatch

  # Shards that kept only their JSON Lines (-o): one scan of the whole run
  pacswatch merge shard0.jsonl shard1.jsonl --name 2026-12 --db run.db`

func newMergeCmd(e *env) *cobra.Command {
	var db, name string
	cmd := &cobra.Command{
		Use:   "merge STORE|FILE.jsonl... [--db TARGET]",
		Short: "Fold shard stores or JSON Lines run offline into one store, without duplicates",
		Long: `Fold the scans of shard stores (SQLite files, or PostgreSQL URLs) into the store --db names,
and the results of JSON Lines files (scan -o) into one scan there. Shards that do not belong
together are refused before anything is written: shards of one run (same --name, --seed and
shard count) must share their targets, exclusions and settings, and no shard may come twice.
Merging the same shards again adds nothing: a scan already in the target is completed, not
copied anew.`,
		Example: mergeExamples,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMerge(cmd.Context(), e, db, name, args)
		},
	}
	cmd.SetFlagErrorFunc(flagError)
	fl := cmd.Flags()
	fl.StringVar(&db, "db", "pacswatch.db", "target store: SQLite `PATH` or postgres:// URL (created when missing)")
	fl.StringVar(&name, "name", "", "`LABEL` of the scan that JSON Lines inputs form (required with them)")
	return cmd
}

// mergeSource is one input: a store's scans, or JSON Lines files' results as one scan.
type mergeSource struct {
	label string       // input name, for messages
	st    store.Reader // a store input, nil for JSON Lines
	scan  store.Scan   // the scan as read (its ID is the source's)
	lines []probe.Result
}

// runMerge checks every input before it writes anything, then copies scan by scan.
func runMerge(ctx context.Context, e *env, db, name string, args []string) error {
	var sources []mergeSource
	var jsonl []string
	defer func() {
		for _, s := range sources {
			if s.st != nil {
				s.st.Close()
			}
		}
	}()
	for _, arg := range args {
		if !isPostgres(arg) && sameFile(arg, db) {
			return fmt.Errorf("merge: %s is the target store (--db): give another", showDB(arg))
		}
		kind, err := inputKind(arg)
		if err != nil {
			return err
		}
		if kind == "jsonl" {
			jsonl = append(jsonl, arg)
			continue
		}
		st, err := openDB(ctx, arg, readOnly)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		scans, err := st.Scans(ctx)
		if err != nil {
			st.Close()
			return fmt.Errorf("merge: %s: %w", showDB(arg), err)
		}
		if len(scans) == 0 {
			st.Close()
			return fmt.Errorf("merge: %s holds no scan", showDB(arg))
		}
		for i, sc := range scans {
			src := mergeSource{label: arg, scan: sc}
			if i == 0 {
				src.st = st // closed once
			} else {
				src.st = noClose{st}
			}
			sources = append(sources, src)
		}
	}
	if len(jsonl) > 0 {
		src, err := readJSONLines(jsonl, name)
		if err != nil {
			return err
		}
		sources = append(sources, src)
	}

	target, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer target.Close()
	existing, err := target.Scans(ctx)
	if err != nil {
		return err
	}
	if err := checkBelong(existing, sources); err != nil {
		return err
	}
	for _, src := range sources {
		if err := mergeOne(ctx, e, target, existing, src); err != nil {
			return err
		}
	}
	return nil
}

// noClose is a source store that another source closes.
type noClose struct{ store.Reader }

func (noClose) Close() error { return nil }

// inputKind tells a store ("store": PostgreSQL URL or SQLite file) from JSON Lines ("jsonl").
func inputKind(arg string) (string, error) {
	if isPostgres(arg) {
		return "store", nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return "", fmt.Errorf("merge: %s: %w", showDB(arg), unwrapPath(err))
	}
	defer f.Close()
	head := make([]byte, 16)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.Equal(head, []byte("SQLite format 3\x00")):
		return "store", nil
	case len(bytes.TrimSpace(head)) == 0 || bytes.TrimSpace(head)[0] == '{':
		return "jsonl", nil
	}
	return "", fmt.Errorf("merge: %s is neither a pacswatch store nor JSON Lines", showDB(arg))
}

// sameFile reports whether two paths name one file (the target may not be an input).
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	absA, _ := filepath.Abs(a)
	absB, _ := filepath.Abs(b)
	return absA == absB
}

// readJSONLines reads JSON Lines files (scan -o) as one scan of the whole run: shards are
// disjoint, so a target in two files is refused, as is a file that mixes scans.
func readJSONLines(paths []string, name string) (mergeSource, error) {
	if name == "" {
		return mergeSource{}, errors.New("merge: JSON Lines carry no scan name: give --name for the scan they form")
	}
	src := mergeSource{label: strings.Join(paths, ", ")}
	from := map[netip.AddrPort]string{}
	for _, path := range paths {
		rs, err := readResultLines(path)
		if err != nil {
			return mergeSource{}, err
		}
		for _, r := range rs {
			k := netip.AddrPortFrom(r.IP, r.Port)
			if other, ok := from[k]; ok && other != path {
				return mergeSource{}, fmt.Errorf("merge: %s is in both %s and %s: shards of one run are disjoint, these do not belong together",
					k, fileout.Show(other), fileout.Show(path))
			}
			from[k] = path
			if src.scan.Started.IsZero() || r.Time.Before(src.scan.Started) {
				src.scan.Started = r.Time
			}
			src.scan.Finished = maxTime(src.scan.Finished, r.Time)
			src.lines = append(src.lines, r)
		}
	}
	if len(src.lines) == 0 {
		return mergeSource{}, fmt.Errorf("merge: %s hold no result", src.label)
	}
	src.scan.Name = name
	src.scan.Settings = map[string]string{"merged-from": "json-lines"}
	src.scan.Total = uint64(len(from))
	src.scan.Progress = store.Progress{Done: uint64(len(from))}
	return src, nil
}

// readResultLines reads one JSON Lines file; its records must be of one scan.
func readResultLines(path string) ([]probe.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("merge: %s: %w", fileout.Show(path), unwrapPath(err))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxMergeLine)
	var rs []probe.Result
	var scanID string // of the first record
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r probe.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || !r.IP.IsValid() {
			return nil, fmt.Errorf("merge: %s line %d is not a pacswatch result record", fileout.Show(path), line)
		}
		if len(rs) == 0 {
			scanID = r.ScanID
		} else if r.ScanID != scanID {
			return nil, fmt.Errorf("merge: %s mixes scans %s and %s: give one shard's output per file",
				fileout.Show(path), fileout.Quote(scanID), fileout.Quote(r.ScanID))
		}
		r.ScanID = ""
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("merge: %s: %w", fileout.Show(path), err)
	}
	return rs, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// sameScan reports whether target scan t is source scan s copied by an earlier merge.
func sameScan(t, s store.Scan) bool {
	return t.Name == s.Name && t.Seed == s.Seed && t.Shard == s.Shard && t.Started.Equal(s.Started) &&
		t.SpaceDigest == s.SpaceDigest && slices.Equal(t.Targets, s.Targets) && maps.Equal(t.Settings, s.Settings)
}

// checkBelong refuses sources that would join a shard group they do not belong to: the scans
// of one group (the target's and the sources' together, as store.Groups gathers them) must
// share targets, exclusions and the settings that shape the space, and one shard may not come
// from two different scans.
func checkBelong(existing []store.Scan, sources []mergeSource) error {
	all := slices.Clone(existing)
	seenShard := map[store.GroupKey]map[string]string{}
	for _, src := range sources {
		if slices.ContainsFunc(existing, func(t store.Scan) bool { return sameScan(t, src.scan) }) {
			continue // merged before: completed, not added
		}
		if _, _, ok := src.scan.ShardOf(); ok && src.scan.Shard != "" {
			k := src.scan.GroupKey()
			if seenShard[k] == nil {
				seenShard[k] = map[string]string{}
			}
			if other, ok := seenShard[k][src.scan.Shard]; ok {
				return fmt.Errorf("merge: shard %s of run %s comes twice (%s and %s): give each shard once",
					src.scan.Shard, runName(src.scan), showDB(other), showDB(src.label))
			}
			seenShard[k][src.scan.Shard] = src.label
		}
		all = append(all, src.scan)
	}
	slices.SortStableFunc(all, func(a, b store.Scan) int { return a.Started.Compare(b.Started) })
	defaults := newScanCmd(&env{}).Flags()
	for _, g := range store.Groups(all) {
		first := g.Scans[0]
		for _, sc := range g.Scans[1:] {
			if why := differ(first, sc, func(k string) string {
				if f := defaults.Lookup(k); f != nil {
					return f.DefValue
				}
				return ""
			}); why != "" {
				return fmt.Errorf("merge: shard %s and shard %s of run %s do not belong together: %s",
					orDash(first.Shard), orDash(sc.Shard), runName(sc), why)
			}
		}
	}
	return nil
}

// runName names a run in messages.
func runName(sc store.Scan) string {
	return fmt.Sprintf("%s (seed %d)", fileout.Quote(sc.Name), sc.Seed)
}

// shardFree are the settings that shards of one run may set differently: how fast and where
// each machine ran, not what it scanned (SPEC "--resume refuses every flag that changes what
// is scanned or how").
var shardFree = []string{"shard", "rate", "concurrency", "timeout", "max-host-time", "connect-timeout", "db",
	"output", "name", "resume", "yes", "quiet", "verbose", "log-format", "input-list", "syn", "errors-exit-code"}

// differ says how two scans of one group differ in what they scanned, or returns "".
func differ(a, b store.Scan, def func(string) string) string {
	if !slices.Equal(a.Targets, b.Targets) {
		return "their targets differ"
	}
	ea, eb := slices.Sorted(slices.Values(a.Exclusions)), slices.Sorted(slices.Values(b.Exclusions))
	if !slices.Equal(ea, eb) {
		return "their exclusions differ"
	}
	keys := slices.Sorted(maps.Keys(a.Settings))
	keys = append(keys, slices.Sorted(maps.Keys(b.Settings))...)
	for _, k := range keys {
		if slices.Contains(shardFree, k) {
			continue
		}
		va, okA := a.Settings[k]
		vb, okB := b.Settings[k]
		if !okA {
			va = def(k)
		}
		if !okB {
			vb = def(k)
		}
		if va != vb {
			return fmt.Sprintf("--%s is %s in one and %s in the other", k, fileout.Quote(va), fileout.Quote(vb))
		}
	}
	return ""
}

// mergeOne copies one source scan into the target, or completes the copy an earlier merge
// made: the scan is finished (when its source is) only once all its results are stored.
func mergeOne(ctx context.Context, e *env, target store.Store, existing []store.Scan, src mergeSource) error {
	in := src.scan
	var sc store.Scan
	if i := slices.IndexFunc(existing, func(t store.Scan) bool { return sameScan(t, in) }); i >= 0 {
		sc = existing[i]
	} else {
		fresh := in
		fresh.ID, fresh.Finished = "", time.Time{}
		var err error
		if sc, err = target.CreateScan(ctx, fresh); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
	}
	var batch []probe.Result
	n := 0
	flush := func(last bool) error {
		p := store.Progress{}
		if last {
			p = in.Progress
		}
		n += len(batch)
		err := target.PutResults(ctx, sc.ID, batch, p)
		batch = batch[:0]
		return err
	}
	add := func(r probe.Result) error {
		r.ScanID = sc.ID
		batch = append(batch, r)
		if len(batch) == mergeBatch {
			return flush(false)
		}
		return nil
	}
	var err error
	if src.st != nil {
		err = src.st.Results(ctx, in.ID, add)
	} else {
		for _, r := range src.lines {
			if err = add(r); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = flush(true)
	}
	if err == nil && !in.Finished.IsZero() {
		err = target.FinishScan(ctx, sc.ID, in.Finished)
	}
	if err != nil {
		return fmt.Errorf("merge: %s: scan %s: %w", showDB(src.label), fileout.Quote(in.ID), err)
	}
	fmt.Fprintf(e.stdout, "%s: scan %s (%s, shard %s): %s results → scan %s\n", showDB(src.label),
		orDash(in.ID), cleanCell(in.Name), orDash(in.Shard), thousands(uint64(n)), cleanCell(sc.ID))
	return nil
}
