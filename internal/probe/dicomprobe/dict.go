package dicomprobe

import (
	"bufio"
	"cmp"
	"embed"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// The data files are copies of ../shared/data (with their sources); a test keeps them in sync.
//
//go:embed data/ae-titles.csv data/implementation-uids.csv
var dataFS embed.FS

// GenericAE is the called AE title tried first: DCMTK's tools default to it, and a server that
// checks no called AE accepts it. Refused with "called-AE-title-not-recognized", it tells us the
// server checks the called AE, and the dictionary is tried next.
const GenericAE = "ANY-SCP"

// An AE is one entry of the AE dictionary: a title and the ports its product listens on by default.
type AE struct {
	Title   string
	Product string
	Ports   []uint16
	// Rank is the title's place in prevalence, 1 for the most often met on exposed archives; 0
	// for a title not ranked.
	Rank int
	// Alias marks a further title of a product the dictionary lists already (dcm4chee-arc's
	// IOCM_* views of its archive): tried after every product's first title.
	Alias bool
	// SCU marks the own title of a client tool (ECHOSCU), which servers rarely use: tried last.
	SCU bool
}

// Dict is the AE dictionary: called AE titles to try, most likely first.
type Dict []AE

// prevalence ranks the default called AE titles of the products most often met on exposed
// archives, as issue 15 orders them (after the 2019 reports and the 2025–2026 surveys in
// ../shared/notes/field.md): Orthanc, Conquest, OsiriX, Dicoogle, dcm4chee, pynetdicom-based
// servers. With GenericAE first, all of them are tried within the default --max-ae-tries of 8.
var prevalence = []string{"ORTHANC", "CONQUESTSRV1", "OSIRIX", "DICOOGLE-STORAGE", "DCM4CHEE", "PYNETDICOM"}

// DefaultDict is the dictionary built into the binary, from ae-titles.csv.
func DefaultDict() Dict {
	f, err := dataFS.Open("data/ae-titles.csv")
	if err != nil {
		panic(err) // embedded: a programmer error
	}
	defer f.Close()
	d, err := parseDictCSV(f, "ae-titles.csv")
	if err != nil {
		panic(err)
	}
	return d
}

// LoadDict reads an AE dictionary file for --ae-dict: either the CSV layout of ae-titles.csv
// (header "product,ae_title,default_ports,...") or one AE title per line, optionally followed by
// a comma and the ports it is likely on ("ORTHANC,4242"); '#' starts a comment.
func LoadDict(path string) (Dict, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ae dictionary: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(16)
	if strings.HasPrefix(string(head), "product,ae_title") {
		return parseDictCSV(br, path)
	}
	var d Dict
	sc := bufio.NewScanner(br)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Split(line, ",")
		title := strings.TrimSpace(fields[0])
		if title == "" {
			continue
		}
		if err := ValidAE(title); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		ae := AE{Title: title}
		for _, p := range fields[1:] {
			port, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
			if err != nil || port == 0 {
				return nil, fmt.Errorf("%s:%d: bad port %q", path, n, strings.TrimSpace(p))
			}
			ae.Ports = append(ae.Ports, uint16(port))
		}
		d = append(d, ae)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ae dictionary %s: %w", path, err)
	}
	if len(d) == 0 {
		return nil, fmt.Errorf("ae dictionary %s: no AE titles", path)
	}
	return d, nil
}

// ValidAE checks an AE title for the probe (--calling-ae, --called-ae, a dictionary's titles):
// ul.ValidAE, PS3.5 §6.2's definition.
func ValidAE(s string) error { return ul.ValidAE(s) }

// parseDictCSV reads ae-titles.csv: SCP titles first, in file order; titles the file lists for SCU
// tools ("ECHOSCU / FINDSCU") last, since servers rarely use them. Titles in prevalence get their
// rank; a title of a product family listed before (its first word: "dcm4chee-arc-light (older)"
// is dcm4chee's) is an alias.
func parseDictCSV(r io.Reader, name string) (Dict, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("ae dictionary %s: %w", name, err)
	}
	var scp, scu Dict
	seen := map[string]bool{}
	families := map[string]bool{}
	for i, row := range rows {
		if i == 0 || len(row) < 3 {
			continue
		}
		family := productFamily(row[0])
		for _, title := range strings.Split(row[1], "/") {
			title = strings.TrimSpace(title)
			if title == "" || seen[title] || ValidAE(title) != nil {
				continue
			}
			seen[title] = true
			ae := AE{Title: title, Product: row[0], Ports: leadingPorts(row[2]), Rank: slices.Index(prevalence, title) + 1}
			ae.Alias = ae.Rank == 0 && families[family]
			families[family] = true
			if strings.Contains(row[0], "SCU") {
				ae.SCU = true
				scu = append(scu, ae)
			} else {
				scp = append(scp, ae)
			}
		}
	}
	return append(scp, scu...), nil
}

// productFamily names the product family of an ae-titles.csv product: its first word, lower
// case ("dcm4chee-arc-light (older)" and "dcm4chee 2.x" are dcm4chee).
func productFamily(product string) string {
	f, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(product)), " ")
	f, _, _ = strings.Cut(f, "-")
	return f
}

// leadingPorts picks the port numbers out of a cell like "4242 (DICOM); 8042 (HTTP)", keeping
// DICOM ones: a port followed by "(HTTP" is left out.
func leadingPorts(cell string) []uint16 {
	var ports []uint16
	for _, part := range strings.Split(cell, ";") {
		part = strings.TrimSpace(part)
		if strings.Contains(part, "HTTP") || strings.Contains(part, "HL7") {
			continue
		}
		num, _, _ := strings.Cut(part, " ")
		if p, err := strconv.ParseUint(num, 10, 16); err == nil && p > 0 {
			ports = append(ports, uint16(p))
		}
	}
	return ports
}

// Candidates returns the called AE titles to try on a port, at most max: the generic title first;
// then the titles ranked by prevalence, in rank order; then the first title of every other
// product; then aliases; then the titles of client tools. Within each of these, titles whose
// product listens on the port by default come first. A dictionary without ranks (an --ae-dict
// list) is tried in its own order, the port's titles first.
func (d Dict) Candidates(port uint16, max int) []string {
	tier := func(ae AE) int {
		switch {
		case ae.Rank > 0:
			return 0
		case ae.SCU:
			return 3
		case ae.Alias:
			return 2
		}
		return 1
	}
	order := slices.Clone(d)
	slices.SortStableFunc(order, func(a, b AE) int {
		if c := cmp.Compare(tier(a), tier(b)); c != 0 {
			return c
		}
		if pa, pb := slices.Contains(a.Ports, port), slices.Contains(b.Ports, port); pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Rank, b.Rank)
	})
	out := []string{GenericAE}
	for _, ae := range order {
		if !slices.Contains(out, ae.Title) {
			out = append(out, ae.Title)
		}
	}
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}
