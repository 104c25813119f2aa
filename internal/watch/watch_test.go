package watch_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/history"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/memstore"
	"github.com/pacswatch/pacswatch/internal/watch"
)

var t0 = time.Date(2026, 5, 4, 3, 0, 0, 0, time.UTC)

func exposed(ip string, studies int64) probe.Result {
	return probe.Result{IP: netip.MustParseAddr(ip), Port: 104, Time: t0, Status: probe.StatusOpen,
		DICOM: &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", Product: "Orthanc"},
		Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: studies, StudiesExact: true, Instances: studies * 10,
			InstancesSource: probe.InstancesSourceStudyAttr}}
}

func protected(ip string) probe.Result {
	return probe.Result{IP: netip.MustParseAddr(ip), Port: 104, Time: t0, Status: probe.StatusOpen,
		DICOM: &probe.DICOM{Association: probe.AssociationRejected}, Exposure: &probe.Exposure{Level: probe.LevelProtected}}
}

// fleet is what the simulated hosts expose at each scan: scan i sees rounds[min(i, last)].
var rounds = [][]probe.Result{
	{exposed("10.0.0.1", 100), exposed("10.0.0.2", 50), protected("10.0.0.3"), exposed("10.0.0.4", 20), exposed("10.0.0.5", 10)},
	// 10.0.0.2 grew 60 %, 10.0.0.5 grew 5 % (under the threshold), 10.0.0.3 opened, 10.0.0.6 is new,
	// 10.0.0.4 closed (nothing stored: the same space), 10.0.0.1 fixed with an AE check.
	{protected("10.0.0.1"), exposed("10.0.0.2", 80), exposed("10.0.0.3", 7), exposed("10.0.0.5", 10), exposed("10.0.0.6", 3)},
}

// want is the alerts the second run must give, by address.
var want = map[string]watch.Kind{
	"10.0.0.1": watch.KindFixed, "10.0.0.2": watch.KindGrowth, "10.0.0.3": watch.KindNewExposure,
	"10.0.0.4": watch.KindFixed, "10.0.0.6": watch.KindNewExposure,
}

// fakeScanner stores one finished scan of the fleet per call, started at the fake clock's now.
type fakeScanner struct {
	st    *memstore.Store
	clock *clock
	n     int
	stop  func(n int) // called after each scan
}

func (f *fakeScanner) Scan(ctx context.Context, resume bool) error {
	if resume {
		return errors.New("nothing to resume")
	}
	now := f.clock.Now()
	sc, err := f.st.CreateScan(ctx, store.Scan{Name: "w", Started: now, SpaceDigest: "space", Total: 256})
	if err != nil {
		return err
	}
	rs := rounds[min(f.n, len(rounds)-1)]
	if err := f.st.PutResults(ctx, sc.ID, rs, store.Progress{Done: 256}); err != nil {
		return err
	}
	f.clock.advance(3 * time.Minute) // the scan takes a while
	if err := f.st.FinishScan(ctx, sc.ID, f.clock.Now()); err != nil {
		return err
	}
	f.n++
	if f.stop != nil {
		f.stop(f.n)
	}
	return nil
}

// clock is a fake clock: After moves it to the deadline at once.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
func (c *clock) After(d time.Duration) <-chan time.Time {
	c.advance(d)
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

// receiver is a webhook receiver on loopback that fails its first failures requests.
type receiver struct {
	mu       sync.Mutex
	failures int
	requests int
	alerts   []watch.Alert
	keys     []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.failures > 0 {
		rc.failures--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var d watch.Delivery
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &d); err != nil || d.Watch != "w" {
		http.Error(w, "bad delivery", http.StatusBadRequest)
		return
	}
	rc.alerts = append(rc.alerts, d.Alerts...)
	rc.keys = append(rc.keys, r.Header.Get("Idempotency-Key"))
}

func newWatcher(t *testing.T, st *memstore.Store, c *clock, sc watch.Scanner, url, state string) *watch.Watcher {
	t.Helper()
	return &watch.Watcher{
		Config:  watch.Config{Name: "w", Schedule: watch.Schedule{Every: 24 * time.Hour}, State: state},
		Scanner: sc, Now: c.Now, After: c.After,
		Open:  func(context.Context) (store.Reader, error) { return st.ReadOnly(), nil },
		Sinks: []watch.Sink{&watch.Webhook{URL: url, Backoff: time.Millisecond, Attempts: 4}},
	}
}

// TestWatchDeliversOnce: two scheduled scans of a changed fleet; the receiver fails twice, then
// takes the delivery: it gets exactly the changes, once each, fixes with a time to fix of the
// interval; a restarted watch sends nothing again.
func TestWatchDeliversOnce(t *testing.T) {
	st := memstore.New()
	defer st.Close()
	rc := &receiver{failures: 2}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	c := &clock{now: t0}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := &fakeScanner{st: st, clock: c, stop: func(n int) {
		if n == 2 {
			cancel()
		}
	}}
	state := filepath.Join(t.TempDir(), "w.state.json")
	w := newWatcher(t, st, c, sc, srv.URL, state)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not stop")
	}
	// The run after the cancelled context alerts at the next start: a restarted watch.
	ctx2, cancel2 := context.WithCancel(context.Background())
	sc.stop = func(int) { cancel2() }
	w2 := newWatcher(t, st, c, sc, srv.URL, state)
	go func() { done <- w2.Run(ctx2) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	got := map[string]watch.Kind{}
	for _, a := range rc.alerts {
		if k, dup := got[a.IP.String()]; dup {
			t.Errorf("%s alerted twice (%v, %v)", a.IP, k, a.Kind)
		}
		got[a.IP.String()] = a.Kind
		if a.Kind == watch.KindFixed && (a.TimeToFixSeconds != int64(24*time.Hour/time.Second) || !a.FirstSeenExposed.Equal(t0)) {
			t.Errorf("fix of %s: first seen %v, time to fix %d s, want %v and the interval (86400 s)", a.IP, a.FirstSeenExposed, a.TimeToFixSeconds, t0)
		}
		if a.ID == "" || a.Run == "" || a.Previous == "" {
			t.Errorf("alert without id or runs: %+v", a)
		}
	}
	if len(got) != len(want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
	for ip, k := range want {
		if got[ip] != k {
			t.Errorf("%s: alert %v, want %v", ip, got[ip], k)
		}
	}
	// Scan 3 saw the same fleet as scan 2: no alert; two failures then one delivery for scan 2.
	if rc.requests != 3 || len(rc.keys) != 1 {
		t.Errorf("%d requests, %d delivered; want 3 and 1", rc.requests, len(rc.keys))
	}
	if sc.n != 3 {
		t.Errorf("%d scans, want 3", sc.n)
	}
}

// TestWebhookGivesUp: a receiver that refuses (4xx) is not retried; one that keeps failing is
// tried Attempts times; the watch keeps its state so that the next cycle sends again.
func TestWebhookGivesUp(t *testing.T) {
	for _, tt := range []struct {
		code, attempts, want int
	}{{http.StatusBadRequest, 5, 1}, {http.StatusBadGateway, 3, 3}, {http.StatusTooManyRequests, 2, 2}} {
		n := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n++
			w.WriteHeader(tt.code)
		}))
		err := (&watch.Webhook{URL: srv.URL + "/hook?secret=x", Attempts: tt.attempts, Backoff: time.Millisecond}).
			Send(context.Background(), watch.Delivery{Watch: "w", Alerts: []watch.Alert{{Kind: watch.KindFixed}}})
		srv.Close()
		if err == nil || n != tt.want {
			t.Errorf("answer %d: %d requests, error %v; want %d and an error", tt.code, n, err, tt.want)
		}
		if err != nil && (contains(err.Error(), "secret") || contains(err.Error(), "\n")) {
			t.Errorf("error shows the URL's query or spans lines: %v", err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestHostHistoryEpisodes: exposed, fixed, exposed again; a run over another space that stored
// nothing leaves an episode open.
func TestHostHistoryEpisodes(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	defer st.Close()
	day := 24 * time.Hour
	for i, step := range []struct {
		space string
		rs    []probe.Result
	}{
		{"a", []probe.Result{exposed("10.0.0.9", 5)}},
		{"a", []probe.Result{exposed("10.0.0.9", 6)}},
		{"a", []probe.Result{protected("10.0.0.9")}},
		{"a", []probe.Result{exposed("10.0.0.9", 6)}},
		{"b", nil}, // another target space: not a fix
	} {
		at := t0.Add(time.Duration(i) * day)
		sc, err := st.CreateScan(ctx, store.Scan{Name: "h", Started: at, SpaceDigest: step.space})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutResults(ctx, sc.ID, step.rs, store.Progress{}); err != nil {
			t.Fatal(err)
		}
		if err := st.FinishScan(ctx, sc.ID, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	h, err := history.HostHistory(ctx, st, netip.MustParseAddr("10.0.0.9"))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Runs) != 5 || len(h.Episodes) != 2 || !h.Exposed {
		t.Fatalf("history: %d runs, %d episodes, exposed %v; want 5, 2, true", len(h.Runs), len(h.Episodes), h.Exposed)
	}
	e := h.Episodes[0]
	if !e.FirstSeenExposed.Equal(t0) || !e.LastSeenExposed.Equal(t0.Add(day)) || !e.FixedAt.Equal(t0.Add(2*day)) || e.TimeToFix() != 2*day {
		t.Errorf("first episode %+v", e)
	}
	if e := h.Episodes[1]; !e.FixedAt.IsZero() || !e.FirstSeenExposed.Equal(t0.Add(3*day)) {
		t.Errorf("second episode %+v, want open since day 3", e)
	}
	ips := []string{}
	for _, r := range h.Runs {
		if r.Seen {
			ips = append(ips, r.Run)
		}
	}
	sort.Strings(ips)
	if len(ips) != 4 {
		t.Errorf("seen in %v, want 4 runs", ips)
	}
}

// recorder is a Scanner that records how it was called and stops the watch after the first call.
type recorder struct {
	calls []bool
	stop  context.CancelFunc
}

func (r *recorder) Scan(ctx context.Context, resume bool) error {
	r.calls = append(r.calls, resume)
	r.stop()
	return nil
}

// TestWatchResumesFirst: a watch that finds its own scan unfinished (a restart) resumes it before
// anything else; another command's unfinished scan is not its to resume.
func TestWatchResumesFirst(t *testing.T) {
	for _, tt := range []struct {
		name   string
		resume bool
	}{{"w", true}, {"someone else", false}} {
		st := memstore.New()
		if _, err := st.CreateScan(context.Background(), store.Scan{Name: tt.name, Started: t0}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		rec := &recorder{stop: cancel}
		c := &clock{now: t0.Add(time.Hour)}
		w := newWatcher(t, st, c, rec, "http://127.0.0.1:9/unused", filepath.Join(t.TempDir(), "s.json"))
		if err := w.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if len(rec.calls) != 1 || rec.calls[0] != tt.resume {
			t.Errorf("unfinished scan of %q: scans %v, want one with resume %v", tt.name, rec.calls, tt.resume)
		}
		st.Close()
	}
}
