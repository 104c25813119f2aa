package dicomprobe

import (
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// responseSeeds are C-FIND response identifiers as Orthanc 1.10 and dcmqrscp 3.6.7 send them
// (see peers.md), with the keys nobody asked for that they add.
func responseSeeds(t testing.TB) [][]byte {
	study := func(extra ...dicom.Element) dicom.Dataset {
		var ds dicom.Dataset
		for _, e := range append([]dicom.Element{
			dicom.NewString(dicom.SpecificCharacterSet, "ISO_IR 100"),
			dicom.NewString(dicom.StudyDate, "20230119"),
			dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"),
			dicom.NewString(dicom.RetrieveAETitle, "ORTHANC"),
			dicom.NewString(dicom.StudyInstanceUID, "2.25.71000044"),
		}, extra...) {
			ds.Set(e)
		}
		return ds
	}
	orthanc := study(dicom.NewString(dicom.ModalitiesInStudy, "CT", "MR"), dicom.NewString(dicom.NumberOfStudyRelatedInstances, "6"),
		dicom.NewString(dicom.InstitutionName, "FAKE INSTITUTION"))
	dcmqrscp := study(dicom.NewString(dicom.PatientName, "FAKE^PATIENT"), dicom.NewString(dicom.PatientID, "FAKEPID"))
	var series dicom.Dataset
	for _, e := range []dicom.Element{
		dicom.NewString(dicom.QueryRetrieveLevel, "SERIES"), dicom.NewString(dicom.Modality, "CR"),
		dicom.NewString(dicom.StudyInstanceUID, "2.25.71000001"), dicom.NewString(dicom.SeriesInstanceUID, "2.25.71000001.1"),
		dicom.NewString(dicom.NumberOfSeriesRelatedInstances, "2"),
	} {
		series.Set(e)
	}
	var seeds [][]byte
	for _, ds := range []dicom.Dataset{orthanc, dcmqrscp, series} {
		for _, explicit := range []bool{true, false} {
			b, err := dicom.Encode(ds, explicit)
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, b)
		}
	}
	return seeds
}

func newTestCounter() *counter {
	p := New(Config{Secret: []byte("fuzz")})
	c := p.newCounter(nil, p.cfg.Logger)
	c.reserve = 4
	return c
}

// FuzzResponse decodes a C-FIND response identifier as the counter does and feeds it, twice, to
// the STUDY- or SERIES-level tally: whatever the bytes, no key off the allow-list survives, a
// study counts once, counts stay within their bounds (beyond them, a caveat says so), and
// modality keys are PS3.3's terms or OTHER.
func FuzzResponse(f *testing.F) {
	for i, b := range responseSeeds(f) {
		f.Add(b, i%2 == 0, i >= 4)
	}
	f.Add([]byte{}, true, false)
	f.Fuzz(func(t *testing.T, data []byte, explicit, seriesLevel bool) {
		allow := studyKeys
		if seriesLevel {
			allow = seriesKeys
		}
		ds, err := dicom.Decode(data, dicom.DecodeOptions{Explicit: explicit, Allow: allow})
		if err != nil {
			return
		}
		for e := range ds.All() {
			if !allow(e.Tag) {
				t.Fatalf("decoded %v, which is not on the allow-list", e.Tag)
			}
		}
		if seriesLevel {
			tally := seriesTally{complete: true}
			for range 2 {
				if err := tally.add(&ds); err != nil {
					t.Fatalf("add: %v", err)
				}
			}
			if tally.instances < 0 || tally.instances > probe.MaxStudyInstances || len(tally.uncounted) > 2 || len(tally.modalities) > 2 {
				t.Fatalf("tally %+v", tally)
			}
			return
		}
		c := newTestCounter()
		res := sliceResult{span: allDates}
		for range 2 {
			if err := c.addStudy(&ds, &res); err != nil {
				t.Fatalf("addStudy: %v", err)
			}
		}
		var e probe.Exposure
		c.fill(&e)
		if msg := caveatsConsistent(&e); msg != "" {
			t.Fatalf("%s: %+v", msg, e)
		}
		if (c.noUID > 0 || c.big > 0) != e.HasCaveat(probe.CaveatImplausible) {
			t.Fatalf("noUID %d big %d, caveats %+v", c.noUID, c.big, e.Caveats)
		}
		if res.n != 2 || c.seen.len() > 1 || c.noUID > 2 || e.Studies > 1 || e.Instances < 0 || e.Instances > probe.MaxStudyInstances ||
			len(c.pending) > 1 || c.undated > 1 {
			t.Fatalf("after one study twice: res %+v seen %d noUID %d pending %d exposure %+v", res, c.seen.len(), c.noUID, len(c.pending), e)
		}
		for k, n := range e.Modalities {
			if probe.Modality(k) != k || n != 1 {
				t.Fatalf("modality %q counted %d times", k, n)
			}
		}
	})
}

// FuzzParseDA checks that a date parseDA accepts formats back to the same day and, given as
// YYYYMMDD, to the same string.
func FuzzParseDA(f *testing.F) {
	for _, s := range []string{"20240229", "2019.07.04", "00010101", "99991231", "20230229", "", "1970010"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		day, ok := parseDA(s)
		if !ok {
			return
		}
		if day < minDay || day > maxDay {
			t.Fatalf("parseDA(%q) = %d, outside [%d, %d]", s, day, minDay, maxDay)
		}
		f := formatDA(day)
		if back, ok := parseDA(f); !ok || back != day {
			t.Fatalf("parseDA(formatDA(%d) = %q) = %d, %v", day, f, back, ok)
		}
		if len(s) == 8 && f != s {
			t.Fatalf("formatDA(parseDA(%q)) = %q", s, f)
		}
	})
}
