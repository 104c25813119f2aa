package dimse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/peertest"
)

// Interoperability with real peers: dcmtk 3.6.7's dcmqrscp and storescp and
// Orthanc 1.10, started on loopback by peertest. What each asserts is what
// was observed of these versions (see ../shared/notes/peers.md).

// truth is what a corpus holds, by study and by series.
type truth struct {
	corpus    peertest.Corpus
	studies   []string            // Study Instance UIDs in order
	series    map[string][]string // study → its series, in order
	instances map[string]int      // series or study → its instances
}

func newTruth(c peertest.Corpus) truth {
	tr := truth{corpus: c, series: map[string][]string{}, instances: map[string]int{}}
	for _, in := range c.Instances {
		if _, ok := tr.series[in.StudyUID]; !ok {
			tr.studies = append(tr.studies, in.StudyUID)
		}
		if !slices.Contains(tr.series[in.StudyUID], in.SeriesUID) {
			tr.series[in.StudyUID] = append(tr.series[in.StudyUID], in.SeriesUID)
		}
		tr.instances[in.SeriesUID]++
		tr.instances[in.StudyUID]++
	}
	return tr
}

// biggest returns the study with the most instances.
func (tr truth) biggest() string {
	best := tr.studies[0]
	for _, s := range tr.studies {
		if tr.instances[s] > tr.instances[best] {
			best = s
		}
	}
	return best
}

// qrPeer is a peer under test: how to reach it and what it holds.
type qrPeer struct {
	name     string
	addr     string
	calledAE string
	truth    truth
	// studyCounts: the peer answers NumberOfStudyRelatedInstances.
	studyCounts bool
}

func (p qrPeer) dial(t *testing.T, get bool) *ul.Assoc {
	t.Helper()
	cfg := ul.Config{CalledAE: p.calledAE, Contexts: dimse.ProposeQR()}
	if get {
		cfg.Contexts, cfg.Roles = dimse.ProposeGet()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := ul.Dial(ctx, p.addr, cfg)
	if err != nil {
		t.Fatalf("associate with %s: %v", p.name, err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func release(t *testing.T, a *ul.Assoc) {
	t.Helper()
	if err := a.Release(context.Background()); err != nil {
		t.Errorf("release: %v", err)
	}
}

func opCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func query(level string, keys map[dicom.Tag]string) dicom.Dataset {
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.QueryRetrieveLevel, level))
	for tag, v := range keys {
		ds.Set(dicom.NewString(tag, v))
	}
	return ds
}

// find runs a C-FIND that keeps allow and returns the matches.
func find(t *testing.T, ctx context.Context, a *ul.Assoc, q dicom.Dataset, allow ...dicom.Tag) []dicom.Dataset {
	t.Helper()
	var got []dicom.Dataset
	status, err := dimse.Find(ctx, a, dimse.StudyRootFind, q, dimse.FindOptions{Allow: dimse.AllowTags(allow...)}, func(ds dicom.Dataset) error {
		got = append(got, ds)
		return nil
	})
	if err != nil || status != dimse.Success {
		t.Fatalf("C-FIND: %v, %v", status, err)
	}
	return got
}

func uids(matches []dicom.Dataset, tag dicom.Tag) []string {
	var s []string
	for _, m := range matches {
		v, _ := m.String(tag)
		s = append(s, v)
	}
	slices.Sort(s)
	return s
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func testEcho(t *testing.T, p qrPeer) {
	a := p.dial(t, false)
	status, err := dimse.Echo(opCtx(t), a)
	if err != nil || status != dimse.Success {
		t.Fatalf("C-ECHO to %s = %v, %v; want success", p.name, status, err)
	}
	release(t, a)
}

// testFindLevels counts studies, the series of one study and the instances
// of one series, then every series and instance by iterating per study, all
// on one association.
func testFindLevels(t *testing.T, p qrPeer) {
	ctx := opCtx(t)
	tr := p.truth
	a := p.dial(t, false)

	studies := find(t, ctx, a, query("STUDY", map[dicom.Tag]string{
		dicom.StudyInstanceUID: "", dicom.NumberOfStudyRelatedInstances: "", dicom.NumberOfStudyRelatedSeries: "",
	}), dicom.StudyInstanceUID, dicom.NumberOfStudyRelatedInstances, dicom.NumberOfStudyRelatedSeries)
	if got, want := uids(studies, dicom.StudyInstanceUID), sorted(tr.studies); !slices.Equal(got, want) {
		t.Fatalf("STUDY level: %d studies, want %d", len(got), len(want))
	}
	for _, st := range studies {
		uid, _ := st.String(dicom.StudyInstanceUID)
		n, ok := st.Int(dicom.NumberOfStudyRelatedInstances)
		nSeries, okSeries := st.Int(dicom.NumberOfStudyRelatedSeries)
		if ok != p.studyCounts || okSeries != p.studyCounts {
			t.Errorf("study %s: NumberOfStudyRelatedInstances/Series present %v/%v, want %v", uid, ok, okSeries, p.studyCounts)
		} else if ok && (int(n) != tr.instances[uid] || int(nSeries) != len(tr.series[uid])) {
			t.Errorf("study %s: %d instances in %d series, want %d in %d", uid, n, nSeries, tr.instances[uid], len(tr.series[uid]))
		}
	}

	study := tr.biggest()
	series := find(t, ctx, a, query("SERIES", map[dicom.Tag]string{dicom.StudyInstanceUID: study, dicom.SeriesInstanceUID: ""}),
		dicom.SeriesInstanceUID)
	if got, want := uids(series, dicom.SeriesInstanceUID), sorted(tr.series[study]); !slices.Equal(got, want) {
		t.Errorf("SERIES level of study %s: %q, want %q", study, got, want)
	}
	one := tr.series[study][0]
	images := find(t, ctx, a, query("IMAGE", map[dicom.Tag]string{
		dicom.StudyInstanceUID: study, dicom.SeriesInstanceUID: one, dicom.SOPInstanceUID: "",
	}), dicom.SOPInstanceUID)
	if got, want := len(images), tr.instances[one]; got != want {
		t.Errorf("IMAGE level of series %s: %d instances, want %d", one, got, want)
	}

	nSeries, nInstances := 0, 0
	for _, st := range tr.studies {
		for _, se := range find(t, ctx, a, query("SERIES", map[dicom.Tag]string{dicom.StudyInstanceUID: st, dicom.SeriesInstanceUID: ""}),
			dicom.SeriesInstanceUID) {
			nSeries++
			uid, _ := se.String(dicom.SeriesInstanceUID)
			nInstances += len(find(t, ctx, a, query("IMAGE", map[dicom.Tag]string{
				dicom.StudyInstanceUID: st, dicom.SeriesInstanceUID: uid, dicom.SOPInstanceUID: "",
			})))
		}
	}
	t.Logf("%s: %d studies; per study %d series, %d instances", p.name, len(studies), nSeries, nInstances)
	if nSeries != tr.corpus.Series() || nInstances != len(tr.corpus.Instances) {
		t.Errorf("per study: %d series, %d instances; want %d, %d", nSeries, nInstances, tr.corpus.Series(), len(tr.corpus.Instances))
	}
	release(t, a)
}

// testAllowList asks for patient data, which the peer returns, and checks
// that none of it gets past the allow-list.
func testAllowList(t *testing.T, p qrPeer) {
	ctx := opCtx(t)
	a := p.dial(t, false)
	q := query("STUDY", map[dicom.Tag]string{
		dicom.StudyInstanceUID: "", dicom.PatientName: "", dicom.PatientID: "", dicom.PatientBirthDate: "",
		dicom.AccessionNumber: "", dicom.StudyDescription: "", dicom.InstitutionName: "", dicom.ModalitiesInStudy: "",
	})
	allowed := []dicom.Tag{dicom.QueryRetrieveLevel, dicom.StudyInstanceUID, dicom.ModalitiesInStudy, dicom.SpecificCharacterSet}

	// Control: without the allow-list the peer does send patient names.
	names := 0
	for _, m := range find(t, ctx, a, q, append(allowed, dicom.PatientName)...) {
		if n, _ := m.String(dicom.PatientName); strings.Contains(n, "FAKE") {
			names++
		}
	}
	if names != len(p.truth.studies) {
		t.Fatalf("control: %d patient names returned, want %d", names, len(p.truth.studies))
	}

	secrets := p.truth.corpus.Secrets()
	matches := find(t, ctx, a, q, allowed...)
	if len(matches) != len(p.truth.studies) {
		t.Errorf("%d matches, want %d", len(matches), len(p.truth.studies))
	}
	for _, m := range matches {
		for e := range m.All() {
			if !slices.Contains(allowed, e.Tag) {
				t.Errorf("key %v (%s) got past the allow-list", e.Tag, dicom.Keyword(e.Tag))
			}
			for _, s := range secrets {
				if strings.Contains(string(e.Value), s) {
					t.Errorf("secret %q in %v", s, e.Tag)
				}
			}
		}
	}
	release(t, a)
}

// testGet retrieves the biggest study, then stops another C-GET after one
// instance and checks the peer still serves a new association.
func testGet(t *testing.T, p qrPeer) {
	ctx := opCtx(t)
	study := p.truth.biggest()
	q := query("STUDY", map[dicom.Tag]string{dicom.StudyInstanceUID: study})
	a := p.dial(t, true)
	var got []string
	ops, err := dimse.Get(ctx, a, dimse.StudyRootGet, q, func(ctx context.Context, req dimse.StoreRequest, data io.Reader) (dimse.Status, error) {
		if req.SOPClassUID != peertest.SecondaryCaptureImageStorage || !strings.HasPrefix(req.SOPInstanceUID, study+".") {
			t.Errorf("C-STORE of %s %s, not of study %s", req.SOPClassUID, req.SOPInstanceUID, study)
		}
		if req.TransferSyntax != dicom.ExplicitVRLittleEndian && req.TransferSyntax != dicom.ImplicitVRLittleEndian {
			t.Errorf("C-STORE in transfer syntax %s", req.TransferSyntax)
		}
		head := make([]byte, 64) // part of the header only: Get drains the rest
		if _, err := io.ReadFull(data, head); err != nil {
			t.Errorf("read instance: %v", err)
		}
		got = append(got, req.SOPInstanceUID)
		return dimse.Success, nil
	})
	if err != nil {
		t.Fatalf("C-GET: %v", err)
	}
	t.Logf("%s: C-GET of study %s: %d instances, %v", p.name, study, len(got), ops.Status)
	want := p.truth.instances[study]
	if ops.Status != dimse.Success || ops.Completed == nil || int(*ops.Completed) != want || len(got) != want {
		t.Errorf("C-GET = %v, completed %v, handler called %d times; want success, %d", ops.Status, ptr(ops.Completed), len(got), want)
	}
	release(t, a)

	a = p.dial(t, true)
	calls := 0
	_, err = dimse.Get(ctx, a, dimse.StudyRootGet, q, func(context.Context, dimse.StoreRequest, io.Reader) (dimse.Status, error) {
		calls++
		return dimse.Success, dimse.ErrStop
	})
	if !errors.Is(err, dimse.ErrStopped) || calls != 1 {
		t.Errorf("stopped C-GET: %v after %d calls, want ErrStopped after 1", err, calls)
	}
	if _, err := dimse.Echo(ctx, a); err == nil {
		t.Error("association still usable after a stopped C-GET")
	}
	testEcho(t, p) // the peer serves the next association
}

func ptr(p *uint16) any {
	if p == nil {
		return nil
	}
	return *p
}

// testMoveUnknown asks for a C-MOVE to a destination the peer does not know.
func testMoveUnknown(t *testing.T, p qrPeer, want dimse.Status) {
	a := p.dial(t, false)
	ops, err := dimse.Move(opCtx(t), a, dimse.StudyRootMove, "NOWHERE", query("STUDY", map[dicom.Tag]string{dicom.StudyInstanceUID: p.truth.studies[0]}))
	if err != nil || ops.Status != want {
		t.Errorf("C-MOVE to an unknown AE = %v, %v; want %v", ops.Status, err, want)
	}
	release(t, a)
}

func rejected(t *testing.T, addr string, cfg ul.Config) ul.AAssociateRJ {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := ul.Dial(ctx, addr, cfg)
	var rj *ul.RejectedError
	if !errors.As(err, &rj) {
		if a != nil {
			a.Close()
		}
		t.Fatalf("associate %+v: %v, want A-ASSOCIATE-RJ", cfg, err)
	}
	return rj.RJ
}

func TestInteropDcmqrscp(t *testing.T) {
	peertest.Require(t, "dcmqrscp", "storescp", "storescu")
	corpus := peertest.Generate(7, 60, "7")
	store := peertest.StartStorescp(t, "STORESCP")
	qr := peertest.StartDcmqrscp(t, []peertest.QRAE{{Title: "QRSCP"}},
		[]peertest.QRHost{{Name: "storescp", AET: store.AET, Port: store.Port}})
	qr.Store(t, "QRSCP", "LOADER", corpus)
	p := qrPeer{name: "dcmqrscp", addr: fmt.Sprintf("127.0.0.1:%d", qr.Port), calledAE: "QRSCP", truth: newTruth(corpus)}

	t.Run("Echo", func(t *testing.T) { testEcho(t, p) })
	t.Run("EchoStorescp", func(t *testing.T) {
		testEcho(t, qrPeer{name: "storescp", addr: fmt.Sprintf("127.0.0.1:%d", store.Port), calledAE: store.AET})
	})
	t.Run("FindLevels", func(t *testing.T) { testFindLevels(t, p) })
	t.Run("AllowList", func(t *testing.T) { testAllowList(t, p) })
	t.Run("Get", func(t *testing.T) { testGet(t, p) })
	t.Run("MoveUnknown", func(t *testing.T) { testMoveUnknown(t, p, dimse.MoveDestinationUnknown) })
	t.Run("Move", func(t *testing.T) {
		study := p.truth.biggest()
		a := p.dial(t, false)
		before := store.Received(t)
		ops, err := dimse.Move(opCtx(t), a, dimse.StudyRootMove, store.AET, query("STUDY", map[dicom.Tag]string{dicom.StudyInstanceUID: study}))
		want := p.truth.instances[study]
		if err != nil || ops.Status != dimse.Success || ops.Completed == nil || int(*ops.Completed) != want {
			t.Fatalf("C-MOVE = %+v (completed %v), %v; want success, %d", ops, ptr(ops.Completed), err, want)
		}
		if got := store.Received(t) - before; got != want {
			t.Errorf("storescp received %d files, want %d", got, want)
		}
		release(t, a)
	})
	t.Run("Cancel", func(t *testing.T) {
		ctx := opCtx(t)
		a := p.dial(t, false)
		n := 0
		status, err := dimse.Find(ctx, a, dimse.StudyRootFind, query("STUDY", map[dicom.Tag]string{dicom.StudyInstanceUID: ""}),
			dimse.FindOptions{}, func(dicom.Dataset) error {
				if n++; n == 3 {
					return dimse.ErrStop
				}
				return nil
			})
		// dcmqrscp checks for a C-CANCEL-RQ before each response and then
		// answers Cancel, but it streams: when all its responses are sent
		// before the cancel arrives, the final status is Success. Both
		// were observed; Find reads to the final response either way.
		if err != nil || (status != dimse.Cancel && status != dimse.Success) || n != 3 {
			t.Errorf("cancelled C-FIND = %v, %v after %d matches; want cancel (or success) after 3", status, err, n)
		}
		t.Logf("cancelled C-FIND: %v", status)
		if st, err := dimse.Echo(ctx, a); err != nil || st != dimse.Success {
			t.Errorf("C-ECHO after the cancel = %v, %v", st, err)
		}
		if got := len(find(t, ctx, a, query("STUDY", map[dicom.Tag]string{dicom.StudyInstanceUID: ""}))); got != corpus.Studies {
			t.Errorf("C-FIND after the cancel: %d studies, want %d", got, corpus.Studies)
		}
		release(t, a)
	})
	t.Run("RejectCalledAE", func(t *testing.T) {
		rj := rejected(t, p.addr, ul.Config{CalledAE: "NOSUCHAE", Contexts: dimse.ProposeQR()})
		if want := (ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}); rj != want || rj.Meaning() != "called-AE-title-not-recognized" {
			t.Errorf("RJ = %+v (%s), want %+v", rj, rj.Meaning(), want)
		}
	})
}

func TestInteropOrthanc(t *testing.T) {
	peertest.Require(t, "Orthanc")
	corpus := peertest.Generate(11, 20, "11")
	o := peertest.StartOrthanc(t, peertest.OrthancConfig{Open: true})
	o.Upload(t, corpus)
	p := qrPeer{name: "Orthanc", addr: fmt.Sprintf("127.0.0.1:%d", o.DICOMPort), calledAE: o.AET, truth: newTruth(corpus), studyCounts: true}

	t.Run("Echo", func(t *testing.T) { testEcho(t, p) })
	t.Run("FindLevels", func(t *testing.T) { testFindLevels(t, p) })
	t.Run("AllowList", func(t *testing.T) { testAllowList(t, p) })
	t.Run("Get", func(t *testing.T) { testGet(t, p) })
	// Orthanc answers a C-MOVE to an AE missing from DicomModalities with
	// 0xC000, not 0xA801.
	t.Run("MoveUnknown", func(t *testing.T) { testMoveUnknown(t, p, dimse.UnableToProcess) })
}

func TestInteropOrthancPolicy(t *testing.T) {
	peertest.Require(t, "Orthanc")
	t.Run("CalledAEChecked", func(t *testing.T) {
		o := peertest.StartOrthanc(t, peertest.OrthancConfig{CheckCalledAET: true})
		rj := rejected(t, fmt.Sprintf("127.0.0.1:%d", o.DICOMPort), ul.Config{CalledAE: "WRONG", Contexts: dimse.ProposeQR()})
		if want := (ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}); rj != want || rj.Meaning() != "called-AE-title-not-recognized" {
			t.Errorf("wrong called AE: RJ = %+v (%s), want %+v", rj, rj.Meaning(), want)
		}
	})
	t.Run("Strict", func(t *testing.T) {
		o := peertest.StartOrthanc(t, peertest.OrthancConfig{Strict: true, Modalities: map[string]string{"known": "KNOWN"}})
		rj := rejected(t, fmt.Sprintf("127.0.0.1:%d", o.DICOMPort), ul.Config{CalledAE: o.AET, Contexts: dimse.ProposeQR()})
		if want := (ul.AAssociateRJ{Result: 1, Source: 1, Reason: 3}); rj != want || rj.Meaning() != "calling-AE-title-not-recognized" {
			t.Errorf("unknown calling AE: RJ = %+v (%s), want %+v", rj, rj.Meaning(), want)
		}
	})
	t.Run("Default", func(t *testing.T) {
		// An unknown calling AE is accepted and answered to C-ECHO, and its
		// C-FIND is aborted once the request arrives: an accepted
		// association proves no exposure.
		o := peertest.StartOrthanc(t, peertest.OrthancConfig{})
		p := qrPeer{name: "Orthanc", addr: fmt.Sprintf("127.0.0.1:%d", o.DICOMPort), calledAE: "ANY-SCP"}
		testEcho(t, p)
		a := p.dial(t, false)
		matches := 0
		_, err := dimse.Find(opCtx(t), a, dimse.StudyRootFind, query("STUDY", map[dicom.Tag]string{dicom.StudyInstanceUID: ""}),
			dimse.FindOptions{}, func(dicom.Dataset) error { matches++; return nil })
		var ab *ul.AbortedError
		if !errors.As(err, &ab) || matches != 0 {
			t.Fatalf("C-FIND from an unknown AE: %v after %d matches, want an A-ABORT", err, matches)
		}
		if ab.Abort != (ul.AAbort{Source: 0, Reason: 0}) {
			t.Errorf("A-ABORT %+v, want source 0 reason 0", ab.Abort)
		}
	})
}
