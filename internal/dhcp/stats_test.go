package dhcp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestStatsAndMetrics(t *testing.T) {
	f := newFixture(t, nil, nil)
	for i, req := range []*pb{
		disc(1),
		sel(1, a(10)),
		reboot(2, a(10)),       // NAK
		{mt: bootpMsg, mac: 3}, // BOOTP
		{mt: requestMsg, mac: 4},
		{mt: requestMsg, mac: 4},
	} {
		f.h.Handle(t0+int64(i), req.build(t))
	}
	f.h.Stats().Malformed.Add(2)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector{Stats: f.h.Stats()})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]float64)
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, lp := range m.GetLabel() {
				name += "{" + lp.GetValue() + "}"
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"tandem_dhcp_requests_total{DISCOVER}":                     1,
		"tandem_dhcp_requests_total{REQUEST}":                      4,
		"tandem_dhcp_requests_total{BOOTP}":                        1,
		"tandem_dhcp_replies_total{OFFER}":                         1,
		"tandem_dhcp_replies_total{ACK}":                           1,
		"tandem_dhcp_replies_total{NAK}":                           1,
		"tandem_dhcp_replies_total{BOOTP}":                         1,
		"tandem_dhcp_naks_total{address leased to another client}": 1,
		"tandem_dhcp_dropped_total{REQUEST without an address}":    2,
		"tandem_dhcp_malformed_total":                              2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if got := f.h.Stats().Received(200); got != 0 {
		t.Errorf("Received(200) = %d", got)
	}
}
