package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// DiffWriter renders a diff as it streams: each change, then the summary.
type DiffWriter interface {
	Change(Change) error
	Summary(*DiffSummary) error
}

// NewDiffText returns a DiffWriter of aligned plain text: one line per change, then the
// counts and the per-group figures of NEW with their change since OLD. Database strings are
// printed as Lookup cleaned them (no control characters); no server string is printed.
func NewDiffText(w io.Writer) DiffWriter {
	return &diffText{w: w, tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

type diffText struct {
	w  io.Writer
	tw *tabwriter.Writer
	n  int
}

func (d *diffText) Change(c Change) error {
	if d.n == 0 {
		fmt.Fprintln(d.tw, "change\taddress\tlevel\tstudies\timages\twhere\ttime to fix")
	}
	d.n++
	where := strings.TrimSpace(strings.Join([]string{c.Country, c.Region}, " "))
	if c.ASN != 0 {
		where = strings.TrimSpace(fmt.Sprintf("%s AS%d", where, c.ASN))
	}
	if where == "" {
		where = "-"
	}
	_, err := fmt.Fprintf(d.tw, "%s\t%s\t%s → %s\t%s → %s\t%s → %s\t%s\t%s\n", c.Kind, c.IP, c.Old.Level, c.New.Level,
		num(c.Old.Studies), num(c.New.Studies), num(c.Old.Images), num(c.New.Images), where, fixTime(c.TimeToFixSeconds))
	// Flush every 256 lines: aligned in blocks, and memory stays bounded on a large diff.
	if err == nil && d.n%256 == 0 {
		err = d.tw.Flush()
	}
	return err
}

// fixTime writes a time to fix in days (hours under two days); "-" when there is none.
func fixTime(sec int64) string {
	switch {
	case sec <= 0:
		return "-"
	case sec < 2*86400:
		return fmt.Sprintf("%d h", sec/3600)
	}
	return fmt.Sprintf("%s d", num(sec/86400))
}

func (d *diffText) Summary(s *DiffSummary) error {
	if err := d.tw.Flush(); err != nil {
		return err
	}
	if d.n == 0 {
		fmt.Fprintln(d.w, "No accessible system changed.")
	}
	c := s.Counts
	fmt.Fprintf(d.w, "\nscan %s → %s: %d appeared, %d closed, %d grew, %d shrank, %d not rescanned, %d unchanged\n",
		s.Old.ID, s.New.ID, c.Appeared, c.Closed, c.Grew, c.Shrank, c.NotRescanned, c.Unchanged)
	head := []string{"", "", "found", "accessible", "Δ", "studies", "Δ", "images", "trend"}
	row := func(key, name string, r Row) []string {
		return []string{key, name, num(r.SystemsFound), num(r.SystemsAccessible), delta(r.Change.SystemsAccessible),
			num(r.Studies), delta(r.Change.Studies), num(r.Images), r.Trend.String()}
	}
	fmt.Fprintln(d.w)
	if err := align(d.w, [][]string{head, row("", "all systems", s.Total)}); err != nil {
		return err
	}
	for _, t := range s.Tables {
		head[0], head[1] = groupColumns(t.Group)
		rows := [][]string{head}
		for _, r := range t.Rows {
			rows = append(rows, row(keyCell(t.Group, r), r.Name, r))
		}
		fmt.Fprintf(d.w, "\n%s\n", groupTitle(t.Group))
		if err := align(d.w, rows); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(d.w, "\n%s\n", s.Rule)
	return err
}

// NewDiffJSON returns a DiffWriter of one JSON document, written as it streams:
// {"changes": [...], "summary": {...}}.
func NewDiffJSON(w io.Writer) DiffWriter { return &diffJSON{w: w} }

type diffJSON struct {
	w io.Writer
	n int
}

func (d *diffJSON) Change(c Change) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	sep := ",\n  "
	if d.n == 0 {
		sep = "{\"changes\": [\n  "
	}
	d.n++
	_, err = fmt.Fprintf(d.w, "%s%s", sep, b)
	return err
}

func (d *diffJSON) Summary(s *DiffSummary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	open := "\n],\n"
	if d.n == 0 {
		open = "{\"changes\": [],\n"
	}
	_, err = fmt.Fprintf(d.w, "%s\"summary\": %s}\n", open, b)
	return err
}

// align writes rows as columns: the first two left-aligned (key and name), the others right.
func align(w io.Writer, rows [][]string) error {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < 2 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
