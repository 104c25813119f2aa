package cli

import (
	"bufio"
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/fileout"
	"github.com/pacswatch/pacswatch/internal/report"
)

// diffFlags are the diff command's flags.
type diffFlags struct {
	groupFlags
	format string
}

const diffExamples = `  # What changed between two scans, system by system, then per state
  pacswatch diff a1b2 k3f9 --geo GeoLite2-City.mmdb --group region

  # The same as JSON
  pacswatch diff a1b2 k3f9 --format json`

func newDiffCmd(e *env) *cobra.Command {
	var f diffFlags
	cmd := &cobra.Command{
		Use:     "diff OLD NEW",
		Short:   "What changed between two scans: systems that appeared, closed, grew or shrank",
		Example: diffExamples,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), e, &f, args[0], args[1])
		},
	}
	cmd.SetFlagErrorFunc(flagError)
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringVar(&f.geo, "geo", "", "MaxMind DB `FILE` for countries and regions")
	fl.StringVar(&f.asn, "asn", "", "MaxMind DB `FILE` for autonomous systems")
	fl.StringSliceVar(&f.groups, "group", nil, "per-group deltas: country, region, asn (default: all the databases allow)")
	fl.StringVar(&f.format, "format", "text", "text or json")
	f.thresholdFlags(fl)
	fl.StringVar(&f.db, "db", "pacswatch.db", "store: SQLite `PATH`")
	return cmd
}

func runDiff(ctx context.Context, e *env, f *diffFlags, oldID, newID string) error {
	bw := bufio.NewWriter(e.stdout)
	var w report.DiffWriter
	switch f.format {
	case "text":
		w = report.NewDiffText(bw)
	case "json":
		w = report.NewDiffJSON(bw)
	default:
		return fmt.Errorf("--format: %s is not text or json", fileout.Quote(f.format))
	}
	opt, st, done, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer done()

	sum, err := report.Diff(ctx, st, oldID, newID, opt, w.Change)
	if err != nil {
		return err
	}
	if err := w.Summary(sum); err != nil {
		return err
	}
	return bw.Flush()
}
