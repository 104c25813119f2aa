package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// TestHostileInflation scans, with the built binary, servers that inflate what they hold
// (issue 15): one study claiming 16,777,216 instances, 200,000 identical answers without a study
// UID, and an Orthanc REST API claiming 2⁶³−1 studies and instances, beside an honest archive.
// Every claim is kept apart in an implausible caveat that quotes it, never in the counts; the
// honest archive is counted exactly, with no caveat.
func TestHostileInflation(t *testing.T) {
	huge := scriptedSCP(t, func(level string) ([]dicom.Dataset, dimse.Status) {
		if level != "STUDY" {
			return nil, dimse.UnableToProcess
		}
		return []dicom.Dataset{inflatedStudy("2.25.7001", "16777216")}, dimse.Success
	})
	flood := scriptedSCP(t, func(level string) ([]dicom.Dataset, dimse.Status) {
		if level != "STUDY" {
			return nil, dimse.UnableToProcess
		}
		rsps := make([]dicom.Dataset, 200000)
		for i := range rsps {
			rsps[i] = inflatedStudy("", "17000000")
		}
		return rsps, dimse.Success
	})
	tree := dicomtest.NewTree(15, 40)
	honest := dicomtest.Start(t, dicomtest.Config{Tree: tree, ComputedCounts: true})
	_, honestPort, _ := net.SplitHostPort(honest.Addr())
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/system":
			io.WriteString(w, `{"DicomAet":"ORTHANC","DicomPort":4242,"Version":"1.12.3"}`)
		case "/statistics":
			io.WriteString(w, `{"CountStudies":9223372036854775807,"CountInstances":9223372036854775807}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(web.Close)
	webPort := web.Listener.Addr().(*net.TCPAddr).Port

	got := scanJSON(t, "127.0.0.1", "-p", fmt.Sprintf("%d,%d,%s", huge, flood, honestPort),
		"--web", "--web-ports", fmt.Sprint(webPort))
	for _, tc := range []struct {
		name      string
		port      int
		studies   int64
		instances int64
		claim     string
	}{
		{"one study claims 16,777,216 instances", huge, 1, 0, "largest claim 16777216"},
		{"200,000 answers without a study UID", flood, 0, 0, "200000 C-FIND answers without a valid StudyInstanceUID"},
		{"web counts of 2^63-1", webPort, 0, 0, "claims 9223372036854775807 studies"},
	} {
		r := got[uint16(tc.port)]
		js, _ := json.Marshal(r)
		e := r.Exposure
		if e == nil {
			t.Errorf("%s: no exposure: %s", tc.name, js)
			continue
		}
		studies, instances := e.Studies, e.Instances
		for _, w := range r.Web {
			studies, instances = studies+w.Studies, instances+w.Instances
		}
		if studies != tc.studies || instances != tc.instances {
			t.Errorf("%s: %d studies, %d instances counted; want %d, %d\n%s", tc.name, studies, instances, tc.studies, tc.instances, js)
		}
		quoted := false
		for _, c := range e.Caveats {
			quoted = quoted || c.Kind == probe.CaveatImplausible && strings.Contains(c.Reason, tc.claim)
		}
		if !quoted || e.Summable() {
			t.Errorf("%s: caveats %+v; want an implausible one quoting %q\n%s", tc.name, e.Caveats, tc.claim, js)
		}
	}
	port, _ := strconv.Atoi(honestPort)
	r := got[uint16(port)]
	if e := r.Exposure; e == nil || e.Studies != int64(tree.Len()) || !e.StudiesExact || len(e.Caveats) > 0 {
		js, _ := json.Marshal(r)
		t.Errorf("honest archive: %s; want %d studies, exact, no caveat", js, tree.Len())
	}
}

// inflatedStudy is a STUDY-level response with uid (none when empty) and a claimed
// NumberOfStudyRelatedInstances.
func inflatedStudy(uid, instances string) dicom.Dataset {
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	ds.Set(dicom.NewString(dicom.StudyDate, "20240105"))
	ds.Set(dicom.NewString(dicom.ModalitiesInStudy, "CT"))
	ds.Set(dicom.NewString(dicom.NumberOfStudyRelatedInstances, instances))
	if uid != "" {
		ds.Set(dicom.NewString(dicom.StudyInstanceUID, uid))
	}
	return ds
}

// scriptedSCP serves associations on 127.0.0.1, one at a time, that answer C-ECHO with success,
// each C-FIND with answer's responses for its query level and final status, and C-GET and
// C-MOVE with 0xA801: the hostile servers no scp personality plays. It returns the port.
func scriptedSCP(t *testing.T, answer func(level string) ([]dicom.Dataset, dimse.Status)) int {
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
			serveScriptedSCP(ctx, conn, answer)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func serveScriptedSCP(ctx context.Context, conn net.Conn, answer func(level string) ([]dicom.Dataset, dimse.Status)) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
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
			level, _ := q.String(dicom.QueryRetrieveLevel)
			rsps, final := answer(level)
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
			rsp.Field, rsp.Status = cmd.Field|0x8000, dimse.MoveDestinationUnknown
		default:
			return
		}
		if a.Send(ctx, id, rsp.Encode(), nil) != nil {
			return
		}
	}
}

// TestModalityTerms: a server that puts a name where a modality belongs (ZZDOEJOHN) has it
// counted as OTHER; the name appears nowhere in the output (issue 18 item 2).
func TestModalityTerms(t *testing.T) {
	port := scriptedSCP(t, func(level string) ([]dicom.Dataset, dimse.Status) {
		if level != "STUDY" {
			return nil, dimse.UnableToProcess
		}
		a, b := inflatedStudy("2.25.7101", "4"), inflatedStudy("2.25.7102", "2")
		a.Set(dicom.NewString(dicom.ModalitiesInStudy, "ZZDOEJOHN", "CT"))
		b.Set(dicom.NewString(dicom.ModalitiesInStudy, "MR"))
		return []dicom.Dataset{a, b}, dimse.Success
	})
	r := scanJSON(t, fmt.Sprintf("127.0.0.1:%d", port))[uint16(port)]
	js, _ := json.Marshal(r)
	want := map[string]int64{"CT": 1, "MR": 1, probe.ModalityOther: 1}
	if r.Exposure == nil || fmt.Sprint(r.Exposure.Modalities) != fmt.Sprint(want) || strings.Contains(string(js), "ZZDOEJOHN") {
		t.Errorf("got %s\nwant modalities %v, and no ZZDOEJOHN", js, want)
	}
}

// TestAEGuessOutcome: the titles of the prevalent products are reached within the default
// --max-ae-tries (pynetdicom's is the sixth), and a host that refuses every title guessed
// records no called AE title, not the last one tried (issue 15).
func TestAEGuessOutcome(t *testing.T) {
	pynetdicom := dicomtest.Start(t, dicomtest.Config{AETitle: "PYNETDICOM", CheckCalled: true})
	secret := dicomtest.Start(t, dicomtest.Config{AETitle: "PACS_SECRET", CheckCalled: true})
	var ports []string
	for _, s := range []*dicomtest.Server{pynetdicom, secret} {
		_, p, _ := net.SplitHostPort(s.Addr())
		ports = append(ports, p)
	}
	got := scanJSON(t, "127.0.0.1", "-p", strings.Join(ports, ","), "--depth", "echo")
	for i, want := range []struct {
		association probe.Association
		calledAE    string
	}{{probe.AssociationAccepted, "PYNETDICOM"}, {probe.AssociationRejected, ""}} {
		port, _ := strconv.Atoi(ports[i])
		r := got[uint16(port)]
		js, _ := json.Marshal(r)
		if r.DICOM == nil || r.DICOM.Association != want.association || r.DICOM.CalledAE != want.calledAE ||
			r.DICOM.AECheck != probe.AECheckCalled || r.Depth != "echo" {
			t.Errorf("got %s\nwant association %v, called_ae %q, ae_check called, depth echo", js, want.association, want.calledAE)
		}
	}
}
