package leasefile

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the lease file's Prometheus collectors. Create them with
// NewMetrics and register Collectors() wherever the caller keeps its
// registry; a nil *Metrics records nothing.
type Metrics struct {
	bytesWritten prometheus.Counter
	syncs        prometheus.Counter
	syncSeconds  prometheus.Histogram
	failures     *prometheus.CounterVec
	compactions  *prometheus.CounterVec
	tornTails    prometheus.Counter
	size         prometheus.Gauge
}

// NewMetrics creates the collectors, named tandem_leasefile_*.
func NewMetrics() *Metrics {
	return &Metrics{
		bytesWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_leasefile_written_bytes_total",
			Help: "Bytes appended to the lease file.",
		}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_leasefile_syncs_total",
			Help: "fsync calls on the lease file (one per group commit).",
		}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tandem_leasefile_sync_duration_seconds",
			Help:    "Time an fsync of the lease file took.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs .. 3.3s
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_leasefile_failures_total",
			Help: "Failed writes and syncs of the lease file; after one the journal refuses writes until a compaction succeeds.",
		}, []string{"op"}),
		compactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_leasefile_compactions_total",
			Help: "Lease file rewrites, by result.",
		}, []string{"result"}),
		tornTails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_leasefile_torn_tails_recovered_total",
			Help: "Torn last records cut off the lease file at load.",
		}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tandem_leasefile_size_bytes",
			Help: "Size of the lease file.",
		}),
	}
}

// Collectors returns every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.bytesWritten, m.syncs, m.syncSeconds, m.failures, m.compactions, m.tornTails, m.size,
	}
}

func (m *Metrics) wrote(n int, size int64) {
	if m == nil {
		return
	}
	m.bytesWritten.Add(float64(n))
	m.size.Set(float64(size))
}

func (m *Metrics) synced(seconds float64) {
	if m == nil {
		return
	}
	m.syncs.Inc()
	m.syncSeconds.Observe(seconds)
}

func (m *Metrics) failed(op string) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(op).Inc()
}

func (m *Metrics) compacted(ok bool, size int64) {
	if m == nil {
		return
	}
	if !ok {
		m.compactions.WithLabelValues("error").Inc()
		return
	}
	m.compactions.WithLabelValues("ok").Inc()
	m.size.Set(float64(size))
}

func (m *Metrics) recoveredTornTail() {
	if m == nil {
		return
	}
	m.tornTails.Inc()
}
