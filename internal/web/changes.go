package web

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/watch"
)

// maxChanges caps the changes a run's list keeps (a few hundred bytes each).
const maxChanges = 20_000

// changeList is what changed between a run and the one its report compares it with: the alerts
// a watch would send (new exposure, growth beyond the report's ugly threshold, fixes with their
// time to fix), in address order.
type changeList struct {
	Run       string        `json:"run"`
	Previous  string        `json:"previous_run"`
	Changes   []watch.Alert `json:"changes"`
	Truncated bool          `json:"truncated,omitempty"` // more than maxChanges changed
}

func buildChanges(ctx context.Context, cfg Config, prev, run store.Group) (*changeList, error) {
	cs, err := watch.Changes(ctx, cfg.Store, prev, run, cfg.Geo, cfg.Thresholds.UglyRise)
	if err != nil {
		return nil, err
	}
	l := &changeList{Run: run.ID(), Previous: prev.ID(), Changes: cs}
	if len(cs) > maxChanges {
		l.Changes, l.Truncated = slices.Clip(cs[:maxChanges]), true
	}
	return l, nil
}

// runChanges finds the request's run and the run its report compares it with, and waits up to
// wait for their changes. ok is false when it answered the request itself.
func (s *Server) runChanges(w http.ResponseWriter, r *http.Request, f frame, api bool) (*changeList, bool) {
	fail := s.fail
	if api {
		fail = s.apiFail
	}
	wait := s.cfg.Wait
	if api {
		wait = apiWait
	}
	ri, err := s.cache.run(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return nil, false
	}
	rep, ready, err := s.cache.report(ri.run).wait(r.Context(), wait)
	if err == nil && ready && rep.Compare == nil {
		l := &changeList{Run: ri.run.ID(), Changes: []watch.Alert{}}
		return l, true
	}
	var cl *changeList
	if err == nil && ready {
		var prev runInfo
		if prev, err = s.cache.run(r.Context(), rep.Compare.ID); err == nil {
			cl, ready, err = s.cache.changes(prev.run, ri.run).wait(r.Context(), wait)
		}
	}
	switch {
	case err != nil:
		fail(w, r, err)
		return nil, false
	case !ready && api:
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the comparison took too long"})
		return nil, false
	case !ready:
		s.pending(w, r, f, ri)
		return nil, false
	}
	return cl, true
}

func (s *Server) pageChanges(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := frame{Title: "Changes of run " + id, Crumbs: []crumb{{scanURL(id), "run " + id}, {scanURL(id) + "/changes", "changes"}}}
	cl, ok := s.runChanges(w, r, f, false)
	if !ok {
		return
	}
	counts := map[string]int{}
	for _, c := range cl.Changes {
		counts[c.Kind.String()]++
	}
	var sum []string
	for _, k := range []watch.Kind{watch.KindNewExposure, watch.KindGrowth, watch.KindFixed} {
		sum = append(sum, anyNum(counts[k.String()])+" "+k.String())
	}
	s.render(w, http.StatusOK, "changes", struct {
		frame
		List    *changeList
		Summary string
	}{f, cl, strings.Join(sum, ", ")})
}

func (s *Server) apiChanges(w http.ResponseWriter, r *http.Request) {
	if cl, ok := s.runChanges(w, r, frame{}, true); ok {
		writeJSON(w, http.StatusOK, cl)
	}
}
