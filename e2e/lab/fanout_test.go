package lab

import (
	"regexp"
	"testing"
	"time"
)

func TestRelayFanOut(t *testing.T) {
	needs(t, "dhcpd", "perfdhcp", "nft")
	l := New(t, Options{})
	var ds []*ISCDhcpd
	for _, s := range l.Servers {
		d := NewISCDhcpd(s, Pools{}.DhcpdConf())
		d.Start()
		ds = append(ds, d)
	}
	discovers := regexp.MustCompile(`(?m)^DHCPDISCOVER from \S+ via ` + regexp.QuoteMeta(RelayIP.String()))
	run := func() *PerfdhcpResult {
		t.Helper()
		res, err := RunPerfdhcp(l.Relay, PerfdhcpOptions{Server: l.Servers[0].IP, Rate: 20, Clients: 5, Exchanges: 10, ExitWait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	count := func(d *ISCDhcpd) int { return len(discovers.FindAllString(d.Proc().Log(), -1)) }

	l.RelayFanOut(true)
	l.RelayFanOut(true) // idempotent
	res := run()
	for _, d := range ds {
		if got := count(d); got != res.DiscoverOffer.Sent {
			t.Errorf("fan-out on: %s saw %d relayed DISCOVERs, perfdhcp sent %d", d.Host.Name, got, res.DiscoverOffer.Sent)
		}
	}

	l.RelayFanOut(false)
	before := []int{count(ds[0]), count(ds[1])}
	res = run()
	if got := count(ds[0]) - before[0]; got != res.DiscoverOffer.Sent {
		t.Errorf("fan-out off: the target saw %d DISCOVERs, perfdhcp sent %d", got, res.DiscoverOffer.Sent)
	}
	if got := count(ds[1]) - before[1]; got != 0 {
		t.Errorf("fan-out off: the other server saw %d DISCOVERs, want 0", got)
	}
}
