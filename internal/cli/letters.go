package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/pacswatch/pacswatch/internal/fileout"
	"github.com/pacswatch/pacswatch/internal/report"
)

// runLetters is `pacswatch report --letters DIR` (SPEC "report"): one notification letter per
// network owner of the scan, written by report.WriteLetters, instead of the report.
func runLetters(ctx context.Context, e *env, f *reportFlags) error {
	if f.output != "" || f.format != "" {
		return errors.New("--letters writes letters, not a report: leave out -o and --format (run report again for those)")
	}
	if f.asn == "" {
		return errors.New("--letters: letters go to network owners: give --asn FILE.mmdb")
	}
	opt, st, done, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	opt.Scan = f.scan
	sum, err := report.WriteLetters(ctx, st, opt, f.letters)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "scan %s: %d letters to network owners, naming %d systems, written to %s (Markdown and plain text)\n",
		fileout.Show(sum.Scan), sum.Letters, sum.Systems, fileout.Show(f.letters))
	return nil
}
