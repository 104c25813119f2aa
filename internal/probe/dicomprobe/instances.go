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
	src := probe.InstancesSourceSeries
	for _, se := range t.uncounted {
		if !t.complete || c.budget-c.hold < 1 {
			return nil
		}
		k, ok, err := c.countSeries(ctx, st.uid, se)
		if err != nil {
			return err
		}
		t.complete = t.complete && ok
		t.instances += k
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
		t.instances += k // at most maxSeriesPerStudy × maxCountValue
		return nil
	}
	uid, _ := ds.String(dicom.SeriesInstanceUID)
	if uid == "" {
		t.complete = false
		return nil
	}
	t.uncounted = append(t.uncounted, uid)
	return nil
}

// countSeries counts the IMAGE-level responses of one series; no key of theirs is kept.
func (c *counter) countSeries(ctx context.Context, study, series string) (int64, bool, error) {
	var id dicom.Dataset
	id.Set(dicom.NewString(dicom.QueryRetrieveLevel, "IMAGE"))
	id.Set(dicom.NewString(dicom.StudyInstanceUID, study))
	id.Set(dicom.NewString(dicom.SeriesInstanceUID, series))
	id.Set(dicom.NewString(dicom.SOPInstanceUID))
	var n int64
	ok := true
	status, err := c.find(ctx, id, nil, func(*dicom.Dataset) error {
		if n++; n > int64(c.maxResponses) {
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
