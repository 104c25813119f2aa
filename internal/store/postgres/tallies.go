package postgres

import "github.com/pacswatch/pacswatch/internal/store"

// The scans.tallies column holds a checkpoint's tallies in the SQL backends' shared JSON form.
var encodeTallies = store.EncodeTallies

// decodeTallies reads the scans.tallies column; nil when it holds none.
func decodeTallies(s string) (map[uint16]store.Tally, error) { return store.DecodeTallies([]byte(s)) }
