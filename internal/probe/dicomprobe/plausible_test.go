package dicomprobe

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// seriesRSP is a SERIES-level response; empty values are left out.
func seriesRSP(uid, modality, count string) dicom.Dataset {
	var ds dicom.Dataset
	for _, e := range []dicom.Element{dicom.NewString(dicom.SeriesInstanceUID, uid), dicom.NewString(dicom.Modality, modality),
		dicom.NewString(dicom.NumberOfSeriesRelatedInstances, count)} {
		if len(e.Value) > 0 {
			ds.Set(e)
		}
	}
	return ds
}

// TestMeasureImplausible runs servers that inflate their counts (issue 15): their claims are
// kept apart in implausible caveats, never in the counts, and the record is not summable.
func TestMeasureImplausible(t *testing.T) {
	honest := []dicom.Dataset{studyRSP("1.2.3.4.7.1", "20200101", "12", "CT"), studyRSP("1.2.3.4.7.2", "20200102", "8", "MR")}
	for _, tc := range []struct {
		name      string
		answer    func(sop string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status)
		studies   int64
		exact     bool
		instances int64
		source    probe.InstancesSource
		level     probe.Level
		claim     string // in the implausible caveat's reason
	}{
		{"one study claims 16,777,216 instances", func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			return append(honest[:1:1], studyRSP("1.2.3.4.7.9", "20200103", "16777216", "CT")), dimse.Success
		}, 2, true, 24, probe.InstancesSourceEstimate, probe.LevelRetrieve, "largest claim 16777216"},
		{"200,000 identical answers without a study UID", func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			if lvl, _ := q.String(dicom.QueryRetrieveLevel); lvl != "STUDY" {
				return nil, dimse.UnableToProcess
			}
			flood := make([]dicom.Dataset, 200000)
			for i := range flood {
				flood[i] = studyRSP("", "20200101", "17000000", "CT")
			}
			return flood, dimse.Success
		}, 0, false, 0, probe.InstancesSourceNone, probe.LevelQuery, "200000 C-FIND answers without a valid StudyInstanceUID"},
		{"UID-less answers beside real studies", func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			return append(honest[:2:2], studyRSP("", "20200101", "5", "US"), studyRSP(strings.Repeat("1", 65), "", "5")), dimse.Success
		}, 2, false, 20, probe.InstancesSourceStudyAttr, probe.LevelRetrieve, "2 C-FIND answers without a valid StudyInstanceUID"},
		{"series claim 120,000 instances in a study", func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			switch lvl, _ := q.String(dicom.QueryRetrieveLevel); lvl {
			case "STUDY":
				return []dicom.Dataset{studyRSP("1.2.3.4.8.1", "20200101", "")}, dimse.Success
			case "SERIES":
				return []dicom.Dataset{seriesRSP("1.2.3.4.8.1.1", "CT", "60000"), seriesRSP("1.2.3.4.8.1.2", "CT", "60000")}, dimse.Success
			}
			return nil, dimse.UnableToProcess
		}, 1, true, 0, probe.InstancesSourceNone, probe.LevelRetrieve, "largest claim 120000"},
		{"image level: more than 100,000 instances in a series", func(_ string, q *dicom.Dataset) ([]dicom.Dataset, dimse.Status) {
			switch lvl, _ := q.String(dicom.QueryRetrieveLevel); lvl {
			case "STUDY":
				return []dicom.Dataset{studyRSP("1.2.3.4.8.2", "20200101", "")}, dimse.Success
			case "SERIES":
				return []dicom.Dataset{seriesRSP("1.2.3.4.8.2.1", "CT", "")}, dimse.Success
			}
			images := make([]dicom.Dataset, probe.MaxStudyInstances+50)
			for i := range images {
				images[i].Set(dicom.NewString(dicom.SOPInstanceUID, fmt.Sprintf("1.2.3.4.8.2.1.%d", i)))
			}
			return images, dimse.Success
		}, 1, true, 0, probe.InstancesSourceNone, probe.LevelRetrieve, "more than 100000 instances"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := scripted(t, tc.answer, false)
			r := probeAddr(t, context.Background(), addr, Config{Timeout: 3 * time.Second})
			js, _ := json.Marshal(r)
			e := r.Exposure
			if e.Studies != tc.studies || e.StudiesExact != tc.exact || e.Instances != tc.instances || e.InstancesSource != tc.source || e.Level != tc.level {
				t.Errorf("studies %d exact %v instances %d source %v level %v; want %d %v %d %v %v\n%s", e.Studies, e.StudiesExact,
					e.Instances, e.InstancesSource, e.Level, tc.studies, tc.exact, tc.instances, tc.source, tc.level, js)
			}
			found := false
			for _, c := range e.Caveats {
				found = found || c.Kind == probe.CaveatImplausible && strings.Contains(c.Reason, tc.claim)
			}
			if !found || e.Summable() {
				t.Errorf("caveats %+v: want an implausible one quoting %q, and not summable", e.Caveats, tc.claim)
			}
			if msg := caveatsConsistent(e); msg != "" {
				t.Error(msg)
			}
			checkPrivate(t, r, "1.2.3.4.")
		})
	}
}
