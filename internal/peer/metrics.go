package peer

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// Labels of tandem_peer_connections_refused_total.
const (
	RefusedWrongSource = "wrong_source" // accepted from an address that is not the peer's
	RefusedDuplicate   = "duplicate"    // a link already existed
)

// Metrics counts what the failover link does. It is a prometheus.Collector:
// the caller registers it where it likes; nothing is registered globally.
type Metrics struct {
	up           prometheus.Gauge
	connects     *prometheus.CounterVec
	refused      *prometheus.CounterVec
	dialFailures prometheus.Counter
	disconnects  *prometheus.CounterVec
	sent         *prometheus.CounterVec
	received     *prometheus.CounterVec
	bytesSent    prometheus.Counter
	bytesRecv    prometheus.Counter
	decodeErrors prometheus.Counter
	timeouts     prometheus.Counter

	// Children resolved once so that the per-message path does no label
	// lookups. Index 0 stands for every undefined message type.
	sentBy, receivedBy [wire.MsgDisconnect + 1]prometheus.Counter
	inbound, outbound  prometheus.Counter
}

// NewMetrics builds the collectors, all starting at zero.
func NewMetrics() *Metrics {
	m := &Metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tandem_peer_link_up",
			Help: "1 while a TCP link to the failover peer is established, else 0.",
		}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_peer_connects_total",
			Help: "Links to the failover peer established, by direction (inbound: accepted, outbound: dialled).",
		}, []string{"direction"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_peer_connections_refused_total",
			Help: "TCP connections closed at once, by reason (wrong_source, duplicate).",
		}, []string{"reason"}),
		dialFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_peer_dial_failures_total",
			Help: "Connection attempts to the failover peer that failed.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_peer_disconnects_total",
			Help: "Links to the failover peer that ended, by cause.",
		}, []string{"cause"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_peer_messages_sent_total",
			Help: "Failover messages written to the peer, by type.",
		}, []string{"type"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_peer_messages_received_total",
			Help: "Failover messages read from the peer and decoded, by type.",
		}, []string{"type"}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_peer_sent_bytes_total",
			Help: "Bytes of failover messages written to the peer.",
		}),
		bytesRecv: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_peer_received_bytes_total",
			Help: "Bytes of failover messages read from the peer.",
		}),
		decodeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_peer_decode_errors_total",
			Help: "Malformed frames or messages from the peer; each closed the link.",
		}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_peer_receive_timeouts_total",
			Help: "Links the transport closed because the peer sent nothing for its receive timeout, a backstop well beyond max-response-delay. The failover state machine closes a silent link first (see tandem_peer_disconnects_total{cause=\"closed\"}); a count here means it did not.",
		}),
	}
	for t := range m.sentBy {
		name := "other"
		if wire.MessageType(t).Valid() {
			name = wire.MessageType(t).String()
		}
		m.sentBy[t] = m.sent.WithLabelValues(name)
		m.receivedBy[t] = m.received.WithLabelValues(name)
	}
	m.inbound = m.connects.WithLabelValues("inbound")
	m.outbound = m.connects.WithLabelValues("outbound")
	for _, c := range allCauses {
		m.disconnects.WithLabelValues(string(c))
	}
	m.refused.WithLabelValues(RefusedWrongSource)
	m.refused.WithLabelValues(RefusedDuplicate)
	return m
}

func typeIndex(t wire.MessageType) int {
	if t.Valid() {
		return int(t)
	}
	return 0
}

func (m *Metrics) messageSent(t wire.MessageType, n int) {
	m.sentBy[typeIndex(t)].Inc()
	m.bytesSent.Add(float64(n))
}

func (m *Metrics) messageReceived(t wire.MessageType, n int) {
	m.receivedBy[typeIndex(t)].Inc()
	m.bytesRecv.Add(float64(n))
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.up, m.connects, m.refused, m.dialFailures, m.disconnects,
		m.sent, m.received, m.bytesSent, m.bytesRecv, m.decodeErrors, m.timeouts}
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
