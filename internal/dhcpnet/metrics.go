package dhcpnet

import "github.com/prometheus/client_golang/prometheus"

// Reasons a received datagram is dropped before the handler sees it.
const (
	DropWrongInterface = "wrong_interface" // arrived on an interface we do not serve
	DropShort          = "short"           // shorter than the fixed BOOTP header
	DropTruncated      = "truncated"       // larger than the receive buffer
)

// Metrics counts what the sockets move. It is a prometheus.Collector: the
// caller registers it where it likes; nothing is registered globally.
type Metrics struct {
	received     prometheus.Counter
	dropped      *prometheus.CounterVec
	sent         *prometheus.CounterVec
	sendErrors   *prometheus.CounterVec
	ifaceRefresh prometheus.Counter

	// Children resolved once so that the per-packet path does no label
	// lookups.
	dropWrongIf, dropShort, dropTruncated prometheus.Counter
	sentBy, errorsBy                      [numKinds]prometheus.Counter
}

// NewMetrics builds the counters, all starting at zero.
func NewMetrics() *Metrics {
	m := &Metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_dhcpnet_received_packets_total",
			Help: "UDP datagrams read from the DHCP server socket, before any drop.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_dhcpnet_dropped_packets_total",
			Help: "Received datagrams dropped by the socket layer, by reason.",
		}, []string{"reason"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_dhcpnet_sent_replies_total",
			Help: "DHCP replies sent, by delivery kind (relay, unicast, broadcast, l2).",
		}, []string{"kind"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_dhcpnet_send_errors_total",
			Help: "DHCP replies that could not be sent, by delivery kind.",
		}, []string{"kind"}),
		ifaceRefresh: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_dhcpnet_interface_refreshes_total",
			Help: "Reloads of the interface table, triggered by packets from unknown interfaces.",
		}),
	}
	m.dropWrongIf = m.dropped.WithLabelValues(DropWrongInterface)
	m.dropShort = m.dropped.WithLabelValues(DropShort)
	m.dropTruncated = m.dropped.WithLabelValues(DropTruncated)
	for k := KindRelay; int(k) < numKinds; k++ {
		m.sentBy[k] = m.sent.WithLabelValues(k.String())
		m.errorsBy[k] = m.sendErrors.WithLabelValues(k.String())
	}
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.received, m.dropped, m.sent, m.sendErrors, m.ifaceRefresh}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}
