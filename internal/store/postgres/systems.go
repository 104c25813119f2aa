package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// Systems implements store.Reader with one aggregate over the results_level index: a window
// ranks each host's ports as store.Outranks does and the first of each host is counted.
// PostgreSQL sums bigints as numeric, which cannot overflow; each sum is capped at the largest
// bigint, as store.Systems documents.
func (s *Store) Systems(ctx context.Context, scanIDs ...string) (store.Systems, error) {
	if len(scanIDs) == 0 {
		return store.Systems{}, nil
	}
	seqs := make([]int64, 0, len(scanIDs))
	for _, id := range scanIDs {
		seq, err := s.seq(ctx, id)
		if err != nil {
			return store.Systems{}, err
		}
		seqs = append(seqs, seq)
	}
	var v store.Systems
	err := s.pool.QueryRow(ctx, systemsQuery, seqs).Scan(&v.Found, &v.Accessible, &v.Studies, &v.Images,
		&v.StudiesImageAccess, &v.ImagesAccessible)
	if err != nil {
		return store.Systems{}, s.wrap(fmt.Sprintf("systems of scans %v", scanIDs), err)
	}
	return v, nil
}

// systemsQuery is Systems' query; its one argument is an array of scan keys.
var systemsQuery = func() string {
	var rank strings.Builder
	rank.WriteString(`CASE level`)
	for l := probe.LevelClosed; l <= probe.LevelRetrieve; l++ {
		fmt.Fprintf(&rank, ` WHEN '%s' THEN %d`, l, l)
	}
	rank.WriteString(` ELSE 0 END`)
	// A host whose ports are all below level protected counts for nothing, whichever
	// represents it: such ports are left out before the ranking.
	var levels []string
	for l := probe.LevelProtected; l <= probe.LevelRetrieve; l++ {
		levels = append(levels, fmt.Sprintf(`'%s'`, l))
	}
	accessible := fmt.Sprintf(`lvl >= %d`, probe.LevelQuery)
	// Only counts no caveat sets apart are summed (store.Systems); left-out ports count for
	// nothing, not even as systems found.
	summed := fmt.Sprintf(`lvl >= %d AND apart = %d`, probe.LevelQuery, store.ApartNone)
	imageAccess := fmt.Sprintf(`%s AND (lvl >= %d OR retrieve IN ('%s', '%s'))`,
		summed, probe.LevelRetrieve, probe.RetrieveAccepted, probe.RetrieveVerified)
	capped := func(col, filter string) string {
		return fmt.Sprintf(`least(coalesce(sum(%s) FILTER (WHERE %s), 0), 9223372036854775807)::bigint`, col, filter)
	}
	return `WITH ports AS (
			SELECT ip, port, ` + rank.String() + ` AS lvl, retrieve, studies, instances, apart
			FROM results WHERE scan_seq = ANY($1::bigint[]) AND NOT honeypot
				AND level IN (` + strings.Join(levels, ", ") + `) AND apart < ` + fmt.Sprint(int(store.ApartLeftOut)) + `
		), reps AS (
			SELECT lvl, retrieve, studies, instances, apart,
				row_number() OVER (PARTITION BY ip ORDER BY lvl DESC, studies DESC, instances DESC, port) AS n
			FROM ports
		)
		SELECT count(*), count(*) FILTER (WHERE ` + accessible + `), ` +
		capped("studies", summed) + `, ` + capped("instances", summed) + `, ` +
		capped("studies", imageAccess) + `, ` + capped("instances", imageAccess) + `
		FROM reps WHERE n = 1`
}()
