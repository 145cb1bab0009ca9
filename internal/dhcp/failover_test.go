package dhcp

import (
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// testPolicy is a failover policy with fixed answers, to see that the
// handler asks it and obeys.
type testPolicy struct {
	alloc  lease.BindingState
	refuse byte // last chaddr byte of the client load-balanced to the peer
	// noService models a failover state without service (startup,
	// recover, …): nothing is answered.
	noService bool
	// partner is the partner's free state this server may take over
	// (partner-down); StateNone otherwise.
	partner  lease.BindingState
	reuse    bool
	maxGrant uint32
}

// Serve follows the failover contract: load balancing applies to
// DISCOVERs only (fw §8); a state without service refuses everything.
func (p *testPolicy) Serve(now int64, _ *lease.Pool, k lease.ClientKey, mt dhcpv4.MessageType, _ uint16) bool {
	if p.noService {
		return false
	}
	if mt != dhcpv4.MessageTypeDiscover {
		return true
	}
	return p.refuse == 0 || k.HAddr == "" || k.HAddr[len(k.HAddr)-1] != p.refuse
}
func (p *testPolicy) AllocState(int64, *lease.Pool) lease.BindingState { return p.alloc }
func (p *testPolicy) MayReuse(int64, *lease.Pool, *lease.Lease) bool   { return p.reuse }
func (p *testPolicy) Released(*lease.Pool) lease.BindingState          { return lease.Released }
func (p *testPolicy) PartnerAllocState(int64, *lease.Pool) lease.BindingState {
	return p.partner
}

// GrantTime records what it would tell the peer, as a real policy does.
func (p *testPolicy) GrantTime(now int64, _ *lease.Pool, l *lease.Lease, desired uint32) uint32 {
	l.TSTP = now + int64(desired)
	return min(desired, p.maxGrant)
}

func failoverPool0(lo, hi string) func(*config.Config) {
	return func(c *config.Config) {
		onlyPools(lo, hi, 0)(c)
		c.Subnets[0].Pools[0].FailoverPeer = "peer"
	}
}

func setStates(s lease.BindingState, addrs ...string) func(*testing.T, *lease.DB) {
	return func(t *testing.T, db *lease.DB) {
		for _, ad := range addrs {
			if _, err := db.Update(lease.AddrToU32(mustAddr(ad)), func(l *lease.Lease) { l.State = s }); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestFailoverPolicy(t *testing.T) {
	lt600 := map[uint8]string{
		1: "255.255.255.0", 3: serverA, 6: "198.18.0.53", 15: `"example.test"`,
		51: "600", 53: "OFFER", 54: serverA, 58: "300", 59: "525",
	}
	tests := []scenario{
		{
			name:   "secondary: allocates backup leases, leaves free ones to the primary, MCLT caps",
			cfg:    failoverPool0(a(10), a(14)),
			policy: &testPolicy{alloc: lease.Backup, maxGrant: 600},
			setup:  setStates(lease.Backup, a(13), a(14)),
			steps: []step{
				// The offer must not touch the lease: TSTP stays unset.
				{at: 0, req: disc(1), want: outcome{Type: "OFFER", YIAddr: a(13), Options: lt600}},
				{at: 1, req: sel(1, a(13)), want: outcome{Type: "ACK", YIAddr: a(13), Durable: true, Dirty: []string{a(13)}}},
				{at: 2, req: reboot(2, a(10)), want: dropped("lease belongs to the failover partner")},
				{at: 2, req: disc(2), want: offered(a(14))},
				{at: 3, req: &pb{mt: releaseMsg, mac: 1, ciaddr: a(13)}, want: outcome{Drop: "RELEASE handled", Dirty: []string{a(13)}}},
				{at: 4, req: disc(3), want: dropped("no free leases")},
				{at: 5, req: reboot(3, a(13)), want: dropped("lease belongs to the failover partner")},
			},
			leases: map[string]leaseView{
				a(13): {State: "released", Client: hw(1), Starts: 1, Ends: 3, TSTP: 1 + 3600},
				a(14): {State: "backup"},
			},
			counts: map[int]map[lease.BindingState]int{0: {lease.Free: 3, lease.Backup: 1, lease.Released: 1}},
		},
		{
			name:   "load balancing: DISCOVER left to the peer, REQUEST answered",
			cfg:    failoverPool0(a(10), a(11)),
			policy: &testPolicy{alloc: lease.Free, refuse: 2, maxGrant: 3600},
			steps: []step{
				{at: 0, req: disc(2), want: dropped("load balanced to peer")},
				{at: 0, req: reboot(2, a(10)), want: ack(a(10))},
				{at: 1, req: disc(2), want: dropped("load balanced to peer")},
				{at: 2, req: renew(2, a(10)), want: outcome{Type: "ACK", YIAddr: a(10), CIAddr: a(10), Durable: true, Dirty: []string{a(10)}}},
				{at: 3, req: disc(1), want: offered(a(11))},
			},
		},
		{
			name:   "partner-down: the partner's free leases only once the policy allows their reuse",
			cfg:    failoverPool0(a(10), a(11)),
			policy: &testPolicy{alloc: lease.Free, partner: lease.Backup, reuse: false, maxGrant: 3600},
			setup:  setStates(lease.Backup, a(10), a(11)),
			steps: []step{
				{at: 0, req: disc(1), want: dropped("no free leases")},
			},
		},
		{
			name:   "partner-down after MCLT: the partner's free leases are allocated",
			cfg:    failoverPool0(a(10), a(11)),
			policy: &testPolicy{alloc: lease.Free, partner: lease.Backup, reuse: true, maxGrant: 3600},
			setup:  setStates(lease.Backup, a(10), a(11)),
			steps: []step{
				{at: 0, req: disc(1), want: offered(a(10))},
				{at: 0, req: disc(2), want: offered(a(11))},
			},
		},
		{
			name:   "no service (e.g. recover): renewals and reboots get no answer at all",
			cfg:    failoverPool0(a(10), a(11)),
			policy: &testPolicy{alloc: lease.Free, noService: true, maxGrant: 3600},
			steps: []step{
				{at: 0, req: reboot(2, a(10)), want: dropped("failover state gives no service")},
				{at: 1, req: renew(2, a(10)), want: dropped("failover state gives no service")},
			},
		},
		{
			name:   "abandoned leases: not without the policy's consent",
			cfg:    failoverPool0(a(10), a(10)),
			policy: &testPolicy{alloc: lease.Free, maxGrant: 3600},
			setup:  setStates(lease.Abandoned, a(10)),
			steps: []step{
				{req: disc(1), want: dropped("no free leases")},
				{req: reboot(1, a(10)), want: dropped("lease belongs to the failover partner")},
			},
		},
		{
			name:   "abandoned leases: last resort with consent",
			cfg:    failoverPool0(a(10), a(10)),
			policy: &testPolicy{alloc: lease.Free, reuse: true, maxGrant: 3600},
			setup:  setStates(lease.Abandoned, a(10)),
			steps: []step{
				{req: disc(1), want: offered(a(10))},
				{req: sel(1, a(10)), want: ack(a(10))},
			},
		},
		{
			name:   "a lease reset by the administrator is NAKed",
			cfg:    failoverPool0(a(10), a(10)),
			policy: &testPolicy{alloc: lease.Free, maxGrant: 3600},
			setup:  setStates(lease.Reset, a(10)),
			steps: []step{
				{req: reboot(1, a(10)), want: nak("address reset by administrator")},
			},
		},
	}
	for _, sc := range tests {
		t.Run(sc.name, func(t *testing.T) { runScenario(t, sc) })
	}
}
