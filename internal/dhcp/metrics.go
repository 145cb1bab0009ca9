package dhcp

import (
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descReceived = prometheus.NewDesc("tandem_dhcp_requests_total",
		"DHCP requests handled, by message type.", []string{"type"}, nil)
	descSent = prometheus.NewDesc("tandem_dhcp_replies_total",
		"DHCP replies produced, by message type.", []string{"type"}, nil)
	descDrops = prometheus.NewDesc("tandem_dhcp_dropped_total",
		"Requests answered with silence, by reason.", []string{"reason"}, nil)
	descNaks = prometheus.NewDesc("tandem_dhcp_naks_total",
		"DHCPNAKs sent, by reason.", []string{"reason"}, nil)
	descMalformed = prometheus.NewDesc("tandem_dhcp_malformed_total",
		"Packets that could not be decoded.", nil, nil)
)

// Collector exports Stats to Prometheus.
type Collector struct{ Stats *Stats }

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReceived, descSent, descDrops, descNaks, descMalformed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.Stats
	for mt := dhcpv4.MessageTypeNone; mt <= dhcpv4.MessageTypeInform; mt++ {
		name := mt.String()
		if mt == dhcpv4.MessageTypeNone {
			name = "BOOTP"
		}
		if v := s.Received(mt); v > 0 {
			ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(v), name)
		}
		if v := s.Sent(mt); v > 0 {
			ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(v), name)
		}
	}
	for r, v := range s.Drops() {
		ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(v), r)
	}
	for r, v := range s.Naks() {
		ch <- prometheus.MustNewConstMetric(descNaks, prometheus.CounterValue, float64(v), r)
	}
	ch <- prometheus.MustNewConstMetric(descMalformed, prometheus.CounterValue, float64(s.Malformed.Load()))
}
