package dicomprobe

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/targets"
)

func TestParseDA(t *testing.T) {
	day := func(y, m, d int) int64 { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix() / 86400 }
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"20240229", day(2024, 2, 29), true},
		{"19691231", -1, true},
		{"2019.07.04", day(2019, 7, 4), true}, // ACR-NEMA
		{"00010101", minDay, true},
		{"99991231", maxDay, true},
		{"20230229", 0, false}, // not a leap year
		{"00000101", 0, false},
		{"2024-01-01", 0, false},
		{"2024010", 0, false},
		{"", 0, false},
		{"FAKE^PAT", 0, false},
	} {
		got, ok := parseDA(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseDA(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSpanMatch(t *testing.T) {
	d := func(s string) int64 { n, _ := parseDA(s); return n }
	for _, tc := range []struct {
		s    span
		want string
	}{
		{allDates, ""},
		{span{minDay, d("20191231")}, "-20191231"},
		{span{d("20200101"), maxDay}, "20200101-"},
		{span{d("20200101"), d("20200101")}, "20200101"},
		{span{d("20200101"), d("20201231")}, "20200101-20201231"},
	} {
		if got := tc.s.match(); got != tc.want {
			t.Errorf("%v.match() = %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestSplitDay(t *testing.T) {
	for _, tc := range []struct {
		s    span
		days []int64
		want int64
	}{
		{span{0, 100}, nil, 50},
		{span{0, 100}, []int64{10, 20, 30, 90}, 20},
		{span{0, 100}, []int64{100, 100, 100}, 99}, // never the last day: both halves non-empty
		{span{0, 100}, []int64{500, 7}, 7},         // dates outside the span are ignored
		{span{5, 6}, []int64{5, 6}, 5},
		{allDates, nil, minDay + (maxDay-minDay)/2},
	} {
		got := splitDay(tc.s, tc.days)
		if got != tc.want || got < tc.s.lo || got >= tc.s.hi {
			t.Errorf("splitDay(%v, %v) = %d, want %d", tc.s, tc.days, got, tc.want)
		}
	}
}

func TestAddModalities(t *testing.T) {
	c := &counter{}
	c.addModalities([]string{"CT", " CT ", "ct", "ZZDOEJOHN", "FAKE^PATIENT", "ABCDEFGHIJKLMNOPQ", "ÄRZT", "", "RTIMAGE"})
	c.addModalities([]string{"MR", "DOE"})
	want := map[string]int64{"CT": 1, "RTIMAGE": 1, "MR": 1, probe.ModalityOther: 2}
	if !maps.Equal(c.mods, want) {
		t.Errorf("modalities = %v, want %v: names where a modality belongs must not be kept", c.mods, want)
	}
}

func TestAddModalitiesBounded(t *testing.T) {
	terms := strings.Fields(`ANN AR ASMT AU BDUS BI BMD CR CTPROTOCOL DG DMS DOC DX ECG EEG EMG EOG EPS ES FID GM HC
		HD IO IOL IVOCT IVUS KER KO LEN LS M3D MG MR NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PLAN POS
		PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR
		SR SRF STAIN TEXTUREMAP TG US VA XA XAPROTOCOL XC`)
	c := &counter{}
	for _, m := range terms {
		c.addModalities([]string{m, "CT", "CT"})
	}
	if len(c.mods) != probe.MaxModalities {
		t.Errorf("%d modality keys, want %d", len(c.mods), probe.MaxModalities)
	}
	n := len(terms)
	if c.mods["CT"] != int64(n) || c.mods[probe.ModalityOther] != int64(n-(probe.MaxModalities-2)) {
		t.Errorf("CT %d OTHER %d, want %d and %d", c.mods["CT"], c.mods[probe.ModalityOther], n, n-(probe.MaxModalities-2))
	}
}

func TestRandomUID(t *testing.T) {
	a, b := randomUID(), randomUID()
	if a == b || !strings.HasPrefix(a, "2.25.") || len(a) > 64 || strings.Trim(a[5:], "0123456789") != "" {
		t.Errorf("randomUID() = %q, %q", a, b)
	}
}

// probeAddr probes addr ("127.0.0.1:port") at DepthQuery.
func probeAddr(t testing.TB, ctx context.Context, addr string, cfg Config) probe.Result {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Depth = DepthQuery
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	return New(cfg).Probe(ctx, targets.Target{Addr: ap.Addr(), Port: ap.Port()})
}

// checkPrivate fails when r, as JSON, holds a FAKE patient value or any of the UIDs.
func checkPrivate(t testing.TB, r probe.Result, uids ...string) {
	t.Helper()
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(js)
	if strings.Contains(s, "FAKE") {
		t.Errorf("result holds patient data: %s", s)
	}
	for _, uid := range uids {
		if strings.Contains(s, uid) {
			t.Errorf("result holds UID %s: %s", uid, s)
		}
	}
}

// treeUIDs returns the UIDs of the first studies of tree, their series and instances.
func treeUIDs(tree *dicomtest.Tree) []string {
	var uids []string
	for i := range min(tree.Len(), 20) {
		st := tree.Study(i)
		uids = append(uids, st.UID, st.PatientID)
		for _, se := range st.Series {
			uids = append(uids, se.UID)
			for _, in := range se.Instances {
				uids = append(uids, in.SOPUID)
			}
		}
	}
	return uids
}

// treeTruth returns what a perfect count of tree says.
func treeTruth(tree *dicomtest.Tree) (studies, instances int64, mods map[string]int64) {
	mods = map[string]int64{}
	for i := range tree.Len() {
		st := tree.Study(i)
		for _, m := range st.Modalities() {
			mods[m]++
		}
	}
	s, _, n := tree.Counts()
	return int64(s), int64(n), mods
}

// got is the part of a result the table tests compare.
type got struct {
	level     probe.Level
	studies   int64
	exact     bool
	instances int64
	source    probe.InstancesSource
	retrieve  probe.Retrieve
	find      bool
	get, move bool
}

func gotOf(r probe.Result) got {
	if r.Exposure == nil || r.DICOM == nil {
		return got{}
	}
	e, s := r.Exposure, r.DICOM.Services
	return got{e.Level, e.Studies, e.StudiesExact, e.Instances, e.InstancesSource, e.Retrieve, s.FindStudy || s.FindPatient, s.Get, s.Move}
}

func TestMeasureDicomtest(t *testing.T) {
	tree := dicomtest.NewTree(7, 300)
	studies, instances, mods := treeTruth(tree)
	undated := &dicomtest.Tree{Studies: append([]dicomtest.Study(nil), tree.Studies[:120]...)}
	for i := range undated.Studies[:10] {
		undated.Studies[i].Date = ""
	}
	_, undatedInstances, undatedMods := treeTruth(undated)
	const est = -1 // an estimate: within 35 % of the truth (about 50 studies counted: 4 sigma)
	for _, tc := range []struct {
		name     string
		server   dicomtest.Config
		cfg      Config
		want     got
		wantMods map[string]int64
	}{
		{"computed counts", dicomtest.Config{Tree: tree, ComputedCounts: true}, Config{},
			got{probe.LevelRetrieve, studies, true, instances, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true}, mods},
		{"no computed counts: image level", dicomtest.Config{Tree: tree}, Config{},
			got{probe.LevelRetrieve, studies, true, instances, probe.InstancesSourceImage, probe.RetrieveAccepted, true, true, true}, mods},
		{"chatty: extra keys dropped", dicomtest.Config{Tree: tree, ComputedCounts: true, Chatty: true}, Config{},
			got{probe.LevelRetrieve, studies, true, instances, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true}, mods},
		{"silent cap at 40: date slices", dicomtest.Config{Tree: tree, ComputedCounts: true, LimitFind: 40}, Config{},
			got{probe.LevelRetrieve, studies, true, instances, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true}, mods},
		{"cap with undated studies: not exact", dicomtest.Config{Tree: undated, ComputedCounts: true, LimitFind: 30}, Config{},
			got{probe.LevelRetrieve, 0, false, 0, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true}, nil},
		{"undated studies, no cap", dicomtest.Config{Tree: undated, ComputedCounts: true}, Config{},
			got{probe.LevelRetrieve, 120, true, undatedInstances, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true}, undatedMods},
		{"cap and small budget: not exact", dicomtest.Config{Tree: tree, ComputedCounts: true, LimitFind: 40}, Config{QueryBudget: 5},
			got{probe.LevelRetrieve, 0, false, 0, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true}, nil},
		{"budget 150: estimate", dicomtest.Config{Tree: tree}, Config{QueryBudget: 150},
			got{probe.LevelRetrieve, studies, true, est, probe.InstancesSourceEstimate, probe.RetrieveAccepted, true, true, true}, nil},
		{"verify retrieve", dicomtest.Config{Tree: tree, ComputedCounts: true}, Config{VerifyRetrieve: true},
			got{probe.LevelRetrieve, studies, true, instances, probe.InstancesSourceStudyAttr, probe.RetrieveVerified, true, true, true}, mods},
		{"verify retrieve, image level counting", dicomtest.Config{Tree: tree}, Config{VerifyRetrieve: true},
			got{probe.LevelRetrieve, studies, true, instances, probe.InstancesSourceImage, probe.RetrieveVerified, true, true, true}, mods},
		{"find refused by abort", dicomtest.Config{Tree: tree, Refused: dicomtest.Services{Find: true, Get: true, Move: true}}, Config{},
			got{probe.LevelEcho, 0, false, 0, probe.InstancesSourceNone, probe.RetrieveUntested, false, false, false}, nil},
		{"find refused by status", dicomtest.Config{Tree: tree, Refused: dicomtest.Services{Find: true}, Refusal: dicomtest.RefuseStatus}, Config{},
			got{probe.LevelEcho, 0, false, 0, probe.InstancesSourceNone, probe.RetrieveUntested, false, false, false}, nil},
		{"find refused by context", dicomtest.Config{Tree: tree, Refused: dicomtest.Services{Find: true}, Refusal: dicomtest.RefuseContext}, Config{},
			got{probe.LevelEcho, 0, false, 0, probe.InstancesSourceNone, probe.RetrieveUntested, false, false, false}, nil},
		{"find refused, no echo", dicomtest.Config{Tree: tree, Refused: dicomtest.Services{Echo: true, Find: true}, Refusal: dicomtest.RefuseStatus}, Config{},
			got{probe.LevelProtected, 0, false, 0, probe.InstancesSourceNone, probe.RetrieveUntested, false, false, false}, nil},
		{"retrieve refused by abort", dicomtest.Config{Tree: tree, ComputedCounts: true, Refused: dicomtest.Services{Get: true, Move: true}}, Config{VerifyRetrieve: true},
			got{probe.LevelQuery, studies, true, instances, probe.InstancesSourceStudyAttr, probe.RetrieveRefused, true, false, false}, mods},
		{"retrieve refused by status", dicomtest.Config{Tree: tree, ComputedCounts: true, Refused: dicomtest.Services{Get: true, Move: true}, Refusal: dicomtest.RefuseStatus}, Config{},
			got{probe.LevelQuery, studies, true, instances, probe.InstancesSourceStudyAttr, probe.RetrieveRefused, true, true, true}, mods},
		{"retrieve refused by context", dicomtest.Config{Tree: tree, ComputedCounts: true, Refused: dicomtest.Services{Get: true, Move: true}, Refusal: dicomtest.RefuseContext}, Config{},
			got{probe.LevelQuery, studies, true, instances, probe.InstancesSourceStudyAttr, probe.RetrieveRefused, true, false, false}, mods},
		{"move refused by abort, get on a new association", dicomtest.Config{Tree: tree, ComputedCounts: true, Refused: dicomtest.Services{Move: true}}, Config{},
			got{probe.LevelRetrieve, studies, true, instances, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, false}, mods},
		{"empty archive", dicomtest.Config{ComputedCounts: true}, Config{},
			got{probe.LevelEcho, 0, true, 0, probe.InstancesSourceNone, probe.RetrieveUntested, true, false, false}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dicomtest.Start(t, tc.server)
			r := probeAddr(t, context.Background(), s.Addr(), tc.cfg)
			js, _ := json.Marshal(r)
			g := gotOf(r)
			if tc.want.instances == est && g.instances > 0 {
				if d := float64(g.instances-instances) / float64(instances); d > -0.35 && d < 0.35 {
					g.instances = est
				}
			}
			if tc.want.studies == 0 && !tc.want.exact && g.studies > 0 && tc.want.level >= probe.LevelQuery {
				g.studies, g.instances = 0, 0 // a lower bound: checked below
				if r.Exposure.Studies > int64(tc.server.Tree.Len()) {
					t.Errorf("studies %d, more than the %d there are", r.Exposure.Studies, tc.server.Tree.Len())
				}
			}
			if g != tc.want {
				t.Errorf("exposure\n got %+v\nwant %+v\n%s", g, tc.want, js)
			}
			if tc.wantMods != nil && !maps.Equal(r.Exposure.Modalities, tc.wantMods) {
				t.Errorf("modalities = %v, want %v", r.Exposure.Modalities, tc.wantMods)
			}
			if g.level == probe.LevelEcho && tc.server.Refusal == dicomtest.RefuseAbort && tc.server.Refused.Find &&
				!strings.HasPrefix(r.Error, "c-find: association aborted") {
				t.Errorf("error %q, want the c-find abort", r.Error)
			}
			if tc.server.Tree != nil {
				checkPrivate(t, r, treeUIDs(tc.server.Tree)...)
			}
			if msg := caveatsConsistent(r.Exposure); msg != "" {
				t.Errorf("%s\n%s", msg, js)
			}
			if r.Exposure.HasCaveat(probe.CaveatImplausible) {
				t.Errorf("an honest archive called implausible\n%s", js)
			}
		})
	}
}

// TestMeasureHostile checks that servers that break the protocol mid-query end the probe within its
// deadlines with what was counted until then, classified.
func TestMeasureHostile(t *testing.T) {
	tree := dicomtest.NewTree(8, 50)
	for _, tc := range []struct {
		name     string
		hostile  dicomtest.Hostile
		deadline time.Duration // of the whole probe
		level    probe.Level
		errText  string
	}{
		{"abort mid find", dicomtest.AbortMidFind, 10 * time.Second, probe.LevelQuery, "c-find: association aborted"},
		{"endless pending", dicomtest.EndlessPending, time.Second, probe.LevelQuery, "c-find: i/o timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dicomtest.Start(t, dicomtest.Config{Tree: tree, ComputedCounts: true, Hostile: tc.hostile})
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			start := time.Now()
			r := probeAddr(t, ctx, s.Addr(), Config{})
			if d := time.Since(start); d > tc.deadline+2*time.Second {
				t.Errorf("probe took %v, deadline %v", d, tc.deadline)
			}
			js, _ := json.Marshal(r)
			if !r.Exposure.HasCaveat(probe.CaveatCapped) || caveatsConsistent(r.Exposure) != "" {
				t.Errorf("a count cut short by the server, without a capped caveat\n%s", js)
			}
			if r.Level() != tc.level || r.Exposure.StudiesExact || r.Exposure.Studies == 0 || !strings.HasPrefix(r.Error, tc.errText) {
				t.Errorf("level %v exact %v studies %d error %q; want %v, not exact, > 0 studies, %q\n%s",
					r.Level(), r.Exposure.StudiesExact, r.Exposure.Studies, r.Error, tc.level, tc.errText, js)
			}
			checkPrivate(t, r, treeUIDs(tree)...)
		})
	}
}

// TestCountLimits runs the counter with small limits against an endless archive: it stops at
// them, cancels the C-FIND, and says the count is not exact.
func TestCountLimits(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		maxStudies, maxResponses  int
		budget                    int64 // of the memory budget's state; 0: the Prober's
		wantStudiesAtMost, wantGE int
		reason                    string
	}{
		{"studies", 500, 1 << 20, 0, 500, 500, "more than 500 distinct studies"},
		{"responses", 1 << 20, 300, 0, 300, 300, "more than 300 answers to one C-FIND"},
		// A 1 MiB budget: 336 KiB of state for a large host; a table grows only while the old
		// one and the new fit: 16,384 slots (128 KiB), 3/4 full, at most.
		{"memory", 1 << 20, 1 << 20, 1 << 20, 16384 * 3 / 4, 16384 * 3 / 4, "memory budget was reached after 12288 studies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dicomtest.Start(t, dicomtest.Config{ComputedCounts: true, Hostile: dicomtest.EndlessPending})
			a, err := ul.Dial(context.Background(), s.Addr(), ul.Config{CalledAE: "ANY-SCP", Contexts: contexts})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			p := New(Config{})
			c := p.newCounter(a, p.cfg.Logger)
			c.maxStudies, c.maxResponses = tc.maxStudies, tc.maxResponses
			if tc.budget > 0 {
				c.mem = charge{b: newMemBudget(tc.budget)}
			}
			err = c.count(context.Background())
			var e probe.Exposure
			c.fill(&e)
			if len(e.Caveats) != 1 || e.Caveats[0].Kind != probe.CaveatCapped || !strings.Contains(e.Caveats[0].Reason, tc.reason) {
				t.Errorf("caveats %+v, want capped: %q", e.Caveats, tc.reason)
			}
			c.release()
			if c.mem.b.used.Load() != 0 {
				t.Errorf("%d bytes of the budget held after release", c.mem.b.used.Load())
			}
			// The server ignores C-CANCEL: dimse reads on, then aborts.
			if !errors.Is(err, dimse.ErrTooManyResponses) || e.StudiesExact || e.Studies > int64(tc.wantStudiesAtMost) || e.Studies < int64(tc.wantGE)-1 {
				t.Errorf("count: err %v, %d studies exact %v; want ErrTooManyResponses, about %d, not exact", err, e.Studies, e.StudiesExact, tc.wantGE)
			}
			if c.pending != nil || c.spent != 1 {
				t.Errorf("pending %d UIDs after counting, %d queries; want none, 1", len(c.pending), c.spent)
			}
		})
	}
}

// scripted serves associations on 127.0.0.1, one at a time, that answer C-ECHO with success,
// C-FIND with answer's responses and final status, and C-GET and C-MOVE with 0xA801, or never when
// silentRetrieve: servers dicomtest does not play.
func scripted(t *testing.T, answer func(sop string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status), silentRetrieve bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			serveScripted(ctx, conn, answer, silentRetrieve)
		}
	}()
	return ln.Addr().String()
}

func serveScripted(ctx context.Context, conn net.Conn, answer func(sop string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status), silentRetrieve bool) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute) // floods of 100,000 answers take a while under -race
	defer cancel()
	a, err := ul.Accept(ctx, conn, ul.ServerConfig{})
	if err != nil {
		return
	}
	defer a.Close()
	for {
		id, b, err := a.ReadCommand(ctx)
		if errors.Is(err, ul.ErrReleaseRequested) {
			a.ReplyRelease(ctx)
			return
		}
		if err != nil {
			return
		}
		cmd, err := dimse.DecodeCommand(b)
		if err != nil {
			return
		}
		explicit := false
		for _, pc := range a.Info().Accepted {
			if pc.ID == id {
				explicit = pc.TransferSyntax == dicom.ExplicitVRLittleEndian
			}
		}
		rsp := dimse.Command{AffectedSOPClassUID: cmd.AffectedSOPClassUID, MessageIDBeingRespondedTo: cmd.MessageID}
		switch cmd.Field {
		case dimse.CEchoRQ:
			rsp.Field = dimse.CEchoRSP
		case dimse.CFindRQ:
			data, err := a.ReadData(ctx)
			if err != nil {
				return
			}
			q, err := dicom.Decode(data, dicom.DecodeOptions{Explicit: explicit})
			if err != nil {
				return
			}
			rsps, final := answer(cmd.AffectedSOPClassUID, &q)
			for _, ds := range rsps {
				b, _ := dicom.Encode(ds, explicit)
				pending := rsp
				pending.Field, pending.Status, pending.HasDataset = dimse.CFindRSP, dimse.Pending, true
				if a.Send(ctx, id, pending.Encode(), b) != nil {
					return
				}
			}
			rsp.Field, rsp.Status = dimse.CFindRSP, final
		case dimse.CGetRQ, dimse.CMoveRQ:
			if _, err := a.ReadData(ctx); err != nil {
				return
			}
			if silentRetrieve {
				continue
			}
			rsp.Field, rsp.Status = cmd.Field|0x8000, dimse.MoveDestinationUnknown
		default:
			return
		}
		if a.Send(ctx, id, rsp.Encode(), nil) != nil {
			return
		}
	}
}

// studyRSP is a STUDY-level response; empty values are left out.
func studyRSP(uid, date, count string, mods ...string) dicom.Dataset {
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	ds.Set(dicom.NewString(dicom.PatientName, "FAKE^CHATTY"))
	for _, e := range []dicom.Element{
		dicom.NewString(dicom.StudyInstanceUID, uid), dicom.NewString(dicom.StudyDate, date),
		dicom.NewString(dicom.NumberOfStudyRelatedInstances, count), dicom.NewString(dicom.ModalitiesInStudy, mods...),
	} {
		if len(e.Value) > 0 {
			ds.Set(e)
		}
	}
	return ds
}

// imageLevel answers as dcmqrscp does, without computed counts, for three studies of one DX
// series of two instances; its IMAGE-level answers end with final.
func imageLevel(final dimse.Status) func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
	return func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
		level, _ := q.String(dicom.QueryRetrieveLevel)
		study, _ := q.String(dicom.StudyInstanceUID)
		var rsps []dicom.Dataset
		switch level {
		case "STUDY":
			for i := range 3 {
				rsps = append(rsps, studyRSP(fmt.Sprintf("1.2.3.4.6.%d", i), "20200101", ""))
			}
		case "SERIES":
			var ds dicom.Dataset
			ds.Set(dicom.NewString(dicom.SeriesInstanceUID, study+".1"))
			ds.Set(dicom.NewString(dicom.Modality, "DX"))
			rsps = append(rsps, ds)
		case "IMAGE":
			for i := range 2 {
				var ds dicom.Dataset
				ds.Set(dicom.NewString(dicom.SOPInstanceUID, fmt.Sprintf("%s.1.%d", study, i)))
				rsps = append(rsps, ds)
			}
			return rsps, final
		}
		return rsps, dimse.Success
	}
}

func TestMeasureScripted(t *testing.T) {
	// 30 studies; the server returns at most 10 of them, whatever the query, and says Cancel.
	var all []dicom.Dataset
	for i := range 30 {
		all = append(all, studyRSP(fmt.Sprintf("1.2.3.4.9.%d", i), fmt.Sprintf("2020%02d01", 1+i%12), "2", "CT"))
	}
	for _, tc := range []struct {
		name     string
		answer   func(sop string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status)
		silent   bool // C-GET and C-MOVE never answered
		want     got
		wantMods map[string]int64
		wantErr  string
		caveats  []string // kinds, in order
	}{
		{"capped, date ranges ignored", func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			return all[:10], dimse.Cancel
		}, false, got{probe.LevelRetrieve, 10, false, 20, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true}, map[string]int64{"CT": 10}, "", []string{probe.CaveatCapped}},
		{"uncapped, date ranges ignored", func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			return all, dimse.Success
		}, false, got{probe.LevelRetrieve, 30, true, 60, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true}, map[string]int64{"CT": 30}, "", nil},
		{"untrusted values", func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			if lvl, _ := q.String(dicom.QueryRetrieveLevel); lvl != "STUDY" {
				return nil, dimse.UnableToProcess // no follow-up answered
			}
			return []dicom.Dataset{
				studyRSP("1.2.3.4.5.1", "20200101", "3", "CT", "CT", "ct", "FAKE^NAME"),
				studyRSP("1.2.3.4.5.1", "20200101", "3", "CT"), // a duplicate
				studyRSP("1.2.3.4.5.2", "not a date", "-4", "MR"),
				studyRSP("1.2.3.4.5.3", "20200101", "99999999999", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), // implausible: not counted
				studyRSP("", "20200101", "5", "US"),                                              // no UID: not a study told apart, implausible
				studyRSP("1.2.3.4.5.4", "", "7"),
			}, dimse.Success
		}, false, got{probe.LevelRetrieve, 4, false, 20, probe.InstancesSourceEstimate, probe.RetrieveAccepted, true, true, true},
			map[string]int64{"CT": 1, "OTHER": 2, "MR": 1}, "", []string{probe.CaveatEstimate, probe.CaveatImplausible, probe.CaveatImplausible}},
		{"image-level answers complete", imageLevel(dimse.Success), false,
			got{probe.LevelRetrieve, 3, true, 6, probe.InstancesSourceImage, probe.RetrieveAccepted, true, true, true}, map[string]int64{"DX": 3}, "", nil},
		{"image-level answers cut short", imageLevel(dimse.Cancel), false,
			got{probe.LevelRetrieve, 3, true, 0, probe.InstancesSourceNone, probe.RetrieveAccepted, true, true, true}, map[string]int64{"DX": 3}, "", nil},
		{"failure after matches", func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			return all[:3], dimse.OutOfResources
		}, false, got{probe.LevelRetrieve, 3, false, 6, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true}, map[string]int64{"CT": 3}, "", []string{probe.CaveatCapped}},
		{"patient root only", func(sop string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			if sop == dimse.StudyRootFind {
				return nil, dimse.SOPClassNotSupported
			}
			return all, dimse.Success
		}, false, got{probe.LevelRetrieve, 30, true, 60, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true},
			map[string]int64{"CT": 30}, "", nil},
		{"retrieval never answered: untested", func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			return all, dimse.Success
		}, true, got{probe.LevelQuery, 30, true, 60, probe.InstancesSourceStudyAttr, probe.RetrieveUntested, true, false, false},
			map[string]int64{"CT": 30}, "c-move: i/o timeout", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := scripted(t, tc.answer, tc.silent)
			r := probeAddr(t, context.Background(), addr, Config{Timeout: time.Second})
			js, _ := json.Marshal(r)
			if g := gotOf(r); g != tc.want {
				t.Errorf("exposure\n got %+v\nwant %+v\n%s", g, tc.want, js)
			}
			if !maps.Equal(r.Exposure.Modalities, tc.wantMods) {
				t.Errorf("modalities = %v, want %v", r.Exposure.Modalities, tc.wantMods)
			}
			if s := r.DICOM.Services; s.FindStudy == (tc.name == "patient root only") || s.FindPatient != (tc.name == "patient root only") {
				t.Errorf("services find_study %v find_patient %v: the wrong model", s.FindStudy, s.FindPatient)
			}
			if r.Error != tc.wantErr {
				t.Errorf("error %q, want %q", r.Error, tc.wantErr)
			}
			var kinds []string
			for _, c := range r.Exposure.Caveats {
				kinds = append(kinds, c.Kind)
			}
			if !slices.Equal(kinds, tc.caveats) {
				t.Errorf("caveats %+v, want kinds %v", r.Exposure.Caveats, tc.caveats)
			}
			if msg := caveatsConsistent(r.Exposure); msg != "" {
				t.Error(msg)
			}
			checkPrivate(t, r, "1.2.3.4.")
		})
	}
}

func TestWatchdog(t *testing.T) {
	ctx, touch, stop := watchdog(context.Background(), 150*time.Millisecond, 50*time.Millisecond)
	defer stop()
	time.Sleep(100 * time.Millisecond) // within the first wait
	touch()
	for range 4 {
		time.Sleep(20 * time.Millisecond)
		touch()
	}
	if ctx.Err() != nil {
		t.Fatalf("watchdog fired while touched: %v", context.Cause(ctx))
	}
	<-ctx.Done()
	if !errors.Is(context.Cause(ctx), errStepTimeout) {
		t.Errorf("cause %v, want errStepTimeout", context.Cause(ctx))
	}
	if _, s := probe.Classify(errStepTimeout); s != "i/o timeout" {
		t.Errorf("Classify(errStepTimeout) = %q, want i/o timeout", s)
	}
}

// TestWatchdogAfterTouch checks that a peer silent after its first response is caught a step
// after it, not after the first wait.
func TestWatchdogAfterTouch(t *testing.T) {
	start := time.Now()
	ctx, touch, stop := watchdog(context.Background(), 2*time.Second, 50*time.Millisecond)
	defer stop()
	touch()
	<-ctx.Done()
	if el := time.Since(start); el > time.Second || !errors.Is(context.Cause(ctx), errStepTimeout) {
		t.Errorf("watchdog fired after %v with cause %v, want errStepTimeout about 50ms after the touch", el, context.Cause(ctx))
	}
}

// BenchmarkWatchdogTouch measures what a C-FIND response costs the watchdog.
func BenchmarkWatchdogTouch(b *testing.B) {
	ctx, touch, stop := watchdog(context.Background(), time.Minute, time.Minute)
	defer stop()
	for b.Loop() {
		touch()
	}
	if ctx.Err() != nil {
		b.Fatal(context.Cause(ctx))
	}
}

// TestQueryCost checks the C-FIND requests counting costs (count.go's doc): one on an archive
// that computes its counts; three (the universal query and two date halves) when its answer ends
// with Success at a known cap size from a server not known to signal caps; O(studies/cap) on a
// capped one; one per study and one per series where nothing is computed.
func TestQueryCost(t *testing.T) {
	tree := dicomtest.NewTree(9, 200)
	odd := dicomtest.NewTree(9, 199)
	studies, series, _ := tree.Counts()
	const dcmtkUID, dcmtkVersion = "1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367"
	for _, tc := range []struct {
		name     string
		server   dicomtest.Config
		min, max int64
	}{
		{"computed counts, 199 studies", dicomtest.Config{Tree: odd, ComputedCounts: true}, 1, 1},
		{"computed counts, 200 studies: a known cap size", dicomtest.Config{Tree: tree, ComputedCounts: true}, 3, 3},
		{"orthanc (dcmtk, computed), 200 studies: caps by status", dicomtest.Config{Tree: tree, ComputedCounts: true,
			ImplementationClassUID: dcmtkUID, ImplementationVersionName: dcmtkVersion}, 1, 1},
		{"capped at 25", dicomtest.Config{Tree: tree, ComputedCounts: true, LimitFind: 25}, 2*200/25 + 1, 4*200/25 + 3},
		{"no computed counts", dicomtest.Config{Tree: tree}, int64(3 + studies + series), int64(3 + studies + series)},
		{"dcmqrscp (dcmtk, no computed counts), 200 studies", dicomtest.Config{Tree: tree,
			ImplementationClassUID: dcmtkUID, ImplementationVersionName: dcmtkVersion}, int64(3 + studies + series), int64(3 + studies + series)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dicomtest.Start(t, tc.server)
			r := probeAddr(t, context.Background(), s.Addr(), Config{Depth: DepthQuery})
			if r.Exposure.Studies != int64(tc.server.Tree.Len()) || !r.Exposure.StudiesExact || len(r.Exposure.Caveats) > 0 {
				t.Fatalf("studies %d exact %v caveats %+v, want %d exact", r.Exposure.Studies, r.Exposure.StudiesExact, r.Exposure.Caveats, tc.server.Tree.Len())
			}
			if got := s.Stats().Find; got < tc.min || got > tc.max {
				t.Errorf("%d C-FIND requests, want %d to %d", got, tc.min, tc.max)
			}
			t.Logf("%s: %d C-FIND requests for %d studies", tc.name, s.Stats().Find, tc.server.Tree.Len())
		})
	}
}

func TestKnownCap(t *testing.T) {
	for n, want := range map[int]bool{
		0: false, 9: false, 10: true, 25: true, 37: false, 40: true, 75: true, 99: false, 100: true, 128: true, 127: true,
		150: true, 199: false, 200: true, 250: true, 255: true, 256: true, 333: false, 500: true, 999: false, 1000: true,
		1004: false, 1024: true, 2500: true, 4095: true, 5000: true, 12345: false, 50000: true, 65535: true, 65536: true,
		1 << 20: true, 1000001: false,
	} {
		if got := knownCap(n); got != want {
			t.Errorf("knownCap(%d) = %v, want %v", n, got, want)
		}
	}
}

// TestMeasureTLS checks that the associations retrieval opens after the first speak DICOM TLS too:
// the one a C-MOVE's abort makes necessary, and the one that verifies retrieval.
func TestMeasureTLS(t *testing.T) {
	cert, _, _, _ := selfSigned(t)
	tree := dicomtest.NewTree(10, 20)
	s := dicomtest.Start(t, dicomtest.Config{Tree: tree, ComputedCounts: true, Refused: dicomtest.Services{Move: true},
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	r := probeAddr(t, context.Background(), s.Addr(), Config{TLS: TLSOn, VerifyRetrieve: true})
	js, _ := json.Marshal(r)
	_, instances, _ := treeTruth(tree)
	want := got{probe.LevelRetrieve, 20, true, instances, probe.InstancesSourceStudyAttr, probe.RetrieveVerified, true, true, false}
	if g := gotOf(r); g != want || !r.DICOM.TLS {
		t.Errorf("exposure\n got %+v tls %v\nwant %+v tls true\n%s", g, r.DICOM.TLS, want, js)
	}
	if st := s.Stats(); st.Associations != 3 {
		t.Errorf("%d associations, want 3: counting, C-GET after the C-MOVE's abort, verification", st.Associations)
	}
	checkPrivate(t, r, treeUIDs(tree)...)
}
