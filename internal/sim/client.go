package sim

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/tandemdhcp/tandem/internal/lease"
)

// cstate is a client's state (RFC 2131 §4.4, Figure 5).
type cstate uint8

const (
	cOff        cstate = iota // away (powered off, or waiting to start)
	cInit                     // DISCOVER sent, collecting offers
	cRequesting               // SELECTING: REQUEST for an offer sent
	cRebooting                // INIT-REBOOT: REQUEST for a known address sent
	cBound
	cRenewing  // T1 passed: REQUEST unicast to the server
	cRebinding // T2 passed: REQUEST broadcast
)

var cstateNames = [...]string{"off", "init", "requesting", "rebooting", "bound", "renewing", "rebinding"}

func (s cstate) String() string { return cstateNames[s] }

// What a bound client does next.
type plan uint8

const (
	planRenew   plan = iota // renew at T1
	planRelease             // release before T1, then go away
	planLeave               // go away silently, keep the lease
)

type offerSeen struct {
	ip  uint32
	sid netip.Addr
}

// client is one DHCP client. Times are global ms; a client has no skew
// (I1 is judged on the global clock).
type client struct {
	idx   int32
	mac   net.HardwareAddr
	cid   []byte // client identifier (option 61), or nil
	key   lease.ClientKey
	reach uint8 // bit i: server i can hear it
	// askTime is the lease time it asks for (option 51), 0 for none.
	askTime uint32

	state  cstate
	gen    uint32 // timer generation: a timer event of an older gen is stale
	timeAt int64  // when the current timer fires
	xid    uint32
	tries  int
	begin  int64 // start of the current exchange (secs field)
	offers []offerSeen
	want   uint32     // the address being requested
	wantID netip.Addr // the server chosen in SELECTING

	// The binding the client believes in: ip from holdFrom until end.
	ip       uint32
	holdFrom int64
	end      int64
	t1, t2   int64
	srvID    netip.Addr
	next     plan
	// remember is the address to ask for after coming back (INIT-REBOOT).
	remember uint32

	// lastAck is the latest DHCPACK any server sent this client for the
	// address it holds (I3).
	lastAck    ackRecord
	hasLastAck bool
}

func newClient(s *Sim, idx int32) *client {
	c := &client{idx: idx, reach: 3}
	c.mac = net.HardwareAddr{0x02, 0x00, byte(s.rng.IntN(256)), byte(idx >> 16), byte(idx >> 8), byte(idx)}
	c.key = lease.ClientKey{HType: 1, HAddr: string(c.mac)}
	if s.rng.IntN(3) == 0 {
		c.cid = append([]byte{1}, c.mac...)
		c.key.ClientID = string(c.cid)
	}
	if s.rng.IntN(4) == 0 {
		c.askTime = [...]uint32{30, s.opts.LeaseTime / 2, 4 * s.opts.LeaseTime, 86400}[s.rng.IntN(4)]
	}
	return c
}

// awaits reports whether r answers the client's current REQUEST.
func (c *client) awaits(r *dhcpv4.DHCPv4) bool {
	switch c.state {
	case cRequesting, cRebooting, cRenewing, cRebinding:
	default:
		return false
	}
	x := r.TransactionID
	return uint32(x[0])<<24|uint32(x[1])<<16|uint32(x[2])<<8|uint32(x[3]) == c.xid
}

// sleep arms the client's timer after ms.
func (c *client) sleep(s *Sim, ms int64) { c.wakeAt(s, s.now+ms) }

// retry arms a retransmission or lease timer; manual clients have none.
func (c *client) retry(s *Sim, at int64) {
	if s.opts.Manual {
		c.gen++ // whatever was armed is void
		return
	}
	c.wakeAt(s, at)
}

func (c *client) wakeAt(s *Sim, at int64) {
	c.gen++
	c.timeAt = at
	s.schedule(event{at: at, kind: evClientTimer, cl: c.idx, srv: -1, gen: c.gen})
}

func (c *client) newXID(s *Sim) { c.xid = s.rng.Uint32() }

// packet builds a request of type mt with the client's identity.
func (c *client) packet(s *Sim, mt dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	secs := (s.now - c.begin) / 1000
	if secs > 65535 {
		secs = 65535
	}
	p := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        iana.HWTypeEthernet,
		TransactionID: dhcpv4.TransactionID{byte(c.xid >> 24), byte(c.xid >> 16), byte(c.xid >> 8), byte(c.xid)},
		NumSeconds:    uint16(secs),
		ClientHWAddr:  c.mac,
		Options:       dhcpv4.Options{53: {byte(mt)}},
	}
	if c.cid != nil {
		p.Options[61] = c.cid
	}
	if c.askTime != 0 && (mt == dhcpv4.MessageTypeDiscover || mt == dhcpv4.MessageTypeRequest) {
		p.Options[51] = u32bytes(c.askTime)
	}
	return p
}

func u32bytes(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func ipBytes(ip uint32) net.IP { return net.IP(u32bytes(ip)) }

// broadcast sends p to every running server the client can reach.
func (c *client) broadcast(s *Sim, p *dhcpv4.DHCPv4) {
	for i, sv := range s.srv {
		if c.reach&(1<<i) != 0 && sv.up {
			s.schedule(event{at: s.now + 1 + s.rng.Int64N(30), kind: evToServer, srv: int8(i), cl: c.idx, pkt: p, sent: s.now})
		}
	}
}

// unicast sends p to the server with address sid, if it is reachable.
func (c *client) unicast(s *Sim, sid netip.Addr, p *dhcpv4.DHCPv4) {
	for i, sv := range s.srv {
		if sv.addr == sid && c.reach&(1<<i) != 0 && sv.up {
			s.schedule(event{at: s.now + 1 + s.rng.Int64N(30), kind: evToServer, srv: int8(i), cl: c.idx, pkt: p, sent: s.now})
		}
	}
}

// timer is the client's timer firing in its current state.
func (c *client) timer(s *Sim) {
	s.tracef("c%d: timer in %s", c.idx, c.state)
	switch c.state {
	case cOff:
		c.begin = s.now
		if c.remember != 0 {
			c.startReboot(s)
		} else {
			c.startDiscover(s)
		}
	case cInit:
		if len(c.offers) > 0 {
			c.selectOffer(s)
			return
		}
		c.tries++
		c.sendDiscover(s)
	case cRequesting, cRebooting:
		c.tries++
		if c.tries >= 4 {
			if c.state == cRebooting && c.ip != 0 && c.end > s.now {
				// No answer: keep using the lease until it ends
				// (RFC 2131 §3.2).
				c.bound(s)
				return
			}
			c.drop(s)
			c.begin = s.now
			c.startDiscover(s)
			return
		}
		c.sendRequest(s)
	case cBound:
		switch c.next {
		case planRelease:
			c.release(s)
		case planLeave:
			c.leave(s)
		default:
			c.startRenew(s)
		}
	case cRenewing:
		if s.now >= c.t2 {
			c.startRebind(s)
			return
		}
		c.sendRenew(s)
	case cRebinding:
		if s.now >= c.end {
			s.tracef("c%d: lease on %s expires", c.idx, lease.U32ToAddr(c.ip))
			c.drop(s)
			c.begin = s.now
			c.startDiscover(s)
			return
		}
		c.sendRebind(s)
	}
}

// backoff is RFC 2131 §4.1's retransmission delay: 4 s doubling to 64 s,
// ±1 s.
func (c *client) backoff(s *Sim) int64 {
	d := int64(4000) << min(c.tries, 4)
	return d - 1000 + s.rng.Int64N(2001)
}

func (c *client) startDiscover(s *Sim) {
	c.state, c.tries, c.offers = cInit, 0, c.offers[:0]
	c.newXID(s)
	c.sendDiscover(s)
}

func (c *client) sendDiscover(s *Sim) {
	p := c.packet(s, dhcpv4.MessageTypeDiscover)
	if c.remember != 0 {
		p.Options[50] = ipBytes(c.remember)
	}
	s.tracef("c%d: DISCOVER", c.idx)
	c.broadcast(s, p)
	c.retry(s, s.now+c.backoff(s))
}

// selectOffer takes one of the offers and REQUESTs it.
func (c *client) selectOffer(s *Sim) {
	o := c.offers[s.rng.IntN(len(c.offers))]
	c.offers = c.offers[:0]
	c.state, c.tries = cRequesting, 0
	c.want, c.wantID = o.ip, o.sid
	c.asking()
	c.sendRequest(s)
}

func (c *client) sendRequest(s *Sim) {
	p := c.packet(s, dhcpv4.MessageTypeRequest)
	p.Options[50] = ipBytes(c.want)
	if c.state == cRequesting {
		b := c.wantID.As4()
		p.Options[54] = b[:]
	}
	s.tracef("c%d: REQUEST %s (%s)", c.idx, lease.U32ToAddr(c.want), c.state)
	c.broadcast(s, p)
	c.retry(s, s.now+c.backoff(s))
}

// startReboot: back from away, ask for the address it had (INIT-REBOOT).
func (c *client) startReboot(s *Sim) {
	c.state, c.tries = cRebooting, 0
	c.want = c.remember
	c.asking()
	c.newXID(s)
	c.sendRequest(s)
}

func (c *client) startRenew(s *Sim) {
	c.state = cRenewing
	c.begin = s.now
	c.newXID(s)
	c.sendRenew(s)
}

func (c *client) sendRenew(s *Sim) {
	p := c.packet(s, dhcpv4.MessageTypeRequest)
	p.ClientIPAddr = ipBytes(c.ip)
	s.tracef("c%d: RENEW %s with %s", c.idx, lease.U32ToAddr(c.ip), c.srvID)
	c.unicast(s, c.srvID, p)
	// RFC 2131 §4.4.5: wait half the time to T2, at least 60 s (here
	// 10 s, lease times being short), then retransmit.
	c.retry(s, min(c.t2, s.now+max(10_000, (c.t2-s.now)/2)))
}

func (c *client) startRebind(s *Sim) {
	c.state = cRebinding
	c.newXID(s)
	c.sendRebind(s)
}

func (c *client) sendRebind(s *Sim) {
	p := c.packet(s, dhcpv4.MessageTypeRequest)
	p.ClientIPAddr = ipBytes(c.ip)
	s.tracef("c%d: REBIND %s", c.idx, lease.U32ToAddr(c.ip))
	c.broadcast(s, p)
	c.retry(s, min(c.end, s.now+max(10_000, (c.end-s.now)/2)))
}

// release gives the address back (unicast to its server) and goes away.
func (c *client) release(s *Sim) {
	p := c.packet(s, dhcpv4.MessageTypeRelease)
	p.ClientIPAddr = ipBytes(c.ip)
	b := c.srvID.As4()
	p.Options[54] = b[:]
	s.tracef("c%d: RELEASE %s", c.idx, lease.U32ToAddr(c.ip))
	c.drop(s)
	c.forgetAck()
	c.unicast(s, c.srvID, p)
	c.remember = 0
	c.away(s)
}

// leave goes away silently, still believing in its lease.
func (c *client) leave(s *Sim) {
	s.tracef("c%d: leaves holding %s", c.idx, lease.U32ToAddr(c.ip))
	c.remember = c.ip
	c.away(s)
}

func (c *client) away(s *Sim) {
	c.state = cOff
	mean := int64(s.opts.LeaseTime) * 1000
	c.retry(s, s.now+1000+s.rng.Int64N(2*mean))
}

// drop stops believing in the current binding.
func (c *client) drop(s *Sim) {
	if c.ip == 0 {
		return
	}
	s.unhold(c)
	c.ip = 0
}

func (c *client) forgetAck() { c.hasLastAck = false }

// asking: a REQUEST for another address makes the servers release the
// one the client held (ISC find_lease), so its last ACK no longer binds
// them (I3).
func (c *client) asking() {
	if c.hasLastAck && c.lastAck.ip != c.want {
		c.forgetAck()
	}
}

// bound enters BOUND and plans what comes next.
func (c *client) bound(s *Sim) {
	c.state = cBound
	c.next = planRenew
	at := c.t1
	switch r := s.rng.IntN(100); {
	case r < 3:
		c.next = planRelease
	case r < 6:
		c.next = planLeave
	}
	if c.next != planRenew && c.t1 > s.now {
		at = s.now + s.rng.Int64N(c.t1-s.now)
	}
	c.retry(s, max(at, s.now))
}

// receive handles a server's reply.
func (c *client) receive(s *Sim, from int, r *dhcpv4.DHCPv4, sent int64, rec *ackRecord) {
	x := r.TransactionID
	if uint32(x[0])<<24|uint32(x[1])<<16|uint32(x[2])<<8|uint32(x[3]) != c.xid {
		return
	}
	yi, _ := netip.AddrFromSlice(r.YourIPAddr.To4())
	sid, _ := netip.AddrFromSlice(r.ServerIdentifier().To4())
	switch r.MessageType() {
	case dhcpv4.MessageTypeOffer:
		if c.state != cInit || !yi.IsValid() || !sid.IsValid() {
			return
		}
		if len(c.offers) == 0 {
			// Wait a little for more offers, then choose.
			c.sleep(s, 100+s.rng.Int64N(900))
		}
		c.offers = append(c.offers, offerSeen{ip: lease.AddrToU32(yi), sid: sid})
	case dhcpv4.MessageTypeAck:
		switch c.state {
		case cRequesting, cRebooting, cRenewing, cRebinding:
		default:
			return
		}
		ip := lease.AddrToU32(yi)
		if c.state == cRenewing || c.state == cRebinding {
			if ip != c.ip {
				return
			}
		} else if ip != c.want {
			return
		}
		c.ack(s, from, ip, sid, r, sent)
		if c.ip == ip && rec != nil {
			c.lastAck, c.hasLastAck = *rec, true
		}
	case dhcpv4.MessageTypeNak:
		switch c.state {
		case cRequesting, cRebooting, cRenewing, cRebinding:
		default:
			return
		}
		s.tracef("c%d: NAK from %s", c.idx, s.srv[from].tag)
		c.drop(s)
		c.forgetAck()
		c.remember = 0
		c.state = cOff
		c.retry(s, s.now+s.rng.Int64N(2000))
	}
}

// ack takes a DHCPACK: the client believes in ip from now until the lease
// time has run from the (whole second of the) time it sent the REQUEST
// this ACK answers (RFC 2131 §4.4.1; the server counted from when the
// request arrived, later).
func (c *client) ack(s *Sim, from int, ip uint32, sid netip.Addr, r *dhcpv4.DHCPv4, sent int64) {
	lt := optU32(r, 51)
	if lt == 0 {
		s.fail("SIM", "c%d: DHCPACK from %s without a lease time", c.idx, s.srv[from].tag)
		return
	}
	t1, t2 := optU32(r, 58), optU32(r, 59)
	if t1 == 0 {
		t1 = lt / 2
	}
	if t2 == 0 {
		t2 = lt * 7 / 8
	}
	base := sent / 1000 * 1000
	end := base + int64(lt)*1000
	if end <= s.now {
		// Ran out in transit.
		c.drop(s)
		c.state = cOff
		c.retry(s, s.now)
		return
	}
	if c.ip != ip || c.end <= c.holdFrom || c.end <= s.now {
		c.drop(s)
		c.holdFrom = s.now
	}
	c.ip, c.end = ip, end
	c.t1, c.t2 = base+int64(t1)*1000, base+int64(t2)*1000
	c.srvID, c.remember = sid, ip
	s.tracef("c%d: ACK %s from %s for %ds (holds since %s, until %s)", c.idx, lease.U32ToAddr(ip), s.srv[from].tag, lt, fmtMS(c.holdFrom-Epoch*1000), fmtMS(end-Epoch*1000))
	s.hold(c)
	if s.violation != nil {
		return
	}
	if (c.state == cRequesting || c.state == cRebooting) && !s.opts.Manual && s.rng.IntN(100) == 0 {
		c.decline(s)
		return
	}
	c.bound(s)
}

// decline: the address is in use (an ARP probe answered), so the client
// declines it and starts over after 10 s (RFC 2131 §4.4.1).
func (c *client) decline(s *Sim) {
	p := c.packet(s, dhcpv4.MessageTypeDecline)
	p.Options[50] = ipBytes(c.ip)
	b := c.srvID.As4()
	p.Options[54] = b[:]
	s.tracef("c%d: DECLINE %s", c.idx, lease.U32ToAddr(c.ip))
	c.drop(s)
	c.forgetAck()
	c.remember = 0
	c.broadcast(s, p)
	c.state = cOff
	c.sleep(s, 10_000)
}

func optU32(r *dhcpv4.DHCPv4, code uint8) uint32 {
	b := r.Options[code]
	if len(b) != 4 {
		return 0
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// describePacket is a one-line summary of a client packet for traces.
func describePacket(p *dhcpv4.DHCPv4) string {
	s := p.MessageType().String()
	if a := p.RequestedIPAddress(); a != nil {
		s += " req=" + a.String()
	}
	if p.ClientIPAddr != nil && !p.ClientIPAddr.IsUnspecified() {
		s += " ciaddr=" + p.ClientIPAddr.String()
	}
	if a := p.ServerIdentifier(); a != nil {
		s += " sid=" + a.String()
	}
	return s + fmt.Sprintf(" secs=%d", p.NumSeconds)
}

// Commands for scripted runs (Options.Manual). Each starts one exchange
// now; the client then answers offers and takes ACKs and NAKs, nothing
// more.

// Acquire: the client starts from INIT (DISCOVER, then REQUEST an offer).
func (s *Sim) Acquire(i int) {
	c := s.clients[i]
	c.drop(s)
	c.remember = 0
	c.begin = s.now
	c.startDiscover(s)
}

// Renew: a bound client renews with its server (unicast, RENEWING).
func (s *Sim) Renew(i int) {
	c := s.clients[i]
	if c.ip == 0 {
		return
	}
	c.startRenew(s)
}

// Rebind: a bound client broadcasts its renewal (REBINDING).
func (s *Sim) Rebind(i int) {
	c := s.clients[i]
	if c.ip == 0 {
		return
	}
	c.begin = s.now
	c.startRebind(s)
}

// Reboot: the client asks for addr (INIT-REBOOT), as after a reboot; 0
// asks for the address it remembers.
func (s *Sim) Reboot(i int, addr uint32) {
	c := s.clients[i]
	if addr != 0 {
		if c.ip != addr {
			c.drop(s)
		}
		c.remember = addr
	}
	if c.remember == 0 {
		return
	}
	c.begin = s.now
	c.startReboot(s)
}

// Release: the client gives its address back.
func (s *Sim) Release(i int) {
	c := s.clients[i]
	if c.ip == 0 {
		return
	}
	c.release(s)
}

// Reach sets which servers client i can reach (bit 0 the primary, bit 1
// the secondary).
func (s *Sim) Reach(i int, mask uint8) { s.clients[i].reach = mask }

// Decline: the client declines its address (as if an ARP probe found it
// in use).
func (s *Sim) Decline(i int) {
	c := s.clients[i]
	if c.ip == 0 {
		return
	}
	c.decline(s)
}
