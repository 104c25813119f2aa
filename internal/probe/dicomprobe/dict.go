package dicomprobe

import (
	"bufio"
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
}

// Dict is the AE dictionary: called AE titles to try, most likely first.
type Dict []AE

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
// tools ("ECHOSCU / FINDSCU") last, since servers rarely use them.
func parseDictCSV(r io.Reader, name string) (Dict, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("ae dictionary %s: %w", name, err)
	}
	var scp, scu Dict
	seen := map[string]bool{}
	for i, row := range rows {
		if i == 0 || len(row) < 3 {
			continue
		}
		for _, title := range strings.Split(row[1], "/") {
			title = strings.TrimSpace(title)
			if title == "" || seen[title] || ValidAE(title) != nil {
				continue
			}
			seen[title] = true
			ae := AE{Title: title, Product: row[0], Ports: leadingPorts(row[2])}
			if strings.Contains(row[0], "SCU") {
				scu = append(scu, ae)
			} else {
				scp = append(scp, ae)
			}
		}
	}
	return append(scp, scu...), nil
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

// Candidates returns the called AE titles to try on a port, at most max: the generic title first,
// then the dictionary's titles whose product listens on that port by default, then the rest.
func (d Dict) Candidates(port uint16, max int) []string {
	out := []string{GenericAE}
	for pass := 0; pass < 2; pass++ {
		for _, ae := range d {
			if slices.Contains(ae.Ports, port) == (pass == 0) && !slices.Contains(out, ae.Title) {
				out = append(out, ae.Title)
			}
		}
	}
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}
