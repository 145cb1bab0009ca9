package failover

import (
	"sort"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// Collector exports the failover state of one or more relationships to
// Prometheus. The node is owned by the server loop, so the collector never
// reads it: the loop hands it a Status after each batch (Observe), and
// scrapes read the last one. Register it on any registry; there is no
// global one.
type Collector struct {
	mu     sync.Mutex
	status map[string]Status

	localState   *prometheus.Desc
	partnerState *prometheus.Desc
	communicate  *prometheus.Desc
	queued       *prometheus.Desc
	unacked      *prometheus.Desc
	sent         *prometheus.Desc
	received     *prometheus.Desc
	timeouts     *prometheus.Desc
	usableAt     *prometheus.Desc
	poolLeases   *prometheus.Desc
	poolLTS      *prometheus.Desc
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	peer := []string{"peer"}
	return &Collector{
		status: make(map[string]Status),
		localState: prometheus.NewDesc("tandem_failover_local_state",
			"Local failover state, as ISC numbers it (2 normal, 3 communications-interrupted, 4 partner-down, 5 potential-conflict, 6 recover, 254 recover-wait, …).", peer, nil),
		partnerState: prometheus.NewDesc("tandem_failover_partner_state",
			"The partner's last reported failover state, as ISC numbers it (0 unknown).", peer, nil),
		communicate: prometheus.NewDesc("tandem_failover_communicating",
			"1 when the partner's STATE has arrived on the current connection.", peer, nil),
		queued: prometheus.NewDesc("tandem_failover_updates_queued",
			"Binding updates waiting to be sent to the partner.", peer, nil),
		unacked: prometheus.NewDesc("tandem_failover_updates_unacked",
			"Binding updates sent and not yet acknowledged by the partner.", peer, nil),
		sent: prometheus.NewDesc("tandem_failover_messages_sent_total",
			"Failover messages sent, by type.", []string{"peer", "type"}, nil),
		received: prometheus.NewDesc("tandem_failover_messages_received_total",
			"Failover messages received, by type.", []string{"peer", "type"}, nil),
		timeouts: prometheus.NewDesc("tandem_failover_receive_timeouts_total",
			"Connections to the partner closed because nothing arrived for max-response-delay.", peer, nil),
		usableAt: prometheus.NewDesc("tandem_failover_partner_pool_usable_at_seconds",
			"In partner-down: Unix time from which the partner's free leases may be used (STOS+MCLT).", peer, nil),
		poolLeases: prometheus.NewDesc("tandem_failover_pool_leases",
			"Free leases of a failover pool by owner state (free = primary's, backup = secondary's).", []string{"peer", "pool", "subnet", "state"}, nil),
		poolLTS: prometheus.NewDesc("tandem_failover_pool_leases_to_send",
			"Pool balancing's lts: leases this server holds beyond its half of the pool's free leases.", []string{"peer", "pool", "subnet"}, nil),
	}
}

// Observe records the latest status of a relationship.
func (c *Collector) Observe(st Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status[st.Name] = st
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.localState, c.partnerState, c.communicate, c.queued, c.unacked,
		c.sent, c.received, c.timeouts, c.usableAt, c.poolLeases, c.poolLTS} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.status))
	for name := range c.status {
		names = append(names, name)
	}
	sort.Strings(names)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, name := range names {
		st := c.status[name]
		gauge(c.localState, float64(st.State), name)
		gauge(c.partnerState, float64(st.PartnerState), name)
		comm := 0.0
		if st.Communicating {
			comm = 1
		}
		gauge(c.communicate, comm, name)
		gauge(c.queued, float64(st.UpdatesQueued), name)
		gauge(c.unacked, float64(st.UpdatesUnacked), name)
		ch <- prometheus.MustNewConstMetric(c.timeouts, prometheus.CounterValue, float64(st.Messages.ReceiveTimeouts), name)
		if st.PartnerPoolUsableAt != 0 {
			gauge(c.usableAt, float64(st.PartnerPoolUsableAt), name)
		}
		for i := range st.Messages.Sent {
			typ := "other"
			if t := wire.MessageType(i); t.Valid() {
				typ = t.String()
			}
			ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(st.Messages.Sent[i]), name, typ)
			ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(st.Messages.Received[i]), name, typ)
		}
		for _, p := range st.Pools {
			idx, subnet := strconv.Itoa(p.Index), p.Subnet.String()
			gauge(c.poolLeases, float64(p.Free), name, idx, subnet, "free")
			gauge(c.poolLeases, float64(p.Backup), name, idx, subnet, "backup")
			gauge(c.poolLTS, float64(p.LTS), name, idx, subnet)
		}
	}
}
