package failover

import (
	"math"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/dhcp"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// The node is the DHCP handler's failover policy.
var _ dhcp.Policy = (*Node)(nil)

const testNow = 1_700_000_000

// testNode builds a node of the given role over one pool of 8 addresses
// (198.18.0.10-17) and puts it in state me with the partner in partner.
func testNode(t *testing.T, role config.Role, me, partner wire.ServerState) (*Node, *lease.DB, *lease.Pool) {
	t.Helper()
	db, err := lease.NewDB(poolSpecs("8"))
	if err != nil {
		t.Fatal(err)
	}
	fp := config.FailoverPeer{Name: relName, Role: role, MCLT: 600, LoadBalanceMaxSeconds: 3}
	if role == config.Primary {
		hba := wire.HBAFromSplit(128)
		fp.HBA = hba[:]
	}
	n, err := NewNode(NodeConfig{Peer: &fp, DB: db, Now: testNow - 10000})
	if err != nil {
		t.Fatal(err)
	}
	if role == config.Secondary {
		n.mclt = 600
		n.hba, n.hasHBA = wire.HBAFromSplit(128), true
	}
	// Half of the pool is the secondary's, as after balancing.
	for a := ip("198.18.0.14"); a <= ip("198.18.0.17"); a++ {
		db.Update(a, func(l *lease.Lease) { l.State, l.Rewind = lease.Backup, lease.Backup })
	}
	n.me, n.partner, n.stos = me, partner, testNow-1000
	n.startupAt = 0
	// A node put straight into a state has a database it trusts.
	n.lostDB, n.holdRecord = false, false
	n.Ready()
	return n, db, db.Pools[0]
}

func ip(s string) uint32 { return lease.AddrToU32(netip.MustParseAddr(s)) }

// TestGrantTimeMCLT is the MCLT rule of fw §11.
func TestGrantTimeMCLT(t *testing.T) {
	n, _, p := testNode(t, config.Primary, stNormal, stNormal)
	const now = testNow
	cases := []struct {
		name          string
		tsfp          int64
		desired       uint32
		want          uint32
		wantTSTP      int64
		wantTSFPAfter int64
	}{
		{"nothing acknowledged: MCLT", 0, 7200, 600, now + 7200 + 300, 0},
		{"acknowledged in the past: MCLT", now - 5, 7200, 600, now + 7200 + 300, now - 5},
		{"short leases are not capped", 0, 300, 300, now + 300 + 150, 0},
		{"exactly MCLT", 0, 600, 600, now + 600 + 300, 0},
		{"acknowledged far enough: full time", now + 9000, 7200, 7200, now + 7200 + 3600, now + 9000},
		{"acknowledged a little: MCLT beyond it", now + 1000, 7200, 1600, now + 7200 + 800, now + 1000},
		// A shorter grant lowers tstp below what the partner holds; tsfp
		// follows so that no older, longer promise is relied on.
		{"shrinking lowers tsfp", now + 9000, 700, 700, now + 700 + 350, now + 700 + 350},
		{"infinite", 0, math.MaxUint32, 600, maxTime, 0},
	}
	for _, c := range cases {
		l := lease.Lease{TSFP: c.tsfp}
		got := n.GrantTime(now, p, &l, c.desired)
		if got != c.want || l.TSTP != c.wantTSTP || l.TSFP != c.wantTSFPAfter {
			t.Errorf("%s: granted %d tstp %d tsfp %d; want %d, %d, %d", c.name, got, l.TSTP-now, l.TSFP-now, c.want, c.wantTSTP-now, c.wantTSFPAfter-now)
		}
		// I2: never beyond MCLT past what the partner acknowledged.
		if limit := max(now, c.tsfp) + 600; c.desired > 600 && now+int64(got) > limit {
			t.Errorf("%s: grant ends %d s past the acknowledged time + MCLT", c.name, now+int64(got)-limit)
		}
	}
}

// TestMayReuse is ISC's lease_mine_to_reallocate (fw §11).
func TestMayReuse(t *testing.T) {
	const mclt = 600
	type tc struct {
		name  string
		role  config.Role
		me    wire.ServerState
		l     lease.Lease
		stos  int64 // of the local state, relative to now
		after int64 // now, relative to testNow
		want  bool
	}
	cases := []tc{
		{"primary's FREE", config.Primary, stNormal, lease.Lease{State: lease.Free}, -1000, 0, true},
		{"secondary's BACKUP", config.Secondary, stNormal, lease.Lease{State: lease.Backup}, -1000, 0, true},
		{"primary never takes BACKUP in normal", config.Primary, stNormal, lease.Lease{State: lease.Backup}, -1000, 0, false},
		{"secondary never takes FREE in comm-int", config.Secondary, stCommInterrupted, lease.Lease{State: lease.Free}, -1000, 0, false},
		{"no service in recover", config.Primary, stRecover, lease.Lease{State: lease.Free}, -1000, 0, false},
		{"active is never reused", config.Primary, stPartnerDown, lease.Lease{State: lease.Active}, -100000, 0, false},
		{"abandoned is the primary's", config.Primary, stNormal, lease.Lease{State: lease.Abandoned}, -1000, 0, true},
		// Partner-down: the partner's pool after STOS + MCLT.
		{"partner-down, BACKUP before STOS+MCLT", config.Primary, stPartnerDown, lease.Lease{State: lease.Backup}, -mclt + 1, 0, false},
		{"partner-down, BACKUP at STOS+MCLT", config.Primary, stPartnerDown, lease.Lease{State: lease.Backup}, -mclt, 0, false},
		{"partner-down, BACKUP after STOS+MCLT", config.Primary, stPartnerDown, lease.Lease{State: lease.Backup}, -mclt - 1, 0, true},
		{"partner-down, BACKUP acked late waits tsfp+MCLT", config.Primary, stPartnerDown, lease.Lease{State: lease.Backup, TSFP: testNow - 10}, -mclt - 100, 0, false},
		{"partner-down, secondary takes FREE after STOS+MCLT", config.Secondary, stPartnerDown, lease.Lease{State: lease.Free}, -mclt - 1, 0, true},
		// Expired / released: the rewind state, else partner-down after
		// the reclaim time.
		{"expired, never told the partner", config.Primary, stCommInterrupted, lease.Lease{State: lease.Expired, Rewind: lease.Free}, -1000, 0, true},
		{"expired, partner told, comm-int", config.Primary, stCommInterrupted, lease.Lease{State: lease.Expired, Rewind: lease.Active}, -1000, 0, false},
		{"released, partner told, partner-down before wait", config.Primary, stPartnerDown,
			lease.Lease{State: lease.Released, Rewind: lease.Active, Ends: testNow - 2000, TSTP: testNow - 50, TSFP: testNow - 50}, -mclt - 100, 0, false},
		{"released, partner told, partner-down after wait", config.Primary, stPartnerDown,
			lease.Lease{State: lease.Released, Rewind: lease.Active, Ends: testNow - 2000, TSTP: testNow - 50, TSFP: testNow - 50}, -mclt - 100, mclt, true},
		{"reset in normal", config.Primary, stNormal, lease.Lease{State: lease.Reset, Rewind: lease.Free}, -1000, 0, false},
	}
	for _, c := range cases {
		n, _, p := testNode(t, c.role, c.me, stNormal)
		n.stos = testNow + c.stos
		l := c.l
		if got := n.MayReuse(testNow+c.after, p, &l); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// TestPartnerDownWaitCoversPartnerExtensions: a lease the partner may have
// extended to MCLT beyond the potential expiry we acknowledged is not
// reclaimed before then, even when that is later than STOS+MCLT (draft
// §5.2.2; ISC would free it at STOS+MCLT).
func TestPartnerDownWaitCoversPartnerExtensions(t *testing.T) {
	n, _, p := testNode(t, config.Primary, stPartnerDown, stNormal)
	n.stos = testNow
	l := lease.Lease{State: lease.Expired, Rewind: lease.Active, Ends: testNow - 100, TSTP: testNow + 5000, TSFP: testNow + 5000}
	if at := n.reclaimTime(&l); at != testNow+5000+600 {
		t.Fatalf("reclaim at %+d, want +5600", at-testNow)
	}
	if n.MayReuse(testNow+5599, p, &l) || !n.MayReuse(testNow+5600, p, &l) {
		t.Errorf("reuse must start exactly at tstp+MCLT")
	}
}

// TestServe covers load balancing by HBA (fw §8) and service states.
func TestServe(t *testing.T) {
	// Find a client in each half of the buckets.
	var mine, theirs lease.ClientKey
	for i := 0; mine.HAddr == "" || theirs.HAddr == ""; i++ {
		k := lease.ClientKey{HType: 1, HAddr: string([]byte{2, 0, 0, 0, byte(i >> 8), byte(i)})}
		if wire.LoadBalanceBucket([]byte(k.HAddr)) < 128 {
			mine = k
		} else {
			theirs = k
		}
	}
	discover, request := dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest
	n, db, p := testNode(t, config.Primary, stNormal, stNormal)
	db.Update(ip("198.18.0.17"), func(l *lease.Lease) { l.State = lease.Backup })
	cases := []struct {
		name string
		key  lease.ClientKey
		msg  dhcpv4.MessageType
		secs uint16
		want bool
	}{
		{"primary's bucket", mine, discover, 0, true},
		{"secondary's bucket", theirs, discover, 0, false},
		{"secondary's bucket, waited past lbmax", theirs, discover, 4, true},
		{"secondary's bucket, waited exactly lbmax", theirs, discover, 3, false},
		{"requests are never load balanced", theirs, request, 0, true},
	}
	for _, c := range cases {
		if got := n.Serve(testNow, p, c.key, c.msg, c.secs); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// The secondary serves the other half.
	s, sdb, sp := testNode(t, config.Secondary, stNormal, stNormal)
	sdb.Update(ip("198.18.0.17"), func(l *lease.Lease) { l.State = lease.Backup })
	if s.Serve(testNow, sp, mine, discover, 0) || !s.Serve(testNow, sp, theirs, discover, 0) {
		t.Errorf("the secondary must serve exactly the clear buckets")
	}
	// With no free lease on the partner's side, load balancing is off.
	for a := ip("198.18.0.14"); a <= ip("198.18.0.17"); a++ {
		db.Update(a, func(l *lease.Lease) { l.State = lease.Free })
	}
	if !n.Serve(testNow, p, theirs, discover, 0) {
		t.Errorf("primary must answer when the secondary has no BACKUP lease")
	}
	// Client identifier takes precedence over chaddr.
	withID := theirs
	withID.ClientID = mine.HAddr
	db.Update(ip("198.18.0.16"), func(l *lease.Lease) { l.State = lease.Backup })
	if !n.Serve(testNow, p, withID, discover, 0) {
		t.Errorf("the client identifier must choose the bucket")
	}
	// No service states.
	for _, me := range []wire.ServerState{stStartup, stRecover, stRecoverWait, stPotentialConflict, stShutDown} {
		n.me = me
		if n.Serve(testNow, p, mine, request, 0) || n.AllocState(testNow, p) != lease.StateNone {
			t.Errorf("%s: must not serve", me)
		}
	}
	n.me = stCommInterrupted
	if !n.Serve(testNow, p, theirs, discover, 0) || n.AllocState(testNow, p) != lease.Free {
		t.Errorf("communications-interrupted serves everyone from FREE")
	}
	if s.AllocState(testNow, sp) != lease.Backup {
		t.Errorf("the secondary allocates from BACKUP")
	}
	if n.PartnerAllocState(testNow, p) != lease.StateNone {
		t.Errorf("only partner-down offers the partner's pool")
	}
	n.me = stPartnerDown
	if n.PartnerAllocState(testNow, p) != lease.Backup {
		t.Errorf("partner-down offers BACKUP to the primary")
	}
}

// TestPoolsOfOtherRelationships: the node answers like a lone server for
// pools it does not own.
func TestPoolsOfOtherRelationships(t *testing.T) {
	n, _, p := testNode(t, config.Primary, stRecover, stNormal)
	other := *p
	other.FailoverPeer = "another"
	l := lease.Lease{State: lease.Free}
	if !n.Serve(testNow, &other, lease.ClientKey{}, dhcpv4.MessageTypeDiscover, 0) ||
		n.AllocState(testNow, &other) != lease.Free || !n.MayReuse(testNow, &other, &l) ||
		n.GrantTime(testNow, &other, &l, 7200) != 7200 || n.Released(&other) != lease.Free {
		t.Errorf("a pool of another relationship got failover answers")
	}
}

func TestExpiredState(t *testing.T) {
	n, db, _ := testNode(t, config.Primary, stNormal, stNormal)
	a := ip("198.18.0.10")
	db.Update(a, func(l *lease.Lease) { l.State, l.Rewind = lease.Active, lease.Active })
	l, _ := db.Get(a)
	if got := n.ExpiredState(l); got != lease.Expired {
		t.Errorf("normal: %s, want expired", got)
	}
	db.Update(a, func(l *lease.Lease) { l.Rewind = lease.Free })
	n.me = stCommInterrupted
	if got := n.ExpiredState(l); got != lease.Free {
		t.Errorf("comm-int, never told the partner: %s, want free (rewind)", got)
	}
	n.me = stNormal
	if got := n.ExpiredState(l); got != lease.Expired {
		t.Errorf("normal, never told: %s, want expired (the update is on its way)", got)
	}
	if n.Released(db.Pools[0]) != lease.Released {
		t.Errorf("released leases must wait for the partner")
	}
}

func roleOf(primary bool) config.Role {
	if primary {
		return config.Primary
	}
	return config.Secondary
}
