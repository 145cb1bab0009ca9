package server

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemdhcp/tandem/internal/dhcp"
	"github.com/tandemdhcp/tandem/internal/lease"
	"github.com/tandemdhcp/tandem/internal/leasefile"
)

type metrics struct {
	commitSeconds prometheus.Histogram
	commitBatches prometheus.Histogram
	dhcp          dhcp.Collector
	file          *leasefile.Metrics

	mu    sync.Mutex
	pools []poolCounts
}

type poolCounts struct {
	subnet string
	index  int
	counts map[lease.BindingState]int
}

var descPoolLeases = prometheus.NewDesc("tandem_pool_leases",
	"Leases per pool and binding state.", []string{"pool", "subnet", "state"}, nil)

func newMetrics(s *Server) *metrics {
	return &metrics{
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tandem_lease_commit_seconds",
			Help:    "Time to write and fsync one group commit of lease changes.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		commitBatches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tandem_lease_commit_batches",
			Help:    "Request batches made durable by one fsync.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		dhcp: dhcp.Collector{Stats: s.stats},
		file: s.fileMetrics,
	}
}

// publishPools copies pool counts for scrapes; the loop owns the DB, so a
// scrape must not read it directly.
func (m *metrics) publishPools(db *lease.DB) {
	pc := make([]poolCounts, len(db.Pools))
	for i, p := range db.Pools {
		pc[i] = poolCounts{subnet: p.Subnet.String(), index: i, counts: p.Counts()}
	}
	m.mu.Lock()
	m.pools = pc
	m.mu.Unlock()
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- descPoolLeases }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pools {
		for st, n := range p.counts {
			ch <- prometheus.MustNewConstMetric(descPoolLeases, prometheus.GaugeValue, float64(n),
				strconv.Itoa(p.index), p.subnet, st.String())
		}
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.commitSeconds, m.commitBatches, m.dhcp, m}, m.file.Collectors()...)
}
