package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/textsafe"
)

func newScansCmd(e *env) *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "scans",
		Short: "List the scans in the store (id, name, shard, state, totals)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runScans(cmd.Context(), e, db)
		},
	}
	cmd.Flags().StringVar(&db, "db", "pacswatch.db", "store: SQLite `PATH` (opened read-only)")
	return cmd
}

// runScans prints one line per scan, oldest first. The store is opened read-only.
func runScans(ctx context.Context, e *env, db string) error {
	st, err := openExistingStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	scans, err := st.Scans(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSHARD\tSTATE\tSTARTED\tTARGETS\tPROBED\tOPEN\tEXPOSED\tERRORS")
	for _, sc := range scans {
		sum, err := st.Summary(ctx, sc.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cleanCell(sc.ID), cleanCell(sc.Name), orDash(sc.Shard), state(sc),
			sc.Started.UTC().Format(time.DateTime), thousands(sc.Total), thousands(sum.Probed()),
			thousands(sum.Open), thousands(sum.Exposed), thousands(sum.Errors))
	}
	return w.Flush()
}

func state(sc store.Scan) string {
	if sc.Finished.IsZero() {
		return "unfinished"
	}
	return "finished"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return cleanCell(s)
}

// cleanCell makes a stored label safe for one table cell: no control characters, no tabs, capped.
func cleanCell(s string) string { return textsafe.Clean(s, 64) }
