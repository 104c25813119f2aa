package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/sim"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
	"github.com/pacswatch/pacswatch/internal/watch"
)

// hookReceiver is a webhook receiver on loopback that fails its first failures deliveries.
type hookReceiver struct {
	mu       sync.Mutex
	failures int
	requests int
	alerts   []watch.Alert
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if h.failures > 0 {
		h.failures--
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	var d watch.Delivery
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&d); err != nil {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	h.alerts = append(h.alerts, d.Alerts...)
}

func (h *hookReceiver) got() (int, []watch.Alert) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests, append([]watch.Alert(nil), h.alerts...)
}

// finishedScans returns the finished scans of a store, oldest first (none while it is missing).
func finishedScans(t *testing.T, db string) []store.Scan {
	t.Helper()
	if _, err := os.Stat(db); err != nil {
		return nil
	}
	st, err := sqlite.OpenReadOnly(context.Background(), db)
	if err != nil {
		return nil // being created
	}
	defer st.Close()
	scans, _ := st.Scans(context.Background())
	var out []store.Scan
	for _, s := range scans {
		if !s.Finished.IsZero() {
			out = append(out, s)
		}
	}
	return out
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWatchSim is watch's acceptance test: `pacswatch watch` scans a simulated fleet every few
// seconds; between its first two scans archives open, grow and close (one stops listening, one
// starts checking AE titles). The webhook receiver on loopback fails twice, then takes the
// delivery: it gets exactly those changes, once each, and the fixes' time to fix is the interval.
func TestWatchSim(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three scheduled scans; skipped with -short")
	}
	const interval = 8 * time.Second
	fleet, err := sim.Start(context.Background(), sim.Config{Hosts: 6, Seed: 6, CIDR: netip.MustParsePrefix("127.32.0.0/28"),
		Ports: []uint16{21112}, Mix: map[sim.Personality]int{sim.PersonalityOpen: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	rc := &hookReceiver{failures: 2}
	hook := httptest.NewServer(rc)
	defer hook.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "w.yaml")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := ln.Addr().String()
	ln.Close()
	yaml := fmt.Sprintf(`targets: [127.32.0.0/28]
scan_args: [-p, "21112", --rate, "0", --timeout, 2s, --seed, "6"]
schedule: {every: %s}
alerts:
  webhook: {url: %q, attempts: 5, backoff: 200ms}
metrics_listen: %s
`, interval, hook.URL+"/hook", metrics)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "pacswatch.db")
	cmd := exec.Command(binary, "watch", cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
	}()

	waitUntil(t, "first scan", 30*time.Second, func() bool { return len(finishedScans(t, db)) >= 1 })
	want := map[string]watch.Kind{}
	specs := fleet.Specs()
	for _, h := range fleet.Truth().Hosts {
		if h.Level < probe.LevelQuery {
			t.Fatalf("sim host %s is not open: %+v", h.Addr, h)
		}
	}
	grown := specs[0]
	before := fleet.Truth().Hosts[0].Studies
	h, err := fleet.Resize(grown.Addr, grown.Studies*4+10)
	if err != nil || h.Studies*100 <= before*110 {
		t.Fatalf("resize: %v (%d → %d studies)", err, before, h.Studies)
	}
	want[grown.Addr.Addr().String()] = watch.KindGrowth
	if err := fleet.Remove(specs[1].Addr); err != nil {
		t.Fatal(err)
	}
	want[specs[1].Addr.Addr().String()] = watch.KindFixed
	if err := fleet.Remove(specs[2].Addr); err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.Add(sim.Spec{Addr: specs[2].Addr, Personality: sim.PersonalityCalledSecret, Studies: specs[2].Studies}); err != nil {
		t.Fatal(err)
	}
	want[specs[2].Addr.Addr().String()] = watch.KindFixed
	added, err := fleet.Add(sim.Spec{Personality: sim.PersonalityOpen, Studies: 25})
	if err != nil {
		t.Fatal(err)
	}
	want[added.Addr.Addr().String()] = watch.KindNewExposure
	if n := len(finishedScans(t, db)); n != 1 {
		t.Fatalf("%d scans finished while the fleet changed: the interval is too short for this machine", n)
	}

	waitUntil(t, "delivery", 40*time.Second, func() bool { _, a := rc.got(); return len(a) > 0 })
	waitUntil(t, "third scan", 40*time.Second, func() bool { return len(finishedScans(t, db)) >= 3 })
	time.Sleep(time.Second) // the third scan's comparison: nothing changed, nothing sent
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`pacswatch_watch_scans_total{result="finished"} 3`, `pacswatch_watch_alerts_sent_total{kind="fixed",sink="webhook"} 2`,
		`pacswatch_watch_alerts_failed_total`, "pacswatch_exposed_systems 5", "pacswatch_watch_targets_per_second"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("watch exited with %v after SIGINT: %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch still running 20 s after SIGINT")
	}

	requests, alerts := rc.got()
	got := map[string]watch.Kind{}
	for _, a := range alerts {
		if _, dup := got[a.IP.String()]; dup {
			t.Errorf("%s alerted twice", a.IP)
		}
		got[a.IP.String()] = a.Kind
		if a.Kind == watch.KindFixed && a.TimeToFixSeconds != int64(interval/time.Second) {
			t.Errorf("fix of %s: time to fix %d s, want the interval %v", a.IP, a.TimeToFixSeconds, interval)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alerts %v, want %v\nwatch log:\n%s", got, want, stderr.String())
		st, err := sqlite.OpenReadOnly(context.Background(), db)
		if err == nil {
			for ip := range want {
				for _, sc := range finishedScans(t, db) {
					store.HostResults(context.Background(), st, sc.ID, netip.MustParseAddr(ip), func(r probe.Result) error {
						js, _ := json.Marshal(r)
						t.Logf("scan %s: %s", sc.ID, js)
						return nil
					})
				}
			}
			st.Close()
		}
	}
	if requests != 3 {
		t.Errorf("%d requests reached the receiver, want 3 (two refused, one delivery)", requests)
	}
}
