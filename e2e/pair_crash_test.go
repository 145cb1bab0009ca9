package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// TestPairSecondaryKill9: the secondary crashes (kill -9). The primary
// notices at once (the kernel closes the dead process's TCP connection),
// moves to communications-interrupted as ISC does (fw §12.1), and keeps
// serving: new clients get leases from its own free pool, and clients
// renew, with every lease ending no later than MCLT beyond what the
// secondary last acknowledged (fw §11, invariant I2). Started again on its
// lease file, the secondary comes back; both return to normal, the
// primary sends what the secondary missed, and the lease files agree.
func TestPairSecondaryKill9(t *testing.T) {
	needsLab(t, "dhclient")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 2, Clients: 6})
	byServer := splitClients(t, l, 2)
	pair := startPair(t, l, classicConfs(t, 0))
	prim, sec := pair.Primary, pair.Secondary

	// Clients of both servers, renewing every 3 s and rebinding (broadcast
	// to any server) 6 s after they bound, so that those of the secondary
	// turn to the primary soon after the crash.
	renewing := lab.DHClientOptions{RenewalTime: 3 * time.Second, RebindingTime: 6 * time.Second}
	old := acquireAll(t, append(append([]*lab.Host{}, byServer[0]...), byServer[1]...), renewing)
	for _, pc := range old {
		t.Logf("before the crash: %s got %s from %s for %v", pc.c.Host.Name, pc.ev.IP, pc.ev.ServerID, pc.ev.LeaseTime)
	}
	compareLeaseFiles(t, pair, 15*time.Second)

	mark := prim.Proc().LogSize()
	sec.Kill9()
	crashed := time.Now()
	if _, err := prim.Proc().AwaitLog(mark, lab.StateLinePattern(classicPeer, "normal", "communications-interrupted"), 3*testMaxResponseDelay); err != nil {
		t.Fatal(err)
	}
	st, err := prim.AwaitStates("communications-interrupted", "", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("primary in %s %v after the kill (connected %v)", st.LocalState, time.Since(crashed).Round(time.Millisecond), st.Connected)

	// What the secondary had acknowledged when it died: the bound for
	// every later grant of the primary.
	tsfp := map[netip.Addr]int64{}
	c, err := prim.Leases()
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Leases {
		tsfp[c.Leases[i].Addr()] = c.Leases[i].TSFP
	}

	// New clients, whichever server the hash names, are served by the
	// primary, for at most the MCLT: nothing about them was acknowledged.
	var newHosts []*lab.Host
	for range 3 {
		newHosts = append(newHosts, l.AddClient())
	}
	fresh := acquireAll(t, newHosts, lab.DHClientOptions{})
	for _, pc := range fresh {
		t.Logf("during the outage: new client %s got %s from %s for %v", pc.c.Host.Name, pc.ev.IP, pc.ev.ServerID, pc.ev.LeaseTime)
		if pc.ev.ServerID != prim.Host.IP {
			t.Errorf("new client %s served by %s during the outage, want the primary %s", pc.c.Host.Name, pc.ev.ServerID, prim.Host.IP)
		}
		if pc.ev.LeaseTime <= 0 || pc.ev.LeaseTime > testMCLT {
			t.Errorf("new client %s got %v during the outage, want at most the MCLT %v", pc.c.Host.Name, pc.ev.LeaseTime, testMCLT)
		}
	}

	// The old clients renew (the primary's) or rebind (the secondary's)
	// with the primary.
	awaitRenewedBy(t, old, prim.Host.IP, crashed, 30*time.Second)
	c, err = prim.Leases()
	if err != nil {
		t.Fatal(err)
	}
	idx := leaseIndex(c)
	for _, pc := range old {
		h := pc.c.Host
		if !pc.ev.At.After(crashed) {
			continue // did not renew with the primary; reported above
		}
		le := idx[pc.ev.IP]
		if le == nil || le.State != lease.Active || le.HardwareAddr().String() != h.MAC.String() {
			t.Errorf("%s: primary's record of %s is %s, want active to %s", h.Name, pc.ev.IP, describeLease(le), h.MAC)
			continue
		}
		// I2: no grant beyond MCLT past what the partner acknowledged.
		if bound := max(le.CLTT, tsfp[pc.ev.IP]) + int64(testMCLT/time.Second); le.Ends > bound {
			t.Errorf("%s: %s granted until %s in communications-interrupted, beyond the bound %s (acked potential expiry %s + MCLT)",
				h.Name, pc.ev.IP, time.Unix(le.Ends, 0).Format(time.TimeOnly), time.Unix(bound, 0).Format(time.TimeOnly),
				time.Unix(tsfp[pc.ev.IP], 0).Format(time.TimeOnly))
		}
	}
	for _, pc := range fresh {
		le := idx[pc.ev.IP]
		if le == nil || le.State != lease.Active {
			t.Errorf("new client %s: primary's record of %s is %s", pc.c.Host.Name, pc.ev.IP, describeLease(le))
		}
	}
	if st, err := prim.Failover(); err != nil || st.LocalState != "communications-interrupted" {
		t.Errorf("primary after serving alone: %+v (%v), want still communications-interrupted (auto-partner-down is off)", st, err)
	}

	// The secondary comes back on its lease file: it resumes normal, the
	// primary sees it and returns to normal too (fw §12.2), and sends the
	// updates it queued during the outage.
	mark = prim.Proc().LogSize()
	sec.Start()
	for _, s := range pair.Servers() {
		if err := s.WaitNormal(60 * time.Second); err != nil {
			t.Fatalf("%s after the secondary's restart: %v", s.Host.Name, err)
		}
	}
	if _, err := prim.Proc().AwaitLog(mark, lab.StateLinePattern(classicPeer, "communications-interrupted", "normal"), 5*time.Second); err != nil {
		t.Error(err)
	}
	for _, pc := range append(old, fresh...) {
		pc.c.Stop()
	}
	p, s := compareLeaseFiles(t, pair, 20*time.Second)
	for _, pc := range append(old, fresh...) {
		for name, m := range map[string]map[netip.Addr]leaseView{"primary": p, "secondary": s} {
			if v := m[pc.ev.IP]; v.State != lease.Active || v.HW != pc.c.Host.MAC.String() {
				t.Errorf("after the restart, %s's %s is %s in the %s's file", pc.c.Host.Name, pc.ev.IP, v, name)
			}
		}
	}
}
