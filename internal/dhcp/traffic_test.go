package dhcp

import (
	"math/rand/v2"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"testing"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// TestRandomTraffic drives the handler with well-formed but random
// traffic from a few clients (fixed seeds, so every run is the same) and
// checks the invariants of FuzzHandle after every event. Byte-level
// fuzzing rarely builds valid packets in a useful order; this reaches the
// deep states: renewals of expired leases, declines, moves between
// networks, competition for a small pool.
func TestRandomTraffic(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	addrs := []string{a(10), a(11), a(12), a(13), a(14), a(50), a(99), a(100), a(200), a(201),
		b(10), b(11), b(100), b(101), c(10), c(101), d(10), d(11), "198.18.9.9", ""}
	relays := []string{"", "", "", relayB, relayC, relayD, "198.18.0.2", "198.18.9.1"}
	macs := []byte{1, 2, 3, 4, 5, 6, macPrinter, macKnown, macInPool, macTwo}
	cids := []string{"", "", "", "\x01x", "\x01y", "\x01fixed"}
	for seed := range seeds {
		rnd := rand.New(rand.NewPCG(uint64(seed), 0x7a6e64))
		pick := func(n int) int { return rnd.IntN(n) }
		var policy Policy
		mutate := func(c *config.Config) {
			c.Subnets[0].Pools[0].Ranges = []config.Range{rng(a(10), a(13))}
		}
		if seed%2 == 1 {
			policy = &testPolicy{alloc: lease.Backup, maxGrant: 600, reuse: seed%4 == 1}
			m := mutate
			mutate = func(c *config.Config) { m(c); c.Subnets[0].Pools[0].FailoverPeer = "peer" }
		}
		fx := newFixture(t, mutate, policy)
		if policy != nil {
			setStates(lease.Backup, a(12), a(13))(t, fx.db)
			drain(fx.db)
		}
		m := &fuzzModel{t: t, fx: fx, held: make(map[uint32]heldOffer), bound: make(map[uint32]heldOffer)}
		now := int64(t0)
		for range 300 {
			now += int64([]int{0, 1, 5, 30, 61, 700, 4000}[pick(7)])
			if pick(10) == 0 {
				fx.db.Expire(now, func(l *lease.Lease) lease.BindingState { return fx.h.releasedState(mustPool(fx.db, l)) })
				fx.h.ExpireOffers(now)
				drain(fx.db)
				m.checkDB()
				continue
			}
			p := &pb{
				mt:     dhcpv4.MessageType([]uint8{1, 1, 3, 3, 3, 4, 7, 8, 0}[pick(9)]),
				mac:    macs[pick(len(macs))],
				cid:    cids[pick(len(cids))],
				giaddr: relays[pick(len(relays))],
			}
			switch pick(4) {
			case 0:
				p.reqIP = addrs[pick(len(addrs))]
			case 1:
				p.ciaddr = addrs[pick(len(addrs))]
			case 2:
				p.reqIP, p.sid = addrs[pick(len(addrs))], []string{serverA, "198.18.0.99"}[pick(2)]
			}
			if pick(3) == 0 {
				p.leaseTime = []uint32{1, 60, 5000, 0xffffffff}[pick(4)]
			}
			if pick(4) == 0 {
				p.agent = []byte{1, 1, byte(pick(3))}
			}
			if pick(8) == 0 {
				p.local = []string{"198.18.100.1/24"}
			}
			req := p.build(t)
			m.handle(now, Request{Packet: req.Packet, LocalAddrs: req.LocalAddrs})
			if t.Failed() {
				t.Fatalf("seed %d", seed)
			}
		}
	}
}
