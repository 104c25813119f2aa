package dicomprobe

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// Counting (SPEC "Exposure levels") uses the Query/Retrieve FIND service of PS3.4 Annex C with
// hierarchical queries (§C.4.1.3.1): a universal STUDY-level query asking only for allow-listed
// keys; STUDY-level queries on Study Date ranges (§C.2.2.2.5) when the server caps its answers;
// SERIES- and IMAGE-level queries under one study or series where the server does not compute
// NumberOfStudyRelatedInstances (§C.3.4).
//
// Cost on an uncapped archive: the universal query plus two date halves that return each study
// once more, which is how a server that silently stops at N answers is told from one that holds N
// studies. A capped archive costs two queries per slice split: 2 to 4 × studies/cap in all.
// Instances cost nothing more where the server computes them (Orthanc), else one SERIES-level
// query per study and one IMAGE-level query per series lacking NumberOfSeriesRelatedInstances
// (dcmqrscp: 1 + series per study). Config.QueryBudget bounds the total.

// Limits of one host's measurement.
const (
	defaultQueryBudget = 2000
	// maxStudies bounds the distinct studies counted on one host: 8-byte keys in a map, about
	// 40 MB at the bound. Beyond it the count stops and is not exact.
	maxStudies = 1 << 20
	// maxResponses bounds the responses read from one C-FIND, duplicates included.
	maxResponses = 1 << 20
	// maxSeriesPerStudy bounds the series of one study kept for IMAGE-level counting.
	maxSeriesPerStudy = 10000
	// maxDays bounds the study dates sampled from one answer to choose where to split its span.
	maxDays = 1 << 16
	// firstWait is how many steps (Config.Timeout) a C-FIND's first response may take.
	firstWait = 4
	// maxCountValue bounds a server-computed number of instances of one study or series;
	// larger values are not believed.
	maxCountValue = 1 << 24
)

// errStepTimeout reports a peer that sent nothing for a whole step (Config.Timeout).
var errStepTimeout = fmt.Errorf("dicomprobe: no answer within the step timeout: %w", os.ErrDeadlineExceeded)

// Allow-lists of the response keys kept at parse time (SPEC allow-list); every other key a server
// sends is skipped without being copied. Specific Character Set is not kept: every value read
// (UI, DA, CS, IS) is in the default repertoire, which a server's character set cannot change, and
// a hostile (0008,0005) with a text VR such as PN must not reach the decoder.
var (
	studyKeys = dimse.AllowTags(dicom.StudyDate, dicom.ModalitiesInStudy, dicom.StudyInstanceUID,
		dicom.NumberOfStudyRelatedInstances)
	seriesKeys = dimse.AllowTags(dicom.Modality, dicom.SeriesInstanceUID, dicom.NumberOfSeriesRelatedInstances)
)

// measure counts what the association exposes (studies, instances, modalities), filling
// r.Exposure and r.DICOM.Services' query services, and returns the counter, whose sample study
// retrieve tests. It reports false when the association ended while counting (r then says why).
//
// Nothing a server sent leaves measure but counts, sanitized modalities and statuses: study,
// series and instance UIDs stay in memory only as long as the follow-up queries need them, and
// studies are told apart by a keyed hash (HMAC-SHA-256 with Config.Secret).
func (p *Prober) measure(ctx context.Context, a *ul.Assoc, r *probe.Result) (*counter, bool) {
	d, e := r.DICOM, r.Exposure
	log := p.cfg.Logger.With("target", r.IP.String(), "port", r.Port)
	d.Services.FindStudy, d.Services.FindPatient, d.Services.Get, d.Services.Move = false, false, false, false

	c := p.newCounter(a, log)
	if p.cfg.VerifyRetrieve {
		c.hold = 2 // the SERIES and IMAGE queries that find one instance to retrieve
	}
	err := c.count(ctx)
	c.fill(e)
	switch c.model {
	case dimse.StudyRootFind:
		d.Services.FindStudy = c.answered
	case dimse.PatientRootFind:
		d.Services.FindPatient = c.answered
	}
	log.Debug("count", "studies", e.Studies, "exact", e.StudiesExact, "instances", e.Instances,
		"instances_source", e.InstancesSource, "queries", c.spent, "error", probe.SafeError(err))
	switch {
	case e.Studies > 0:
		e.Level = probe.LevelQuery
	case d.Services.Echo:
		e.Level = probe.LevelEcho // queries refused, aborted or empty
	default:
		e.Level = probe.LevelProtected
	}
	if err != nil {
		r.Error = "c-find: " + errorText(err)
		return c, false
	}
	return c, true
}

// A counter measures one association's archive. Its raw UIDs (pending, sample) live only as long
// as the probe of the host.
type counter struct {
	a      *ul.Assoc
	log    *slog.Logger
	step   time.Duration // the longest a peer may keep us waiting for the next response
	model  string        // the information model that answered, or was last tried
	budget int           // C-FIND requests left
	hold   int           // requests of the budget kept back for the retrieval tests
	spent  int           // C-FIND requests sent

	maxStudies, maxResponses int // limits; the constants, smaller in tests

	mac  hash.Hash
	sum  []byte
	seen map[uint64]struct{} // studies, by the first 8 bytes of their keyed hash

	answered  bool  // a C-FIND was answered (pending responses, or a final status that is no refusal)
	exact     bool  // the study count is exact
	truncated bool  // a limit of ours cut the count short
	noUID     int64 // responses to the universal query without a Study Instance UID
	undated   int64 // studies of the universal query without a usable Study Date

	counted   int64                 // studies whose instances are known
	instances int64                 // their instances
	source    probe.InstancesSource // the weakest source among them

	pending []pendingStudy // a uniform sample of the studies still to count by SERIES/IMAGE queries
	reserve int            // pending's capacity: the budget, less what is held back
	offered int64          // studies offered to pending
	stopped bool           // the server refused a follow-up query: no more are sent
	mods    map[string]int64
	sample  string // one Study Instance UID, for the retrieval tests
}

// A pendingStudy is a study whose instances (and perhaps modalities) are counted with SERIES- and
// IMAGE-level queries.
type pendingStudy struct {
	uid        string
	modalities bool // the STUDY-level answer had no ModalitiesInStudy: take them from the series
}

func (p *Prober) newCounter(a *ul.Assoc, log *slog.Logger) *counter {
	key := p.cfg.Secret
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key) // hashes never leave the probe: a key of its own is as good as a shared one
	}
	budget := p.cfg.QueryBudget
	if budget <= 0 {
		budget = defaultQueryBudget
	}
	return &counter{
		a: a, log: log, step: p.cfg.Timeout, budget: budget,
		maxStudies: maxStudies, maxResponses: maxResponses,
		mac: hmac.New(sha256.New, key), seen: map[uint64]struct{}{}, exact: true,
	}
}

// count counts studies and instances. A non-nil error means the association ended.
func (c *counter) count(ctx context.Context) error {
	defer func() { c.pending = nil }() // raw UIDs live no longer than the queries that need them
	c.reserve = max(c.budget-c.hold, 0)
	res, err := c.studyQuery(ctx, dimse.StudyRootFind)
	if err == nil && res.refused() {
		// Some servers offer only the Patient Root model. A STUDY-level query in it without
		// Patient ID is not strictly hierarchical, but it is the only one that asks for no
		// patient key.
		res, err = c.studyQuery(ctx, dimse.PatientRootFind)
	}
	c.answered = res.n > 0 || err == nil && !res.refused()
	c.log.Debug("c-find", "model", c.model, "responses", res.n, "status", res.status, "error", probe.SafeError(err))
	if err != nil || !c.answered {
		c.exact = c.exact && err == nil
		return err
	}
	if err := c.slice(ctx, res); err != nil {
		c.exact = false
		return err
	}
	return c.countPending(ctx)
}

// studyQuery runs the universal STUDY-level query on model's context; a context the server did
// not accept is a refusal.
func (c *counter) studyQuery(ctx context.Context, model string) (sliceResult, error) {
	c.model = model
	if _, ok := c.a.Context(model); !ok {
		return sliceResult{status: dimse.SOPClassNotSupported}, nil
	}
	return c.studies(ctx, allDates)
}

// find sends one C-FIND of the budget and calls each with every response. The peer has firstWait
// steps (Config.Timeout) to send the first response, since Orthanc builds its whole answer before
// sending any (about 50 ms per thousand studies: 15 s for 300,000), then a step for each next one.
func (c *counter) find(ctx context.Context, id dicom.Dataset, allow func(dicom.Tag) bool, each func(*dicom.Dataset) error) (dimse.Status, error) {
	c.budget--
	c.spent++
	ctx, touch, stop := watchdog(ctx, firstWait*c.step, c.step)
	defer stop()
	st, err := dimse.Find(ctx, c.a, c.model, id, dimse.FindOptions{Allow: allow}, func(ds dicom.Dataset) error {
		touch()
		return each(&ds)
	})
	if err != nil && errors.Is(context.Cause(ctx), errStepTimeout) {
		err = errStepTimeout
	}
	return st, err
}

// watchdog returns a context that ends, with cause errStepTimeout, when first passes before touch
// is called or next passes between two calls; stop releases it.
func watchdog(parent context.Context, first, next time.Duration) (ctx context.Context, touch, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	t := time.AfterFunc(first, func() { cancel(errStepTimeout) })
	return ctx, func() { t.Reset(next) }, func() { t.Stop(); cancel(nil) }
}

// A span is a range of study dates, in days since 1970-01-01, both ends included. allDates, from
// 0001-01-01 to 9999-12-31, is the universal query; a span reaching either end is open there.
type span struct{ lo, hi int64 }

var (
	minDay   = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 86400
	maxDay   = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).Unix() / 86400
	allDates = span{minDay, maxDay}
)

// match returns the Study Date matching value of s (PS3.4 §C.2.2.2.5): empty (universal),
// "-YYYYMMDD", "YYYYMMDD-", a single date or "YYYYMMDD-YYYYMMDD".
func (s span) match() string {
	switch {
	case s.lo <= minDay && s.hi >= maxDay:
		return ""
	case s.lo <= minDay:
		return "-" + formatDA(s.hi)
	case s.hi >= maxDay:
		return formatDA(s.lo) + "-"
	case s.lo == s.hi:
		return formatDA(s.lo)
	}
	return formatDA(s.lo) + "-" + formatDA(s.hi)
}

func formatDA(day int64) string { return time.Unix(day*86400, 0).UTC().Format("20060102") }

// parseDA parses a DA value (PS3.5 §6.2), also in the ACR-NEMA form "YYYY.MM.DD", into days
// since 1970-01-01.
func parseDA(s string) (int64, bool) {
	if len(s) == 10 && s[4] == '.' && s[7] == '.' {
		s = s[:4] + s[5:7] + s[8:]
	}
	if len(s) != 8 {
		return 0, false
	}
	t, err := time.Parse("20060102", s)
	if err != nil || t.Year() < 1 {
		return 0, false
	}
	return t.Unix() / 86400, true
}

// A sliceResult is what one STUDY-level query returned.
type sliceResult struct {
	span    span    // the span queried
	n       int     // responses
	fresh   int     // studies not seen before
	days    []int64 // a uniform sample of the dates in the span, to choose where to split it
	dated   int     // responses dated in the span
	outside bool    // a response's date lay outside the span: the server ignores date ranges
	status  dimse.Status
}

// refused reports a query answered by a failure and nothing else.
func (r sliceResult) refused() bool { return r.n == 0 && r.status.Class() == dimse.ClassFailure }

// cut reports an answer that says it is incomplete: Orthanc ends one cut short by its
// LimitFindResults with status Cancel (0xFE00) though nobody cancelled; others with a failure
// after some matches.
func (r sliceResult) cut() bool { return r.n > 0 && !whole(r.status) }

// studies runs one STUDY-level query restricted to s and records the studies it returns.
func (c *counter) studies(ctx context.Context, s span) (sliceResult, error) {
	var id dicom.Dataset
	id.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	id.Set(dicom.NewString(dicom.StudyInstanceUID))
	id.Set(dicom.NewString(dicom.StudyDate, s.match()))
	id.Set(dicom.NewString(dicom.ModalitiesInStudy))
	id.Set(dicom.NewString(dicom.NumberOfStudyRelatedInstances))
	res := sliceResult{span: s}
	st, err := c.find(ctx, id, studyKeys, func(ds *dicom.Dataset) error { return c.addStudy(ds, &res) })
	res.status = st
	if c.truncated {
		c.exact = false
	}
	return res, err
}

// addStudy records one response of the STUDY-level query res is the result of. It returns
// dimse.ErrStop when a limit of ours is reached.
func (c *counter) addStudy(ds *dicom.Dataset, res *sliceResult) error {
	if res.n++; res.n > c.maxResponses {
		c.truncated = true
		return dimse.ErrStop
	}
	date, _ := ds.String(dicom.StudyDate)
	day, dated := parseDA(date)
	if dated {
		if day < res.span.lo || day > res.span.hi {
			res.outside = true
		} else if res.dated++; len(res.days) < maxDays {
			res.days = append(res.days, day)
		} else if j := mrand.IntN(res.dated); j < maxDays {
			res.days[j] = day
		}
	}
	universal := res.span == allDates
	uid, _ := ds.String(dicom.StudyInstanceUID)
	if uid == "" {
		if universal { // not a study we can tell apart: counted once, from the universal query
			c.noUID++
			if n, ok := countValue(ds, dicom.NumberOfStudyRelatedInstances); ok {
				c.addCounted(n, probe.InstancesSourceStudyAttr)
			}
		}
		return nil
	}
	k := c.key(uid)
	if _, ok := c.seen[k]; ok {
		return nil
	}
	if len(c.seen) >= c.maxStudies {
		c.truncated = true
		return dimse.ErrStop
	}
	c.seen[k] = struct{}{}
	res.fresh++
	if universal && !dated {
		c.undated++
	}
	if c.sample == "" {
		c.sample = uid
	}
	mods := ds.Strings(dicom.ModalitiesInStudy)
	c.addModalities(mods)
	if n, ok := countValue(ds, dicom.NumberOfStudyRelatedInstances); ok {
		c.addCounted(n, probe.InstancesSourceStudyAttr)
	} else {
		c.offer(pendingStudy{uid: uid, modalities: len(mods) == 0})
	}
	return nil
}

// key returns the first 8 bytes of HMAC-SHA-256(secret, uid): 64 bits tell a million studies
// apart with a collision chance below one in ten million.
func (c *counter) key(uid string) uint64 {
	c.mac.Reset()
	c.mac.Write([]byte(uid))
	c.sum = c.mac.Sum(c.sum[:0])
	return binary.BigEndian.Uint64(c.sum)
}

// countValue reads a server-computed number of instances; a negative or implausible one is absent.
func countValue(ds *dicom.Dataset, t dicom.Tag) (int64, bool) {
	n, ok := ds.Int(t)
	return n, ok && n >= 0 && n <= maxCountValue
}

func (c *counter) addCounted(n int64, src probe.InstancesSource) {
	c.counted++
	c.instances += n // at most maxStudies × maxCountValue: no overflow
	c.source = max(c.source, src)
}

// offer adds st to pending as reservoir sampling does (Vitter's algorithm R), so that when the
// budget cannot count every study, those counted are a uniform sample for the estimate.
func (c *counter) offer(st pendingStudy) {
	c.offered++
	if len(c.pending) < c.reserve {
		c.pending = append(c.pending, st)
	} else if j := mrand.Int64N(c.offered); j < int64(len(c.pending)) {
		c.pending[j] = st
	}
}

// addModalities counts one study under each of its distinct modalities.
func (c *counter) addModalities(vals []string) {
	var done []string
	for _, v := range vals {
		m := modality(v)
		if m == "" || slices.Contains(done, m) {
			continue
		}
		done = append(done, m)
		if c.mods == nil {
			c.mods = map[string]int64{}
		}
		if _, ok := c.mods[m]; !ok && len(c.mods) >= probe.MaxModalities-1 {
			m = "OTHER" // keep the map small whatever a server sends
			if slices.Contains(done, m) {
				continue
			}
			done = append(done, m)
		}
		c.mods[m]++
	}
}

// modality sanitizes a Modality or ModalitiesInStudy value: 1 to 16 upper-case letters and
// digits are kept (the defined terms of PS3.3 §C.7.3.1.1.1 are), anything else is "OTHER".
func modality(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if len(v) > probe.MaxModality {
		return "OTHER"
	}
	for i := 0; i < len(v); i++ {
		if (v[i] < 'A' || v[i] > 'Z') && (v[i] < '0' || v[i] > '9') {
			return "OTHER"
		}
	}
	return v
}

// slice finds out whether the universal answer first was cut short by a result cap and, if so,
// counts every study by querying ever smaller Study Date spans until each answer is under the cap.
//
// The two halves of the date span, split at the median date of first, are queried in every case:
// if they hold no study that first lacked, first was complete. Otherwise the cap is first's size
// (or a status says so) and every half at the cap is split in turn at the median of its own dates,
// down to single days. Studies without a Study Date match no span: they are counted from first.
func (c *counter) slice(ctx context.Context, first sliceResult) error {
	capped := first.cut()
	if first.n < 2 && !capped || c.truncated {
		return nil
	}
	if capped && c.undated > 0 {
		c.exact = false // the cap may have hidden undated studies, which no span reaches
	}
	type work struct {
		s    span
		days []int64
	}
	queue := []work{{allDates, first.days}}
	probing := !capped // the first split only looks for a cap
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		if w.s.lo == w.s.hi {
			c.exact = false // one day holds more studies than the cap
			continue
		}
		if c.budget-c.hold < 2 {
			c.exact = false
			return nil
		}
		m := splitDay(w.s, w.days)
		fresh := 0
		var next []work
		for _, half := range []span{{w.s.lo, m}, {m + 1, w.s.hi}} {
			res, err := c.studies(ctx, half)
			if err != nil {
				return err
			}
			if res.outside || res.refused() || c.truncated {
				// No date ranges, or our own limits: slicing cannot make the count exact. While
				// probing for a cap, nothing new seen means none was found.
				c.exact = c.exact && probing && fresh+res.fresh == 0 && !c.truncated
				return nil
			}
			fresh += res.fresh
			if res.cut() || res.n >= first.n {
				next = append(next, work{half, res.days})
			}
		}
		if probing {
			if fresh == 0 {
				return nil // the halves held nothing new: first was the whole archive
			}
			probing = false
			c.exact = c.exact && c.undated == 0
		}
		queue = append(queue, next...)
	}
	if !probing {
		c.log.Debug("c-find answers capped: counted by study date", "cap", first.n, "studies", len(c.seen), "queries", c.spent)
	}
	return nil
}

// splitDay returns where to split s: the median of the dates seen in it, so that each half holds
// about half of them, or its middle when none was seen; always lo ≤ m < hi.
func splitDay(s span, days []int64) int64 {
	var in []int64
	for _, d := range days {
		if d >= s.lo && d <= s.hi {
			in = append(in, d)
		}
	}
	m := s.lo + (s.hi-s.lo)/2
	if len(in) > 0 {
		slices.Sort(in)
		m = in[(len(in)-1)/2]
	}
	return min(max(m, s.lo), s.hi-1)
}

// whole reports a final C-FIND status that says every match was sent: success, or a warning
// (PS3.4 §C.4.1.1.4). Cancel is how Orthanc ends an answer cut short by LimitFindInstances.
func whole(s dimse.Status) bool { return s == dimse.Success || s.Class() == dimse.ClassWarning }

// fill writes the counts into e: instances of the studies not counted are extrapolated from the
// mean of those counted.
func (c *counter) fill(e *probe.Exposure) {
	e.Studies = int64(len(c.seen)) + c.noUID
	e.StudiesExact = c.exact && c.answered
	e.Modalities = c.mods
	e.Instances, e.InstancesSource = 0, probe.InstancesSourceNone
	switch {
	case c.counted == 0:
	case c.counted >= e.Studies:
		e.Instances, e.InstancesSource = c.instances, c.source
	default:
		est := math.Round(float64(c.instances) / float64(c.counted) * float64(e.Studies))
		e.Instances, e.InstancesSource = int64(min(est, math.MaxInt64/2)), probe.InstancesSourceEstimate
	}
}
