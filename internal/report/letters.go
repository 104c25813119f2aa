package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pacswatch/pacswatch/internal/audit"
	"github.com/pacswatch/pacswatch/internal/fileout"
	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// ErrNoASN means --letters was asked for without an ASN database: letters go to network owners.
var ErrNoASN = errors.New("report: letters go to network owners: give --asn FILE.mmdb")

// LetterSummary says what WriteLetters wrote.
type LetterSummary struct {
	Scan    string   // the scan reported on
	Letters int      // network owners written to
	Systems int      // systems named in them
	Files   []string // the files, Markdown and plain text, sorted
}

// openSeverity is the least severity of a failed check that makes a system worth a letter:
// something is open to anyone (an index, images, storage, an unauthenticated web front end,
// a known-vulnerable version), not only a missing hardening.
var openSeverity = map[audit.Severity]bool{audit.Critical: true, audit.High: true}

// A lettered system is one system of a letter: its record and its audit.
type letteredSystem struct {
	target string
	rep    *audit.Report
}

// An owner is a network owner (an autonomous system) and its systems.
type owner struct {
	asn     geo.ASN
	systems []letteredSystem
}

// WriteLetters writes into dir (made if missing) one notification letter per network owner of
// the scan opt.Scan names (SPEC report --letters): ASN and organisation from opt.ASN, each of
// the owner's systems with something open to anyone, what is open and how to close it, in the
// audit's own words and remediation (audit.Evaluate of the stored record), as Markdown
// (ASn.md) and as a plain-text e-mail body (ASn.txt). A system whose address no autonomous
// system announces goes to "unassigned". No patient data: records hold none.
func WriteLetters(ctx context.Context, st store.Reader, opt Options, dir string) (LetterSummary, error) {
	if opt.ASN == nil {
		return LetterSummary{}, ErrNoASN
	}
	scans, err := st.Scans(ctx)
	if err != nil {
		return LetterSummary{}, err
	}
	runs := store.Groups(scans)
	cur, _, err := pick(scans, runs, opt.Scan, NoCompare)
	if err != nil {
		return LetterSummary{}, err
	}
	run := runs[cur]
	owners := map[uint32]*owner{}
	add := func(r probe.Result) {
		rep := audit.Evaluate(audit.Input{Record: r, WebChecked: len(r.Web) > 0, Now: run.Started()})
		if !worthALetter(rep) {
			return
		}
		asn, _ := opt.ASN.Lookup(r.IP)
		o := owners[asn.Number]
		if o == nil {
			o = &owner{asn: asn}
			owners[asn.Number] = o
		}
		o.systems = append(o.systems, letteredSystem{target: netip.AddrPortFrom(r.IP, r.Port).String(), rep: rep})
	}
	var host []probe.Result // one address's records: results come ordered by address
	err = store.MergeResults(ctx, st, run.IDs(), func(r probe.Result) error {
		if len(host) > 0 && host[0].IP != r.IP {
			for _, j := range joinHost(host) {
				add(j)
			}
			host = host[:0]
		}
		host = append(host, r)
		return nil
	})
	if err != nil {
		return LetterSummary{}, err
	}
	for _, j := range joinHost(host) {
		add(j)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return LetterSummary{}, fmt.Errorf("--letters %s: %w", fileout.Show(dir), err)
	}
	sum := LetterSummary{Scan: cleanText(run.ID())}
	for _, num := range slices.Sorted(maps.Keys(owners)) {
		o := owners[num]
		name := fmt.Sprintf("AS%d", num)
		if num == 0 {
			name = "unassigned"
		}
		for _, md := range []bool{true, false} {
			path := filepath.Join(dir, name+map[bool]string{true: ".md", false: ".txt"}[md])
			if err := writeFile(path, letter(o, run, md)); err != nil {
				return sum, fmt.Errorf("--letters: %w", err)
			}
			sum.Files = append(sum.Files, path)
		}
		sum.Letters++
		sum.Systems += len(o.systems)
	}
	return sum, nil
}

// joinHost returns the systems of one address's records: each DICOM service with every web
// front end of the address joined to it (a scan stores Orthanc's DICOM port and its HTTP port
// apart; the audit judges them as one system), or the web front ends alone when no DICOM
// service answered.
func joinHost(rs []probe.Result) []probe.Result {
	var webs []probe.Web
	var dicoms []probe.Result
	for _, r := range rs {
		for _, w := range r.Web {
			if w.Product != "" {
				webs = append(webs, w)
			}
		}
		if r.DICOM != nil {
			dicoms = append(dicoms, r)
		}
	}
	if len(dicoms) == 0 {
		return rs
	}
	for i := range dicoms {
		dicoms[i].Web = webs
	}
	return dicoms
}

// worthALetter reports whether an audit found something open to anyone.
func worthALetter(rep *audit.Report) bool {
	for _, f := range rep.Checks {
		if f.Status == audit.Fail && openSeverity[f.Severity] {
			return true
		}
	}
	return false
}

func writeFile(path, text string) error {
	f, err := fileout.Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write([]byte(text)); err != nil {
		return err
	}
	return f.Commit()
}

// letter renders one owner's letter, in Markdown or as plain text.
func letter(o *owner, run store.Group, md bool) string {
	var b strings.Builder
	esc := func(s string) string { return s }
	h := func(level int, s string) {
		if md {
			fmt.Fprintf(&b, "%s %s\n\n", strings.Repeat("#", level), s)
		} else {
			fmt.Fprintf(&b, "%s\n%s\n\n", s, strings.Repeat(map[bool]string{true: "=", false: "-"}[level == 1], len([]rune(s))))
		}
	}
	if md {
		esc = escapeMarkdown
	}
	org := cleanText(o.asn.Org)
	who := fmt.Sprintf("AS%d (%s)", o.asn.Number, org)
	if o.asn.Number == 0 {
		who, org = "an unannounced network", ""
	}
	slices.SortFunc(o.systems, func(a, b letteredSystem) int { return cmp.Compare(a.target, b.target) })
	h(1, "Medical image archives open to the internet in "+esc(who))
	fmt.Fprintf(&b, "To the security contact of %s:\n\n", esc(who))
	fmt.Fprintf(&b, "A scan made with pacswatch on %s (scan %s) found %d system%s in your network whose medical image archive (PACS) answers anyone on the internet. "+
		"Each is listed below with what is open and how to close it. Nothing was downloaded: pacswatch keeps counts only, never a patient's name, identifier or image.\n\n",
		run.Started().UTC().Format("2006-01-02"), esc(cleanText(run.ID())), len(o.systems), map[bool]string{true: "", false: "s"}[len(o.systems) == 1])
	for _, s := range o.systems {
		writeSystem(&b, s, h, esc, md)
	}
	h(2, "Why this matters")
	b.WriteString("An archive that answers anyone discloses the studies of its patients, and one that accepts images from anyone can have its records altered. " +
		"Closing it takes the configuration changes above; `pacswatch audit HOST:PORT` checks the result from inside your network.\n")
	if !md {
		return strings.ReplaceAll(b.String(), "`", "")
	}
	return b.String()
}

// writeSystem writes one system: what is open (failed checks, worst first), then how to close
// it (each remediation once).
func writeSystem(b *strings.Builder, s letteredSystem, h func(int, string), esc func(string) string, md bool) {
	name := s.rep.Product.Name
	if s.rep.Product.Version != "" {
		name += " " + s.rep.Product.Version
	}
	h(2, esc(s.target+" — "+name))
	var failed []audit.Finding
	for _, f := range s.rep.Checks {
		if f.Status == audit.Fail {
			failed = append(failed, f)
		}
	}
	slices.SortStableFunc(failed, func(a, b audit.Finding) int { return severityRank(a.Severity) - severityRank(b.Severity) })
	b.WriteString("What is open:\n\n")
	for _, f := range failed {
		fmt.Fprintf(b, "- %s (%s): %s\n", strings.ToUpper(string(f.Severity)), f.ID, esc(f.Evidence))
	}
	b.WriteString("\nHow to close it:\n\n")
	seen := map[string]bool{}
	for _, f := range failed {
		rm := f.Remediation
		if rm == nil || seen[rm.Text] {
			continue
		}
		seen[rm.Text] = true
		fmt.Fprintf(b, "- %s: %s\n", f.ID, esc(rm.Text))
		if c := rm.Config; c != nil {
			lines := strings.Join(c.Lines(), "\n    ")
			if md {
				fmt.Fprintf(b, "\n  %s:\n\n  ```\n  %s\n  ```\n\n", esc(c.Where()), strings.ReplaceAll(lines, "\n    ", "\n  "))
			} else {
				fmt.Fprintf(b, "  %s:\n    %s\n", c.Where(), lines)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(rm.Placeholders)) {
			if md {
				fmt.Fprintf(b, "  - %s: %s\n", esc(k), esc(rm.Placeholders[k]))
			} else {
				fmt.Fprintf(b, "    %s: %s\n", k, rm.Placeholders[k])
			}
		}
	}
	b.WriteString("\n")
}

func severityRank(s audit.Severity) int {
	return slices.Index([]audit.Severity{audit.Critical, audit.High, audit.Medium, audit.Low, audit.Info}, s)
}

// escapeMarkdown escapes what Markdown would read as markup in a text that may hold a
// server's or a database's strings.
func escapeMarkdown(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|&", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
