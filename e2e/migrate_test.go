package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// The rolling migration of an ISC dhcpd 4.4 failover pair to Tandem, under
// load, the way an operator does it: replace the secondary, wait for
// normal, then the primary. Each server keeps its dhcpd.conf (the
// classic two-file layout) and its dhcpd.leases. Beside each replacement
// the test restarts the same server as plain ISC dhcpd, the cost the
// operator already accepts today, and prints both.

// migrationWindow is one perfdhcp run around one server change.
type migrationWindow struct {
	what   string
	res    *lab.PerfdhcpResult
	failed int
}

// missing counts exchanges that never completed: requests with no reply
// at all (late replies within the drop time are not failures).
func missing(res *lab.PerfdhcpResult) int {
	return (res.DiscoverOffer.Sent - res.DiscoverOffer.Received) + (res.RequestAck.Sent - res.RequestAck.Received)
}

// migrationLoad is the perfdhcp load of each window: bounded in rate, time
// and clients, relayed and fanned out to both servers.
func migrationLoad(seconds int, seed int) lab.PerfdhcpOptions {
	return lab.PerfdhcpOptions{
		Server: lab.ServerIP(1), Local: lab.RelayIP,
		Rate: 25, Clients: 300, Duration: time.Duration(seconds) * time.Second, Seed: seed,
		DropTime: 2 * time.Second, ExitWait: 3 * time.Second,
	}
}

// underLoad runs perfdhcp for a window and calls change a moment after it
// started; it returns perfdhcp's result once both are done.
func underLoad(t *testing.T, l *lab.Lab, what string, seed int, change func()) migrationWindow {
	t.Helper()
	type result struct {
		res *lab.PerfdhcpResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := lab.RunPerfdhcp(l.Relay, migrationLoad(12, seed))
		done <- result{res, err}
	}()
	time.Sleep(2 * time.Second)
	change()
	r := <-done
	if r.err != nil {
		t.Fatalf("%s: %v", what, r.err)
	}
	w := migrationWindow{what: what, res: r.res, failed: missing(r.res)}
	if r.res.RequestAck.Received == 0 {
		t.Errorf("%s: no exchange completed:\n%s", what, r.res.Output)
	}
	return w
}

// restartISC stops an ISC member with SIGTERM, as `systemctl restart`
// would, and starts it again on the same files.
func restartISC(t *testing.T, s *pairServer) {
	t.Helper()
	_ = s.isc.Proc().Stop(10 * time.Second)
	s.isc.Start()
}

// replaceWithTandem stops an ISC member with SIGTERM and starts Tandem in
// its place on the same config file and the same lease file.
func replaceWithTandem(t *testing.T, s *pairServer) {
	t.Helper()
	_ = s.isc.Proc().Stop(10 * time.Second)
	tdm := lab.NewTandem(s.host, "")
	tdm.ConfPath, tdm.LeasePath = s.isc.ConfPath, s.isc.LeasePath
	s.isc, s.tdm = nil, tdm
	tdm.Start()
}

func TestRollingMigrationFromISCPair(t *testing.T) {
	needsLab(t, "dhcpd", "dhclient", "perfdhcp", "nft")
	tandemBinary(t)
	// A short MCLT: the way back may wait it out in recover-wait.
	c := pairConf{MCLT: 15, LeaseTime: 600, LANSize: 32, RelaySize: 512}
	l := lab.New(t, lab.Options{Servers: 2, Clients: 2})
	p := &mixedPair{lab: l, conf: c, files: writePairConf(l, c)}
	p.primary = newISCMember(t, l.Servers[0], true, p.files.Primary)
	p.secondary = newISCMember(t, l.Servers[1], false, p.files.Secondary)
	p.primary.start()
	p.secondary.start()
	p.awaitNormal(t, 60*time.Second)
	p.awaitBalanced(t, 45*time.Second)
	// Every DHCPACK either server sends the relayed load, whichever
	// program it is at the time, with its lease time: the evidence that
	// no address went to two clients at once across the changes.
	var captures [2]*replyCapture
	for i, s := range p.members() {
		c, err := startReplyCapture(l.Relay, s.host.IP)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		captures[i] = c
	}
	l.RelayFanOut(true)

	// Two clients of the ISC era, one in each half of the split. They keep
	// running through the migration and renew at T1 from whichever server
	// is there (their first lease is MCLT long, so they renew soon).
	clients := p.acquireAll(t, l.Clients, "era")

	var windows []migrationWindow
	step := func(s *pairServer, what string, seed int, change func(*testing.T, *pairServer)) {
		t.Helper()
		other := p.other(s)
		mark := other.proc().LogSize()
		w := underLoad(t, l, what, seed, func() {
			change(t, s)
			s.awaitState(0, "normal", 60*time.Second)
			other.awaitState(mark, "normal", 60*time.Second)
		})
		windows = append(windows, w)
		// Wait for the pools to settle before the next change, as the
		// operator waits for "balanced pool" in the logs.
		p.awaitBalanced(t, 45*time.Second)
	}
	step(p.secondary, "ISC restart of the secondary", 1, restartISC)
	step(p.secondary, "secondary ISC -> Tandem", 2, replaceWithTandem)
	step(p.primary, "ISC restart of the primary", 3, restartISC)
	step(p.primary, "primary ISC -> Tandem", 4, replaceWithTandem)

	var b strings.Builder
	fmt.Fprintf(&b, "%-32s %8s %8s %8s %8s %8s\n", "window (12 s, 25/s)", "DO sent", "DO recv", "RA sent", "RA recv", "failed")
	for _, w := range windows {
		fmt.Fprintf(&b, "%-32s %8d %8d %8d %8d %8d\n", w.what, w.res.DiscoverOffer.Sent, w.res.DiscoverOffer.Received,
			w.res.RequestAck.Sent, w.res.RequestAck.Received, w.failed)
	}
	t.Logf("failed exchanges around each change:\n%s", b.String())

	// Both are Tandem now, in normal, with the same picture of every
	// lease: the ISC era's and the ones granted during the changes.
	if p.primary.tdm == nil || p.secondary.tdm == nil {
		t.Fatal("the pair is not all Tandem")
	}
	awaitActiveAgreement(t, p, 30*time.Second)
	// First grants last MCLT, so addresses do change hands between
	// windows: the check goes by the lease times the ACKs carried. The
	// leases still running must be held, by both.
	var acks lab.Acks
	for i, s := range p.members() {
		acks.Add(capturedAcks(s.host.Name, captures[i].Replies(0))...)
	}
	t.Logf("relayed load through the migration: %s", acks.Summary())
	if acks.Len() == 0 {
		t.Fatal("no DHCPACK seen on the wire")
	}
	if err := acks.CheckUnique(); err != nil {
		t.Error(err)
	}
	checkAckedLeasesHeld(t, &acks, p.members()...)
	checkCaptureComplete(t, captures[:]...)
	// The ISC era's clients kept their addresses all along: every renewal
	// extended the same lease, none expired or failed.
	for _, c := range clients {
		evs, err := c.Events()
		if err != nil {
			t.Fatal(err)
		}
		renewals := 0
		for _, ev := range evs {
			switch {
			case ev.Reason == "PREINIT":
			case (ev.Reason == "RENEW" || ev.Reason == "REBIND") && ev.IP == c.ev.IP:
				renewals++
			case ev.Reason == "BOUND" && ev.IP == c.ev.IP:
			default:
				t.Errorf("client %q (%s) during the migration: %s %s", c.id, c.ev.IP, ev.Reason, ev.IP)
			}
		}
		if renewals == 0 {
			t.Errorf("client %q never renewed during the migration", c.id)
		}
		// And a restart against the Tandem pair keeps it too. dhclient may
		// not have written its renewals to its lease file; holding only
		// the expired first lease, it starts over with a DISCOVER, and the
		// pair must still give it its address back.
		ev, err := c.Reboot(30 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if ev.IP != c.ev.IP {
			t.Errorf("client %q after the migration: %s %s, want %s again", c.id, ev.Reason, ev.IP, c.ev.IP)
		}
		c.Stop()
	}

	// The way back: the secondary returns to ISC dhcpd on Tandem's lease
	// file. Tandem's SIGTERM is a graceful shutdown (the primary moves to
	// partner-down); ISC reads the file, checked first with dhcpd -T, and
	// rejoins through recover (and recover-wait, unless Tandem left
	// nothing unsent and back-dated its recover STOS by MCLT).
	sec := p.secondary
	if err := sec.tdm.Stop(20 * time.Second); err != nil {
		t.Errorf("%s after SIGTERM: %v", sec, err)
	}
	p.primary.awaitState(0, "partner-down", 10*time.Second)
	iscTestLeaseFile(t, sec.host, sec.tdm.ConfPath, sec.tdm.LeasePath)
	back := lab.NewISCDhcpd(sec.host, "")
	back.ConfPath, back.LeasePath = sec.tdm.ConfPath, sec.tdm.LeasePath
	sec.isc, sec.tdm = back, nil
	mark := p.primary.proc().LogSize()
	back.Start()
	for _, m := range iscLeaseFileComplaint.FindAllString(back.Proc().Log(), -1) {
		t.Errorf("dhcpd starting on Tandem's lease file: %s", m)
	}
	sec.awaitState(0, "normal", 60*time.Second)
	p.primary.awaitState(mark, "normal", 30*time.Second)
	t.Logf("ISC secondary back on Tandem's lease file; its moves: %v", movesTo(lab.FailoverMoves(back.Proc().Log(), mixedPeer)))
	awaitActiveAgreement(t, p, 30*time.Second)
	checkNoProtocolErrors(t, p.members()...)
}

// awaitActiveAgreement waits until every lease either server holds active
// is active on the other too, for the same client, with the same end.
func awaitActiveAgreement(t *testing.T, p *mixedPair, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var problems []string
		a, errA := p.primary.leases()
		b, errB := p.secondary.leases()
		if errA != nil || errB != nil {
			problems = append(problems, fmt.Sprintf("reading leases: %v, %v", errA, errB))
		} else {
			active := 0
			for _, pair := range [][2]map[netip.Addr]pairLease{{a, b}, {b, a}} {
				for ip, x := range pair[0] {
					if x.State != "active" {
						continue
					}
					active++
					y := pair[1][ip]
					if y.State != "active" || y.Hardware != x.Hardware || y.ClientID != x.ClientID || y.Ends != x.Ends {
						problems = append(problems, fmt.Sprintf("%s: %s vs %s", ip, x, y))
					}
				}
			}
			if active == 0 {
				problems = append(problems, "no active lease at all")
			}
		}
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if len(problems) > 10 {
				problems = append(problems[:10], fmt.Sprintf("… and %d more", len(problems)-10))
			}
			t.Fatalf("the two lease databases disagree after %v:\n  %s", timeout, strings.Join(problems, "\n  "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
