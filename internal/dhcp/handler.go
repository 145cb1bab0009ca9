// Package dhcp decides what a DHCPv4 server answers (RFC 2131, RFC 2132):
// it takes a decoded packet, the receiving interface's addresses and now,
// consults and changes the lease database, and returns the reply. It does
// no I/O, reads no clock and draws no random numbers, so the server loop and
// the simulator run the same code.
//
// Lease changes are left marked dirty in the lease.DB; a reply whose Result
// says Durable must not leave the server before those changes are on disk.
package dhcp

import (
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// OfferHold is how long an offered address stays set aside for the client
// it was offered to (RFC 2131 §4.3.1 leaves the time to the server).
const OfferHold = 60

// AbandonTime is how long a declined address is kept out of use before it
// may be reused as a last resort (ISC's abandon-lease-time default).
const AbandonTime = 86400

// Request is one received packet with the facts about where it came in.
type Request struct {
	Packet *dhcpv4.DHCPv4
	// LocalAddrs are the IPv4 addresses (with prefix) of the interface the
	// packet arrived on; they choose the subnet of a directly attached
	// client and the server identifier.
	LocalAddrs []netip.Prefix
}

// Result is the handler's decision.
type Result struct {
	// Reply is nil when the server stays silent.
	Reply *dhcpv4.DHCPv4
	// Durable replies (ACKs) may be sent only once the lease changes made
	// while handling this request are on stable storage.
	Durable bool
	// Drop names why nothing was sent, for counters and debug logs.
	Drop string
}

// Policy lets a failover relationship shape allocation. A nil Policy is a
// server with no partner: it allocates from Free and grants what the
// configuration asks.
type Policy interface {
	// Serve reports whether this server answers the client at all for the
	// pool (load balancing, service state).
	Serve(now int64, p *lease.Pool, key lease.ClientKey, msg dhcpv4.MessageType, secs uint16) bool
	// AllocState is the binding state this server allocates from in the pool
	// (Free for the primary, Backup for the secondary); StateNone = none.
	AllocState(now int64, p *lease.Pool) lease.BindingState
	// MayReuse reports whether an existing, non-active lease of the pool may
	// be given to a client by this server now.
	MayReuse(now int64, p *lease.Pool, l *lease.Lease) bool
	// GrantTime caps the lease time (the MCLT rule) and may adjust the
	// lease's failover times before it is bound.
	GrantTime(now int64, p *lease.Pool, l *lease.Lease, desired uint32) uint32
	// Released is the state a released or expired lease moves to.
	Released(p *lease.Pool) lease.BindingState
}

type network struct {
	subnets []*config.Subnet // the subnet and its shared-network siblings
}

type offer struct {
	key   lease.ClientKey
	until int64
}

// Handler answers DHCP requests for one server.
type Handler struct {
	cfg    *config.Config
	db     *lease.DB
	policy Policy
	stats  *Stats

	networks map[*config.Subnet]*network
	poolsOf  map[*config.Subnet][]*lease.Pool

	hostsByHW  map[string]*config.Host
	hostsByCID map[string]*config.Host

	offers        map[uint32]offer
	offerByClient map[lease.ClientKey]uint32
}

// BuildDB makes the lease database for a configuration: one lease.Pool per
// configured pool, tagged with its *config.Pool and *config.Subnet.
func BuildDB(cfg *config.Config) (*lease.DB, error) {
	var specs []lease.PoolSpec
	for _, s := range cfg.Subnets {
		for _, p := range s.Pools {
			spec := lease.PoolSpec{Subnet: s.Prefix, FailoverPeer: p.FailoverPeer, Tag: PoolTag{Subnet: s, Pool: p}}
			for _, r := range p.Ranges {
				spec.Ranges = append(spec.Ranges, lease.PoolRange{Start: r.Start, End: r.End, DynamicBootp: r.DynamicBootp})
			}
			specs = append(specs, spec)
		}
	}
	db, err := lease.NewDB(specs)
	if err != nil {
		return nil, err
	}
	for _, h := range cfg.Hosts {
		for _, a := range h.FixedAddresses {
			db.MarkFixed(lease.AddrToU32(a))
		}
	}
	return db, nil
}

// PoolTag is the Tag of every lease.Pool built by BuildDB.
type PoolTag struct {
	Subnet *config.Subnet
	Pool   *config.Pool
}

// NewHandler returns a handler over db, which must come from BuildDB(cfg).
// policy may be nil (no failover).
func NewHandler(cfg *config.Config, db *lease.DB, policy Policy, stats *Stats) *Handler {
	if stats == nil {
		stats = &Stats{}
	}
	h := &Handler{
		cfg: cfg, db: db, policy: policy, stats: stats,
		networks:      make(map[*config.Subnet]*network),
		poolsOf:       make(map[*config.Subnet][]*lease.Pool),
		hostsByHW:     make(map[string]*config.Host),
		hostsByCID:    make(map[string]*config.Host),
		offers:        make(map[uint32]offer),
		offerByClient: make(map[lease.ClientKey]uint32),
	}
	shared := make(map[string]*network)
	for _, s := range cfg.Subnets {
		if s.SharedNetwork == "" {
			h.networks[s] = &network{subnets: []*config.Subnet{s}}
			continue
		}
		n := shared[s.SharedNetwork]
		if n == nil {
			n = &network{}
			shared[s.SharedNetwork] = n
		}
		n.subnets = append(n.subnets, s)
		h.networks[s] = n
	}
	for _, p := range db.Pools {
		t := p.Tag.(PoolTag)
		h.poolsOf[t.Subnet] = append(h.poolsOf[t.Subnet], p)
	}
	for _, host := range cfg.Hosts {
		if host.ClientID != nil {
			h.hostsByCID[string(host.ClientID)] = host
		}
		if len(host.HardwareAddr) > 0 {
			h.hostsByHW[string(append([]byte{host.HardwareType}, host.HardwareAddr...))] = host
		}
	}
	return h
}

// Stats returns the handler's counters.
func (h *Handler) Stats() *Stats { return h.stats }

// client is what the handler knows of the sender of a request.
type client struct {
	key  lease.ClientKey
	host *config.Host
}

func (h *Handler) identify(p *dhcpv4.DHCPv4) client {
	var c client
	if cid := p.Options.Get(dhcpv4.OptionClientIdentifier); len(cid) > 0 {
		c.key.ClientID = string(cid)
	}
	c.key.HType = uint8(p.HWType)
	hw := p.ClientHWAddr
	if len(hw) > lease.MaxHardwareLen {
		hw = hw[:lease.MaxHardwareLen]
	}
	c.key.HAddr = string(hw)
	if c.key.ClientID != "" {
		c.host = h.hostsByCID[c.key.ClientID]
	}
	if c.host == nil && len(hw) > 0 {
		c.host = h.hostsByHW[string(append([]byte{c.key.HType}, hw...))]
	}
	return c
}

// Handle decides the answer to one request.
func (h *Handler) Handle(now int64, req Request) Result {
	p := req.Packet
	if p.OpCode != dhcpv4.OpcodeBootRequest {
		return h.drop("not a BOOTREQUEST")
	}
	if len(p.ClientHWAddr) == 0 && len(p.Options.Get(dhcpv4.OptionClientIdentifier)) == 0 {
		return h.drop("no client identity")
	}
	mt := p.MessageType()
	h.stats.countReceived(mt)
	subnet := h.selectSubnet(p, req.LocalAddrs)
	c := h.identify(p)
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		return h.discover(now, req, subnet, c)
	case dhcpv4.MessageTypeRequest:
		return h.request(now, req, subnet, c)
	case dhcpv4.MessageTypeRelease:
		return h.release(now, p, c)
	case dhcpv4.MessageTypeDecline:
		return h.decline(now, p, c)
	case dhcpv4.MessageTypeInform:
		return h.inform(req, subnet)
	case dhcpv4.MessageTypeNone:
		return h.bootp(now, req, subnet, c)
	}
	return h.drop("message type not for a server")
}

func (h *Handler) drop(reason string) Result {
	h.stats.countDrop(reason)
	return Result{Drop: reason}
}

// selectSubnet finds the subnet a client is on: the relay's giaddr names
// it (RFC 2131 §4.3.1), else the receiving interface's address does.
func (h *Handler) selectSubnet(p *dhcpv4.DHCPv4, local []netip.Prefix) *config.Subnet {
	if gi, ok := netip.AddrFromSlice(p.GatewayIPAddr.To4()); ok && !gi.IsUnspecified() {
		return h.subnetOf(gi)
	}
	for _, l := range local {
		if s := h.subnetOf(l.Addr()); s != nil {
			return s
		}
	}
	return nil
}

func (h *Handler) subnetOf(a netip.Addr) *config.Subnet {
	var best *config.Subnet
	for _, s := range h.cfg.Subnets {
		if s.Prefix.Contains(a) && (best == nil || s.Prefix.Bits() > best.Prefix.Bits()) {
			best = s
		}
	}
	return best
}

// onNetwork reports whether addr belongs to the client's network (its
// subnet or a shared-network sibling), returning that subnet.
func (h *Handler) onNetwork(subnet *config.Subnet, addr netip.Addr) *config.Subnet {
	if subnet == nil {
		return nil
	}
	for _, s := range h.networks[subnet].subnets {
		if s.Prefix.Contains(addr) {
			return s
		}
	}
	return nil
}

// fixedAddress returns the client's reserved address on its network.
func (h *Handler) fixedAddress(subnet *config.Subnet, c client) (netip.Addr, *config.Subnet) {
	if c.host == nil {
		return netip.Addr{}, nil
	}
	for _, a := range c.host.FixedAddresses {
		if s := h.onNetwork(subnet, a); s != nil {
			return a, s
		}
	}
	return netip.Addr{}, nil
}

// poolAllows applies the pool's allow/deny lists.
func poolAllows(p *lease.Pool, c client, bootp bool) bool {
	prm := &p.Tag.(PoolTag).Pool.Params
	if c.host == nil && !prm.AllowUnknownClients {
		return false
	}
	if bootp && (!prm.AllowBootp || !prm.AllowDynamicBootp) {
		return false
	}
	return true
}

func (h *Handler) allocState(now int64, p *lease.Pool) lease.BindingState {
	if h.policy == nil || p.FailoverPeer == "" {
		return lease.Free
	}
	return h.policy.AllocState(now, p)
}

func (h *Handler) releasedState(p *lease.Pool) lease.BindingState {
	if h.policy == nil || p.FailoverPeer == "" {
		return lease.Free
	}
	return h.policy.Released(p)
}

func (h *Handler) serves(now int64, p *lease.Pool, c client, mt dhcpv4.MessageType, secs uint16) bool {
	if h.policy == nil || p.FailoverPeer == "" {
		return true
	}
	return h.policy.Serve(now, p, c.key, mt, secs)
}

// usable reports whether this server may give lease l (not active for
// another client) to client c now.
func (h *Handler) usable(now int64, p *lease.Pool, l *lease.Lease, c client) bool {
	if l.IsFixed() {
		return false
	}
	if o, ok := h.offers[l.IP]; ok && o.until > now && o.key != c.key {
		return false
	}
	switch l.State {
	case lease.Active:
		return l.Owns(c.key) && l.Ends > now
	case lease.Abandoned:
		return false
	}
	if l.State == h.allocState(now, p) {
		return true
	}
	if h.policy == nil || p.FailoverPeer == "" {
		return l.State == lease.Free
	}
	return h.policy.MayReuse(now, p, l)
}

// findLease picks the address for a client on its network: its current
// or previous lease, else the address it asks for, else a new one
// (RFC 2131 §4.3.1).
func (h *Handler) findLease(now int64, subnet *config.Subnet, c client, requested netip.Addr, msg dhcpv4.MessageType, secs uint16) (*lease.Lease, *lease.Pool) {
	if ip, ok := h.offerByClient[c.key]; ok {
		if o := h.offers[ip]; o.until > now {
			if l, p := h.db.Get(ip); l != nil && h.onNetwork(subnet, l.Addr()) != nil && h.usable(now, p, l, c) {
				return l, p
			}
		}
	}
	if l := h.db.FindClient(c.key); l != nil {
		_, p := h.db.Get(l.IP)
		if h.onNetwork(subnet, l.Addr()) != nil && poolAllows(p, c, false) && h.usable(now, p, l, c) {
			return l, p
		}
	}
	if requested.IsValid() && h.onNetwork(subnet, requested) != nil {
		if l, p := h.db.Get(lease.AddrToU32(requested)); l != nil && poolAllows(p, c, false) &&
			h.usable(now, p, l, c) && h.serves(now, p, c, msg, secs) {
			return l, p
		}
	}
	return h.allocate(now, subnet, c, msg, secs, false)
}

func (h *Handler) allocate(now int64, subnet *config.Subnet, c client, msg dhcpv4.MessageType, secs uint16, bootp bool) (*lease.Lease, *lease.Pool) {
	notOffered := func(l *lease.Lease) bool {
		o, ok := h.offers[l.IP]
		return !ok || o.until <= now || o.key == c.key
	}
	for _, last := range []bool{false, true} {
		for _, s := range h.networks[subnet].subnets {
			for _, p := range h.poolsOf[s] {
				if !poolAllows(p, c, bootp) || !h.serves(now, p, c, msg, secs) {
					continue
				}
				st := h.allocState(now, p)
				if last {
					// ISC reuses abandoned addresses only when nothing else is left.
					st = lease.Abandoned
				}
				if st == lease.StateNone {
					continue
				}
				var l *lease.Lease
				if bootp {
					l = h.db.Allocate(p, st, func(l *lease.Lease) bool {
						return l.Flags&lease.FlagDynamicRange != 0 && notOffered(l)
					})
				} else {
					l = h.db.Allocate(p, st, notOffered)
				}
				if l != nil {
					return l, p
				}
			}
		}
	}
	return nil, nil
}

func (h *Handler) leaseTime(prm *config.Params, p *dhcpv4.DHCPv4) uint32 {
	t := prm.DefaultLeaseTime
	if b := p.Options.Get(dhcpv4.OptionIPAddressLeaseTime); len(b) == 4 {
		t = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	if prm.MaxLeaseTime > 0 && t > prm.MaxLeaseTime {
		t = prm.MaxLeaseTime
	}
	if t < prm.MinLeaseTime {
		t = prm.MinLeaseTime
	}
	if t == 0 {
		t = 1
	}
	return t
}

func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok {
		return netip.Addr{}
	}
	return a
}

func (h *Handler) discover(now int64, req Request, subnet *config.Subnet, c client) Result {
	p := req.Packet
	if subnet == nil {
		return h.drop("no subnet for client")
	}
	if a, s := h.fixedAddress(subnet, c); a.IsValid() {
		r := h.reply(p, dhcpv4.MessageTypeOffer, s, req.LocalAddrs, &s.Params)
		r.YourIPAddr = net.IP(a.AsSlice())
		setLeaseTime(r, h.leaseTime(&c.host.Params, p))
		h.addOptions(r, p, s, &c.host.Params)
		return Result{Reply: r}
	}
	l, pool := h.findLease(now, subnet, c, addrOf(p.RequestedIPAddress()), dhcpv4.MessageTypeDiscover, p.NumSeconds)
	if l == nil {
		return h.drop("no free leases")
	}
	if !h.serves(now, pool, c, dhcpv4.MessageTypeDiscover, p.NumSeconds) {
		return h.drop("load balanced to peer")
	}
	tag := pool.Tag.(PoolTag)
	prm := &tag.Pool.Params
	t := h.leaseTime(prm, p)
	if h.policy != nil && pool.FailoverPeer != "" {
		t = h.policy.GrantTime(now, pool, l, t)
	}
	h.holdOffer(now, l.IP, c.key)
	r := h.reply(p, dhcpv4.MessageTypeOffer, tag.Subnet, req.LocalAddrs, prm)
	r.YourIPAddr = net.IP(l.Addr().AsSlice())
	setLeaseTime(r, t)
	h.addOptions(r, p, tag.Subnet, prm)
	return Result{Reply: r}
}

func (h *Handler) holdOffer(now int64, ip uint32, k lease.ClientKey) {
	if old, ok := h.offerByClient[k]; ok && old != ip {
		delete(h.offers, old)
	}
	h.offers[ip] = offer{key: k, until: now + OfferHold}
	h.offerByClient[k] = ip
}

func (h *Handler) forgetOffer(ip uint32, k lease.ClientKey) {
	if o, ok := h.offers[ip]; ok && o.key == k {
		delete(h.offers, ip)
	}
	if cur, ok := h.offerByClient[k]; ok && cur == ip {
		delete(h.offerByClient, k)
	}
}

// ExpireOffers forgets offers that were never taken up.
func (h *Handler) ExpireOffers(now int64) {
	for ip, o := range h.offers {
		if o.until <= now {
			delete(h.offers, ip)
			if cur, ok := h.offerByClient[o.key]; ok && cur == ip {
				delete(h.offerByClient, o.key)
			}
		}
	}
}

// request handles DHCPREQUEST in its four client states (RFC 2131 §4.3.2).
func (h *Handler) request(now int64, req Request, subnet *config.Subnet, c client) Result {
	p := req.Packet
	serverID := addrOf(p.ServerIdentifier())
	requested := addrOf(p.RequestedIPAddress())
	ciaddr := addrOf(p.ClientIPAddr)

	var addr netip.Addr
	switch {
	case serverID.IsValid():
		// SELECTING: the client answers an offer. If it chose another
		// server, our offer is free again.
		if !h.isOurServerID(serverID, subnet, req.LocalAddrs) {
			if requested.IsValid() {
				h.forgetOffer(lease.AddrToU32(requested), c.key)
			}
			return h.drop("client chose another server")
		}
		addr = requested
		if !addr.IsValid() {
			addr = ciaddr
		}
	case requested.IsValid():
		addr = requested // INIT-REBOOT
	case ciaddr.IsValid():
		addr = ciaddr // RENEWING (unicast) or REBINDING (broadcast)
	default:
		return h.drop("REQUEST without an address")
	}
	if subnet == nil && ciaddr.IsValid() {
		// A renewing client unicasts from its address, not through a relay.
		subnet = h.subnetOf(ciaddr)
	}
	if subnet == nil {
		return h.drop("no subnet for client")
	}
	onNet := h.onNetwork(subnet, addr)
	if onNet == nil {
		return h.nak(req, subnet, "requested address not on client's network")
	}
	if a, s := h.fixedAddress(subnet, c); a.IsValid() {
		if a != addr {
			return h.nak(req, subnet, "client has a reserved address")
		}
		r := h.reply(p, dhcpv4.MessageTypeAck, s, req.LocalAddrs, &s.Params)
		r.YourIPAddr = net.IP(a.AsSlice())
		setLeaseTime(r, h.leaseTime(&c.host.Params, p))
		h.addOptions(r, p, s, &c.host.Params)
		return Result{Reply: r}
	}
	l, pool := h.db.Get(lease.AddrToU32(addr))
	if l == nil {
		return h.nak(req, onNet, "requested address is not in a pool")
	}
	if !poolAllows(pool, c, false) {
		return h.nak(req, onNet, "client not permitted in pool")
	}
	if !h.usable(now, pool, l, c) {
		if l.State == lease.Active && !l.Owns(c.key) && l.Ends > now {
			return h.nak(req, onNet, "address leased to another client")
		}
		return h.nak(req, onNet, "address not available")
	}
	tag := pool.Tag.(PoolTag)
	prm := &tag.Pool.Params
	t := h.leaseTime(prm, p)
	hostname := p.HostName()
	_, _ = h.db.Update(l.IP, func(l *lease.Lease) {
		if h.policy != nil && pool.FailoverPeer != "" {
			t = h.policy.GrantTime(now, pool, l, t)
		}
		if !l.Owns(c.key) || l.State != lease.Active {
			l.Starts = now
		}
		l.State = lease.Active
		l.Next = h.releasedState(pool)
		l.Ends = now + int64(t)
		l.CLTT = now
		l.ClientID = c.key.ClientID
		l.SetHardware(c.key.HType, []byte(c.key.HAddr))
		if hostname != "" {
			l.Hostname = hostname
		}
		l.Flags &^= lease.FlagBootp
	})
	h.forgetOffer(l.IP, c.key)
	r := h.reply(p, dhcpv4.MessageTypeAck, tag.Subnet, req.LocalAddrs, prm)
	r.YourIPAddr = net.IP(addr.AsSlice())
	r.ClientIPAddr = p.ClientIPAddr
	setLeaseTime(r, t)
	h.addOptions(r, p, tag.Subnet, prm)
	return Result{Reply: r, Durable: true}
}

func (h *Handler) isOurServerID(id netip.Addr, subnet *config.Subnet, local []netip.Prefix) bool {
	if subnet != nil && subnet.Params.ServerIdentifier == id {
		return true
	}
	if h.cfg.Global.ServerIdentifier == id {
		return true
	}
	for _, l := range local {
		if l.Addr() == id {
			return true
		}
	}
	return false
}

// nak refuses a REQUEST. Only an authoritative server may say no
// (dhcpd.conf(5) "authoritative"); others stay silent.
func (h *Handler) nak(req Request, subnet *config.Subnet, why string) Result {
	prm := &h.cfg.Global
	if subnet != nil {
		prm = &subnet.Params
	}
	if !prm.Authoritative {
		return h.drop("not authoritative: " + why)
	}
	r := h.reply(req.Packet, dhcpv4.MessageTypeNak, subnet, req.LocalAddrs, prm)
	r.UpdateOption(dhcpv4.OptMessage(why))
	// RFC 2131 §4.3.2: a NAK to a relayed client is broadcast by the relay.
	if !req.Packet.GatewayIPAddr.IsUnspecified() && req.Packet.GatewayIPAddr != nil {
		r.SetBroadcast()
	}
	h.stats.countNak(why)
	return Result{Reply: r}
}

func (h *Handler) release(now int64, p *dhcpv4.DHCPv4, c client) Result {
	ip := lease.AddrToU32(addrOf(p.ClientIPAddr))
	l, pool := h.db.Get(ip)
	if l == nil || l.State != lease.Active || !l.Owns(c.key) {
		return h.drop("RELEASE of a lease the client does not hold")
	}
	next := h.releasedState(pool)
	_, _ = h.db.Update(ip, func(l *lease.Lease) {
		l.State = next
		l.Next = lease.StateNone
		l.Ends = now
		l.CLTT = now
	})
	return Result{Drop: "RELEASE handled"}
}

func (h *Handler) decline(now int64, p *dhcpv4.DHCPv4, c client) Result {
	ip := lease.AddrToU32(addrOf(p.RequestedIPAddress()))
	l, _ := h.db.Get(ip)
	if l == nil || !l.Owns(c.key) {
		return h.drop("DECLINE of a lease the client does not hold")
	}
	_, _ = h.db.Update(ip, func(l *lease.Lease) {
		l.State = lease.Abandoned
		l.Next = lease.StateNone
		l.Starts = now
		l.Ends = now + AbandonTime
		l.CLTT = now
		l.ClearClient()
	})
	h.forgetOffer(ip, c.key)
	return Result{Drop: "DECLINE handled"}
}

// inform answers DHCPINFORM with configuration only (RFC 2131 §3.4).
func (h *Handler) inform(req Request, subnet *config.Subnet) Result {
	p := req.Packet
	ciaddr := addrOf(p.ClientIPAddr)
	if s := h.subnetOf(ciaddr); s != nil && (subnet == nil || p.GatewayIPAddr.IsUnspecified()) {
		subnet = s
	}
	if subnet == nil {
		return h.drop("INFORM from unknown network")
	}
	r := h.reply(p, dhcpv4.MessageTypeAck, subnet, req.LocalAddrs, &subnet.Params)
	r.ClientIPAddr = p.ClientIPAddr
	h.addOptions(r, p, subnet, &subnet.Params)
	return Result{Reply: r}
}

// bootp answers a BOOTREQUEST (RFC 951, RFC 1534): a reserved address,
// or with "range dynamic-bootp" a lease that never ends.
func (h *Handler) bootp(now int64, req Request, subnet *config.Subnet, c client) Result {
	p := req.Packet
	if subnet == nil {
		return h.drop("no subnet for client")
	}
	if a, s := h.fixedAddress(subnet, c); a.IsValid() {
		if !c.host.Params.AllowBootp {
			return h.drop("bootp not allowed")
		}
		r := h.bootReply(p, s, a)
		h.addOptions(r, p, s, &c.host.Params)
		return Result{Reply: r}
	}
	var l *lease.Lease
	var pool *lease.Pool
	if cur := h.db.FindClient(c.key); cur != nil && cur.Flags&lease.FlagBootp != 0 && cur.State == lease.Active {
		l, pool = h.db.Get(cur.IP)
		if h.onNetwork(subnet, l.Addr()) == nil {
			l = nil
		}
	}
	if l == nil {
		l, pool = h.allocate(now, subnet, c, dhcpv4.MessageTypeNone, p.NumSeconds, true)
	}
	if l == nil {
		return h.drop("no dynamic-bootp address")
	}
	_, _ = h.db.Update(l.IP, func(l *lease.Lease) {
		l.State = lease.Active
		l.Next = lease.StateNone
		l.Starts = now
		l.Ends = lease.Never
		l.CLTT = now
		l.ClientID = ""
		l.SetHardware(c.key.HType, []byte(c.key.HAddr))
		l.Flags |= lease.FlagBootp
	})
	tag := pool.Tag.(PoolTag)
	r := h.bootReply(p, tag.Subnet, l.Addr())
	h.addOptions(r, p, tag.Subnet, &tag.Pool.Params)
	return Result{Reply: r, Durable: true}
}

func (h *Handler) bootReply(p *dhcpv4.DHCPv4, s *config.Subnet, a netip.Addr) *dhcpv4.DHCPv4 {
	r := newReply(p)
	r.YourIPAddr = net.IP(a.AsSlice())
	return r
}

func newReply(p *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	r := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        p.HWType,
		TransactionID: p.TransactionID,
		Flags:         p.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: p.GatewayIPAddr,
		ClientHWAddr:  p.ClientHWAddr,
		Options:       make(dhcpv4.Options, 8),
	}
	if r.GatewayIPAddr == nil {
		r.GatewayIPAddr = net.IPv4zero
	}
	if r.HWType == 0 {
		r.HWType = iana.HWTypeEthernet
	}
	return r
}

// reply starts a DHCP reply: message type, server identifier, and the
// options a reply must echo (relay agent information, RFC 3046 §2.2;
// client identifier, RFC 6842).
func (h *Handler) reply(p *dhcpv4.DHCPv4, mt dhcpv4.MessageType, subnet *config.Subnet, local []netip.Prefix, prm *config.Params) *dhcpv4.DHCPv4 {
	r := newReply(p)
	r.Options[uint8(dhcpv4.OptionDHCPMessageType)] = []byte{byte(mt)}
	if sid := h.serverID(subnet, local, prm); sid.IsValid() {
		b := sid.As4()
		r.Options[uint8(dhcpv4.OptionServerIdentifier)] = b[:]
	}
	if v := p.Options.Get(dhcpv4.OptionRelayAgentInformation); v != nil {
		r.Options[uint8(dhcpv4.OptionRelayAgentInformation)] = v
	}
	if v := p.Options.Get(dhcpv4.OptionClientIdentifier); v != nil {
		r.Options[uint8(dhcpv4.OptionClientIdentifier)] = v
	}
	h.stats.countSent(mt)
	return r
}

// serverID is the configured server-identifier, else the address of the
// receiving interface on the client's subnet, else its first address.
func (h *Handler) serverID(subnet *config.Subnet, local []netip.Prefix, prm *config.Params) netip.Addr {
	if prm != nil && prm.ServerIdentifier.IsValid() {
		return prm.ServerIdentifier
	}
	for _, l := range local {
		if subnet != nil && subnet.Prefix.Contains(l.Addr()) {
			return l.Addr()
		}
	}
	for _, l := range local {
		if l.Addr().Is4() {
			return l.Addr()
		}
	}
	return netip.Addr{}
}

func setLeaseTime(r *dhcpv4.DHCPv4, t uint32) {
	put := func(code dhcpv4.OptionCode, v uint32) {
		r.Options[code.Code()] = []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	}
	put(dhcpv4.OptionIPAddressLeaseTime, t)
	// RFC 2131 §4.4.5 defaults: T1 = 0.5 × lease, T2 = 0.875 × lease.
	put(dhcpv4.OptionRenewTimeValue, t/2)
	put(dhcpv4.OptionRebindingTimeValue, uint32(uint64(t)*7/8))
}

// addOptions adds the configured options: those the client asked for in
// its parameter request list, or all of them when it sent no list. The
// subnet mask is always sent (RFC 2131 §3.3 suggests it).
func (h *Handler) addOptions(r, p *dhcpv4.DHCPv4, subnet *config.Subnet, prm *config.Params) {
	prl := p.Options.Get(dhcpv4.OptionParameterRequestList)
	wanted := func(code uint8) bool {
		if prl == nil {
			return true
		}
		for _, c := range prl {
			if c == code {
				return true
			}
		}
		return false
	}
	for _, o := range prm.Options {
		if _, set := r.Options[o.Code]; set || !wanted(o.Code) {
			continue
		}
		r.Options[o.Code] = o.Data
	}
	if _, ok := r.Options[uint8(dhcpv4.OptionSubnetMask)]; !ok && subnet != nil {
		m := net.CIDRMask(subnet.Prefix.Bits(), 32)
		r.Options[uint8(dhcpv4.OptionSubnetMask)] = []byte(m)
	}
}
