package web

import "github.com/prometheus/client_golang/prometheus"

// metrics are serve's Prometheus metrics (the pacswatch_serve_ family).
type metrics struct {
	requests *prometheus.CounterVec   // by route pattern and status code
	latency  *prometheus.HistogramVec // by route pattern
	builds   *prometheus.CounterVec   // reports and indexes built, by kind and result
	buildSec *prometheus.HistogramVec // time to build, by kind
	scans    prometheus.Gauge         // scans in the store at the last listing
	exposed  prometheus.Gauge         // systems accessible in the latest run at the last listing
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacswatch_serve_requests_total", Help: "HTTP requests served, by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pacswatch_serve_request_duration_seconds", Help: "Time to answer a request, by route.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacswatch_serve_builds_total", Help: "Run reports and host indexes built, by kind and result.",
		}, []string{"kind", "result"}),
		buildSec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pacswatch_serve_build_duration_seconds", Help: "Time to build a run's report or host index.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}, []string{"kind"}),
		scans: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pacswatch_serve_scans", Help: "Scans in the store (every shard counts).",
		}),
		exposed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pacswatch_exposed_systems", Help: "Systems accessible (level query or above) in the store's latest run.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.builds, m.buildSec, m.scans, m.exposed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
