package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pacswatch/pacswatch/internal/fileout"
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
	letters string // --letters DIR: notification letters instead of the report (letters.go)
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
func (g *groupFlags) open(ctx context.Context) (report.Options, store.Reader, func(), error) {
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
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReport(cmd.Context(), e, &f)
		},
	}
	cmd.SetFlagErrorFunc(flagError)
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringVar(&f.scan, "scan", "", "scan `ID` to report on, with the other shards of its --shard run (default: the latest)")
	fl.StringVar(&f.compare, "compare", "", "scan `ID` to compare with, whose shards must all be finished (default: the latest finished scan before --scan; none for no comparison)")
	fl.StringVar(&f.geo, "geo", "", "MaxMind DB `FILE` for countries and regions (GeoLite2-City/Country, or ip-location-db's city/country)")
	fl.StringVar(&f.asn, "asn", "", "MaxMind DB `FILE` for autonomous systems (GeoLite2-ASN, or ip-location-db's asn)")
	fl.StringVar(&f.format, "format", "", "html, md, csv or json (default: from the -o file's extension .html, .md, .csv or .json, else md)")
	fl.StringVarP(&f.output, "output", "o", "", "write to `FILE` instead of stdout")
	fl.StringVar(&f.letters, "letters", "", "write one notification letter per network owner (needs --asn) into `DIR`, Markdown and plain text, instead of the report")
	fl.StringSliceVar(&f.groups, "group", nil, "tables to make: country, region, asn (default: all the databases allow)")
	f.thresholdFlags(fl)
	fl.StringVar(&f.db, "db", "pacswatch.db", "store: SQLite `PATH`")
	return cmd
}

func runReport(ctx context.Context, e *env, f *reportFlags) error {
	if f.letters != "" {
		return runLetters(ctx, e, f)
	}
	toFile := f.output != "" && f.output != "-"
	var out *fileout.File
	if toFile {
		// Checked before the store is opened: -o may not name it, nor a link or a directory.
		if err := fileout.NotStore(f.output, f.db); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
	}
	format, err := reportFormat(f.format, f.output)
	if err != nil {
		return err
	}
	if toFile {
		if out, err = fileout.Create(f.output); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
		defer out.Abort()
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
	switch {
	case r.Scan.Finished.IsZero() && r.Scan.Shards > 1:
		fmt.Fprintf(e.stderr, "note: scan %s is not finished (%d of %d shards finished): its figures are partial\n",
			fileout.Show(r.Scan.ID), r.Scan.ShardsFinished, r.Scan.Shards)
	case r.Scan.Finished.IsZero():
		fmt.Fprintf(e.stderr, "note: scan %s is not finished: its figures are partial\n", fileout.Show(r.Scan.ID))
	}
	// Rendered in memory (its size grows with the groups, not the hosts) so that a failure
	// leaves no half-written output.
	var buf bytes.Buffer
	if err := r.Write(&buf, format); err != nil {
		return err
	}
	if !toFile {
		_, err := e.stdout.Write(buf.Bytes())
		return err
	}
	if _, err := out.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	fmt.Fprintf(e.stderr, "report on scan %s written to %s (%s)\n", fileout.Show(r.Scan.ID), fileout.Show(f.output), format)
	return nil
}

// reportFormat is the format --format names, else the one the -o file's extension names, else
// Markdown. An extension that names no format is refused rather than guessed.
func reportFormat(flag, output string) (report.Format, error) {
	if flag != "" {
		format, err := report.ParseFormat(flag)
		if err != nil {
			return 0, fmt.Errorf("--format: %w", err)
		}
		return format, nil
	}
	ext := filepath.Ext(output)
	if output == "" || output == "-" || ext == "" || ext == "." {
		return report.FormatMarkdown, nil // "." and "dir/." are refused as directories
	}
	if format, ok := report.FormatOf(output); ok {
		return format, nil
	}
	if len(ext) > 16 || fileout.Show(ext) != ext {
		ext = "" // the path, quoted and capped, already shows it
	} else {
		ext = " " + ext
	}
	return 0, fmt.Errorf("-o: %s: unknown extension%s; name a .html, .md, .csv or .json file, or give --format", fileout.Show(output), ext)
}

// noArgs is cobra.NoArgs with the argument quoted and capped (fileout.Quote).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %s for %q", fileout.Quote(args[0]), cmd.CommandPath())
	}
	return nil
}

// flagError rewrites pflag's errors so that they quote a user's value capped (fileout.Quote)
// and say what is wrong without Go's internals ("strconv.ParseFloat: parsing ...").
func flagError(_ *cobra.Command, err error) error {
	var (
		invalid  *pflag.InvalidValueError
		notExist *pflag.NotExistError
		syntax   *pflag.InvalidSyntaxError
	)
	switch {
	case errors.As(err, &invalid):
		why := "invalid value"
		var num *strconv.NumError
		if errors.As(err, &num) {
			why = "not a number"
			if errors.Is(num.Err, strconv.ErrRange) {
				why = "out of range"
			}
		}
		return fmt.Errorf("--%s: %s is %s", invalid.GetFlag().Name, fileout.Quote(invalid.GetValue()), why)
	case errors.As(err, &notExist) && notExist.GetSpecifiedShortnames() != "":
		return fmt.Errorf("unknown shorthand flag: %s in -%s", fileout.Quote(notExist.GetSpecifiedName()[:1]), fileout.Show(notExist.GetSpecifiedShortnames()))
	case errors.As(err, &notExist):
		return fmt.Errorf("unknown flag: --%s", fileout.Show(notExist.GetSpecifiedName()))
	case errors.As(err, &syntax):
		return fmt.Errorf("bad flag syntax: %s", fileout.Show(syntax.GetSpecifiedFlag()))
	}
	if msg := err.Error(); fileout.Show(msg) != msg {
		return errors.New(fileout.Show(msg))
	}
	return err
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
			return nil, nil, fmt.Errorf("--geo: %w", capPath(err, geoPath))
		}
	}
	if asnPath != "" {
		if a, err = geo.OpenASN(asnPath); err != nil {
			closeGeo(g, nil)
			return nil, nil, fmt.Errorf("--asn: %w", capPath(err, asnPath))
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

// capPath returns err with a path that is long or holds control characters, which another
// package's error may quote whole, in the capped form fileout.Show gives it.
func capPath(err error, path string) error {
	short := fileout.Show(path)
	if err == nil || short == path || !strings.Contains(err.Error(), path) {
		return err
	}
	return cappedError{msg: strings.ReplaceAll(err.Error(), path, short), err: err}
}

// cappedError is an error with another message; errors.Is and As still see the original.
type cappedError struct {
	msg string
	err error
}

func (c cappedError) Error() string { return c.msg }
func (c cappedError) Unwrap() error { return c.err }
