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
	"sync/atomic"
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
// Cost on an uncapped archive that computes its counts (Orthanc): the universal query alone. A
// cap is told by the answer's final status (Orthanc's Cancel, a failure after matches); only an
// answer that ends with Success at a size servers are known to stop at silently (knownCap), from
// a server not known to signal its cap, costs two date halves more, which return each study once
// more. A capped archive costs two queries per slice split: 2 to 4 × studies/cap in all.
// Instances cost nothing more where the server computes them, else one SERIES-level query per
// study and one IMAGE-level query per series lacking NumberOfSeriesRelatedInstances (dcmqrscp:
// 1 + series per study). Config.QueryBudget bounds the total.
//
// What a server claims is bounded (SPEC plausibility bounds, probe.MaxStudyInstances): a study's
// instance count beyond them and responses without a Study Instance UID are kept apart as
// implausible caveats, never counted; a count that a limit cut short (the server's, or ours:
// maxStudies, maxResponses, the memory budget, the query budget) is a capped lower bound.

// Limits of one host's measurement.
const (
	defaultQueryBudget = 2000
	// maxStudies bounds the distinct studies counted on one host: 8-byte keys in a keySet, 16 MiB
	// at the bound. Beyond it the count stops and is capped.
	maxStudies = 1 << 20
	// maxResponses bounds the responses read from one C-FIND, duplicates included.
	maxResponses = 1 << 20
	// maxSeriesPerStudy bounds the series of one study kept for IMAGE-level counting.
	maxSeriesPerStudy = 10000
	// maxDays bounds the study dates sampled from one answer to choose where to split its span.
	maxDays = 1 << 12
	// firstWait is how many steps (Config.Timeout) a C-FIND's first response may take.
	firstWait = 4
	// pendingCost is what a pending study costs besides its UID's bytes, for the memory budget.
	pendingCost = 32
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
// r.Exposure (counts and caveats) and r.DICOM.Services' query services, and returns the counter,
// whose sample study retrieve tests. It reports false when the association ended while counting
// (r then says why).
//
// Nothing a server sent leaves measure but counts, sanitized modalities, statuses and the numbers
// a caveat quotes: study, series and instance UIDs stay in memory only as long as the follow-up
// queries need them, and studies are told apart by a keyed hash (HMAC-SHA-256 with Config.Secret).
func (p *Prober) measure(ctx context.Context, a *ul.Assoc, r *probe.Result) (*counter, bool) {
	d, e := r.DICOM, r.Exposure
	log := p.cfg.Logger.With("target", r.IP.String(), "port", r.Port)
	d.Services.FindStudy, d.Services.FindPatient, d.Services.Get, d.Services.Move = false, false, false, false

	c := p.newCounter(a, log)
	defer c.release()
	if p.cfg.VerifyRetrieve {
		c.hold = 2 // the SERIES and IMAGE queries that find one instance to retrieve
	}
	err := c.count(ctx)
	if err != nil && c.answered {
		c.capped("the association ended during the count (" + errorText(err) + "): a lower bound")
	}
	c.fill(e)
	switch c.model {
	case dimse.StudyRootFind:
		d.Services.FindStudy = c.answered
	case dimse.PatientRootFind:
		d.Services.FindPatient = c.answered
	}
	log.Debug("count", "studies", e.Studies, "exact", e.StudiesExact, "instances", e.Instances,
		"instances_source", e.InstancesSource, "caveats", len(e.Caveats), "queries", c.spent, "error", probe.SafeError(err))
	switch {
	case e.Studies > 0 || c.noUID > 0: // answers without a study UID: matches, of a kind nobody can count
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
	a       *ul.Assoc
	log     *slog.Logger
	step    time.Duration // the longest a peer may keep us waiting for the next response
	model   string        // the information model that answered, or was last tried
	product string        // the peer's implementation, as Identify names it
	budget  int           // C-FIND requests left
	hold    int           // requests of the budget kept back for the retrieval tests
	spent   int           // C-FIND requests sent

	maxStudies, maxResponses int // limits; the constants, smaller in tests

	mac  hash.Hash
	sum  []byte
	seen keySet // studies, by the first 8 bytes of their keyed hash
	mem  charge // the state this host holds of the Prober's memory budget

	answered  bool   // a C-FIND was answered (pending responses, or a final status that is no refusal)
	exact     bool   // the study count is exact
	truncated bool   // a limit of ours cut the count short
	capReason string // why the study count is a lower bound (caveat capped): the first cause
	noUID     int64  // responses to the universal query without a (valid) Study Instance UID
	undated   int64  // studies of the universal query without a usable Study Date
	computed  bool   // a study answer held NumberOfStudyRelatedInstances

	big    int64 // studies whose claimed instances are beyond probe.MaxStudyInstances
	bigMax int64 // the largest such claim

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
	c := &counter{
		a: a, log: log, step: p.cfg.Timeout, budget: budget,
		maxStudies: maxStudies, maxResponses: maxResponses,
		mac: hmac.New(sha256.New, key), mem: charge{b: p.mem}, exact: true,
	}
	if a != nil {
		info := a.Info()
		c.product, _ = Identify(info.PeerImplementationClassUID, info.PeerImplementationVersion)
	}
	return c
}

// release drops what the counter holds for counting (the study keys) and returns its memory to
// the budget; the sample study stays, for the retrieval tests.
func (c *counter) release() {
	c.seen.free(&c.mem)
	c.pending = nil
	c.mem.close()
}

// capped records that the study count is a lower bound, and why (the first cause is kept).
func (c *counter) capped(reason string) {
	c.exact = false
	if c.capReason == "" {
		c.capReason = reason
	}
}

// truncate records that a limit of ours cut the count short.
func (c *counter) truncate(reason string) {
	c.truncated = true
	c.capped(reason)
}

// count counts studies and instances. A non-nil error means the association ended.
func (c *counter) count(ctx context.Context) error {
	defer c.dropPending() // raw UIDs live no longer than the queries that need them
	c.reserve = max(c.budget-c.hold, 0)
	res, err := c.studyQuery(ctx, dimse.StudyRootFind)
	if err == nil && res.refused() {
		// Some servers offer only the Patient Root model. A STUDY-level query in it without
		// Patient ID is not strictly hierarchical, but it is the only one that asks for no
		// patient key.
		c.dropDays(res.days)
		res, err = c.studyQuery(ctx, dimse.PatientRootFind)
	}
	c.answered = res.n > 0 || err == nil && !res.refused()
	c.log.Debug("c-find", "model", c.model, "responses", res.n, "status", res.status, "error", probe.SafeError(err))
	if err != nil || !c.answered {
		c.dropDays(res.days)
		c.exact = c.exact && err == nil
		return err
	}
	if err := c.slice(ctx, res); err != nil {
		c.exact = false
		return err
	}
	return c.countPending(ctx)
}

// dropDays returns the memory of a date sample to the budget.
func (c *counter) dropDays(days []int64) { c.mem.sub(int64(len(days)) * 8) }

// dropPending forgets the pending studies and returns their memory to the budget.
func (c *counter) dropPending() {
	for _, st := range c.pending {
		c.mem.sub(int64(len(st.uid)) + pendingCost)
	}
	c.pending = nil
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
// is called or next passes between two calls; stop releases it. touch, called for every response,
// only records the time: the first touch re-arms the timer for next, and the timer, when it
// fires, re-arms itself for what is left since the last touch.
func watchdog(parent context.Context, first, next time.Duration) (ctx context.Context, touch, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	start := time.Now()
	var last atomic.Int64 // time of the last touch since start, in ns; 0: none yet
	var stopped atomic.Bool
	var t *time.Timer
	t = time.AfterFunc(first, func() {
		l := last.Load()
		due := first - time.Since(start)
		if l != 0 {
			due = time.Duration(l) + next - time.Since(start)
		}
		switch {
		case stopped.Load():
		case due <= 0:
			cancel(errStepTimeout)
		default:
			t.Reset(due)
		}
	})
	touch = func() {
		if last.Swap(max(int64(time.Since(start)), 1)) == 0 {
			t.Reset(next)
		}
	}
	return ctx, touch, func() { stopped.Store(true); t.Stop(); cancel(nil) }
}

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
	return res, err
}

// addStudy records one response of the STUDY-level query res is the result of. It returns
// dimse.ErrStop when a limit of ours is reached (maxResponses, maxStudies, the memory budget).
func (c *counter) addStudy(ds *dicom.Dataset, res *sliceResult) error {
	if res.n++; res.n > c.maxResponses {
		c.truncate(fmt.Sprintf("more than %d answers to one C-FIND: reading stopped there", c.maxResponses))
		return dimse.ErrStop
	}
	date, _ := ds.String(dicom.StudyDate)
	day, dated := parseDA(date)
	if dated {
		if day < res.span.lo || day > res.span.hi {
			res.outside = true
		} else if res.dated++; len(res.days) < maxDays {
			if c.mem.add(8) {
				res.days = append(res.days, day)
			}
		} else if j := mrand.IntN(res.dated); j < maxDays {
			res.days[j] = day
		}
	}
	universal := res.span == allDates
	uid, _ := ds.String(dicom.StudyInstanceUID)
	if uid == "" || len(uid) > probe.MaxUID {
		if universal { // not a study we can tell apart: kept apart as implausible, never counted
			c.noUID++
		}
		return nil
	}
	k := c.key(uid)
	if c.seen.has(k) {
		return nil
	}
	if c.seen.len() >= c.maxStudies {
		c.truncate(fmt.Sprintf("more than %d distinct studies: counting stopped there", c.maxStudies))
		return dimse.ErrStop
	}
	if !c.seen.add(k, &c.mem) {
		c.truncate(fmt.Sprintf("the scan's memory budget was reached after %d studies: counting stopped there", c.seen.len()))
		return dimse.ErrStop
	}
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
		c.computed = true
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

// countValue reads a server-computed number of instances; a negative one is absent.
func countValue(ds *dicom.Dataset, t dicom.Tag) (int64, bool) {
	n, ok := ds.Int(t)
	return n, ok && n >= 0
}

// addCounted counts a study of n instances, from src, unless n is beyond the plausibility
// bound: then the study's instances are not counted, and the claim is kept apart (implausible).
func (c *counter) addCounted(n int64, src probe.InstancesSource) {
	if n > probe.MaxStudyInstances {
		c.implausibleStudy(n)
		return
	}
	c.counted++
	c.instances += n // at most maxStudies × MaxStudyInstances: no overflow
	c.source = max(c.source, src)
}

// implausibleStudy records a study that claims n instances, beyond probe.MaxStudyInstances.
func (c *counter) implausibleStudy(n int64) {
	c.big++
	c.bigMax = max(c.bigMax, n)
}

// offer adds st to pending as reservoir sampling does (Vitter's algorithm R), so that when the
// budget cannot count every study, those counted are a uniform sample for the estimate. A study
// the memory budget has no room for is not offered.
func (c *counter) offer(st pendingStudy) {
	c.offered++
	if len(c.pending) < c.reserve {
		if c.mem.add(int64(len(st.uid)) + pendingCost) {
			c.pending = append(c.pending, st)
		}
	} else if j := mrand.Int64N(c.offered); j < int64(len(c.pending)) {
		d := int64(len(st.uid) - len(c.pending[j].uid))
		if d <= 0 || c.mem.add(d) {
			c.mem.sub(max(-d, 0))
			c.pending[j] = st
		}
	}
}

// addModalities counts one study under each of its distinct modalities.
func (c *counter) addModalities(vals []string) {
	var done []string
	for _, v := range vals {
		m := probe.Modality(v)
		if m == "" || slices.Contains(done, m) {
			continue
		}
		done = append(done, m)
		if c.mods == nil {
			c.mods = map[string]int64{}
		}
		if _, ok := c.mods[m]; !ok && len(c.mods) >= probe.MaxModalities-1 {
			m = probe.ModalityOther // keep the map small whatever a server sends
			if slices.Contains(done, m) {
				continue
			}
			done = append(done, m)
		}
		c.mods[m]++
	}
}

// fill writes the counts and their caveats into e (SPEC "Result record"). Studies are the
// distinct studies with a Study Instance UID; StudiesExact says the count is complete and
// plausible: false with a capped caveat for a lower bound, or an implausible one for responses
// that could not be told apart. Instances of the studies not counted are extrapolated from the
// mean of those counted (caveat estimate); instance counts beyond the plausibility bound are
// kept apart (caveat implausible).
func (c *counter) fill(e *probe.Exposure) {
	e.Studies = int64(c.seen.len())
	if c.answered && !c.exact && c.capReason == "" {
		c.capReason = "the count stopped short: a lower bound"
	}
	e.StudiesExact = c.exact && c.answered && c.noUID == 0
	e.Modalities = c.mods
	e.Instances, e.InstancesSource = 0, probe.InstancesSourceNone
	switch {
	case c.counted == 0:
	case c.counted >= e.Studies:
		e.Instances, e.InstancesSource = c.instances, c.source
	default:
		est := math.Round(float64(c.instances) / float64(c.counted) * float64(e.Studies))
		e.Instances, e.InstancesSource = int64(min(est, math.MaxInt64/2)), probe.InstancesSourceEstimate
		e.AddCaveat(probe.CaveatEstimate, fmt.Sprintf("instances counted in %d of %d studies, the rest extrapolated from their mean", c.counted, e.Studies))
	}
	if c.answered && c.capReason != "" {
		e.AddCaveat(probe.CaveatCapped, c.capReason)
	}
	if c.noUID > 0 {
		e.AddCaveat(probe.CaveatImplausible, fmt.Sprintf("%d C-FIND answers without a valid StudyInstanceUID: not counted as studies", c.noUID))
	}
	if c.big > 0 {
		e.AddCaveat(probe.CaveatImplausible, fmt.Sprintf("%d studies claim more than %d instances (largest claim %d): their instances not counted", c.big, probe.MaxStudyInstances, c.bigMax))
	}
}
