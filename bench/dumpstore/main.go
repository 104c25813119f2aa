// Command dumpstore prints a store's results of one run as canonical lines, sorted, for the
// shard acceptance run (bench/shards.sh) to compare stores and backends: one line per target,
// with what a scan found there (status, level, association, AE check, product, counts,
// retrieve), without what differs from run to run (times, scan IDs, error wording). A target
// that two scans of the run hold is printed twice and counted on stderr.
//
//	dumpstore STORE [NAME]   (STORE: SQLite path or postgres:// URL; NAME: the run's --name)
package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/postgres"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dumpstore STORE [NAME]")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "dumpstore:", err)
		os.Exit(1)
	}
}

func run(dsn string, name []string) error {
	ctx := context.Background()
	var st store.Reader
	var err error
	if strings.HasPrefix(dsn, "postgres") {
		st, err = postgres.OpenReadOnly(ctx, dsn)
	} else {
		st, err = sqlite.OpenReadOnly(ctx, dsn)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	scans, err := st.Scans(ctx)
	if err != nil {
		return err
	}
	var ids []string
	for _, sc := range scans {
		if len(name) == 0 || sc.Name == name[0] {
			ids = append(ids, sc.ID)
		}
	}
	var lines []string
	seen := map[netip.AddrPort]int{}
	for _, id := range ids {
		err := st.Results(ctx, id, func(r probe.Result) error {
			seen[netip.AddrPortFrom(r.IP, r.Port)]++
			lines = append(lines, canonical(&r))
			return nil
		})
		if err != nil {
			return err
		}
	}
	slices.Sort(lines)
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	fmt.Fprintf(os.Stderr, "dumpstore: %d scans, %d results, %d targets, %d duplicates\n", len(ids), len(lines), len(seen), dups)
	w := os.Stdout
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return nil
}

// canonical is what a scan found at one target.
func canonical(r *probe.Result) string {
	f := []string{netip.AddrPortFrom(r.IP, r.Port).String(), r.Status.String(), r.Level().String()}
	if d := r.DICOM; d != nil {
		f = append(f, d.Association.String(), d.AECheck.String(), d.Product, d.CalledAE, fmt.Sprint(d.TLS, d.Honeypot))
	}
	if e := r.Exposure; e != nil {
		f = append(f, fmt.Sprint(e.Studies, e.StudiesExact, e.Instances), e.InstancesSource.String(), e.Retrieve.String())
	}
	f = append(f, fmt.Sprint(len(r.Web)))
	return strings.Join(f, " ")
}
