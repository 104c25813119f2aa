package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
)

// reportFlags are the SPEC's report flags, and the trend thresholds.
type reportFlags struct {
	groupFlags
	scan    string
	compare string
	format  string
	output  string
}

// groupFlags are the flags report and diff share: the store, the geo databases, the groups and
// the trend thresholds.
type groupFlags struct {
	db       string
	geo      string
	asn      string
	groups   []string
	goodDrop float64
	uglyRise float64
}

// thresholdFlags registers --good-drop and --ugly-rise.
func (g *groupFlags) thresholdFlags(fl *pflag.FlagSet) {
	fl.Float64Var(&g.goodDrop, "good-drop", report.DefaultGoodDrop, "trend good: accessible studies down by at least this `percent` (or to zero)")
	fl.Float64Var(&g.uglyRise, "ugly-rise", report.DefaultUglyRise, "trend ugly: accessible studies up by more than this `percent`")
}

// open checks the shared flags and opens what they name: report options (without Scan and
// Compare), the store, and a function that closes it all.
func (g *groupFlags) open(ctx context.Context) (report.Options, store.Store, func(), error) {
	groups, err := parseGroups(g.groups)
	if err != nil {
		return report.Options{}, nil, nil, err
	}
	th := report.Thresholds{GoodDrop: g.goodDrop, UglyRise: g.uglyRise}
	if err := th.Validate(); err != nil {
		return report.Options{}, nil, nil, err
	}
	gdb, adb, err := openGeo(g.geo, g.asn)
	if err != nil {
		return report.Options{}, nil, nil, err
	}
	st, err := openExistingStore(ctx, g.db)
	if err != nil {
		closeGeo(gdb, adb)
		return report.Options{}, nil, nil, err
	}
	done := func() { st.Close(); closeGeo(gdb, adb) }
	return report.Options{Geo: gdb, ASN: adb, Groups: groups, Thresholds: th}, st, done, nil
}

const reportExamples = `  # The latest scan against the one before, as one HTML file with a map
  pacswatch report --geo GeoLite2-City.mmdb --asn GeoLite2-ASN.mmdb -o report.html

  # Per state, as Markdown on stdout
  pacswatch report --geo GeoLite2-City.mmdb --group region

  # One scan against another, as CSV, with a stricter rule
  pacswatch report --scan k3f9 --compare a1b2 --format csv --good-drop 75 --ugly-rise 5`

func newReportCmd(e *env) *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:     "report [flags]",
		Short:   "Tables, charts and trends from the store (html, md, csv, json)",
		Example: reportExamples,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReport(cmd.Context(), e, &f)
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringVar(&f.scan, "scan", "", "scan `ID` to report on (default: the latest)")
	fl.StringVar(&f.compare, "compare", "", "scan `ID` to compare with (default: the one before --scan; none for no comparison)")
	fl.StringVar(&f.geo, "geo", "", "MaxMind DB `FILE` for countries and regions (GeoLite2-City/Country, or ip-location-db's city/country)")
	fl.StringVar(&f.asn, "asn", "", "MaxMind DB `FILE` for autonomous systems (GeoLite2-ASN, or ip-location-db's asn)")
	fl.StringVar(&f.format, "format", "", "html, md, csv or json (default: from the -o file's extension, else md)")
	fl.StringVarP(&f.output, "output", "o", "", "write to `FILE` instead of stdout")
	fl.StringSliceVar(&f.groups, "group", nil, "tables to make: country, region, asn (default: all the databases allow)")
	f.thresholdFlags(fl)
	fl.StringVar(&f.db, "db", "pacswatch.db", "store: SQLite `PATH`")
	return cmd
}

func runReport(ctx context.Context, e *env, f *reportFlags) error {
	format := report.FormatMarkdown
	switch {
	case f.format != "":
		var err error
		if format, err = report.ParseFormat(f.format); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	case f.output != "" && f.output != "-":
		if ff, ok := report.FormatOf(f.output); ok {
			format = ff
		}
	}
	opt, st, done, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer done()

	opt.Scan, opt.Compare = f.scan, f.compare
	r, err := report.Build(ctx, st, opt)
	if err != nil {
		return err
	}
	// Rendered in memory (its size grows with the groups, not the hosts) so that a failure
	// leaves no half-written file.
	var buf bytes.Buffer
	if err := r.Write(&buf, format); err != nil {
		return err
	}
	if f.output == "" || f.output == "-" {
		_, err := e.stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(f.output, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	fmt.Fprintf(e.stderr, "report on scan %s written to %s (%s)\n", r.Scan.ID, f.output, format)
	return nil
}

// parseGroups parses --group values (repeated or comma-separated); none means nil.
func parseGroups(values []string) ([]report.Grouping, error) {
	var groups []report.Grouping
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			g, err := report.ParseGrouping(s)
			if err != nil {
				return nil, fmt.Errorf("--group: %w", err)
			}
			groups = append(groups, g)
		}
	}
	return groups, nil
}

// openGeo opens the --geo and --asn databases that are given.
func openGeo(geoPath, asnPath string) (*geo.DB, *geo.ASNDB, error) {
	var (
		g   *geo.DB
		a   *geo.ASNDB
		err error
	)
	if geoPath != "" {
		if g, err = geo.Open(geoPath); err != nil {
			return nil, nil, fmt.Errorf("--geo: %w", err)
		}
	}
	if asnPath != "" {
		if a, err = geo.OpenASN(asnPath); err != nil {
			closeGeo(g, nil)
			return nil, nil, fmt.Errorf("--asn: %w", err)
		}
	}
	return g, a, nil
}

func closeGeo(g *geo.DB, a *geo.ASNDB) {
	if g != nil {
		g.Close()
	}
	if a != nil {
		a.Close()
	}
}

// openExistingStore opens the store at path for reading: unlike scan, report and diff never
// create one.
func openExistingStore(ctx context.Context, path string) (store.Store, error) {
	if !strings.HasPrefix(path, "postgres://") && !strings.HasPrefix(path, "postgresql://") {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("--db: no store at %s (run pacswatch scan first)", path)
			}
			return nil, fmt.Errorf("--db: %w", err)
		}
	}
	return openStore(ctx, path)
}
