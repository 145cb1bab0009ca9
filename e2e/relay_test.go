package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// Relayed clients get addresses from the subnet the relay agent's giaddr
// names (RFC 2131 §4.3.1), never from the server's own LAN, and the
// replies go back to the relay agent's port 67 (§4.1).
func TestRelayedClientsGetRelaySubnet(t *testing.T) {
	needsLab(t, "perfdhcp")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 1})
	srv := l.Servers[0]
	pools := lab.Pools{LeaseTime: 10 * time.Minute, RelaySize: 1000}
	first, last := pools.RelayRange()
	tdm := lab.NewTandem(srv, pools.DhcpdConf())
	tdm.Start()
	capture, err := startReplyCapture(l.Relay, srv.IP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(capture.close)

	const clients = 50
	res, err := lab.RunPerfdhcp(l.Relay, lab.PerfdhcpOptions{
		Server: srv.IP, Local: lab.RelayIP, Rate: 50, Clients: clients, Exchanges: 100, Seed: 7,
		// A late reply is no failure here: only a missing one.
		DropTime: 5 * time.Second, ExitWait: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("perfdhcp: %.1f exchanges/s, DISCOVER-OFFER %d/%d, REQUEST-ACK %d/%d",
		res.Rate, res.DiscoverOffer.Received, res.DiscoverOffer.Sent, res.RequestAck.Received, res.RequestAck.Sent)
	if res.RequestAck.Received == 0 {
		t.Fatalf("no complete exchange:\n%s", res.Output)
	}
	// Every exchange perfdhcp started must complete: nothing else loads the
	// server.
	if res.DiscoverOffer.Drops != 0 || res.RequestAck.Drops != 0 {
		t.Errorf("drops: DISCOVER-OFFER %d, REQUEST-ACK %d\n%s", res.DiscoverOffer.Drops, res.RequestAck.Drops, res.Output)
	}

	acks := capture.Replies(0, dhcpv4.MessageTypeAck)
	if len(acks) != res.RequestAck.Received {
		t.Errorf("%d ACKs to the relay agent on the wire, perfdhcp received %d", len(acks), res.RequestAck.Received)
	}
	// Ten-minute leases, no releases: each address to one client.
	var acked lab.Acks
	acked.Add(capturedAcks(srv.Name, acks)...)
	t.Log(acked.Summary())
	if err := acked.CheckUnique(); err != nil {
		t.Error(err)
	}
	for _, a := range capture.Replies(0, dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck) {
		if !inRange(a.YIAddr, first, last) {
			t.Errorf("%s of %s to %s: outside the relayed range %s-%s", a.Type, a.YIAddr, a.CHAddr, first, last)
		}
	}

	c, err := tdm.Leases()
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for i := range c.Leases {
		le := &c.Leases[i]
		if !inRange(le.Addr(), first, last) {
			t.Errorf("lease %s (%s) outside the relayed range %s-%s", le.Addr(), le.State, first, last)
		}
		if le.State == lease.Active {
			active++
		}
	}
	if active == 0 || active > clients {
		t.Errorf("%d active leases, want 1..%d (one per perfdhcp client at most)", active, clients)
	}
	checkAcksDurable(t, "relayed", acks, c)
}

// A real relay agent: ISC dhcrelay on the relay host forwards a dhclient
// on a segment of its own to Tandem, which picks the segment's subnet by
// giaddr and answers through the relay.
func TestDhcrelayForwardsDHClient(t *testing.T) {
	needsLab(t, "dhcrelay", "dhclient")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 1})
	srv := l.Servers[0]
	seg := l.AddSegment(l.Relay, netip.MustParsePrefix("198.18.16.1/24"))
	segFirst, segLast := netip.MustParseAddr("198.18.16.100"), netip.MustParseAddr("198.18.16.150")
	const leaseTime = 5 * time.Minute
	conf := confWith(lab.Pools{LeaseTime: leaseTime}.DhcpdConf(), fmt.Sprintf(
		"subnet 198.18.16.0 netmask 255.255.255.0 {\n  option routers %s;\n  range %s %s;\n}\n",
		seg.Prefix.Addr(), segFirst, segLast))
	tdm := lab.NewTandem(srv, conf)
	tdm.Start()

	relay := l.Relay.Start("dhcrelay", "dhcrelay", "-4", "-d", "-pf", filepath.Join(l.Dir, "dhcrelay.pid"),
		"-id", seg.Iface, "-iu", l.Relay.Iface, srv.IP.String())
	relay.WaitForLog(`Sending on\s+Socket/fallback`, 20*time.Second)

	c := lab.NewDHClient(seg.Client, lab.DHClientOptions{})
	ev, err := c.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Reason != "BOUND" || !inRange(ev.IP, segFirst, segLast) || ev.ServerID != srv.IP || ev.LeaseTime != leaseTime {
		t.Fatalf("relayed client: %+v, want BOUND in %s-%s from %s for %v", ev, segFirst, segLast, srv.IP, leaseTime)
	}
	mac := regexp.QuoteMeta(seg.Client.MAC.String())
	if _, err := relay.AwaitLog(0, `Forwarded BOOTREPLY for `+mac+` to `, 5*time.Second); err != nil {
		t.Errorf("dhcrelay did not forward the reply: %v", err)
	}
	lc, err := tdm.Leases()
	if err != nil {
		t.Fatal(err)
	}
	checkBound(t, "relayed client", leaseIndex(lc)[ev.IP], seg.Client, ev)
}
