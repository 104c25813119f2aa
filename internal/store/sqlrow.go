package store

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What the SQL backends (store/sqlite, store/postgres) share: how a scan row's columns are written
// and read back, how times are written, and how their embedded migrations are found.

// TimeLayout is how the SQL backends write times: fixed-width UTC, so that they sort as times.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// FormatTime writes t in TimeLayout; an error for a year outside 0–9999.
func FormatTime(t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("time %v out of range", t)
	}
	return t.Format(TimeLayout), nil
}

// ParseTime reads a time FormatTime wrote.
func ParseTime(s string) (time.Time, error) { return time.Parse(TimeLayout, s) }

// orEmpty returns s, or an empty slice for nil (a JSON [] rather than null).
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// orEmptyMap returns m, or an empty map for nil (a JSON {} rather than null).
func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// ScanRow is a scan row's columns as the SQL backends keep them.
type ScanRow struct {
	Started                       string
	Finished                      *string // nil while the scan runs
	Targets, Settings, Exclusions []byte  // JSON
	Total, Seed, Done, Excluded   int64   // uint64 as their int64 bit pattern
}

// EncodeScan readies sc to be a new scan's row and returns the row's columns: its times in UTC
// (Started now when zero), its checkpoint zero, empty lists nil as Decode reads them back, and
// the lists written as JSON ([] and {} for none). An error says which column failed.
func EncodeScan(sc *Scan) (ScanRow, error) {
	if sc.Started.IsZero() {
		sc.Started = time.Now()
	}
	sc.Started, sc.Finished = sc.Started.UTC(), sc.Finished.UTC()
	sc.Progress = Progress{}
	if len(sc.Targets) == 0 {
		sc.Targets = nil
	}
	if len(sc.Settings) == 0 {
		sc.Settings = nil
	}
	if len(sc.Exclusions) == 0 {
		sc.Exclusions = nil
	}
	row := ScanRow{Total: int64(sc.Total), Seed: int64(sc.Seed)}
	var err error
	if row.Started, err = FormatTime(sc.Started); err != nil {
		return ScanRow{}, fmt.Errorf("started: %w", err)
	}
	if !sc.Finished.IsZero() {
		f, err := FormatTime(sc.Finished)
		if err != nil {
			return ScanRow{}, fmt.Errorf("finished: %w", err)
		}
		row.Finished = &f
	}
	for _, f := range []struct {
		dst *[]byte
		src any
	}{{&row.Targets, orEmpty(sc.Targets)}, {&row.Settings, orEmptyMap(sc.Settings)}, {&row.Exclusions, orEmpty(sc.Exclusions)}} {
		if *f.dst, err = json.Marshal(f.src); err != nil {
			return ScanRow{}, err
		}
	}
	return row, nil
}

// Decode fills sc's times, lists, sizes and checkpoint from the row (sc.ID names the scan in
// errors, which wrap ErrCorrupt). Empty lists read back as nil.
func (row ScanRow) Decode(sc *Scan) error {
	var err error
	if sc.Started, err = ParseTime(row.Started); err != nil {
		return fmt.Errorf("%w: scan %q started: %v", ErrCorrupt, sc.ID, err)
	}
	if row.Finished != nil {
		if sc.Finished, err = ParseTime(*row.Finished); err != nil {
			return fmt.Errorf("%w: scan %q finished: %v", ErrCorrupt, sc.ID, err)
		}
	}
	for _, f := range []struct {
		name string
		src  []byte
		dst  any
	}{{"targets", row.Targets, &sc.Targets}, {"settings", row.Settings, &sc.Settings}, {"exclusions", row.Exclusions, &sc.Exclusions}} {
		if err := json.Unmarshal(f.src, f.dst); err != nil {
			return fmt.Errorf("%w: scan %q %s: %v", ErrCorrupt, sc.ID, f.name, err)
		}
	}
	if len(sc.Targets) == 0 {
		sc.Targets = nil
	}
	if len(sc.Settings) == 0 {
		sc.Settings = nil
	}
	if len(sc.Exclusions) == 0 {
		sc.Exclusions = nil
	}
	sc.Total, sc.Seed = uint64(row.Total), uint64(row.Seed)
	sc.Progress.Done, sc.Progress.Excluded = uint64(row.Done), uint64(row.Excluded)
	return nil
}

// Migrations returns the schema steps dir/NNNN_*.sql of fsys in order; step i takes a schema
// from version i to i+1, and a file out of sequence is an error.
func Migrations(fsys fs.FS, dir string) ([]string, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	steps := make([]string, len(names)) // Glob sorts names
	for i, name := range names {
		v, _, _ := strings.Cut(path.Base(name), "_")
		if n, err := strconv.Atoi(v); err != nil || n != i+1 {
			return nil, fmt.Errorf("store: migration %s out of sequence, want version %d", name, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		steps[i] = string(b)
	}
	return steps, nil
}

// EncodeTallies writes a checkpoint's tallies as the SQL backends keep them in JSON: an array of
// [port, closed, filtered, unreachable, excluded] arrays, by port, zero tallies left out.
func EncodeTallies(m map[uint16]Tally) string {
	rows := make([][5]int64, 0, len(m))
	for port, t := range m {
		if t != (Tally{}) {
			rows = append(rows, [5]int64{int64(port), int64(t.Closed), int64(t.Filtered), int64(t.Unreachable), int64(t.Excluded)})
		}
	}
	slices.SortFunc(rows, func(a, b [5]int64) int { return cmp.Compare(a[0], b[0]) })
	b, _ := json.Marshal(rows)
	return string(b)
}

// DecodeTallies reads EncodeTallies' form (SQLite builds the same with json_group_array); nil
// when it holds none. Counts are uint64 kept as their int64 bit pattern.
func DecodeTallies(b []byte) (map[uint16]Tally, error) {
	var rows [][5]int64
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	m := make(map[uint16]Tally, len(rows))
	for _, r := range rows {
		if r[0] < 0 || r[0] > 65535 {
			return nil, fmt.Errorf("port %d", r[0])
		}
		m[uint16(r[0])] = Tally{Closed: uint64(r[1]), Filtered: uint64(r[2]), Unreachable: uint64(r[3]), Excluded: uint64(r[4])}
	}
	return m, nil
}
