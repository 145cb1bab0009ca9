package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/lease"
	"github.com/tandemdhcp/tandem/internal/leasefile"
)

// Invariant I3 on the wire: Tandem under perfdhcp load is killed with
// kill -9 at several instants; every DHCPACK that left it must be in the
// lease file as an active lease for the same client after the crash, and
// again after the restarted server has read and rewritten the file.
// Across all rounds no address is ever ACKed to two clients (I1): the
// leases last ten minutes and perfdhcp never releases.
func TestKill9UnderLoadKeepsEveryAck(t *testing.T) {
	needsLab(t, "perfdhcp")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 1})
	srv := l.Servers[0]
	pools := lab.Pools{LeaseTime: 10 * time.Minute, RelaySize: 16384}
	first, last := pools.RelayRange()
	tdm := lab.NewTandem(srv, pools.DhcpdConf())
	tdm.Start()

	capture, err := startReplyCapture(l.Relay, srv.IP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(capture.close)

	// Kill early, in the middle and late in a run. perfdhcp draws its
	// clients' MACs from the base MAC and -R, so rounds 1 and 3 share their
	// 3000 clients (in round 3 clients the crashed server knew come back
	// and must find their leases), while round 2 brings new ones whose
	// addresses are allocated as the crash comes.
	rounds := []struct {
		killAfter time.Duration
		baseMAC   net.HardwareAddr
	}{
		{700 * time.Millisecond, net.HardwareAddr{0x02, 0x74, 0x64, 0x10, 0, 0}},
		{1500 * time.Millisecond, net.HardwareAddr{0x02, 0x74, 0x64, 0x20, 0, 0}},
		{2300 * time.Millisecond, net.HardwareAddr{0x02, 0x74, 0x64, 0x10, 0, 0}},
	}
	for i, r := range rounds {
		if i > 0 {
			tdm.Start()
		}
		mark := capture.Len()
		type result struct {
			res *lab.PerfdhcpResult
			err error
		}
		perf := make(chan result, 1)
		go func() {
			res, err := lab.RunPerfdhcp(l.Relay, lab.PerfdhcpOptions{
				Server:   srv.IP,
				Rate:     2000,
				Clients:  3000,
				Duration: 3 * time.Second,
				Seed:     i + 1,
				BaseMAC:  r.baseMAC,
			})
			perf <- result{res, err}
		}()
		time.Sleep(r.killAfter)
		tdm.Kill9()
		pr := <-perf
		if pr.err != nil {
			t.Fatalf("round %d: %v", i+1, pr.err)
		}
		acks := capture.Replies(mark, dhcpv4.MessageTypeAck)
		t.Logf("round %d: killed after %v; perfdhcp got %d of %d ACKs; %d ACKs seen on the wire",
			i+1, r.killAfter, pr.res.RequestAck.Received, pr.res.RequestAck.Sent, len(acks))
		if len(acks) == 0 {
			t.Fatalf("round %d: no DHCPACK left the server before the kill; perfdhcp:\n%s", i+1, pr.res.Output)
		}

		// The file as the crash left it, read without repairing it.
		c, err := tdm.Leases()
		if err != nil {
			t.Fatalf("round %d: lease file after kill -9: %v", i+1, err)
		}
		if c.Recovered != nil {
			t.Logf("round %d: the crash tore the last record: %+v", i+1, *c.Recovered)
		}
		checkAcksDurable(t, fmt.Sprintf("round %d, after kill -9", i+1), acks, c)

		// The restarted server recovers a torn tail by itself, and what it
		// rewrites still holds every ACK.
		p := tdm.Start()
		if m := regexp.MustCompile(`(?m)^.*ended inside a record.*$`).FindString(p.Log()); m != "" {
			t.Logf("round %d: restart: %s", i+1, m)
		}
		if c, err = tdm.Leases(); err != nil {
			t.Fatalf("round %d: lease file after restart: %v", i+1, err)
		}
		checkAcksDurable(t, fmt.Sprintf("round %d, after restart", i+1), acks, c)
		tdm.Kill9()
	}

	// After all the crashes the server still serves.
	tdm.Start()
	mark := capture.Len()
	res, err := lab.RunPerfdhcp(l.Relay, lab.PerfdhcpOptions{
		Server: srv.IP, Rate: 500, Clients: 1000, Duration: 2 * time.Second, Seed: 4,
		BaseMAC: net.HardwareAddr{0x02, 0x74, 0x64, 0x30, 0, 0}, ExitWait: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the crashes: %.0f exchanges/s, REQUEST-ACK %d/%d",
		res.Rate, res.RequestAck.Received, res.RequestAck.Sent)
	if res.RequestAck.Received == 0 {
		t.Errorf("no ACK after the crashes:\n%s", res.Output)
	}
	checkCaptureComplete(t, capture)

	all := capture.Replies(0, dhcpv4.MessageTypeAck)
	for _, a := range all {
		if !inRange(a.YIAddr, first, last) {
			t.Errorf("ACK of %s to %s: outside the relayed range %s-%s", a.YIAddr, a.CHAddr, first, last)
		}
	}
	var acks lab.Acks
	acks.Add(capturedAcks(srv.Name, all)...)
	t.Logf("all rounds: %s", acks.Summary())
	if err := acks.CheckUnique(); err != nil {
		t.Error(err)
	}
	c, err := tdm.Leases()
	if err != nil {
		t.Fatal(err)
	}
	// Ten-minute leases outlive the test: the first round's ACKs still hold.
	checkAcksDurable(t, "at the end", all, c)
	if got := len(capture.Replies(mark, dhcpv4.MessageTypeAck)); got != res.RequestAck.Received {
		t.Logf("after the crashes: %d ACKs on the wire, perfdhcp counted %d", got, res.RequestAck.Received)
	}
}

// checkAcksDurable asserts that the lease file c holds, for the last ACK
// of every address, an active lease to the same hardware address that
// lasts at least as long as the ACK promised.
func checkAcksDurable(t *testing.T, when string, acks []sentReply, c *leasefile.Contents) {
	t.Helper()
	last := map[netip.Addr]sentReply{}
	for _, a := range acks {
		last[a.YIAddr] = a
	}
	leases := leaseIndex(c)
	var bad []string
	for addr, a := range last {
		l := leases[addr]
		switch {
		case l == nil:
			bad = append(bad, fmt.Sprintf("%s ACKed to %s at %s: no lease record", addr, a.CHAddr, a.At.Format("15:04:05.000")))
		case l.State != lease.Active || l.HardwareAddr().String() != a.CHAddr:
			bad = append(bad, fmt.Sprintf("%s ACKed to %s at %s: lease is %s", addr, a.CHAddr, a.At.Format("15:04:05.000"), describeLease(l)))
		// The server stamped the lease before it sent the ACK we saw; two
		// seconds cover the commit delay under load and whole-second
		// rounding.
		case l.Ends < a.At.Add(a.LeaseTime).Unix()-2:
			bad = append(bad, fmt.Sprintf("%s ACKed to %s at %s for %v: lease ends %s",
				addr, a.CHAddr, a.At.Format("15:04:05.000"), a.LeaseTime, time.Unix(l.Ends, 0).Format(time.TimeOnly)))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("%s: %d of %d ACKed addresses not durable; first few:\n  %s",
			when, len(bad), len(last), strings.Join(bad[:min(len(bad), 10)], "\n  "))
	}
}

// capturedAcks are the DHCPACKs among replies captured from server, as
// lab.Acks records them, with the times and lease lengths they carried; an
// ACK to a DHCPINFORM grants no address and is left out.
func capturedAcks(server string, replies []sentReply) []lab.Ack {
	var out []lab.Ack
	for _, r := range replies {
		if r.Type != dhcpv4.MessageTypeAck || !r.YIAddr.IsValid() || r.YIAddr.IsUnspecified() {
			continue
		}
		out = append(out, lab.Ack{Addr: r.YIAddr, MAC: r.CHAddr, Server: server, At: r.At, Lease: r.LeaseTime})
	}
	return out
}

// checkCaptureComplete reports what the captures may have missed: frames
// the kernel dropped (logged, since load can cause it, but those replies
// went unchecked) and server frames that were not DHCP (an error).
func checkCaptureComplete(t *testing.T, cs ...*replyCapture) {
	t.Helper()
	for _, c := range cs {
		if drops, err := c.Drops(); err != nil || drops > 0 {
			t.Logf("capture of %s: %d frames dropped by the kernel (%v): those replies went unchecked", c.server, drops, err)
		}
		if n := c.Undecodable(); n > 0 {
			t.Errorf("%d replies from %s did not decode as DHCP", n, c.server)
		}
	}
}
