package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/control"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// shutdownMCLT is the MCLT of the shutdown tests: a restarted server may
// have to wait it out in recover-wait, so it is kept short.
const shutdownMCLT = 30 * time.Second

// busyShutdown starts the classic pair with the shutdown tests' MCLT,
// binds clients of the primary that renew every second (so that binding
// updates are in flight, as in production), and stops the primary with
// SIGTERM. It checks ISC's graceful shutdown (fw §12.1, §12.5 "graceful
// peer shutdown"): the primary moves to shutdown and tells its partner,
// which goes partner-down by itself; the primary saves recover and exits
// with status 0. It returns the primary's remaining client hosts too.
func busyShutdown(t *testing.T) (l *lab.Lab, pair *lab.TandemPair, old []*pairClient, spare []*lab.Host, stopped time.Time) {
	t.Helper()
	l = lab.New(t, lab.Options{Servers: 2, Clients: 4})
	byServer := splitClients(t, l, 3)
	pair = startPair(t, l, classicConfs(t, 0).SetPeerParam("mclt", fmt.Sprint(int(shutdownMCLT/time.Second))))
	prim, sec := pair.Primary, pair.Secondary

	renewing := lab.DHClientOptions{RenewalTime: time.Second, RebindingTime: 4 * time.Second}
	old = acquireAll(t, byServer[0][:2], renewing)
	for _, pc := range old {
		if pc.ev.ServerID != prim.Host.IP {
			t.Fatalf("%s got its lease from %s, want the primary %s", pc.c.Host.Name, pc.ev.ServerID, prim.Host.IP)
		}
	}

	first := prim.Proc()
	mark := sec.Proc().LogSize()
	stopped = time.Now()
	if err := prim.Stop(30 * time.Second); err != nil {
		t.Errorf("primary after SIGTERM: %v, want exit status 0", err)
	}
	t.Logf("primary stopped in %v", time.Since(stopped).Round(time.Millisecond))
	for _, pat := range []string{
		lab.StateLinePattern(classicPeer, "normal", "shutdown"),
		lab.StateLinePattern(classicPeer, "shutdown", "recover"),
		`server stopping`,
	} {
		if _, err := first.AwaitLog(0, pat, time.Second); err != nil {
			t.Error(err)
		}
	}
	for _, pat := range []string{
		lab.PeerLinePattern(classicPeer, "normal", "shutdown"),
		lab.StateLinePattern(classicPeer, "normal", "partner-down"),
	} {
		if _, err := sec.Proc().AwaitLog(mark, pat, 5*time.Second); err != nil {
			t.Error(err)
		}
	}
	if _, err := sec.AwaitStates("partner-down", "", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return l, pair, old, byServer[0][2:], stopped
}

// TestPairPrimarySIGTERM: once its primary stopped gracefully, the
// secondary is partner-down by itself and serves everyone alone: a
// newcomer the hash gives to the primary, for at most the MCLT, and the
// primary's clients, which rebind with it.
func TestPairPrimarySIGTERM(t *testing.T) {
	needsLab(t, "dhclient")
	tandemBinary(t)
	_, pair, old, spare, stopped := busyShutdown(t)
	sec := pair.Secondary

	fresh := acquireAll(t, spare[:1], lab.DHClientOptions{})
	for _, pc := range fresh {
		t.Logf("primary down: %s got %s from %s for %v", pc.c.Host.Name, pc.ev.IP, pc.ev.ServerID, pc.ev.LeaseTime)
		if pc.ev.ServerID != sec.Host.IP {
			t.Errorf("%s served by %s while the primary is down, want the secondary %s", pc.c.Host.Name, pc.ev.ServerID, sec.Host.IP)
		}
		if pc.ev.LeaseTime > shutdownMCLT {
			t.Errorf("%s: new lease for %v in partner-down, want at most the MCLT %v", pc.c.Host.Name, pc.ev.LeaseTime, shutdownMCLT)
		}
	}
	awaitRenewedBy(t, old, sec.Host.IP, stopped, 30*time.Second)
	c, err := sec.Leases()
	if err != nil {
		t.Fatal(err)
	}
	idx := leaseIndex(c)
	for _, pc := range append(old, fresh...) {
		if le := idx[pc.ev.IP]; le == nil || le.State != lease.Active || le.HardwareAddr().String() != pc.c.Host.MAC.String() {
			t.Errorf("%s: the secondary's record of %s is %s", pc.c.Host.Name, pc.ev.IP, describeLease(le))
		}
	}
}

// TestPairRestartAfterBusyShutdown: a primary stopped gracefully while
// its clients were renewing is started again on its lease file. It
// resynchronises through recover; ISC waits in recover-wait at most until
// the STOS it saved plus MCLT (fw §12.4), so the pair must be normal
// again by then, with agreeing lease files.
func TestPairRestartAfterBusyShutdown(t *testing.T) {
	needsLab(t, "dhclient")
	tandemBinary(t)
	_, pair, old, _, stopped := busyShutdown(t)
	prim := pair.Primary
	saved := savedState(t, prim)
	t.Logf("the primary saved %q at %s (stopped at %s)", saved.MyState, time.Unix(saved.MyStateAt, 0).Format(time.TimeOnly), stopped.Format(time.TimeOnly))
	awaitRenewedBy(t, old, pair.Secondary.Host.IP, stopped, 30*time.Second)
	for _, pc := range old {
		pc.c.Stop()
	}

	second := prim.Start()
	bound := time.Unix(saved.MyStateAt, 0).Add(shutdownMCLT + 15*time.Second)
	for _, s := range pair.Servers() {
		if _, err := s.AwaitStates("normal", "normal", max(time.Until(bound), 15*time.Second)); err != nil {
			// KNOWN FAILOVER BUG (internal/failover, reported to its owner):
			// a primary restarted after a graceful shutdown whose STOS was
			// not back-dated (updates were in flight) is taken for one that
			// lost its lease file (Node.lostDB: saved recover with
			// STOS+MCLT > now) and waits in recover-wait until MCLT past the
			// latest potential expiry its partner sent, about the lease
			// time (an hour here), instead of STOS+MCLT as ISC does.
			t.Fatalf("%s after the primary's restart: %v\nprimary's failover log since the restart:\n%s", s.Host.Name, err, failoverLines(second.Log()))
		}
	}
	if _, err := second.AwaitLog(0, lab.StateLinePattern(classicPeer, "", "recover-done"), time.Second); err != nil {
		t.Error(err)
	}
	p, s := compareLeaseFiles(t, pair, 20*time.Second)
	for _, pc := range old {
		for _, m := range []map[netip.Addr]leaseView{p, s} {
			if v := m[pc.ev.IP]; v.State != lease.Active || v.HW != pc.c.Host.MAC.String() {
				t.Errorf("after the restart, %s's %s is %s", pc.c.Host.Name, pc.ev.IP, v)
			}
		}
	}
}

// TestPairQuietShutdownSkipsRecoverWait: a server stopped gracefully when
// nothing is left unacknowledged, and whose partner confirmed
// partner-down, saves recover with its STOS back-dated by MCLT (ISC,
// fw §12.1), so on restart it resynchronises and goes to recover-done
// without waiting in recover-wait.
func TestPairQuietShutdownSkipsRecoverWait(t *testing.T) {
	needsLab(t, "dhclient")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 2, Clients: 2})
	pair := startPair(t, l, classicConfs(t, 0).SetPeerParam("mclt", fmt.Sprint(int(shutdownMCLT/time.Second))))
	prim, sec := pair.Primary, pair.Secondary
	clients := acquireAll(t, l.Clients, lab.DHClientOptions{})
	for _, pc := range clients {
		pc.c.Stop()
	}
	// Nothing queued or unacknowledged on either side.
	for _, s := range pair.Servers() {
		st, err := s.AwaitFailover(15*time.Second, "no pending or unacked updates", func(p control.PeerStatus) bool {
			return p.PendingUpdates == 0 && p.UnackedUpdates == 0
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: pending %d, unacked %d", s.Host.Name, st.PendingUpdates, st.UnackedUpdates)
	}

	stopped := time.Now()
	if err := prim.Stop(30 * time.Second); err != nil {
		t.Errorf("primary after SIGTERM: %v, want exit status 0", err)
	}
	if _, err := sec.AwaitStates("partner-down", "", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	saved := savedState(t, prim)
	if saved.MyState != "recover" || saved.MyStateAt > stopped.Add(-shutdownMCLT).Unix()+1 {
		t.Errorf("the primary saved %q at %s after stopping at %s, want recover back-dated by the MCLT (%v)",
			saved.MyState, time.Unix(saved.MyStateAt, 0).Format(time.TimeOnly), stopped.Format(time.TimeOnly), shutdownMCLT)
	}

	second := prim.Start()
	for _, s := range pair.Servers() {
		if _, err := s.AwaitStates("normal", "normal", 15*time.Second); err != nil {
			t.Fatalf("%s: %v\nprimary's log since the restart:\n%s", s.Host.Name, err, failoverLines(second.Log()))
		}
	}
	if strings.Contains(second.Log(), "to recover-wait") {
		t.Errorf("the primary waited in recover-wait after a quiet graceful shutdown:\n%s", failoverLines(second.Log()))
	}
	compareLeaseFiles(t, pair, 15*time.Second)
}

// savedState is the failover state record a stopped server left as the
// last one in its lease file.
func savedState(t *testing.T, s *lab.Tandem) lease.FailoverStateRecord {
	t.Helper()
	c, err := s.Leases()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Failover {
		if r.Peer == classicPeer {
			return r
		}
	}
	t.Fatalf("%s: no failover state record in the lease file", s.Host.Name)
	return lease.FailoverStateRecord{}
}

// awaitRenewedBy waits until every client has renewed or rebound with
// server after since.
func awaitRenewedBy(t *testing.T, clients []*pairClient, server netip.Addr, since time.Time, timeout time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	for i, pc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(timeout)
			for {
				ev, err := pc.c.WaitRenew(time.Until(deadline))
				if err != nil {
					errs[i] = err
					return
				}
				if ev.At.After(since) && ev.ServerID == server {
					pc.ev = ev
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, pc := range clients {
		if errs[i] != nil {
			t.Errorf("%s did not renew with %s: %v", pc.c.Host.Name, server, errs[i])
			continue
		}
		t.Logf("%s %s %s from %s for %v", pc.c.Host.Name, pc.ev.Reason, pc.ev.IP, pc.ev.ServerID, pc.ev.LeaseTime)
	}
}

// failoverLines keeps a log's failover lines, for failure messages.
func failoverLines(log string) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "failover peer") && !strings.Contains(line, "rejected") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
