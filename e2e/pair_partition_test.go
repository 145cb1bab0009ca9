package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// TestPairPartitionHeals: the link between the servers is cut while both
// keep running and clients keep asking: dhclients renewing leases they
// had, new dhclients, and a relayed perfdhcp burst that both servers hear
// (RelayFanOut). Each server declares the link dead after
// max-response-delay, moves to communications-interrupted and, with
// auto-partner-down set, to partner-down (fw §12.1); each serves from its
// own free pool only, since the partition is shorter than the MCLT
// (fw §11, invariant I4). When the link heals, both see a partner that
// was partner-down too and go through potential-conflict; the primary
// asks for the secondary's updates and moves to conflict-done, the
// secondary asks back and goes normal, then the primary (fw §12.5).
// No address is ever bound to two clients (I1), and the lease databases
// converge (I5).
func TestPairPartitionHeals(t *testing.T) {
	needsLab(t, "dhclient", "perfdhcp", "nft")
	tandemBinary(t)
	const autoPartnerDown = 3 * time.Second
	l := lab.New(t, lab.Options{Servers: 2, Clients: 6})
	pair := startPair(t, l, classicConfs(t, autoPartnerDown))
	prim, sec := pair.Primary, pair.Secondary
	marks := [2]int64{prim.Proc().LogSize(), sec.Proc().LogSize()}

	var captures [2]*replyCapture
	for i, s := range pair.Servers() {
		c, err := startReplyCapture(l.Relay, s.Host.IP)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		captures[i] = c
	}
	l.RelayFanOut(true)

	// Clients bound before the cut renew every 3 s, and rebind after 6 s.
	renewing := lab.DHClientOptions{RenewalTime: 3 * time.Second, RebindingTime: 6 * time.Second}
	old := acquireAll(t, l.Clients[:3], renewing)
	// Who may allocate what during the partition: free addresses are the
	// primary's, backup ones the secondary's (draft §5.4); neither may take
	// the other's before MCLT in partner-down (I4).
	before, _ := compareLeaseFiles(t, pair, 15*time.Second)

	cut := time.Now()
	l.Partition(prim.Host.IP, sec.Host.IP)
	t.Logf("partitioned at %s", cut.Format("15:04:05.000"))
	for i, s := range pair.Servers() {
		m, err := s.Proc().AwaitLog(marks[i], lab.StateLinePattern(classicPeer, "normal", "communications-interrupted"), 3*testMaxResponseDelay)
		if err != nil {
			t.Fatal(err)
		}
		if m, err = s.Proc().AwaitLog(m.End, lab.StateLinePattern(classicPeer, "communications-interrupted", "partner-down"), autoPartnerDown+5*time.Second); err != nil {
			t.Fatal(err)
		}
		marks[i] = m.End
	}
	t.Logf("both partner-down %v after the cut", time.Since(cut).Round(time.Millisecond))

	// Both sides serve: new dhclients, and perfdhcp relayed to both.
	fresh := acquireAll(t, l.Clients[3:], lab.DHClientOptions{})
	for _, pc := range fresh {
		t.Logf("partitioned: %s got %s from %s for %v", pc.c.Host.Name, pc.ev.IP, pc.ev.ServerID, pc.ev.LeaseTime)
	}
	perf, err := lab.RunPerfdhcp(l.Relay, lab.PerfdhcpOptions{
		Server: prim.Host.IP, Rate: 20, Clients: 100, Exchanges: 100, Seed: 3,
		BaseMAC:  net.HardwareAddr{0x02, 0x74, 0x64, 0x40, 0, 0},
		DropTime: 3 * time.Second, ExitWait: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("partitioned: perfdhcp %d/%d offers, %d/%d acks",
		perf.DiscoverOffer.Received, perf.DiscoverOffer.Sent, perf.RequestAck.Received, perf.RequestAck.Sent)
	if perf.RequestAck.Received == 0 {
		t.Errorf("no relayed client got a lease during the partition:\n%s", perf.Output)
	}
	partitioned := time.Since(cut)
	if partitioned >= testMCLT {
		t.Fatalf("the partition lasted %v, not less than the MCLT: the test assumes each server kept to its own pool", partitioned)
	}

	healed := time.Now()
	l.Heal(prim.Host.IP, sec.Host.IP)
	t.Logf("healed after %v", partitioned.Round(time.Millisecond))
	want := [2][]string{
		{"partner-down", "potential-conflict", "conflict-done", "normal"},
		{"partner-down", "potential-conflict", "normal"},
	}
	for i, s := range pair.Servers() {
		from := marks[i]
		for j := 1; j < len(want[i]); j++ {
			// The link comes back at the next redial, at most 30 s apart.
			m, err := s.Proc().AwaitLog(from, lab.StateLinePattern(classicPeer, want[i][j-1], want[i][j]), 45*time.Second)
			if err != nil {
				t.Fatalf("%s after the heal: %v", s.Host.Name, err)
			}
			from = m.End
		}
	}
	for _, s := range pair.Servers() {
		if _, err := s.AwaitStates("normal", "normal", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("both normal %v after the heal", time.Since(healed).Round(time.Millisecond))

	// Every binding a client was given, as the clients saw it.
	var bindings []binding
	for _, pc := range append(old, fresh...) {
		evs, err := pc.c.Events()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			switch ev.Reason {
			case "BOUND", "RENEW", "REBIND", "REBOOT":
				bindings = append(bindings, binding{ev.IP, pc.c.Host.MAC.String(), ev.At, ev.At.Add(ev.LeaseTime), ev.ServerID, "dhclient " + pc.c.Host.Name})
			}
		}
	}
	for i, c := range captures {
		for _, a := range c.Replies(0, dhcpv4.MessageTypeAck) {
			bindings = append(bindings, binding{a.YIAddr, a.CHAddr, a.At, a.At.Add(a.LeaseTime), pair.Servers()[i].Host.IP, "perfdhcp via " + pair.Servers()[i].Host.Name})
		}
	}
	checkNoDoubleBinding(t, bindings)
	ownPool := 0
	for _, b := range bindings {
		if b.from.Before(cut) || b.from.After(healed) {
			continue
		}
		was, ok := before[b.addr]
		if !ok {
			was = leaseView{State: lease.Free}
		}
		owner := map[lease.BindingState]netip.Addr{lease.Free: prim.Host.IP, lease.Backup: sec.Host.IP}[was.State]
		if was.State == lease.Active && was.HW == b.client {
			continue // a client keeping its own lease
		}
		if b.server != owner {
			t.Errorf("during the partition %s gave %s to %s (%s), but it was %s before: not its own pool", b.server, b.addr, b.client, b.who, was)
		}
		ownPool++
	}
	t.Logf("checked %d new bindings made during the partition against the pools they came from", ownPool)
	for _, pc := range append(old, fresh...) {
		pc.c.Stop()
	}

	// The databases converge, and each still hold every binding a client
	// may still be using.
	p, s := compareLeaseFiles(t, pair, 20*time.Second)
	now := time.Now()
	for _, b := range latestBindings(bindings) {
		if b.until.Before(now.Add(2 * time.Second)) {
			continue
		}
		for name, m := range map[string]map[netip.Addr]leaseView{"primary": p, "secondary": s} {
			if v := m[b.addr]; v.State != lease.Active || v.HW != b.client {
				t.Errorf("%s was given to %s (%s) until %s, but the %s's lease file has %s", b.addr, b.client, b.who,
					b.until.Format(time.TimeOnly), name, v)
			}
		}
	}
}

// binding is one lease a client was given: address, client, validity.
type binding struct {
	addr        netip.Addr
	client      string
	from, until time.Time
	server      netip.Addr
	who         string
}

// checkNoDoubleBinding fails the test if an address was valid for two
// different clients at the same instant (invariant I1).
func checkNoDoubleBinding(t *testing.T, bs []binding) {
	t.Helper()
	var acks lab.Acks
	for _, b := range bs {
		acks.Add(lab.Ack{Addr: b.addr, MAC: b.client, Server: fmt.Sprintf("%s (%s)", b.server, b.who), At: b.from, Lease: b.until.Sub(b.from)})
	}
	t.Logf("bindings checked: %s", acks.Summary())
	if err := acks.CheckUnique(); err != nil {
		t.Error(err)
	}
}

// latestBindings keeps each address's last binding.
func latestBindings(bs []binding) []binding {
	last := map[netip.Addr]binding{}
	for _, b := range bs {
		if cur, ok := last[b.addr]; !ok || b.from.After(cur.from) {
			last[b.addr] = b
		}
	}
	out := make([]binding, 0, len(last))
	for _, b := range last {
		out = append(out, b)
	}
	return out
}
