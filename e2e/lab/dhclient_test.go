package lab

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseClientEvents(t *testing.T) {
	in := "1795317318.5 PREINIT - - - -\n" +
		"1795317318.75 BOUND 198.18.0.200 60 198.18.0.1 -\n" +
		"1795317350.25 RENEW 198.18.0.200 60 198.18.0.1 198.18.0.200\n" +
		"1795317351.0 EXPI" // still being written
	got, err := parseClientEvents(in)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("198.18.0.200")
	sid := netip.MustParseAddr("198.18.0.1")
	want := []ClientEvent{
		{At: time.Unix(1795317318, 5e8), Reason: "PREINIT"},
		{At: time.Unix(1795317318, 75e7), Reason: "BOUND", IP: ip, LeaseTime: time.Minute, ServerID: sid},
		{At: time.Unix(1795317350, 25e7), Reason: "RENEW", IP: ip, LeaseTime: time.Minute, ServerID: sid, OldIP: ip},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b time.Time) bool { d := a.Sub(b); return d < time.Millisecond && d > -time.Millisecond })); diff != "" {
		t.Errorf("parseClientEvents (-want +got):\n%s", diff)
	}
	if _, err := parseClientEvents("1 BOUND not-an-ip 60 - -\n"); err == nil {
		t.Error("a malformed address was accepted")
	}
}

func TestDHClientConf(t *testing.T) {
	got := dhclientConf(DHClientOptions{ClientID: "c-1", Hostname: "h1", LeaseTime: 90 * time.Second,
		RenewalTime: 1500 * time.Millisecond, RebindingTime: 4 * time.Second, ExtraConf: "# extra\n"})
	want := "initial-interval 1;\nbackoff-cutoff 2;\n" +
		"send dhcp-client-identifier \"c-1\";\nsend host-name \"h1\";\nsend dhcp-lease-time 90;\n" +
		"supersede dhcp-renewal-time 2;\nsupersede dhcp-rebinding-time 4;\n# extra\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dhclientConf (-want +got):\n%s", diff)
	}
}
