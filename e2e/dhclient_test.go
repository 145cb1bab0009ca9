package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// A real client's whole life with Tandem: INIT (DORA), RENEWING by
// unicast, INIT-REBOOT, DHCPRELEASE (RFC 2131 §4.4), beside a second
// client and a host reservation.
func TestDHClientLifecycle(t *testing.T) {
	needsLab(t, "dhclient")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 1, Clients: 3})
	srv := l.Servers[0]
	const leaseTime = 2 * time.Minute
	reserved := netip.MustParseAddr("198.18.0.10")
	conf := confWith(lab.Pools{LeaseTime: leaseTime}.DhcpdConf(), fmt.Sprintf(
		"host reserved-pc {\n  hardware ethernet %s;\n  fixed-address %s;\n}\n", l.Clients[2].MAC, reserved))
	tdm := lab.NewTandem(srv, conf)
	tdm.Start()

	// INIT: DISCOVER, OFFER, REQUEST, ACK.
	c1 := lab.NewDHClient(l.Clients[0], lab.DHClientOptions{RenewalTime: 2 * time.Second})
	ev, err := c1.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Reason != "BOUND" || !inRange(ev.IP, lab.LANRangeFirst, lab.LANRangeLast) ||
		ev.ServerID != srv.IP || ev.LeaseTime != leaseTime {
		t.Fatalf("first lease: %+v, want BOUND in %s-%s from %s for %v",
			ev, lab.LANRangeFirst, lab.LANRangeLast, srv.IP, leaseTime)
	}
	if got, err := c1.Address(); err != nil || got != ev.IP {
		t.Errorf("address on %s: %v (%v), want %s", c1.Host.Name, got, err, ev.IP)
	}
	// The ACK is sent only once the lease is on disk, so the file shows it
	// at once: no polling.
	c, err := tdm.Leases()
	if err != nil {
		t.Fatal(err)
	}
	first := checkBound(t, "after DORA", leaseIndex(c)[ev.IP], l.Clients[0], ev)

	// RENEWING: at T1 the client unicasts a REQUEST from its address to
	// the server that gave it (RFC 2131 §4.4.5) and Tandem ACKs it.
	mark := c1.Proc().LogSize()
	rn, err := c1.WaitRenew(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rn.Reason != "RENEW" || rn.IP != ev.IP || rn.ServerID != srv.IP || rn.LeaseTime <= 0 || rn.LeaseTime > leaseTime {
		t.Errorf("renewal: %+v, want RENEW of %s from %s for at most %v", rn, ev.IP, srv.IP, leaseTime)
	}
	unicast := fmt.Sprintf(`DHCPREQUEST for %s on eth0 to %s port 67`, ev.IP, srv.IP)
	if _, err := c1.Proc().AwaitLog(mark, regexp.QuoteMeta(unicast), time.Second); err != nil {
		t.Errorf("renewal was not unicast to the server: %v", err)
	}
	acked := fmt.Sprintf(`DHCPACK of %s from %s`, ev.IP, srv.IP)
	if _, err := c1.Proc().AwaitLog(mark, regexp.QuoteMeta(acked), time.Second); err != nil {
		t.Error(err)
	}
	if c, err = tdm.Leases(); err != nil {
		t.Fatal(err)
	}
	renewed := checkBound(t, "after RENEW", leaseIndex(c)[ev.IP], l.Clients[0], rn)
	// A renewal granting the full lease time moves the end forward; one
	// granting less (the rest of the current lease) may leave it.
	if first != nil && renewed != nil && rn.LeaseTime == leaseTime && renewed.Ends <= first.Ends {
		t.Errorf("RENEW granted %v at %s but the lease still ends %s as before",
			rn.LeaseTime, rn.At.Format(time.TimeOnly), time.Unix(renewed.Ends, 0).Format(time.TimeOnly))
	}

	// INIT-REBOOT: a restarted client asks for the address it had
	// (RFC 2131 §3.2) and keeps it.
	rb, err := c1.Reboot(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Reason != "REBOOT" || rb.IP != ev.IP {
		t.Errorf("reboot: %+v, want REBOOT of %s", rb, ev.IP)
	}

	// A second client gets an address of its own while the first holds
	// one.
	c2 := lab.NewDHClient(l.Clients[1], lab.DHClientOptions{})
	ev2, err := c2.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev2.IP == ev.IP || !inRange(ev2.IP, lab.LANRangeFirst, lab.LANRangeLast) {
		t.Errorf("second client got %s, want another address in %s-%s than %s",
			ev2.IP, lab.LANRangeFirst, lab.LANRangeLast, ev.IP)
	}

	// DHCPRELEASE gives the address back (RFC 2131 §4.4.6).
	if err := c1.Release(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitLease(t, tdm, ev.IP, 5*time.Second, "free or released", func(l *lease.Lease) bool {
		return l.State == lease.Free || l.State == lease.Released
	})
	if c, err = tdm.Leases(); err != nil {
		t.Fatal(err)
	}
	checkBound(t, "second client after the first released", leaseIndex(c)[ev2.IP], l.Clients[1], ev2)

	// A host declaration with hardware ethernet and fixed-address: that
	// client gets its reserved address, never one from the pool.
	c3 := lab.NewDHClient(l.Clients[2], lab.DHClientOptions{})
	ev3, err := c3.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev3.IP != reserved || ev3.ServerID != srv.IP {
		t.Errorf("reserved client got %s from %s, want %s from %s", ev3.IP, ev3.ServerID, reserved, srv.IP)
	}
	if got, err := c3.Address(); err != nil || got != reserved {
		t.Errorf("address on %s: %v (%v), want %s", c3.Host.Name, got, err, reserved)
	}
}

// checkBound asserts the lease file holds what the client was told: the
// address active for its hardware address, ending no earlier than the
// lease time the client counts from its event.
func checkBound(t *testing.T, when string, l *lease.Lease, h *lab.Host, ev lab.ClientEvent) *lease.Lease {
	t.Helper()
	if l == nil {
		t.Errorf("%s: no lease record for %s", when, ev.IP)
		return nil
	}
	if l.State != lease.Active || !bytes.Equal(l.HardwareAddr(), h.MAC) {
		t.Errorf("%s: lease of %s is %s, want active to %s", when, ev.IP, describeLease(l), h.MAC)
	}
	// The client's hook ran after the ACK arrived, later than the server
	// granted it: a few seconds of slack cover that delay on a busy machine
	// and the rounding to whole seconds.
	if min := ev.At.Add(ev.LeaseTime).Unix() - 5; l.Ends < min {
		t.Errorf("%s: lease of %s ends %s, but the client was given %v at %s",
			when, ev.IP, time.Unix(l.Ends, 0).Format(time.TimeOnly), ev.LeaseTime, ev.At.Format(time.TimeOnly))
	}
	return l
}

// SIGTERM stops Tandem cleanly (exit status 0, PID file removed), and the
// server started again on the same files still knows every client: the
// first keeps its address through INIT-REBOOT, a newcomer gets another.
func TestStopAndRestartKeepsClients(t *testing.T) {
	needsLab(t, "dhclient")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 1, Clients: 2})
	srv := l.Servers[0]
	tdm := lab.NewTandem(srv, lab.Pools{LeaseTime: 10 * time.Minute}.DhcpdConf())
	first := tdm.Start()
	if _, err := os.Stat(tdm.PIDPath); err != nil {
		t.Errorf("PID file while serving: %v", err)
	}

	c1 := lab.NewDHClient(l.Clients[0], lab.DHClientOptions{})
	ev1, err := c1.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c1.Stop()

	if err := tdm.Stop(10 * time.Second); err != nil {
		t.Errorf("tandem after SIGTERM: %v, want exit status 0", err)
	}
	if _, err := first.AwaitLog(0, `server stopping`, time.Second); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(tdm.PIDPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PID file after a clean stop: %v, want it removed", err)
	}

	second := tdm.Start()
	if second.PID == first.PID {
		t.Fatal("restart reused the first process")
	}
	rb, err := c1.Reboot(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Reason != "REBOOT" || rb.IP != ev1.IP {
		t.Errorf("after the restart the first client got %+v, want REBOOT of %s", rb, ev1.IP)
	}
	c2 := lab.NewDHClient(l.Clients[1], lab.DHClientOptions{})
	ev2, err := c2.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev2.IP == ev1.IP {
		t.Errorf("second client got the first client's %s after the restart", ev1.IP)
	}
}
