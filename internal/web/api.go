package web

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pacswatch/pacswatch/internal/history"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
)

// apiWait bounds how long an API request waits for a run's report or index.
const apiWait = 10 * time.Minute

type apiError struct {
	Error string `json:"error"`
}

// APIRun is one run of GET /api/v1/runs.
type APIRun struct {
	ID             string         `json:"id"` // the run's first scan
	Name           string         `json:"name,omitempty"`
	Started        time.Time      `json:"started"`
	Finished       time.Time      `json:"finished,omitzero"` // zero while a shard runs
	Scans          []string       `json:"scans"`             // the run's scans (its shards)
	Shards         uint64         `json:"shards,omitempty"`
	ShardsFinished uint64         `json:"shards_finished,omitempty"`
	Targets        uint64         `json:"targets"`
	Metrics        report.Metrics `json:"metrics"` // per system, as report's trend counts them
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetIndent("", "  ")
	enc.Encode(v)
	bw.Flush()
}

// apiFail answers an error as JSON, with the status fail gives pages.
func (s *Server) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{"no such scan in the store"})
	case errors.Is(err, errStopped), r.Context().Err() != nil:
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the server is stopping"})
	default:
		s.log.Error("request", "path", capPath(r.URL.Path), "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{"the store could not be read: " + firstLine(err.Error())})
	}
}

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := s.cache.runs(r.Context())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	out := make([]APIRun, len(runs))
	for i, ri := range runs {
		g, row := ri.run, newRunRow(ri)
		out[i] = APIRun{ID: g.ID(), Name: row.Name, Started: row.Started, Finished: g.FinishedAt(), Scans: g.IDs(),
			Targets: g.Total(), Metrics: row.Metrics}
		if g.Key.Shards > 1 {
			out[i].Shards, out[i].ShardsFinished = g.Key.Shards, g.ShardsFinished()
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiReport answers the run's report as `pacswatch report --format json` writes it.
func (s *Server) apiReport(w http.ResponseWriter, r *http.Request) {
	ri, err := s.cache.run(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	rep, ready, err := s.cache.report(ri.run).wait(r.Context(), apiWait)
	if err == nil && !ready {
		err = errors.New("the report took too long")
	}
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriter(w)
	if err := rep.WriteJSON(bw); err != nil {
		s.log.Error("write report", "err", err)
		return
	}
	bw.Flush()
}

func (s *Server) apiHosts(w http.ResponseWriter, r *http.Request) {
	ri, err := s.cache.run(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	p, after, err := listQuery(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	n := s.cfg.PageSize
	if l := r.URL.Query().Get("limit"); l != "" {
		if n, err = strconv.Atoi(l); err != nil || n < 1 || n > maxPageSize {
			writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("limit= is not a number from 1 to %d", maxPageSize)})
			return
		}
	}
	if _, _, err := s.cache.index(ri.run).wait(r.Context(), apiWait); err != nil {
		s.apiFail(w, r, err)
		return
	}
	l, _, err := s.hostList(r, ri, p, after, n)
	if err == nil && l == nil {
		err = errors.New("the host index took too long")
	}
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) apiHost(w http.ResponseWriter, r *http.Request) {
	ip, err := netip.ParseAddr(r.PathValue("ip"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"not an IP address"})
		return
	}
	h, err := history.HostHistory(r.Context(), s.cfg.Store, ip)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// trendChart is the index's line of accessible studies per run, in SVG.
type trendChart struct {
	Width, Height, Base int
	Points, Max         string
	Dots                []trendDot
}

type trendDot struct {
	X, Y  float64
	Title string
}

func newTrend(rows []runRow) *trendChart {
	if len(rows) < 2 {
		return nil
	}
	const w, h, left, right, top, bottom = 760, 160, 40, 20, 24, 20
	c := &trendChart{Width: w, Height: h, Base: h - bottom}
	var hi int64 = 1
	for _, r := range rows {
		hi = max(hi, r.Metrics.Studies)
	}
	c.Max = num(hi)
	var pts []string
	for i, r := range rows {
		x := float64(left) + float64(i)*float64(w-left-right)/float64(len(rows)-1)
		y := float64(top) + (1-float64(r.Metrics.Studies)/float64(hi))*float64(h-top-bottom)
		x, y = math.Round(x*10)/10, math.Round(y*10)/10
		pts = append(pts, strconv.FormatFloat(x, 'f', -1, 64)+","+strconv.FormatFloat(y, 'f', -1, 64))
		c.Dots = append(c.Dots, trendDot{X: x, Y: y, Title: fmt.Sprintf("%s %s: %s studies", r.ID, when(r.Started), num(r.Metrics.Studies))})
	}
	c.Points = strings.Join(pts, " ")
	return c
}
