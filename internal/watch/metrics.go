package watch

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a watch's Prometheus metrics. A nil *Metrics counts nothing.
type Metrics struct {
	scans       *prometheus.CounterVec // by result: finished, failed
	rate        prometheus.Gauge       // targets per second of the last scan
	lastScan    prometheus.Gauge       // end of the last scan, Unix seconds
	exposed     prometheus.Gauge       // systems accessible in the latest finished run
	alertsSent  *prometheus.CounterVec // by sink and kind
	alertsFails *prometheus.CounterVec // by sink
	total       func() float64         // targets of the latest scan (set by the caller)
}

// NewMetrics registers a watch's metrics with reg. targets returns the number of targets of
// the scan just run (for targets per second); nil leaves that gauge at 0.
func NewMetrics(reg prometheus.Registerer, targets func() float64) (*Metrics, error) {
	m := &Metrics{
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacswatch_watch_scans_total", Help: "Scheduled scans run, by result (finished or failed).",
		}, []string{"result"}),
		rate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pacswatch_watch_targets_per_second", Help: "Targets (host:port pairs) per second of the last scan.",
		}),
		lastScan: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pacswatch_watch_last_scan_end_seconds", Help: "When the last scan ended, Unix time.",
		}),
		exposed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pacswatch_exposed_systems", Help: "Systems accessible (level query or above) in the watch's latest finished run.",
		}),
		alertsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacswatch_watch_alerts_sent_total", Help: "Alerts delivered, by sink and kind.",
		}, []string{"sink", "kind"}),
		alertsFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacswatch_watch_alerts_failed_total", Help: "Alerts whose delivery failed after every attempt, by sink.",
		}, []string{"sink"}),
		total: targets,
	}
	for _, c := range []prometheus.Collector{m.scans, m.rate, m.lastScan, m.exposed, m.alertsSent, m.alertsFails} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) scanned(err error, start, end time.Time) {
	if m == nil {
		return
	}
	if err != nil {
		m.scans.WithLabelValues("failed").Inc()
		return
	}
	m.scans.WithLabelValues("finished").Inc()
	m.lastScan.Set(float64(end.UnixNano()) / 1e9)
	if d := end.Sub(start).Seconds(); d > 0 && m.total != nil {
		m.rate.Set(m.total() / d)
	}
}

// sinks makes each sink's counters show from the start, at 0.
func (m *Metrics) sinks(ss []Sink) {
	if m == nil {
		return
	}
	for _, s := range ss {
		m.alertsFails.WithLabelValues(s.Name())
	}
}

func (m *Metrics) exposedNow(n int64) {
	if m != nil {
		m.exposed.Set(float64(n))
	}
}

func (m *Metrics) sent(sink string, alerts []Alert, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.alertsFails.WithLabelValues(sink).Add(float64(len(alerts)))
		return
	}
	for _, a := range alerts {
		m.alertsSent.WithLabelValues(sink, a.Kind.String()).Inc()
	}
}
