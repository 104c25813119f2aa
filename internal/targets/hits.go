package targets

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ReadTargets reads a target list for -iL: what ReadList reads, or the output of a SYN
// scanner, so that `zmap -p 104 ... | pacswatch scan -iL - -p 104` works (SPEC "Scale and
// discovery"):
//
//   - ZMap's default output, one address a line: a plain list;
//   - ZMap's CSV (-O csv), whose header names a saddr column and maybe sport (the port that
//     answered) and success: each row is saddr, or saddr:sport, rows with success 0 left out;
//   - masscan's -oL list ("#masscan" first, then "open tcp PORT ADDR TIME" lines): ADDR:PORT
//     for each open TCP port.
//
// It returns the targets as specs Parse takes. name labels errors as in ReadList.
func ReadTargets(r io.Reader, name string) ([]string, error) {
	br := bufio.NewReaderSize(r, 4096)
	first, err := firstLine(br)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	switch {
	case strings.HasPrefix(first, "#masscan") || strings.HasPrefix(first, "open tcp ") || strings.HasPrefix(first, "open udp "):
		return readHits(br, name, false, parseMasscan)
	case !strings.HasPrefix(first, "#") && csvHasField(first, "saddr"):
		h, err := csvHeader(first)
		if err != nil {
			return nil, fmt.Errorf("%s:1: %w", name, err)
		}
		return readHits(br, name, true, h.row)
	}
	return ReadList(br, name)
}

// firstLine returns the first line with text among the first bytes of br, not consuming them.
func firstLine(br *bufio.Reader) (string, error) {
	b, err := br.Peek(br.Size())
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if t := strings.TrimSpace(strings.TrimPrefix(line, "\uFEFF")); t != "" {
			return t, nil
		}
	}
	return "", nil
}

// readHits reads a scanner's output line by line, after its header line if header; parse
// returns the spec of a line, or "" for a line that names no open target.
func readHits(br *bufio.Reader, name string, header bool, parse func(string) (string, error)) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\uFEFF"))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if header {
			header = false
			continue
		}
		spec, err := parse(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if spec != "" {
			out = append(out, spec)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// parseMasscan parses a line of masscan -oL: "open tcp 104 192.0.2.1 1700000000".
func parseMasscan(line string) (string, error) {
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "open" {
		return "", nil // banners and other states name no open port
	}
	if f[1] != "tcp" {
		return "", nil
	}
	a, err := netip.ParseAddr(f[3])
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("masscan list: bad address %s", quote(f[3]))
	}
	p, err := parsePort(f[2])
	if err != nil {
		return "", fmt.Errorf("masscan list: %w", err)
	}
	return netip.AddrPortFrom(a.Unmap(), p).String(), nil
}

// zmapCSV is the layout of ZMap's CSV output.
type zmapCSV struct {
	saddr, sport, success, n int // column indexes, -1 when absent; n columns
}

func csvHasField(header, field string) bool {
	for f := range strings.SplitSeq(header, ",") {
		if strings.TrimSpace(f) == field {
			return true
		}
	}
	return false
}

func csvHeader(header string) (zmapCSV, error) {
	h := zmapCSV{saddr: -1, sport: -1, success: -1}
	for i, f := range strings.Split(header, ",") {
		switch strings.TrimSpace(f) {
		case "saddr":
			h.saddr = i
		case "sport":
			h.sport = i
		case "success":
			h.success = i
		}
		h.n = i + 1
	}
	if h.saddr < 0 {
		return h, fmt.Errorf("zmap csv: no saddr column")
	}
	return h, nil
}

// row parses one row of ZMap's CSV.
func (h zmapCSV) row(line string) (string, error) {
	f := strings.Split(line, ",")
	if len(f) != h.n {
		return "", fmt.Errorf("zmap csv: %d columns, the header has %d", len(f), h.n)
	}
	if h.success >= 0 && strings.TrimSpace(f[h.success]) == "0" {
		return "", nil
	}
	a, err := netip.ParseAddr(strings.TrimSpace(f[h.saddr]))
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("zmap csv: bad saddr %s", quote(f[h.saddr]))
	}
	a = a.Unmap()
	if h.sport < 0 {
		return a.String(), nil
	}
	p, err := strconv.ParseUint(strings.TrimSpace(f[h.sport]), 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("zmap csv: bad sport %s", quote(f[h.sport]))
	}
	return netip.AddrPortFrom(a, uint16(p)).String(), nil
}
