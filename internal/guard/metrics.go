package guard

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the guard's Prometheus metrics. Their labels take values from a bounded set: the
// policy's entry names, the services, and the guard's own refusal names; never a value a client
// sends.
type Metrics struct {
	associations *prometheus.CounterVec
	active       prometheus.Gauge
	requests     *prometheus.CounterVec
	bytes        *prometheus.CounterVec
	reloads      *prometheus.CounterVec
}

// NewMetrics registers the guard's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		associations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacswatch_guard_associations_total",
			Help: "Association requests, by result (accepted, rejected) and refusal.",
		}, []string{"result", "refusal"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pacswatch_guard_associations_active",
			Help: "Associations admitted and not yet ended.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacswatch_guard_requests_total",
			Help: "DIMSE requests, by policy entry, service and decision (forwarded, refused).",
		}, []string{"peer", "service", "decision"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacswatch_guard_bytes_total",
			Help: "Bytes forwarded, by direction (in: to the upstream, out: to clients), counted when an association ends.",
		}, []string{"direction"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacswatch_guard_policy_reloads_total",
			Help: "Policy reloads, by result (ok, error: the policy in force was kept).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.associations, m.active, m.requests, m.bytes, m.reloads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
