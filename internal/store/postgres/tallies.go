package postgres

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/pacswatch/pacswatch/internal/store"
)

// encodeTallies writes a checkpoint's tallies as the scans.tallies column holds them: an array
// of [port, closed, filtered, unreachable, excluded] arrays, by port, zero tallies left out.
func encodeTallies(m map[uint16]store.Tally) string {
	rows := make([][5]uint64, 0, len(m))
	for port, t := range m {
		if t != (store.Tally{}) {
			rows = append(rows, [5]uint64{uint64(port), t.Closed, t.Filtered, t.Unreachable, t.Excluded})
		}
	}
	slices.SortFunc(rows, func(a, b [5]uint64) int { return int(a[0]) - int(b[0]) })
	b, _ := json.Marshal(rows)
	return string(b)
}

// decodeTallies reads the scans.tallies column; nil when it holds none.
func decodeTallies(s string) (map[uint16]store.Tally, error) {
	var rows [][5]uint64
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	m := make(map[uint16]store.Tally, len(rows))
	for _, r := range rows {
		if r[0] > 65535 {
			return nil, fmt.Errorf("port %d", r[0])
		}
		m[uint16(r[0])] = store.Tally{Closed: r[1], Filtered: r[2], Unreachable: r[3], Excluded: r[4]}
	}
	return m, nil
}
