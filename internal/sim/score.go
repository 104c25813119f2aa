package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"text/tabwriter"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// Score is how a scan's results compare with a fleet's truth. Each host:port counts once: the
// truth's hosts, and every other result as a closed address that the scan may have misreported.
// Hostile hosts are scored apart: they count only as classified or not.
type Score struct {
	Results    int `json:"results"`    // results read
	Duplicates int `json:"duplicates"` // results for a host:port already seen (the first counts)
	TruthHosts int `json:"truth_hosts"`
	Missing    int `json:"missing"` // truth hosts without a result (scored as closed)

	Fields  []FieldScore `json:"fields"`
	Counts  []CountScore `json:"counts"`
	Hostile HostileScore `json:"hostile"`
}

// FieldScore counts the hosts that have one value of one field, in the truth and in the results.
// The fields are:
//   - dicom, accepted, exposed: the level is at least protected, echo, query;
//   - level, ae_check, retrieve: each value (a verified retrieval counts as accepted);
//   - tls: the association ran over TLS;
//   - called_ae: for hosts whose truth names the called AE title they accept, Reported counts
//     those with an accepted association and Correct those with that very title;
//   - modalities: readable hosts whose studies per modality are exactly the truth's;
//   - honeypot: flagged as a honeypot (dicom.honeypot, or a caveat "honeypot"): recall is the
//     share of the truth's honeypots flagged, precision the share of flags that are honeypots.
type FieldScore struct {
	Field    string `json:"field"`
	Value    string `json:"value"`
	Truth    int    `json:"truth"`
	Reported int    `json:"reported"`
	Correct  int    `json:"correct"`
}

// Precision is Correct/Reported, 1 when nothing was reported.
func (f FieldScore) Precision() float64 { return ratio(f.Correct, f.Reported) }

// Recall is Correct/Truth, 1 when the truth has no such host.
func (f FieldScore) Recall() float64 { return ratio(f.Correct, f.Truth) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// MarshalJSON adds precision and recall.
func (f FieldScore) MarshalJSON() ([]byte, error) {
	type plain FieldScore
	return json.Marshal(struct {
		plain
		Precision float64 `json:"precision"`
		Recall    float64 `json:"recall"`
	}{plain(f), f.Precision(), f.Recall()})
}

// CountScore compares one count over the hosts whose archive the truth says is readable.
type CountScore struct {
	Field    string `json:"field"` // studies or instances
	Hosts    int    `json:"hosts"`
	Exact    int    `json:"exact"` // hosts reported with exactly the truth's count
	Truth    int64  `json:"truth"`
	Reported int64  `json:"reported"`
	AbsError int64  `json:"abs_error"` // Σ |reported − truth|
}

// RelError is AbsError/Truth.
func (c CountScore) RelError() float64 {
	if c.Truth == 0 {
		return 0
	}
	return float64(c.AbsError) / float64(c.Truth)
}

// HostileScore says how the hostile hosts ended.
type HostileScore struct {
	Hosts      int `json:"hosts"`
	Classified int `json:"classified"` // a result with a status, that did not overrun its deadline
	Overran    int `json:"overran"`    // the scan engine abandoned the probe, or it panicked
	Missing    int `json:"missing"`
}

// Perfect reports whether the results match the truth in every field and count, with every
// hostile host classified, and nothing missing or duplicated.
func (s *Score) Perfect() bool {
	for _, f := range s.Fields {
		if f.Correct != f.Truth || f.Reported != f.Truth {
			return false
		}
	}
	for _, c := range s.Counts {
		if c.Exact != c.Hosts {
			return false
		}
	}
	return s.Missing == 0 && s.Duplicates == 0 && s.Hostile.Classified == s.Hostile.Hosts
}

// Field returns the score of field's value, and whether it exists.
func (s *Score) Field(field, value string) (FieldScore, bool) {
	for _, f := range s.Fields {
		if f.Field == field && f.Value == value {
			return f, true
		}
	}
	return FieldScore{}, false
}

// fieldValues lists the rows of Score.Fields, in order.
var fieldValues = []struct{ field, value string }{
	{"dicom", "yes"}, {"accepted", "yes"}, {"exposed", "yes"},
	{"level", probe.LevelNotDICOM.String()}, {"level", probe.LevelProtected.String()},
	{"level", probe.LevelEcho.String()}, {"level", probe.LevelQuery.String()}, {"level", probe.LevelRetrieve.String()},
	{"ae_check", probe.AECheckNone.String()}, {"ae_check", probe.AECheckCalled.String()}, {"ae_check", probe.AECheckCalling.String()},
	{"called_ae", "match"},
	{"tls", "yes"},
	{"retrieve", probe.RetrieveRefused.String()}, {"retrieve", probe.RetrieveAccepted.String()},
	{"modalities", "exact"},
	{"honeypot", "yes"},
}

// A scorer accumulates a Score.
type scorer struct {
	s      Score
	truth  map[netip.AddrPort]*Host
	got    map[netip.AddrPort]*probe.Result // results for truth hosts
	seen   map[netip.AddrPort]struct{}      // every host:port reported
	fields map[[2]string]*FieldScore
	counts [2]CountScore
}

func newScorer(t Truth) *scorer {
	sc := &scorer{
		truth:  make(map[netip.AddrPort]*Host, len(t.Hosts)),
		got:    make(map[netip.AddrPort]*probe.Result, len(t.Hosts)),
		seen:   map[netip.AddrPort]struct{}{},
		fields: map[[2]string]*FieldScore{},
		counts: [2]CountScore{{Field: "studies"}, {Field: "instances"}},
	}
	sc.s.TruthHosts = len(t.Hosts)
	for i := range t.Hosts {
		sc.truth[t.Hosts[i].Addr] = &t.Hosts[i]
	}
	for _, fv := range fieldValues {
		f := &FieldScore{Field: fv.field, Value: fv.value}
		sc.fields[[2]string{fv.field, fv.value}] = f
		sc.s.Fields = append(sc.s.Fields, *f)
	}
	return sc
}

// add takes one result. Results for addresses outside the truth are scored at once, as closed
// addresses; those of truth hosts at the end.
func (sc *scorer) add(r probe.Result) {
	sc.s.Results++
	k := netip.AddrPortFrom(r.IP, r.Port)
	if _, dup := sc.seen[k]; dup {
		sc.s.Duplicates++
		return
	}
	sc.seen[k] = struct{}{}
	if _, ok := sc.truth[k]; ok {
		sc.got[k] = &r
		return
	}
	sc.compare(&Host{}, &r)
}

// finish scores the truth hosts and returns the score.
func (sc *scorer) finish() *Score {
	for k, t := range sc.truth {
		r := sc.got[k]
		if t.Hostile != "" {
			sc.hostile(r)
			continue
		}
		if r == nil {
			sc.s.Missing++
			r = &probe.Result{IP: k.Addr(), Port: k.Port(), Status: probe.StatusClosed}
		}
		sc.compare(t, r)
	}
	for i := range sc.s.Fields {
		sc.s.Fields[i] = *sc.fields[[2]string{sc.s.Fields[i].Field, sc.s.Fields[i].Value}]
	}
	sc.s.Counts = sc.counts[:]
	return &sc.s
}

func (sc *scorer) hostile(r *probe.Result) {
	h := &sc.s.Hostile
	h.Hosts++
	switch {
	case r == nil:
		h.Missing++
	case r.Error == probe.TextOverrun || r.Error == probe.TextPanic || r.Error == probe.TextNoStatus:
		h.Overran++
	case r.Status >= probe.StatusOpen && r.Status <= probe.StatusError:
		h.Classified++
	}
}

// compare scores one host: t is its truth (a zero Host for a closed address), r its result.
func (sc *scorer) compare(t *Host, r *probe.Result) {
	tally := func(field, value string, truth, reported, correct bool) {
		f := sc.fields[[2]string{field, value}]
		if truth {
			f.Truth++
		}
		if reported {
			f.Reported++
		}
		if truth && reported && correct {
			f.Correct++
		}
	}
	tl, rl := t.Level, r.Level()
	tally("dicom", "yes", tl >= probe.LevelProtected, rl >= probe.LevelProtected, true)
	tally("accepted", "yes", tl >= probe.LevelEcho, rl >= probe.LevelEcho, true)
	tally("exposed", "yes", tl >= probe.LevelQuery, rl >= probe.LevelQuery, true)
	for _, l := range []probe.Level{probe.LevelNotDICOM, probe.LevelProtected, probe.LevelEcho, probe.LevelQuery, probe.LevelRetrieve} {
		tally("level", l.String(), tl == l, rl == l, true)
	}

	var d probe.DICOM
	if r.DICOM != nil {
		d = *r.DICOM
	}
	for _, c := range []probe.AECheck{probe.AECheckNone, probe.AECheckCalled, probe.AECheckCalling} {
		tally("ae_check", c.String(), t.AECheck == c, d.AECheck == c, true)
	}
	if t.CalledAE != "" {
		accepted := d.Association == probe.AssociationAccepted
		tally("called_ae", "match", true, accepted, d.CalledAE == t.CalledAE)
	}
	tally("tls", "yes", t.TLS, d.TLS, true)

	var e probe.Exposure
	if r.Exposure != nil {
		e = *r.Exposure
	}
	if e.Retrieve == probe.RetrieveVerified {
		e.Retrieve = probe.RetrieveAccepted
	}
	for _, v := range []probe.Retrieve{probe.RetrieveRefused, probe.RetrieveAccepted} {
		tally("retrieve", v.String(), t.Retrieve == v, e.Retrieve == v, true)
	}
	tally("honeypot", "yes", t.Honeypot, flaggedHoneypot(r), true)
	readable := tl >= probe.LevelQuery
	tally("modalities", "exact", readable, rl >= probe.LevelQuery, maps.Equal(t.Modalities, e.Modalities))
	if !readable {
		return
	}
	for i, v := range [2][2]int64{{t.Studies, e.Studies}, {t.Instances, e.Instances}} {
		c := &sc.counts[i]
		c.Hosts++
		c.Truth += v[0]
		c.Reported += v[1]
		if v[0] == v[1] {
			c.Exact++
		}
		c.AbsError += max(v[0]-v[1], v[1]-v[0])
	}
}

// flaggedHoneypot reports whether a scan flagged r as a honeypot.
func flaggedHoneypot(r *probe.Result) bool {
	if r.DICOM != nil && r.DICOM.Honeypot {
		return true
	}
	return r.Exposure != nil && slices.ContainsFunc(r.Exposure.Caveats, func(c probe.Caveat) bool { return c.Kind == probe.CaveatHoneypot })
}

// Compare scores results against t.
func Compare(t Truth, results []probe.Result) *Score {
	sc := newScorer(t)
	for _, r := range results {
		sc.add(r)
	}
	return sc.finish()
}

// maxLine bounds one line of a results file.
const maxLine = 1 << 20

// CompareJSONL scores the results of a JSON Lines file (pacswatch scan -o) against t. Blank
// lines are skipped; a line that is not a result is an error.
func CompareJSONL(t Truth, r io.Reader) (*Score, error) {
	sc := newScorer(t)
	in := bufio.NewScanner(r)
	in.Buffer(make([]byte, 0, 64<<10), maxLine)
	for n := 1; in.Scan(); n++ {
		line := in.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var res probe.Result
		if err := json.Unmarshal(line, &res); err != nil {
			return nil, fmt.Errorf("sim: results line %d: %w", n, err)
		}
		if !res.IP.IsValid() {
			return nil, fmt.Errorf("sim: results line %d: no ip", n)
		}
		sc.add(res)
	}
	if err := in.Err(); err != nil {
		return nil, fmt.Errorf("sim: read results: %w", err)
	}
	return sc.finish(), nil
}

// WriteText writes s as tables: fields with precision and recall, counts with their errors,
// and the hostile hosts.
func (s *Score) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "results %d, duplicates %d, truth hosts %d, missing %d\n", s.Results, s.Duplicates, s.TruthHosts, s.Missing)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "field\tvalue\ttruth\treported\tcorrect\tprecision\trecall\t")
	for _, f := range s.Fields {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t\n", f.Field, f.Value, f.Truth, f.Reported, f.Correct, pct(f.Correct, f.Reported), pct(f.Correct, f.Truth))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "count\thosts\texact\ttruth\treported\tabs_error\trel_error\t")
	for _, c := range s.Counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.2f%%\t\n", c.Field, c.Hosts, c.Exact, c.Truth, c.Reported, c.AbsError, 100*c.RelError())
	}
	fmt.Fprintln(tw)
	h := s.Hostile
	fmt.Fprintf(tw, "hostile\thosts %d\tclassified %d\toverran %d\tmissing %d\t\n", h.Hosts, h.Classified, h.Overran, h.Missing)
	verdict := "imperfect"
	if s.Perfect() {
		verdict = "perfect"
	}
	fmt.Fprintf(tw, "score\t%s\t\n", verdict)
	return tw.Flush()
}

func pct(a, b int) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}
