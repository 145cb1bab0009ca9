package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

func inRange(a, first, last netip.Addr) bool {
	return a.IsValid() && first.Compare(a) <= 0 && a.Compare(last) <= 0
}

// leaseStates maps each address in a dhcpd.leases text to the binding
// state of its last lease statement (later statements supersede earlier
// ones, dhcpd.leases(5)).
func leaseStates(t *testing.T, text string) map[netip.Addr]string {
	t.Helper()
	lease := regexp.MustCompile(`(?s)lease (\S+) \{(.*?)\n\}`)
	state := regexp.MustCompile(`(?m)^\s*binding state (\w+);`)
	out := map[netip.Addr]string{}
	for _, m := range lease.FindAllStringSubmatch(text, -1) {
		a, err := netip.ParseAddr(m[1])
		if err != nil {
			t.Fatalf("lease file: %v", err)
		}
		if s := state.FindStringSubmatch(m[2]); s != nil {
			out[a] = s[1]
		}
	}
	return out
}

func TestDHClientWithDhcpd(t *testing.T) {
	needs(t, "dhcpd", "dhclient")
	l := New(t, Options{Servers: 1, Clients: 1})
	srv := l.Servers[0]
	d := NewISCDhcpd(srv, Pools{LeaseTime: time.Minute}.DhcpdConf())
	dp := d.Start()

	c := NewDHClient(l.Clients[0], DHClientOptions{ClientID: "lab-client-1", RenewalTime: 2 * time.Second})
	ev, err := c.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Reason != "BOUND" || !inRange(ev.IP, LANRangeFirst, LANRangeLast) ||
		ev.ServerID != srv.IP || ev.LeaseTime != time.Minute {
		t.Fatalf("Acquire: %+v, want BOUND in %s-%s from %s for 1m", ev, LANRangeFirst, LANRangeLast, srv.IP)
	}
	if got, err := c.Address(); err != nil || got != ev.IP {
		t.Errorf("address on the client's interface: %v (%v), want %s", got, err, ev.IP)
	}
	dp.WaitForLog(`DHCPACK on `+regexp.QuoteMeta(ev.IP.String())+` to `+regexp.QuoteMeta(l.Clients[0].MAC.String()), 5*time.Second)

	// RENEWING: a unicast REQUEST from the leased address, at T1.
	mark := dp.LogSize()
	rn, err := c.WaitRenew(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rn.Reason != "RENEW" || rn.IP != ev.IP {
		t.Errorf("renewal: %+v, want RENEW of %s", rn, ev.IP)
	}
	if _, err := dp.AwaitLog(mark, `DHCPREQUEST for `+regexp.QuoteMeta(ev.IP.String())+` from `, 5*time.Second); err != nil {
		t.Error(err)
	}
	// Unicast needs the leased address on the interface: the hook's job.
	unicast := fmt.Sprintf(`DHCPREQUEST for %s on eth0 to %s port 67`, ev.IP, srv.IP)
	if _, err := c.Proc().AwaitLog(0, regexp.QuoteMeta(unicast), time.Second); err != nil {
		t.Error(err)
	}

	// INIT-REBOOT: a restarted client asks for the address it had.
	rb, err := c.Reboot(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Reason != "REBOOT" || rb.IP != ev.IP {
		t.Errorf("reboot: %+v, want REBOOT of %s", rb, ev.IP)
	}

	mark = dp.LogSize()
	if err := c.Release(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !c.Proc().Exited() {
		t.Error("dhclient still running after Release")
	}
	if _, err := dp.AwaitLog(mark, `DHCPRELEASE of `+regexp.QuoteMeta(ev.IP.String()), 5*time.Second); err != nil {
		t.Error(err)
	}
	if got, err := c.Address(); err != nil || got.IsValid() {
		t.Errorf("address after release: %v (%v), want none", got, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		text, err := d.Leases()
		if err != nil {
			t.Fatal(err)
		}
		st := leaseStates(t, text)[ev.IP]
		if st == "free" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease of %s is %q after release, want free:\n%s", ev.IP, st, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPerfdhcpThroughRelay(t *testing.T) {
	needs(t, "dhcpd", "perfdhcp")
	l := New(t, Options{Servers: 1})
	srv := l.Servers[0]
	pools := Pools{LeaseTime: 10 * time.Minute, RelaySize: 1000}
	d := NewISCDhcpd(srv, pools.DhcpdConf())
	d.Start()

	const clients = 50
	res, err := RunPerfdhcp(l.Relay, PerfdhcpOptions{
		Server:    srv.IP,
		Rate:      50,
		Clients:   clients,
		Exchanges: 100,
		Seed:      7,
		ExitWait:  2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("perfdhcp: %.1f exchanges/s, DO %+v, RA %+v", res.Rate, res.DiscoverOffer, res.RequestAck)
	if res.DiscoverOffer.Sent == 0 || res.RequestAck.Received == 0 {
		t.Fatalf("no complete exchange: %+v\n%s", res, res.Output)
	}

	// Ten-minute leases and no releases: an address acknowledged to two
	// clients was leased twice, and every lease acknowledged is still
	// held.
	var acked Acks
	if err := acked.AddLog("dhcpd", d.Proc().Log()); err != nil {
		t.Fatal(err)
	}
	t.Log(acked.Summary())
	if err := acked.CheckUnique(); err != nil {
		t.Error(err)
	}
	text, err := d.Leases()
	if err != nil {
		t.Fatal(err)
	}
	active, err := ParseActiveLeases(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := acked.CheckHeld("dhcpd.leases", active, time.Now()); err != nil {
		t.Error(err)
	}

	// Every relayed lease comes from the relayed subnet, never the LAN.
	first, last := pools.RelayRange()
	for a, st := range leaseStates(t, text) {
		if !inRange(a, first, last) {
			t.Errorf("lease %s (%s) outside the relayed range %s-%s", a, st, first, last)
		}
	}
	if n := len(active); n == 0 || n > clients {
		t.Errorf("%d active leases, want 1..%d (one per perfdhcp client at most)", n, clients)
	}
	acks := regexp.MustCompile(`(?m)^DHCPACK on (\S+) to \S+ via (\S+)$`).FindAllStringSubmatch(d.Proc().Log(), -1)
	if len(acks) != res.RequestAck.Received || acked.Len() != len(acks) {
		t.Errorf("dhcpd logged %d ACKs (Acks read %d), perfdhcp received %d", len(acks), acked.Len(), res.RequestAck.Received)
	}
	for _, m := range acks {
		if m[2] != RelayIP.String() {
			t.Errorf("ACK %s went via %s, want the relay %s", m[1], m[2], RelayIP)
			break
		}
	}
}

func TestDhcpdKillAndRestart(t *testing.T) {
	needs(t, "dhcpd", "dhclient")
	l := New(t, Options{Servers: 1, Clients: 2})
	srv := l.Servers[0]
	d := NewISCDhcpd(srv, Pools{LeaseTime: 10 * time.Minute}.DhcpdConf())
	first := d.Start()

	c1 := NewDHClient(l.Clients[0], DHClientOptions{ClientID: "client-one"})
	ev1, err := c1.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c1.Stop()

	first.Kill9()
	if !first.Exited() {
		t.Fatal("dhcpd still running after Kill9")
	}
	if pids := namespacePIDs(srv.NS); len(pids) != 0 {
		t.Fatalf("processes left in %s after Kill9: %v", srv.NS, pids)
	}

	// The restarted server reads the lease file the dead one wrote: the
	// first client keeps its address, a second client gets another one.
	second := d.Start()
	if second == first || second.LogPath == first.LogPath {
		t.Fatalf("restart reused the first process or its log")
	}
	rb, err := c1.Reboot(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rb.IP != ev1.IP {
		t.Errorf("after restart client one got %s, had %s", rb.IP, ev1.IP)
	}
	c2 := NewDHClient(l.Clients[1], DHClientOptions{ClientID: "client-two"})
	ev2, err := c2.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev2.IP == ev1.IP {
		t.Errorf("client two got client one's address %s after restart", ev1.IP)
	}
	if !strings.Contains(second.Log(), fmt.Sprintf("DHCPACK on %s", ev2.IP)) {
		t.Errorf("second dhcpd did not log the ACK of %s", ev2.IP)
	}
}

func TestAcquireTimesOutWithoutServer(t *testing.T) {
	needs(t, "dhclient")
	l := New(t, Options{Servers: 1, Clients: 1})
	c := NewDHClient(l.Clients[0], DHClientOptions{})
	start := time.Now()
	_, err := c.Acquire(2 * time.Second)
	if err == nil {
		t.Fatal("Acquire succeeded with no server running")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Acquire took %v to give up", time.Since(start))
	}
	if !c.Proc().Exited() {
		t.Error("dhclient left running after a failed Acquire")
	}
}
