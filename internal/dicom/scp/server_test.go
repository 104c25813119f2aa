package scp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/scp"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// testCtx returns a context that ends with the test, and after 20 s.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial associates with s as our own client does, with the contexts of
// dimse.ProposeGet; edit may change the configuration first.
func dial(t *testing.T, s *scp.Server, edit func(*ul.Config)) (*ul.Assoc, error) {
	t.Helper()
	contexts, roles := dimse.ProposeGet()
	cfg := ul.Config{CalledAE: "DICOMTEST", Contexts: contexts, Roles: roles}
	if edit != nil {
		edit(&cfg)
	}
	return ul.Dial(testCtx(t), s.Addr(), cfg)
}

func mustDial(t *testing.T, s *scp.Server, edit func(*ul.Config)) *ul.Assoc {
	t.Helper()
	a, err := dial(t, s, edit)
	if err != nil {
		t.Fatalf("associate: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// identifier builds a query identifier at level with the given keys, empty
// or with a value.
func identifier(level string, keys ...any) dicom.Dataset {
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.QueryRetrieveLevel, level))
	for i := 0; i < len(keys); i++ {
		tag := keys[i].(dicom.Tag)
		var vals []string
		if i+1 < len(keys) {
			if v, ok := keys[i+1].(string); ok {
				vals = []string{v}
				i++
			}
		}
		ds.Set(dicom.NewString(tag, vals...))
	}
	return ds
}

// find runs a C-FIND and returns the response identifiers, decoded with every
// key kept.
func find(t *testing.T, a *ul.Assoc, model string, id dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
	t.Helper()
	var got []dicom.Dataset
	status, err := dimse.Find(testCtx(t), a, model, id, dimse.FindOptions{Allow: func(dicom.Tag) bool { return true }},
		func(ds dicom.Dataset) error {
			got = append(got, ds)
			return nil
		})
	if err != nil {
		t.Fatalf("C-FIND: %v", err)
	}
	return got, status
}

func strs(list []dicom.Dataset, tag dicom.Tag) []string {
	var out []string
	for _, ds := range list {
		s, _ := ds.String(tag)
		out = append(out, s)
	}
	return out
}

func TestEcho(t *testing.T) {
	s := dicomtest.Start(t, scp.Config{})
	a := mustDial(t, s, nil)
	status, err := dimse.Echo(testCtx(t), a)
	if err != nil || status != dimse.Success {
		t.Fatalf("C-ECHO = %v, %v; want success", status, err)
	}
	if err := a.Release(testCtx(t)); err != nil {
		t.Fatalf("release: %v", err)
	}
	info := a.Info()
	if info.PeerImplementationClassUID != scp.ImplementationClassUID || info.PeerImplementationVersion != scp.ImplementationVersionName {
		t.Errorf("peer identity %q %q, want dicomtest's", info.PeerImplementationClassUID, info.PeerImplementationVersion)
	}
	waitIdle(t, s)
	got := s.Stats()
	want := scp.Stats{Connections: 1, Associations: 1, Echo: 1}
	if got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
}

// waitIdle waits until s serves no connection.
func waitIdle(t *testing.T, s *scp.Server) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if s.Stats().Active == 0 {
			return
		}
	}
	t.Fatalf("server still has %d connections", s.Stats().Active)
}

func TestIdentityAndMaxPDU(t *testing.T) {
	s := dicomtest.Start(t, scp.Config{
		ImplementationClassUID: "1.2.3.4", ImplementationVersionName: "OTHER_1", MaxPDU: 4096,
	})
	a := mustDial(t, s, nil)
	info := a.Info()
	got := []any{info.PeerImplementationClassUID, info.PeerImplementationVersion, info.PeerMaxPDU}
	want := []any{"1.2.3.4", "OTHER_1", uint32(4096)}
	if !slices.Equal(got, want) {
		t.Errorf("AC identity = %v, want %v", got, want)
	}
}

func TestAEPolicy(t *testing.T) {
	for _, tc := range []struct {
		name            string
		cfg             scp.Config
		called, calling string
		want            *ul.AAssociateRJ // nil: accepted
	}{
		{"open", scp.Config{}, "ANYTHING", "ANYONE", nil},
		{"called ok", scp.Config{CheckCalled: true, AETitle: "PACS"}, "PACS", "ANYONE", nil},
		{"called wrong", scp.Config{CheckCalled: true, AETitle: "PACS"}, "pacs", "ANYONE", &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}},
		{"calling ok", scp.Config{AllowedCalling: []string{"A", "B"}}, "X", "B", nil},
		{"calling wrong", scp.Config{AllowedCalling: []string{"A", "B"}}, "X", "C", &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 3}},
		{"called checked first", scp.Config{CheckCalled: true, AETitle: "PACS", AllowedCalling: []string{"A"}}, "X", "C",
			&ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}},
		{"dcmqrscp-like calling refusal", scp.Config{AllowedCalling: []string{"A"}, CallingReject: ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}},
			"X", "C", &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}},
		{"transient refusal", scp.Config{CheckCalled: true, CalledReject: ul.AAssociateRJ{Result: 2, Source: 3, Reason: 1}},
			"X", "C", &ul.AAssociateRJ{Result: 2, Source: 3, Reason: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dicomtest.Start(t, tc.cfg)
			a, err := dial(t, s, func(c *ul.Config) { c.CalledAE, c.CallingAE = tc.called, tc.calling })
			var rj *ul.RejectedError
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("associate: %v, want accepted", err)
			case tc.want == nil:
				a.Release(testCtx(t))
			case !errors.As(err, &rj):
				t.Fatalf("associate: %v, want rejection %+v", err, *tc.want)
			case rj.RJ != *tc.want:
				t.Fatalf("rejected with %+v, want %+v", rj.RJ, *tc.want)
			}
			waitIdle(t, s)
			wantRejected := int64(0)
			if tc.want != nil {
				wantRejected = 1
			}
			if got := s.Stats().Rejected; got != wantRejected {
				t.Errorf("Stats.Rejected = %d, want %d", got, wantRejected)
			}
		})
	}
}

// tree is a small hand-built archive for matching tests.
func tree() *scp.Tree {
	inst := func(uids ...string) []scp.Instance {
		var out []scp.Instance
		for _, u := range uids {
			out = append(out, scp.Instance{SOPUID: u, SOPClassUID: "1.2.840.10008.5.1.4.1.1.2"})
		}
		return out
	}
	return &scp.Tree{Studies: []scp.Study{
		{UID: "1.1", Date: "20150101", PatientName: "FAKE^ANN", PatientID: "P1", Series: []scp.Series{
			{UID: "1.1.1", Modality: "CT", Instances: inst("1.1.1.1", "1.1.1.2")},
			{UID: "1.1.2", Modality: "SR", Instances: inst("1.1.2.1")},
		}},
		{UID: "1.2", Date: "20200615", PatientName: "FAKE^BOB", PatientID: "P2", Series: []scp.Series{
			{UID: "1.2.1", Modality: "MR", Instances: inst("1.2.1.1")},
		}},
		{UID: "1.3", Date: "20241231", PatientName: "FAKE^ANN", PatientID: "P1", Series: []scp.Series{
			{UID: "1.3.1", Modality: "CT", Instances: inst("1.3.1.1", "1.3.1.2", "1.3.1.3")},
		}},
	}}
}

func TestFindMatching(t *testing.T) {
	s := dicomtest.Start(t, scp.Config{Tree: tree()})
	a := mustDial(t, s, nil)
	for _, tc := range []struct {
		name  string
		model string
		id    dicom.Dataset
		key   dicom.Tag
		want  []string
	}{
		{"study universal", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID), dicom.StudyInstanceUID, []string{"1.1", "1.2", "1.3"}},
		{"study uid", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, "1.2"), dicom.StudyInstanceUID, []string{"1.2"}},
		{"study uid list", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, `1.3\1.1\9.9`), dicom.StudyInstanceUID, []string{"1.1", "1.3"}},
		{"date single", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, dicom.StudyDate, "20200615"), dicom.StudyInstanceUID, []string{"1.2"}},
		{"date range", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, dicom.StudyDate, "20150101-20200615"), dicom.StudyInstanceUID, []string{"1.1", "1.2"}},
		{"date from", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, dicom.StudyDate, "20200101-"), dicom.StudyInstanceUID, []string{"1.2", "1.3"}},
		{"date to", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, dicom.StudyDate, "-20191231"), dicom.StudyInstanceUID, []string{"1.1"}},
		{"date returned", dimse.StudyRootFind, identifier("STUDY", dicom.StudyDate), dicom.StudyDate, []string{"20150101", "20200615", "20241231"}},
		{"modalities in study", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, dicom.ModalitiesInStudy, "SR"), dicom.StudyInstanceUID, []string{"1.1"}},
		{"modalities in study list", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, dicom.ModalitiesInStudy, `MR\SR`), dicom.StudyInstanceUID, []string{"1.1", "1.2"}},
		{"patient id", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, dicom.PatientID, "P1"), dicom.StudyInstanceUID, []string{"1.1", "1.3"}},
		{"patient name wildcard", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, dicom.PatientName, "fake^b*"), dicom.StudyInstanceUID, []string{"1.2"}},
		{"series universal", dimse.StudyRootFind, identifier("SERIES", dicom.SeriesInstanceUID), dicom.SeriesInstanceUID, []string{"1.1.1", "1.1.2", "1.2.1", "1.3.1"}},
		{"series of study", dimse.StudyRootFind, identifier("SERIES", dicom.StudyInstanceUID, "1.1", dicom.SeriesInstanceUID), dicom.SeriesInstanceUID, []string{"1.1.1", "1.1.2"}},
		{"series modality", dimse.StudyRootFind, identifier("SERIES", dicom.Modality, "CT", dicom.SeriesInstanceUID), dicom.SeriesInstanceUID, []string{"1.1.1", "1.3.1"}},
		{"series modality wildcard", dimse.StudyRootFind, identifier("SERIES", dicom.Modality, "?R", dicom.SeriesInstanceUID), dicom.SeriesInstanceUID, []string{"1.1.2", "1.2.1"}},
		{"series modality returned", dimse.StudyRootFind, identifier("SERIES", dicom.StudyInstanceUID, "1.1", dicom.Modality), dicom.Modality, []string{"CT", "SR"}},
		{"image of series", dimse.StudyRootFind, identifier("IMAGE", dicom.SeriesInstanceUID, "1.3.1", dicom.SOPInstanceUID), dicom.SOPInstanceUID, []string{"1.3.1.1", "1.3.1.2", "1.3.1.3"}},
		{"image uid", dimse.StudyRootFind, identifier("IMAGE", dicom.SOPInstanceUID, "1.1.2.1"), dicom.SOPInstanceUID, []string{"1.1.2.1"}},
		{"image class", dimse.StudyRootFind, identifier("IMAGE", dicom.SOPInstanceUID, "1.1.2.1", dicom.SOPClassUID), dicom.SOPClassUID, []string{"1.2.840.10008.5.1.4.1.1.2"}},
		{"lower-level keys ignored", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, dicom.Modality, "MR"), dicom.StudyInstanceUID, []string{"1.1", "1.2", "1.3"}},
		{"patient root patients", dimse.PatientRootFind, identifier("PATIENT", dicom.PatientID), dicom.PatientID, []string{"P1", "P2"}},
		{"patient root name", dimse.PatientRootFind, identifier("PATIENT", dicom.PatientName, "FAKE^ANN"), dicom.PatientName, []string{"FAKE^ANN"}},
		{"patient root studies", dimse.PatientRootFind, identifier("STUDY", dicom.PatientID, "P1", dicom.StudyInstanceUID), dicom.StudyInstanceUID, []string{"1.1", "1.3"}},
		{"no match", dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, "7.7"), dicom.StudyInstanceUID, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, status := find(t, a, tc.model, tc.id)
			if status != dimse.Success {
				t.Fatalf("final status %v, want success", status)
			}
			if g := strs(got, tc.key); !slices.Equal(g, tc.want) {
				t.Errorf("%v = %q, want %q", dicom.Keyword(tc.key), g, tc.want)
			}
		})
	}
}

func TestFindFailures(t *testing.T) {
	s := dicomtest.Start(t, scp.Config{Tree: tree()})
	a := mustDial(t, s, nil)
	for _, tc := range []struct {
		name  string
		model string
		id    dicom.Dataset
	}{
		{"no level", dimse.StudyRootFind, func() dicom.Dataset {
			var ds dicom.Dataset
			ds.Set(dicom.NewString(dicom.StudyInstanceUID))
			return ds
		}()},
		{"unknown level", dimse.StudyRootFind, identifier("WARD")},
		{"patient level in study root", dimse.StudyRootFind, identifier("PATIENT")},
		{"bad date", dimse.StudyRootFind, identifier("STUDY", dicom.StudyDate, "2020")},
		{"bad range", dimse.StudyRootFind, identifier("STUDY", dicom.StudyDate, "-")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, status := find(t, a, tc.model, tc.id)
			if status != dimse.IdentifierDoesNotMatch || len(got) != 0 {
				t.Errorf("C-FIND = %d responses, %v; want none, %v", len(got), status, dimse.IdentifierDoesNotMatch)
			}
		})
	}
}

// TestFindKeys checks which keys come back: those requested that the level
// knows, the computed ones only when configured, and Chatty's extras.
func TestFindKeys(t *testing.T) {
	study := identifier("STUDY", dicom.StudyInstanceUID, "1.1", dicom.StudyDate, dicom.ModalitiesInStudy, dicom.NumberOfStudyRelatedSeries,
		dicom.NumberOfStudyRelatedInstances, dicom.RetrieveAETitle, dicom.AccessionNumber, dicom.Modality)
	for _, tc := range []struct {
		name  string
		cfg   scp.Config
		model string
		id    dicom.Dataset
		want  map[dicom.Tag]string
	}{
		{"dcmqrscp-like", scp.Config{}, dimse.StudyRootFind, study, map[dicom.Tag]string{
			dicom.QueryRetrieveLevel: "STUDY", dicom.StudyInstanceUID: "1.1", dicom.StudyDate: "20150101", dicom.RetrieveAETitle: "DICOMTEST",
		}},
		{"orthanc-like", scp.Config{ComputedCounts: true, Chatty: true, AETitle: "ORTHANC"}, dimse.StudyRootFind, study, map[dicom.Tag]string{
			dicom.QueryRetrieveLevel: "STUDY", dicom.StudyInstanceUID: "1.1", dicom.StudyDate: "20150101", dicom.RetrieveAETitle: "ORTHANC",
			dicom.ModalitiesInStudy: `CT\SR`, dicom.NumberOfStudyRelatedSeries: "2", dicom.NumberOfStudyRelatedInstances: "3",
			dicom.SpecificCharacterSet: "ISO_IR 100", dicom.InstitutionName: "FAKE INSTITUTION", dicom.PatientName: "FAKE^ANN",
		}},
		{"series counts", scp.Config{ComputedCounts: true}, dimse.StudyRootFind,
			identifier("SERIES", dicom.SeriesInstanceUID, "1.3.1", dicom.NumberOfSeriesRelatedInstances, dicom.NumberOfStudyRelatedInstances),
			map[dicom.Tag]string{dicom.QueryRetrieveLevel: "SERIES", dicom.SeriesInstanceUID: "1.3.1", dicom.NumberOfSeriesRelatedInstances: "3"}},
		{"patient counts", scp.Config{ComputedCounts: true}, dimse.PatientRootFind,
			identifier("PATIENT", dicom.PatientID, "P1", dicom.NumberOfPatientRelatedStudies, dicom.StudyInstanceUID),
			map[dicom.Tag]string{dicom.QueryRetrieveLevel: "PATIENT", dicom.PatientID: "P1", dicom.NumberOfPatientRelatedStudies: "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Tree = tree()
			s := dicomtest.Start(t, tc.cfg)
			a := mustDial(t, s, func(c *ul.Config) { c.CalledAE = "X" })
			got, status := find(t, a, tc.model, tc.id)
			if status != dimse.Success || len(got) != 1 {
				t.Fatalf("C-FIND = %d responses, %v; want 1, success", len(got), status)
			}
			keys := map[dicom.Tag]string{}
			for e := range got[0].All() {
				keys[e.Tag], _ = got[0].String(e.Tag)
			}
			if fmt.Sprint(keys) != fmt.Sprint(tc.want) {
				t.Errorf("keys = %v\nwant   %v", keys, tc.want)
			}
		})
	}
}

// TestFindChattyDropped proves that an allow-list client never sees Chatty's
// unrequested patient data.
func TestFindChattyDropped(t *testing.T) {
	s := dicomtest.Start(t, scp.Config{Tree: scp.NewTree(1, 20), Chatty: true, ComputedCounts: true})
	a := mustDial(t, s, nil)
	allow := dimse.AllowTags(dicom.QueryRetrieveLevel, dicom.StudyInstanceUID, dicom.NumberOfStudyRelatedInstances)
	n := 0
	status, err := dimse.Find(testCtx(t), a, dimse.StudyRootFind,
		identifier("STUDY", dicom.StudyInstanceUID, dicom.NumberOfStudyRelatedInstances), dimse.FindOptions{Allow: allow},
		func(ds dicom.Dataset) error {
			n++
			for e := range ds.All() {
				if !allow(e.Tag) {
					return fmt.Errorf("kept %v", e.Tag)
				}
			}
			if _, ok := ds.Get(dicom.PatientName); ok {
				return errors.New("patient name kept")
			}
			return nil
		})
	if err != nil || status != dimse.Success || n != 20 {
		t.Fatalf("C-FIND = %d responses, %v, %v; want 20, success", n, status, err)
	}
}

func TestFindLimitAndTransferSyntaxes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ts    string
		limit int
		want  int
	}{
		{"explicit", dicom.ExplicitVRLittleEndian, 0, 50},
		{"implicit", dicom.ImplicitVRLittleEndian, 0, 50},
		{"limit", dicom.ExplicitVRLittleEndian, 7, 7},
		{"limit above", dicom.ImplicitVRLittleEndian, 70, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dicomtest.Start(t, scp.Config{Tree: scp.NewVirtualTree(3, 50), LimitFind: tc.limit})
			a := mustDial(t, s, func(c *ul.Config) {
				c.Contexts = []ul.ContextProposal{{AbstractSyntax: dimse.StudyRootFind, TransferSyntaxes: []string{tc.ts}}}
				c.Roles = nil
			})
			if pc, _ := a.Context(dimse.StudyRootFind); pc.TransferSyntax != tc.ts {
				t.Fatalf("accepted %q, want %q", pc.TransferSyntax, tc.ts)
			}
			got, status := find(t, a, dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID, dicom.StudyDate))
			if status != dimse.Success || len(got) != tc.want {
				t.Fatalf("C-FIND = %d responses, %v; want %d, success", len(got), status, tc.want)
			}
			tr := scp.NewTree(3, 50)
			for i, ds := range got {
				if uid, _ := ds.String(dicom.StudyInstanceUID); uid != tr.Studies[i].UID {
					t.Fatalf("response %d: study %q, want %q", i, uid, tr.Studies[i].UID)
				}
			}
		})
	}
}

func TestFindCancel(t *testing.T) {
	s := dicomtest.Start(t, scp.Config{Tree: scp.NewVirtualTree(1, 100000)})
	a := mustDial(t, s, nil)
	n := 0
	status, err := dimse.Find(testCtx(t), a, dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID), dimse.FindOptions{},
		func(dicom.Dataset) error {
			if n++; n == 5 {
				return dimse.ErrStop
			}
			return nil
		})
	if err != nil || status != dimse.Cancel {
		t.Fatalf("cancelled C-FIND = %v, %v; want %v", status, err, dimse.Cancel)
	}
	// The association is still usable after the cancel.
	if status, err := dimse.Echo(testCtx(t), a); err != nil || status != dimse.Success {
		t.Fatalf("C-ECHO after cancel = %v, %v", status, err)
	}
	a.Release(testCtx(t))
	waitIdle(t, s)
	if got := s.Stats().Cancels; got != 1 {
		t.Errorf("Stats.Cancels = %d, want 1", got)
	}
}

func TestGet(t *testing.T) {
	tr := tree()
	s := dicomtest.Start(t, scp.Config{Tree: tr})
	for _, tc := range []struct {
		name string
		id   dicom.Dataset
		want []string
	}{
		{"study", identifier("STUDY", dicom.StudyInstanceUID, "1.1"), []string{"1.1.1.1", "1.1.1.2", "1.1.2.1"}},
		{"series", identifier("SERIES", dicom.StudyInstanceUID, "1.3", dicom.SeriesInstanceUID, "1.3.1"), []string{"1.3.1.1", "1.3.1.2", "1.3.1.3"}},
		{"image", identifier("IMAGE", dicom.SOPInstanceUID, "1.2.1.1"), []string{"1.2.1.1"}},
		{"nothing", identifier("STUDY", dicom.StudyInstanceUID, "9"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustDial(t, s, nil)
			var got []string
			ops, err := dimse.Get(testCtx(t), a, dimse.StudyRootGet, tc.id,
				func(ctx context.Context, req dimse.StoreRequest, data io.Reader) (dimse.Status, error) {
					b, err := io.ReadAll(data)
					if err != nil {
						return 0, err
					}
					ds, err := dicom.Decode(b, dicom.DecodeOptions{Explicit: req.TransferSyntax == dicom.ExplicitVRLittleEndian})
					if err != nil {
						return 0, err
					}
					uid, _ := ds.String(dicom.SOPInstanceUID)
					name, _ := ds.String(dicom.PatientName)
					pixels, _ := ds.Get(dicom.PixelData)
					if uid != req.SOPInstanceUID || len(pixels.Value) != 16 || name[:5] != "FAKE^" {
						return 0, fmt.Errorf("instance %q: uid %q, %d pixel bytes, patient %q", req.SOPInstanceUID, uid, len(pixels.Value), name)
					}
					got = append(got, uid)
					return dimse.Success, nil
				})
			if err != nil || ops.Status != dimse.Success {
				t.Fatalf("C-GET = %+v, %v", ops, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("stored %q, want %q", got, tc.want)
			}
			if c := ops.Completed; c == nil || int(*c) != len(tc.want) || *ops.Failed != 0 || *ops.Warning != 0 {
				t.Errorf("counts %v, want %d completed", subOps(ops), len(tc.want))
			}
			a.Release(testCtx(t))
		})
	}
}

func subOps(o dimse.SubOps) string {
	p := func(v *uint16) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprint(*v)
	}
	return fmt.Sprintf("%v remaining %s completed %s failed %s warning %s", o.Status, p(o.Remaining), p(o.Completed), p(o.Failed), p(o.Warning))
}

func TestGetFailures(t *testing.T) {
	s := dicomtest.Start(t, scp.Config{Tree: tree()})
	t.Run("store refused", func(t *testing.T) {
		a := mustDial(t, s, nil)
		n := 0
		ops, err := dimse.Get(testCtx(t), a, dimse.StudyRootGet, identifier("STUDY", dicom.StudyInstanceUID, "1.1"),
			func(context.Context, dimse.StoreRequest, io.Reader) (dimse.Status, error) {
				if n++; n == 2 {
					return dimse.OutOfResources, nil
				}
				return dimse.Success, nil
			})
		if got, want := subOps(ops), "0xB000 (warning: sub-operations complete with failures or warnings) remaining - completed 2 failed 1 warning 0"; err != nil || got != want {
			t.Errorf("C-GET = %s, %v; want %s", got, err, want)
		}
	})
	t.Run("no role", func(t *testing.T) {
		a := mustDial(t, s, func(c *ul.Config) { c.Roles = nil })
		ops, err := dimse.Get(testCtx(t), a, dimse.StudyRootGet, identifier("STUDY", dicom.StudyInstanceUID, "1.2"), nil)
		if got, want := subOps(ops), "0xA702 (failure: refused: out of resources: unable to perform sub-operations) remaining - completed 0 failed 1 warning 0"; err != nil || got != want {
			t.Errorf("C-GET = %s, %v; want %s", got, err, want)
		}
	})
	t.Run("client stops", func(t *testing.T) {
		a := mustDial(t, s, nil)
		_, err := dimse.Get(testCtx(t), a, dimse.StudyRootGet, identifier("STUDY", dicom.StudyInstanceUID, "1.3"),
			func(context.Context, dimse.StoreRequest, io.Reader) (dimse.Status, error) { return 0, dimse.ErrStop })
		if !errors.Is(err, dimse.ErrStopped) {
			t.Errorf("C-GET = %v, want %v", err, dimse.ErrStopped)
		}
		waitIdle(t, s)
	})
}

func TestMove(t *testing.T) {
	dest := dicomtest.Start(t, scp.Config{AETitle: "DEST", CheckCalled: true, AllowedCalling: []string{"SOURCE"}})
	src := dicomtest.Start(t, scp.Config{AETitle: "SOURCE", Tree: tree(), MoveDestinations: map[string]string{
		"DEST": dest.Addr(), "GONE": "127.0.0.1:1",
	}})
	for _, tc := range []struct {
		name, dest string
		id         dicom.Dataset
		want       string
		stored     int64
	}{
		{"study", "DEST", identifier("STUDY", dicom.StudyInstanceUID, "1.3"), "0x0000 (success) remaining - completed 3 failed 0 warning 0", 3},
		{"patient root", "DEST", identifier("PATIENT", dicom.PatientID, "P2"), "0x0000 (success) remaining - completed 1 failed 0 warning 0", 4},
		{"nothing", "DEST", identifier("STUDY", dicom.StudyInstanceUID, "9"), "0x0000 (success) remaining - completed 0 failed 0 warning 0", 4},
		{"unknown destination", "ELSEWHERE", identifier("STUDY", dicom.StudyInstanceUID, "1.3"),
			"0xA801 (failure: refused: move destination unknown) remaining - completed - failed - warning -", 4},
		{"destination down", "GONE", identifier("STUDY", dicom.StudyInstanceUID, "1.3"),
			"0xA702 (failure: refused: out of resources: unable to perform sub-operations) remaining - completed 0 failed 3 warning 0", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustDial(t, src, func(c *ul.Config) {
				c.CalledAE = "SOURCE"
				c.Contexts = append(c.Contexts, ul.ContextProposal{AbstractSyntax: dimse.PatientRootMove, TransferSyntaxes: []string{dicom.ImplicitVRLittleEndian}})
			})
			model := dimse.StudyRootMove
			if tc.name == "patient root" {
				model = dimse.PatientRootMove
			}
			ops, err := dimse.Move(testCtx(t), a, model, tc.dest, tc.id)
			if got := subOps(ops); err != nil || got != tc.want {
				t.Errorf("C-MOVE = %s, %v; want %s", got, err, tc.want)
			}
			a.Release(testCtx(t))
			waitIdle(t, dest)
			if got := dest.Stats().Store; got != tc.stored {
				t.Errorf("destination stored %d, want %d", got, tc.stored)
			}
		})
	}
}

func TestStore(t *testing.T) {
	s := dicomtest.Start(t, scp.Config{})
	a := mustDial(t, s, nil)
	pc, ok := a.Context("1.2.840.10008.5.1.4.1.1.2")
	if !ok {
		t.Fatal("CT storage context not accepted")
	}
	rq := dimse.Command{Field: dimse.CStoreRQ, AffectedSOPClassUID: pc.AbstractSyntax, MessageID: 9, HasDataset: true, AffectedSOPInstanceUID: "1.2.3"}
	if err := a.Send(testCtx(t), pc.ID, rq.Encode(), make([]byte, 100000)); err != nil {
		t.Fatal(err)
	}
	_, b, err := a.ReadCommand(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := dimse.DecodeCommand(b)
	if err != nil || rsp.Field != dimse.CStoreRSP || rsp.Status != dimse.Success || rsp.MessageIDBeingRespondedTo != 9 || rsp.AffectedSOPInstanceUID != "1.2.3" {
		t.Fatalf("C-STORE-RSP = %+v, %v", rsp, err)
	}
}

func TestRefusal(t *testing.T) {
	refused := scp.Services{Echo: true, Find: true, Get: true, Move: true}
	for _, tc := range []struct {
		refusal scp.Refusal
		check   func(t *testing.T, a *ul.Assoc, err error)
	}{
		{scp.RefuseAbort, func(t *testing.T, a *ul.Assoc, err error) {
			if err != nil {
				t.Fatalf("associate: %v", err)
			}
			_, err = dimse.Find(testCtx(t), a, dimse.StudyRootFind, identifier("STUDY"), dimse.FindOptions{}, func(dicom.Dataset) error { return nil })
			var ab *ul.AbortedError
			if !errors.As(err, &ab) {
				t.Errorf("C-FIND = %v, want an A-ABORT", err)
			}
		}},
		{scp.RefuseStatus, func(t *testing.T, a *ul.Assoc, err error) {
			if err != nil {
				t.Fatalf("associate: %v", err)
			}
			for name, op := range map[string]func() (dimse.Status, error){
				"echo": func() (dimse.Status, error) { return dimse.Echo(testCtx(t), a) },
				"find": func() (dimse.Status, error) {
					return dimse.Find(testCtx(t), a, dimse.StudyRootFind, identifier("STUDY"), dimse.FindOptions{}, func(dicom.Dataset) error { return nil })
				},
				"get": func() (dimse.Status, error) {
					o, err := dimse.Get(testCtx(t), a, dimse.StudyRootGet, identifier("STUDY"), nil)
					return o.Status, err
				},
				"move": func() (dimse.Status, error) {
					o, err := dimse.Move(testCtx(t), a, dimse.StudyRootMove, "X", identifier("STUDY"))
					return o.Status, err
				},
			} {
				if status, err := op(); err != nil || status != dimse.RefusedNotAuthorized {
					t.Errorf("%s = %v, %v; want %v", name, status, err, dimse.RefusedNotAuthorized)
				}
			}
		}},
		{scp.RefuseContext, func(t *testing.T, a *ul.Assoc, err error) {
			if err != nil {
				t.Fatalf("associate: %v", err)
			}
			for _, as := range []string{dimse.Verification, dimse.StudyRootFind, dimse.StudyRootGet, dimse.StudyRootMove, dimse.PatientRootFind} {
				if _, ok := a.Context(as); ok {
					t.Errorf("context %s accepted", as)
				}
			}
			if _, ok := a.Context("1.2.840.10008.5.1.4.1.1.2"); !ok {
				t.Errorf("storage context refused")
			}
			var results []ul.PCResult
			for _, r := range a.Info().Refused {
				results = append(results, r.Result)
			}
			if want := slices.Repeat([]ul.PCResult{ul.PCAbstractSyntaxNotSupported}, 5); !slices.Equal(results, want) {
				t.Errorf("refused contexts with %v, want %v", results, want)
			}
		}},
	} {
		t.Run(tc.refusal.String(), func(t *testing.T) {
			s := dicomtest.Start(t, scp.Config{Refused: refused, Refusal: tc.refusal})
			a, err := dial(t, s, nil)
			tc.check(t, a, err)
		})
	}
}

func TestLatency(t *testing.T) {
	const latency = 150 * time.Millisecond
	s := dicomtest.Start(t, scp.Config{Latency: latency})
	start := time.Now()
	a := mustDial(t, s, nil)
	if _, err := dimse.Echo(testCtx(t), a); err != nil {
		t.Fatal(err)
	}
	if got := time.Since(start); got < 2*latency {
		t.Errorf("association and echo took %v, want at least %v", got, 2*latency)
	}
}

// TestServeListener serves a listener of the caller's, on another loopback
// address, as the simulator does, and stops with the context.
func TestServeListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 unavailable: %v", err)
	}
	s := scp.New(scp.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, l) }()
	for s.Addr() == "" {
		time.Sleep(time.Millisecond)
	}
	if s.Addr() != l.Addr().String() {
		t.Errorf("Addr = %q, want %q", s.Addr(), l.Addr())
	}
	a := mustDial(t, s, nil)
	if status, err := dimse.Echo(testCtx(t), a); err != nil || status != dimse.Success {
		t.Fatalf("C-ECHO = %v, %v", status, err)
	}
	if err := s.Serve(ctx, l); !errors.Is(err, scp.ErrServing) {
		t.Errorf("second Serve = %v, want %v", err, scp.ErrServing)
	}
	cancel() // with the association still open
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	s.Close()
	if got := s.Stats().Active; got != 0 {
		t.Errorf("%d connections left after Close", got)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("listener still open")
	}
	if err := s.Serve(context.Background(), l); err != nil {
		t.Errorf("Serve after Close = %v, want nil", err)
	}
}

// TestCloseEndsConnections closes a server while clients hold idle
// associations and a streaming C-FIND.
func TestCloseEndsConnections(t *testing.T) {
	s := scp.New(scp.Config{Tree: scp.NewVirtualTree(1, 1_000_000), Timeout: time.Hour})
	go s.Serve(context.Background(), listen(t))
	for s.Addr() == "" {
		time.Sleep(time.Millisecond)
	}
	idle := mustDial(t, s, nil)
	_ = idle
	busy := mustDial(t, s, nil)
	findErr := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		n := 0
		_, err := dimse.Find(context.Background(), busy, dimse.StudyRootFind, identifier("STUDY"), dimse.FindOptions{},
			func(dicom.Dataset) error {
				if n++; n == 10 {
					close(started)
				}
				return nil
			})
		findErr <- err
	}()
	<-started
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := <-findErr; err == nil {
		t.Error("C-FIND ended without error when the server closed")
	}
	if got := s.Stats().Active; got != 0 {
		t.Errorf("%d connections left after Close", got)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
