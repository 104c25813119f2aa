package dicomprobe

import (
	"context"
	mrand "math/rand/v2"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// countPending counts the instances of the pending studies with SERIES- and IMAGE-level queries,
// in random order, as far as the budget goes.
func (c *counter) countPending(ctx context.Context) error {
	mrand.Shuffle(len(c.pending), func(i, j int) { c.pending[i], c.pending[j] = c.pending[j], c.pending[i] })
	for _, st := range c.pending {
		if c.stopped || c.budget-c.hold < 1 {
			return nil
		}
		if err := c.countStudy(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// countStudy counts one study's instances: NumberOfSeriesRelatedInstances of each series where the
// server computes it, else one IMAGE-level response per instance. The study counts only when
// every series was counted within the budget.
func (c *counter) countStudy(ctx context.Context, st pendingStudy) error {
	var id dicom.Dataset
	id.Set(dicom.NewString(dicom.QueryRetrieveLevel, "SERIES"))
	id.Set(dicom.NewString(dicom.StudyInstanceUID, st.uid))
	id.Set(dicom.NewString(dicom.Modality))
	id.Set(dicom.NewString(dicom.SeriesInstanceUID))
	id.Set(dicom.NewString(dicom.NumberOfSeriesRelatedInstances))
	t := seriesTally{complete: true}
	status, err := c.find(ctx, id, seriesKeys, t.add)
	if err != nil {
		return err
	}
	if t.n == 0 && status.Class() == dimse.ClassFailure {
		c.stopped = true // the server answers no SERIES-level query
		return nil
	}
	if st.modalities {
		c.addModalities(t.modalities)
	}
	if t.claim > 0 {
		c.implausibleStudy(t.claim)
		return nil
	}
	src := probe.InstancesSourceSeries
	for _, se := range t.uncounted {
		if !t.complete || c.budget-c.hold < 1 {
			return nil
		}
		k, ok, err := c.countSeries(ctx, st.uid, se, probe.MaxStudyInstances-t.instances)
		if err != nil {
			return err
		}
		if t.instances += k; t.instances > probe.MaxStudyInstances {
			c.implausibleStudy(t.instances)
			return nil
		}
		t.complete = t.complete && ok
		src = probe.InstancesSourceImage
	}
	if t.complete && whole(status) {
		c.addCounted(t.instances, src)
	}
	return nil
}

// A seriesTally adds up the responses of one study's SERIES-level query.
type seriesTally struct {
	n          int
	instances  int64    // NumberOfSeriesRelatedInstances summed
	claim      int64    // the instances claimed when beyond probe.MaxStudyInstances, else 0
	modalities []string // as sent: addModalities sanitizes them
	uncounted  []string // UIDs of the series without NumberOfSeriesRelatedInstances
	complete   bool     // every series was counted or listed in uncounted
}

func (t *seriesTally) add(ds *dicom.Dataset) error {
	if t.n++; t.n > maxSeriesPerStudy {
		t.complete = false
		return dimse.ErrStop
	}
	if m, ok := ds.String(dicom.Modality); ok && len(t.modalities) < probe.MaxModalities {
		t.modalities = append(t.modalities, m)
	}
	if k, ok := countValue(ds, dicom.NumberOfSeriesRelatedInstances); ok {
		if k > probe.MaxStudyInstances-t.instances { // more in the study than the bound allows
			t.claim = max(t.claim, probe.AddCounts(t.instances, k))
			return nil
		}
		t.instances += k // at most probe.MaxStudyInstances
		return nil
	}
	uid, _ := ds.String(dicom.SeriesInstanceUID)
	if uid == "" || len(uid) > probe.MaxUID {
		t.complete = false
		return nil
	}
	t.uncounted = append(t.uncounted, uid)
	return nil
}

// countSeries counts the IMAGE-level responses of one series; no key of theirs is kept. Past
// limit responses it stops reading (the study is then beyond the plausibility bound, which the
// caller sees in the count).
func (c *counter) countSeries(ctx context.Context, study, series string, limit int64) (int64, bool, error) {
	var id dicom.Dataset
	id.Set(dicom.NewString(dicom.QueryRetrieveLevel, "IMAGE"))
	id.Set(dicom.NewString(dicom.StudyInstanceUID, study))
	id.Set(dicom.NewString(dicom.SeriesInstanceUID, series))
	id.Set(dicom.NewString(dicom.SOPInstanceUID))
	var n int64
	ok := true
	limit = min(limit, int64(c.maxResponses))
	status, err := c.find(ctx, id, nil, func(*dicom.Dataset) error {
		if n++; n > limit {
			ok = false
			return dimse.ErrStop
		}
		return nil
	})
	if err == nil && !whole(status) {
		ok = false
		c.stopped = c.stopped || n == 0 && status.Class() == dimse.ClassFailure
	}
	return n, ok, err
}
