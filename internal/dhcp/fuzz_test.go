package dhcp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// Fuzz input: a first byte choosing the setup (bit 0: pool 0 is shared
// with a failover partner and this server is the secondary), then up to
// maxFuzzSteps events. An event is a header byte
//
//	bits 0-3  the clock advances 2^n - 1 seconds first
//	bit 4     the packet arrives on an interface outside every subnet
//	bit 5     instead of a packet: the expiry timer runs
//
// followed, for a packet, by a big-endian uint16 length and the packet.
const maxFuzzSteps = 16

// fuzzEvent frames one packet for the fuzz input format.
func fuzzEvent(hdr byte, pkt []byte) []byte {
	out := []byte{hdr, byte(len(pkt) >> 8), byte(len(pkt))}
	return append(out, pkt...)
}

func fuzzSeed(t testing.TB, setup byte, reqs ...*pb) []byte {
	in := []byte{setup}
	for _, r := range reqs {
		in = append(in, fuzzEvent(3, r.build(t).Packet.ToBytes())...)
	}
	return in
}

func FuzzHandle(f *testing.F) {
	seedT := f
	for _, setup := range []byte{0, 1} {
		f.Add(fuzzSeed(seedT, setup, disc(1), sel(1, a(10)), renew(1, a(10)), &pb{mt: releaseMsg, mac: 1, ciaddr: a(10)}, disc(1)))
		f.Add(fuzzSeed(seedT, setup, relayed(withCID(disc(2), "\x01x"), relayB), relayed(withCID(sel(2, b(10)), "\x01x"), relayB),
			&pb{mt: declineMsg, mac: 2, cid: "\x01x", reqIP: b(10)}, relayed(disc(3), relayC)))
		f.Add(fuzzSeed(seedT, setup, &pb{mt: bootpMsg, mac: 4}, &pb{mt: informMsg, mac: 5, ciaddr: a(77), prl: []uint8{1, 3}},
			reboot(6, a(11)), leaseFor(sel(7, a(12)), 5), disc(macPrinter), sel(macPrinter, a(100)), relayed(reboot(9, d(10)), relayD)))
		f.Add(append(fuzzSeed(seedT, setup, leaseFor(reboot(1, a(13)), 10)), 0x2f, 0x05))
		f.Add(fuzzSeed(seedT, setup, &pb{mt: discoverMsg, mac: 1, giaddr: relayB, agent: []byte{1, 2, 3, 4}}, &pb{mt: requestMsg, mac: 2, giaddr: relayB, reqIP: b(100), agent: []byte{1, 0}}))
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		var policy Policy
		mutate := func(*config.Config) {}
		if in[0]&1 != 0 {
			policy = &testPolicy{alloc: lease.Backup, maxGrant: 600}
			mutate = func(c *config.Config) { c.Subnets[0].Pools[0].FailoverPeer = "peer" }
		}
		in = in[1:]
		fx := newFixture(t, mutate, policy)
		if policy != nil {
			setStates(lease.Backup, a(13), a(14))(t, fx.db)
			drain(fx.db)
		}
		m := &fuzzModel{t: t, fx: fx, held: make(map[uint32]heldOffer), bound: make(map[uint32]heldOffer)}
		now := int64(t0)
		for step := 0; step < maxFuzzSteps && len(in) > 0; step++ {
			hdr := in[0]
			in = in[1:]
			now += int64(1)<<(hdr&0x0f) - 1
			if hdr&0x20 != 0 {
				fx.db.Expire(now, func(l *lease.Lease) lease.BindingState { return fx.h.releasedState(mustPool(fx.db, l)) })
				fx.h.ExpireOffers(now)
				drain(fx.db)
				m.checkDB()
				continue
			}
			if len(in) < 2 {
				return
			}
			n := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			if n > len(in) {
				n = len(in)
			}
			raw := in[:n]
			in = in[n:]
			p, err := dhcpv4.FromBytes(raw)
			if err != nil {
				continue
			}
			local := []netip.Prefix{netip.MustParsePrefix(serverA + "/24")}
			if hdr&0x10 != 0 {
				local = []netip.Prefix{netip.MustParsePrefix("198.18.100.1/24")}
			}
			m.handle(now, Request{Packet: p, LocalAddrs: local})
		}
	})
}

type heldOffer struct {
	key   lease.ClientKey
	until int64
}

// fuzzModel checks the handler's answers against what must hold whatever
// the input: DB consistency, replies that encode, ACKs that match the
// DB, offers that write nothing and are not given to two clients, lease
// times within the configuration.
type fuzzModel struct {
	t    *testing.T
	fx   *fixture
	held map[uint32]heldOffer // offers the model knows to be live
	// bound are the bindings clients were told of (ACK, BOOTREPLY) and
	// have not given up: no other client may be given the address before
	// the binding ends (design invariant I1).
	bound map[uint32]heldOffer
}

// bind records that client id was given ip until ends, after checking
// nobody else holds it. A client that asks for an address without
// claiming one (ciaddr 0) uses no other address any more.
func (m *fuzzModel) bind(now int64, ip netip.Addr, id lease.ClientKey, ends int64, ciaddrSet bool) {
	k := lease.AddrToU32(ip)
	if o, ok := m.bound[k]; ok && o.key != id && o.until > now {
		m.t.Fatalf("%s given to %q while %q holds it until %d", ip, id, o.key, o.until)
	}
	if !ciaddrSet {
		m.unbind(id)
	}
	m.bound[k] = heldOffer{key: id, until: ends}
}

func (m *fuzzModel) unbind(id lease.ClientKey) {
	for ip, o := range m.bound {
		if o.key == id {
			delete(m.bound, ip)
		}
	}
}

func (m *fuzzModel) checkDB() {
	m.t.Helper()
	if err := m.fx.db.Check(); err != nil {
		m.t.Fatalf("DB inconsistent: %v", err)
	}
}

func (m *fuzzModel) handle(now int64, req Request) {
	t := m.t
	t.Helper()
	p := req.Packet
	res := m.fx.h.Handle(now, req)
	dirty := drain(m.fx.db)
	m.checkDB()

	c := m.fx.h.identify(p)
	id := c.id()
	r := res.Reply
	defer func() {
		if t.Failed() {
			t.Logf("at %d\nrequest: %s\nresult: %+v", now-t0, p.Summary(), res)
			if r != nil {
				t.Logf("reply: %s", r.Summary())
			}
		}
	}()
	if (r == nil) == (res.Drop == "") {
		t.Fatalf("reply %v with drop reason %q", r != nil, res.Drop)
	}
	if res.Durable && (r == nil || len(dirty) == 0) {
		t.Fatalf("durable result without reply or lease change (reply %v, dirty %v)", r != nil, dirty)
	}
	if r == nil {
		if len(dirty) > 0 && res.Drop != "RELEASE handled" && res.Drop != "DECLINE handled" {
			t.Fatalf("silent drop %q changed leases %v", res.Drop, dirty)
		}
		if res.Drop == "RELEASE handled" || res.Drop == "DECLINE handled" || res.Drop == "client chose another server" {
			m.forget(id)
		}
		if res.Drop == "RELEASE handled" || res.Drop == "DECLINE handled" {
			m.unbind(id)
		}
		return
	}

	// Whatever the reply, it must go on the wire.
	back, err := dhcpv4.FromBytes(r.ToBytes())
	if err != nil {
		t.Fatalf("reply does not encode: %v", err)
	}
	if back.OpCode != dhcpv4.OpcodeBootReply || back.TransactionID != p.TransactionID || !bytes.Equal(back.ClientHWAddr, p.ClientHWAddr) {
		t.Fatalf("reply header does not answer the request")
	}
	if v := p.Options.Get(dhcpv4.OptionRelayAgentInformation); v != nil && !bytes.Equal(r.Options.Get(dhcpv4.OptionRelayAgentInformation), v) {
		t.Fatalf("option 82 not echoed")
	}
	yi := addrOf(r.YourIPAddr)
	lt := r.Options.Get(dhcpv4.OptionIPAddressLeaseTime)
	if lt != nil {
		secs := binary.BigEndian.Uint32(lt)
		t1 := binary.BigEndian.Uint32(r.Options.Get(dhcpv4.OptionRenewTimeValue))
		t2 := binary.BigEndian.Uint32(r.Options.Get(dhcpv4.OptionRebindingTimeValue))
		if secs < 1 || secs > 7200 || t1 > t2 || t2 > secs {
			t.Fatalf("lease time %d, T1 %d, T2 %d", secs, t1, t2)
		}
	}

	switch r.MessageType() {
	case dhcpv4.MessageTypeOffer:
		if len(dirty) > 0 {
			t.Fatalf("OFFER wrote leases %v", dirty)
		}
		if lt == nil || !yi.IsValid() {
			t.Fatalf("OFFER without lease time or address")
		}
		l, _ := m.fx.db.Get(lease.AddrToU32(yi))
		if l != nil && l.IsFixed() {
			// A host's reservation: nobody else can be offered it.
			if c.host == nil || !slices.Contains(c.host.FixedAddresses, yi) {
				t.Fatalf("OFFER of %s reserved for a host", yi)
			}
			return
		}
		m.checkNotHeld(now, yi, id, "OFFER")
		if l != nil {
			if l.State == lease.Active && !l.Owns(c.key) && l.Ends > now {
				t.Fatalf("OFFER of %s, active for another client", yi)
			}
			m.forget(id)
			m.held[l.IP] = heldOffer{key: id, until: now + OfferHold}
		}
	case dhcpv4.MessageTypeAck:
		if !yi.IsValid() {
			// INFORM: configuration only.
			if lt != nil || res.Durable || len(dirty) > 0 {
				t.Fatalf("INFORM reply with lease time %v, durable %v, dirty %v", lt, res.Durable, dirty)
			}
			return
		}
		if lt == nil {
			t.Fatalf("ACK of %s without lease time", yi)
		}
		l, _ := m.fx.db.Get(lease.AddrToU32(yi))
		if !res.Durable {
			if c.host == nil || !slices.Contains(c.host.FixedAddresses, yi) || len(dirty) > 0 {
				t.Fatalf("non-durable ACK of %s that is not the client's reservation (dirty %v)", yi, dirty)
			}
			return
		}
		m.checkNotHeld(now, yi, id, "ACK")
		if l == nil || l.State != lease.Active || !l.Owns(c.key) || l.Ends != now+int64(binary.BigEndian.Uint32(lt)) {
			t.Fatalf("ACK of %s does not match the lease %+v", yi, l)
		}
		if !slices.Contains(dirty, yi.String()) {
			t.Fatalf("ACK of %s not written (dirty %v)", yi, dirty)
		}
		if l.IsFixed() {
			t.Fatalf("ACK binds %s, reserved for a host", yi)
		}
		if got := m.fx.db.FindClient(c.key); got != l {
			t.Fatalf("after the ACK of %s the client's index finds %v", yi, got)
		}
		m.bind(now, yi, id, l.Ends, addrOf(p.ClientIPAddr).IsValid())
		m.forget(id)
	case dhcpv4.MessageTypeNak:
		if yi.IsValid() || lt != nil || len(dirty) > 0 {
			t.Fatalf("NAK with yiaddr %v, lease time %v, dirty %v", yi, lt, dirty)
		}
		m.forget(id)
	case dhcpv4.MessageTypeNone: // BOOTREPLY
		if r.Options.Has(dhcpv4.OptionDHCPMessageType) || lt != nil {
			t.Fatalf("BOOTREPLY carries DHCP options")
		}
		if res.Durable {
			l, _ := m.fx.db.Get(lease.AddrToU32(yi))
			if l == nil || l.State != lease.Active || l.Ends != lease.Never || l.Flags&lease.FlagDynamicRange == 0 {
				t.Fatalf("BOOTP binding of %s: %+v", yi, l)
			}
			if got := m.fx.db.FindClient(c.key); got != l {
				t.Fatalf("after the BOOTP binding of %s the client's index finds %v", yi, got)
			}
			m.bind(now, yi, id, lease.Never, false)
		}
	default:
		t.Fatalf("reply type %v", r.MessageType())
	}
}

// checkNotHeld fails if ip is held for another client's offer.
func (m *fuzzModel) checkNotHeld(now int64, ip netip.Addr, id lease.ClientKey, what string) {
	if o, ok := m.held[lease.AddrToU32(ip)]; ok && o.until > now && o.key != id {
		m.t.Fatalf("%s of %s to %q while it is offered to %q until %d", what, ip, id, o.key, o.until)
	}
}

// forget drops the client's offers from the model: any later message of
// the client may release them.
func (m *fuzzModel) forget(id lease.ClientKey) {
	for ip, o := range m.held {
		if o.key == id {
			delete(m.held, ip)
		}
	}
}
