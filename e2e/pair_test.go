package e2e

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/control"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// The failover relationship's name in examples/classic.
const classicPeer = "dhcp-failover"

// Short protocol timers for the pair tests, so that each test runs in well
// under a minute. The values are valid for ISC dhcpd as well.
const (
	testMCLT             = 60 * time.Second
	testMaxResponseDelay = 5 * time.Second
)

// classicConfs is examples/classic (the primary's and the secondary's
// file, both including shared.conf) with the timers shortened: an MCLT of
// a minute and a link declared dead after five silent seconds. Anything
// else in the files is what an operator would deploy. autoPartnerDown 0
// leaves auto-partner-down off, as in the example.
func classicConfs(t *testing.T, autoPartnerDown time.Duration) lab.FailoverConfs {
	t.Helper()
	c, err := lab.ReadFailoverConfs("examples/classic")
	if err != nil {
		t.Fatal(err)
	}
	c = c.SetPeerParam("mclt", fmt.Sprint(int(testMCLT/time.Second))).
		SetPeerParam("max-response-delay", fmt.Sprint(int(testMaxResponseDelay/time.Second)))
	if autoPartnerDown > 0 {
		c = c.SetPeerParam("auto-partner-down", fmt.Sprint(int(autoPartnerDown/time.Second)))
	}
	return c
}

// startPair starts the classic pair in a lab of two servers and waits
// until both are normal with balanced pools.
func startPair(t *testing.T, l *lab.Lab, c lab.FailoverConfs) *lab.TandemPair {
	t.Helper()
	pair := lab.NewTandemPair(l, c)
	pair.Start()
	for _, s := range pair.Servers() {
		if err := s.WaitNormal(60 * time.Second); err != nil {
			t.Fatalf("%s: tandem wait normal: %v", s.Host.Name, err)
		}
	}
	return pair
}

// TestPairReachesNormal: two Tandems with the classic configuration find
// each other, go from recover through recover-done to normal as ISC does
// on a first start (fw §12.5 "fresh pair"), and the primary splits every
// pool's free leases with the secondary (fw §9), so that both DBs show
// the same split.
func TestPairReachesNormal(t *testing.T) {
	needsLab(t)
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 2})
	start := time.Now()
	pair := startPair(t, l, classicConfs(t, 0))
	t.Logf("both normal after %v", time.Since(start).Round(time.Millisecond))

	for _, s := range pair.Servers() {
		p := s.Proc()
		for _, pat := range []string{
			lab.StateLinePattern(classicPeer, "recover", "startup"),
			lab.StateLinePattern(classicPeer, "", "recover-done"),
			lab.StateLinePattern(classicPeer, "recover-done", "normal"),
			lab.PeerLinePattern(classicPeer, "", "normal"),
			`failover peer ` + classicPeer + `: Both servers normal`,
		} {
			if _, err := p.AwaitLog(0, pat, 5*time.Second); err != nil {
				t.Errorf("%s: %v", s.Host.Name, err)
			}
		}
	}

	// Balancing runs on the primary as it enters normal and moves leases
	// one binding update at a time; wait until both agree on the split.
	var stats [2]control.Status
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for i, s := range pair.Servers() {
			st, err := s.Status()
			if err != nil {
				t.Fatal(err)
			}
			stats[i] = st
		}
		for i := range stats[0].Pools {
			if !balanced(stats[0].Pools[i]) || !poolsAgree(stats[0].Pools[i], stats[1].Pools[i]) {
				ok = false
			}
		}
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	for i, s := range pair.Servers() {
		st := stats[i]
		if len(st.Failover) != 1 {
			t.Fatalf("%s: %d failover relationships in status, want 1", s.Host.Name, len(st.Failover))
		}
		f := st.Failover[0]
		wantRole := []string{"primary", "secondary"}[i]
		if f.Name != classicPeer || f.Role != wantRole || f.LocalState != "normal" || f.PartnerState != "normal" || !f.Connected {
			t.Errorf("%s: failover status %+v, want %s %s, normal/normal, connected", s.Host.Name, f, classicPeer, wantRole)
		}
		if f.MCLT != uint32(testMCLT/time.Second) {
			t.Errorf("%s: mclt %d, want %d (the primary's, learned by the secondary)", s.Host.Name, f.MCLT, testMCLT/time.Second)
		}
		if len(st.Pools) != 2 {
			t.Fatalf("%s: %d pools, want 2", s.Host.Name, len(st.Pools))
		}
		for _, p := range st.Pools {
			t.Logf("%s: pool %s %s: free %d backup %d active %d", s.Host.Name, p.Subnet, p.Range, p.States["free"], p.States["backup"], p.States["active"])
			if p.FailoverPeer != classicPeer {
				t.Errorf("%s: pool %s has failover peer %q, want %q", s.Host.Name, p.Range, p.FailoverPeer, classicPeer)
			}
			if !balanced(p) {
				t.Errorf("%s: pool %s not balanced: free %d, backup %d of %d", s.Host.Name, p.Range, p.States["free"], p.States["backup"], p.Size)
			}
		}
	}
	for i := range stats[0].Pools {
		if a, b := stats[0].Pools[i], stats[1].Pools[i]; !poolsAgree(a, b) {
			t.Errorf("pool %s: primary counts %v, secondary counts %v, want the same", a.Range, a.States, b.States)
		}
	}

	// The lease files agree too: every address has the same binding state
	// on both servers.
	compareLeaseFiles(t, pair, 10*time.Second)

	// The status the operator reads.
	for _, s := range pair.Servers() {
		out, err := s.Ctl("status")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("tandem status on %s:\n%s", s.Host.Name, out)
	}
}

// balanced: every address of a fresh pool is free or backup, and the two
// halves differ by at most the odd address: for never-used leases ISC's
// balancing moves leases until the giver's surplus is gone (fw §9).
func balanced(p control.PoolStatus) bool {
	free, backup := p.States["free"], p.States["backup"]
	return free+backup == p.Size && free-backup <= 1 && backup-free <= 1
}

func poolsAgree(a, b control.PoolStatus) bool {
	if a.Range != b.Range || len(a.States) != len(b.States) {
		return false
	}
	for k, v := range a.States {
		if b.States[k] != v {
			return false
		}
	}
	return true
}

// leaseView is what both servers of a pair must agree on for an address.
type leaseView struct {
	State    lease.BindingState
	HW       string
	ClientID string
	Ends     int64
}

func (v leaseView) String() string {
	if v.HW == "" && v.ClientID == "" {
		return v.State.String()
	}
	return fmt.Sprintf("%s to %s (id %q) until %s", v.State, v.HW, v.ClientID, time.Unix(v.Ends, 0).Format(time.TimeOnly))
}

// leaseViews reads a server's lease file. Addresses the file does not
// mention are free and never used.
func leaseViews(t *testing.T, s *lab.Tandem) map[netip.Addr]leaseView {
	t.Helper()
	c, err := s.Leases()
	if err != nil {
		t.Fatalf("%s: lease file: %v", s.Host.Name, err)
	}
	m := map[netip.Addr]leaseView{}
	for i := range c.Leases {
		l := &c.Leases[i]
		v := leaseView{State: l.State, ClientID: l.ClientID}
		if hw := l.HardwareAddr(); hw != nil {
			v.HW = hw.String()
		}
		if l.State == lease.Active {
			v.Ends = l.Ends
		}
		m[l.Addr()] = v
	}
	return m
}

// leaseDiffs lists the addresses whose records differ between the two
// servers' lease files.
func leaseDiffs(a, b map[netip.Addr]leaseView) []string {
	addrs := map[netip.Addr]bool{}
	for k := range a {
		addrs[k] = true
	}
	for k := range b {
		addrs[k] = true
	}
	var out []string
	for k := range addrs {
		va, oka := a[k]
		vb, okb := b[k]
		if !oka {
			va = leaseView{State: lease.Free}
		}
		if !okb {
			vb = leaseView{State: lease.Free}
		}
		if va != vb {
			out = append(out, fmt.Sprintf("%s: primary %s, secondary %s", k, va, vb))
		}
	}
	sort.Strings(out)
	return out
}

// compareLeaseFiles waits (binding updates travel while the test reads)
// until the two lease files agree address by address (invariant I5), and
// fails the test if they never do.
func compareLeaseFiles(t *testing.T, pair *lab.TandemPair, timeout time.Duration) (primary, secondary map[netip.Addr]leaseView) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		primary, secondary = leaseViews(t, pair.Primary), leaseViews(t, pair.Secondary)
		diffs := leaseDiffs(primary, secondary)
		if len(diffs) == 0 {
			return primary, secondary
		}
		if time.Now().After(deadline) {
			if len(diffs) > 20 {
				diffs = append(diffs[:20], fmt.Sprintf("… and %d more", len(diffs)-20))
			}
			t.Errorf("the lease files of the pair disagree after %v:\n%s", timeout, strings.Join(diffs, "\n"))
			return primary, secondary
		}
		time.Sleep(250 * time.Millisecond)
	}
}
