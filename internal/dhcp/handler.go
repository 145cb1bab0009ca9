// Package dhcp decides what a DHCPv4 server answers (RFC 2131, RFC 2132):
// it takes a decoded packet, the receiving interface's addresses and now,
// consults and changes the lease database, and returns the reply. It does
// no I/O, reads no clock and draws no random numbers, so the server loop and
// the simulator run the same code.
//
// Lease changes are left marked dirty in the lease.DB; a reply whose Result
// says Durable must not leave the server before those changes are on disk.
//
// Where RFC 2131 leaves a choice, the handler does what ISC dhcpd 4.4 does
// (server/dhcp.c), so that a mixed ISC/Tandem pair answers alike.
package dhcp

import (
	"bytes"
	"net"
	"net/netip"
	"slices"

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
	// lease's failover times before it is bound. For an offer it is called
	// on a copy of the lease, which is discarded.
	GrantTime(now int64, p *lease.Pool, l *lease.Lease, desired uint32) uint32
	// PartnerAllocState is the partner's free state (Backup on the
	// primary, Free on the secondary) while this server may take the
	// partner's leases over (partner-down), else StateNone. Each such
	// lease is used only if MayReuse allows it (STOS+MCLT, fw §11).
	PartnerAllocState(now int64, p *lease.Pool) lease.BindingState
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
	// serverIDs are the configured server identifiers of every scope.
	serverIDs map[netip.Addr]bool

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
		serverIDs:     make(map[netip.Addr]bool),
		offers:        make(map[uint32]offer),
		offerByClient: make(map[lease.ClientKey]uint32),
	}
	addSID := func(prm *config.Params) {
		if prm.ServerIdentifier.IsValid() {
			h.serverIDs[prm.ServerIdentifier] = true
		}
	}
	addSID(&cfg.Global)
	shared := make(map[string]*network)
	for _, s := range cfg.Subnets {
		addSID(&s.Params)
		for _, p := range s.Pools {
			addSID(&p.Params)
		}
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
		addSID(&host.Params)
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

// id is the client's identity alone: its client identifier if it sent
// one (then chaddr is only where it happens to be), else its hardware
// address. Offers are held for an identity.
func (c client) id() lease.ClientKey {
	if c.key.ClientID != "" {
		return lease.ClientKey{ClientID: c.key.ClientID}
	}
	return c.key
}

// identify names the client by its client identifier (option 61) when it
// sent one, else by chaddr (RFC 2131 §4.2), and finds its host
// declaration: by client identifier first, then by hardware address, as
// ISC dhcpd does.
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
	if mt == dhcpv4.MessageTypeNone && p.Options.Has(dhcpv4.OptionDHCPMessageType) {
		// A DHCP message type option that does not decode is not BOOTP.
		return h.drop("malformed message type")
	}
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
		return h.inform(req, subnet, c)
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
	if gi := addrOf(p.GatewayIPAddr); gi.IsValid() {
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
	if !a.IsValid() {
		return nil
	}
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

// scope returns the parameters that apply to client c for an address
// whose own scope is base (its pool, or its subnet for a fixed address).
//
// A host declaration's statements override the address's scope, but the
// scopes the host merely inherits do not (ISC evaluates the host's scope
// chain only up to where it meets the subnet's; common/execute.c
// execute_statements_in_scope). config.Host carries resolved values, so
// a host value equal to the global one is taken as inherited: otherwise a
// host declared at top level would lose its subnet's routers.
func (h *Handler) scope(c client, base *config.Params) *config.Params {
	if c.host == nil {
		return base
	}
	g, hp := &h.cfg.Global, &c.host.Params
	m := *base
	if hp.DefaultLeaseTime != g.DefaultLeaseTime {
		m.DefaultLeaseTime = hp.DefaultLeaseTime
	}
	if hp.MaxLeaseTime != g.MaxLeaseTime {
		m.MaxLeaseTime = hp.MaxLeaseTime
	}
	if hp.MinLeaseTime != g.MinLeaseTime {
		m.MinLeaseTime = hp.MinLeaseTime
	}
	if hp.ServerIdentifier != g.ServerIdentifier {
		m.ServerIdentifier = hp.ServerIdentifier
	}
	m.Options = slices.Clone(base.Options)
	for _, o := range hp.Options {
		if inherited, ok := g.Option(o.Code); ok && bytes.Equal(inherited.Data, o.Data) {
			continue
		}
		if i := slices.IndexFunc(m.Options, func(x config.Option) bool { return x.Code == o.Code }); i >= 0 {
			m.Options[i] = o
		} else {
			m.Options = append(m.Options, o)
		}
	}
	return &m
}

// poolAllows applies the pool's allow/deny lists. A client with a host
// declaration is "known" (dhcpd.conf(5), allow and deny).
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

func failover(p *lease.Pool, policy Policy) bool { return policy != nil && p.FailoverPeer != "" }

func (h *Handler) allocState(now int64, p *lease.Pool) lease.BindingState {
	if !failover(p, h.policy) {
		return lease.Free
	}
	return h.policy.AllocState(now, p)
}

func (h *Handler) releasedState(p *lease.Pool) lease.BindingState {
	if !failover(p, h.policy) {
		return lease.Free
	}
	return h.policy.Released(p)
}

func (h *Handler) serves(now int64, p *lease.Pool, c client, mt dhcpv4.MessageType, secs uint16) bool {
	if !failover(p, h.policy) {
		return true
	}
	return h.policy.Serve(now, p, c.key, mt, secs)
}

func (h *Handler) heldForOther(now int64, ip uint32, c client) bool {
	o, ok := h.offers[ip]
	return ok && o.until > now && o.key != c.id()
}

func (h *Handler) heldFor(now int64, ip uint32, c client) bool {
	o, ok := h.offers[ip]
	return ok && o.until > now && o.key == c.id()
}

// usable reports whether this server may give lease l to client c now.
// requested says the client asked for this address in a DHCPREQUEST.
// When the answer is no, why explains it for a NAK; why is "" when the
// lease is the failover partner's to give, and the server must stay
// silent so the partner can answer (ISC dhcprequest: "lease owned by
// peer", "lease in transition state").
func (h *Handler) usable(now int64, p *lease.Pool, l *lease.Lease, c client, requested bool) (ok bool, why string) {
	if l.IsFixed() {
		return false, "address reserved for a host"
	}
	if h.heldForOther(now, l.IP, c) {
		return false, "address offered to another client"
	}
	switch l.State {
	case lease.Active:
		// The holder may always extend its own binding, even one that ran
		// out a moment ago and has not been expired yet.
		if l.Owns(c.key) {
			return true, ""
		}
		return false, "address leased to another client"
	case lease.Abandoned:
		// Abandoned addresses are reused only as a last resort (offered by
		// allocate) or when a client asks for one by name: then the
		// address was most likely abandoned because that very client
		// answered a ping after a database loss (ISC find_lease,
		// "Reclaiming REQUESTed abandoned IP address").
		if !requested && !h.heldFor(now, l.IP, c) {
			return false, "address abandoned"
		}
		if failover(p, h.policy) && !h.policy.MayReuse(now, p, l) {
			return false, ""
		}
		return true, ""
	}
	if !failover(p, h.policy) {
		// A lone server has no partner to wait for: expired, released and
		// reset leases are as good as free.
		switch l.State {
		case lease.Free, lease.Expired, lease.Released, lease.Reset:
			return true, ""
		}
		return false, "address not available"
	}
	if l.State == h.allocState(now, p) || h.policy.MayReuse(now, p, l) {
		return true, ""
	}
	if l.State == lease.Reset {
		// ISC: "lease reset by administrator" is NAKed.
		return false, "address reset by administrator"
	}
	return false, ""
}

// findLease picks the address for a client on its network: the one
// offered to it a moment ago, its current or previous lease, else the
// address it asks for, else a new one (RFC 2131 §4.3.1).
func (h *Handler) findLease(now int64, subnet *config.Subnet, c client, requested netip.Addr, msg dhcpv4.MessageType, secs uint16) (*lease.Lease, *lease.Pool) {
	if ip, ok := h.offerByClient[c.id()]; ok && h.heldFor(now, ip, c) {
		if l, p := h.db.Get(ip); l != nil && h.onNetwork(subnet, l.Addr()) != nil {
			if ok, _ := h.usable(now, p, l, c, false); ok {
				return l, p
			}
		}
	}
	if l := h.db.FindClient(c.key); l != nil {
		_, p := h.db.Get(l.IP)
		if h.onNetwork(subnet, l.Addr()) != nil && poolAllows(p, c, false) {
			if ok, _ := h.usable(now, p, l, c, false); ok {
				return l, p
			}
		}
	}
	if requested.IsValid() && h.onNetwork(subnet, requested) != nil {
		if l, p := h.db.Get(lease.AddrToU32(requested)); l != nil && poolAllows(p, c, false) && h.serves(now, p, c, msg, secs) {
			if ok, _ := h.usable(now, p, l, c, false); ok {
				return l, p
			}
		}
	}
	return h.allocate(now, subnet, c, msg, secs, false)
}

// allocate takes a new address for the client from the pools of its
// network, in configuration order (shared-network siblings included).
// Abandoned addresses are used only when no pool has anything else.
func (h *Handler) allocate(now int64, subnet *config.Subnet, c client, msg dhcpv4.MessageType, secs uint16, bootp bool) (*lease.Lease, *lease.Pool) {
	// Three passes, as ISC's allocate_lease: this server's own free
	// leases; then, in partner-down, the partner's free leases that MCLT
	// has made safe (MayReuse decides each); abandoned ones last of all.
	for pass := 0; pass < 3; pass++ {
		for _, s := range h.networks[subnet].subnets {
			for _, p := range h.poolsOf[s] {
				if !poolAllows(p, c, bootp) || !h.serves(now, p, c, msg, secs) {
					continue
				}
				var st lease.BindingState
				switch pass {
				case 0:
					st = h.allocState(now, p)
				case 1:
					if !failover(p, h.policy) {
						continue
					}
					st = h.policy.PartnerAllocState(now, p)
				case 2:
					st = lease.Abandoned
				}
				if st == lease.StateNone {
					continue
				}
				l := h.db.Allocate(p, st, func(l *lease.Lease) bool {
					if h.heldForOther(now, l.IP, c) {
						return false
					}
					if bootp && l.Flags&lease.FlagDynamicRange == 0 {
						return false
					}
					// ISC treats abandoned like free: under failover only
					// the server that may allocate free leases reuses them.
					return pass == 0 || !failover(p, h.policy) || h.policy.MayReuse(now, p, l)
				})
				if l != nil {
					return l, p
				}
			}
		}
	}
	return nil, nil
}

// balancedAway reports whether load balancing gave the client to the
// partner in some pool of its network, so that a DISCOVER left
// unanswered is logged as ISC does ("load balance to peer"), not as an
// exhausted pool.
func (h *Handler) balancedAway(now int64, subnet *config.Subnet, c client, secs uint16) bool {
	for _, s := range h.networks[subnet].subnets {
		for _, p := range h.poolsOf[s] {
			if failover(p, h.policy) && poolAllows(p, c, false) &&
				!h.serves(now, p, c, dhcpv4.MessageTypeDiscover, secs) {
				return true
			}
		}
	}
	return false
}

// leaseTime is the lease time to grant: the client's requested time
// (option 51) if it sent one, else default-lease-time; capped by
// max-lease-time, then raised to min-lease-time (ISC ack_lease order).
func leaseTime(prm *config.Params, p *dhcpv4.DHCPv4) uint32 {
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

// addrOf converts an IPv4 field or option to an address; absent and
// 0.0.0.0 ("not set" in every BOOTP/DHCP field) give the invalid Addr.
func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || a.IsUnspecified() {
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
		prm := h.scope(c, &s.Params)
		r := h.reply(p, dhcpv4.MessageTypeOffer, s, req.LocalAddrs, prm)
		r.YourIPAddr = net.IP(a.AsSlice())
		setLeaseTime(r, leaseTime(prm, p))
		h.addOptions(r, p, s, prm)
		return Result{Reply: r}
	}
	l, pool := h.findLease(now, subnet, c, addrOf(p.RequestedIPAddress()), dhcpv4.MessageTypeDiscover, p.NumSeconds)
	if l == nil {
		if h.balancedAway(now, subnet, c, p.NumSeconds) {
			return h.drop("load balanced to peer")
		}
		return h.drop("no free leases")
	}
	if !h.serves(now, pool, c, dhcpv4.MessageTypeDiscover, p.NumSeconds) {
		return h.drop("load balanced to peer")
	}
	tag := pool.Tag.(PoolTag)
	prm := h.scope(c, &tag.Pool.Params)
	t := leaseTime(prm, p)
	if failover(pool, h.policy) {
		// An offer changes nothing on disk: the policy sees a copy.
		cp := *l
		t = h.policy.GrantTime(now, pool, &cp, t)
	}
	h.holdOffer(now, l.IP, c.id())
	r := h.reply(p, dhcpv4.MessageTypeOffer, tag.Subnet, req.LocalAddrs, prm)
	r.YourIPAddr = net.IP(l.Addr().AsSlice())
	setLeaseTime(r, t)
	h.addOptions(r, p, tag.Subnet, prm)
	return Result{Reply: r}
}

func (h *Handler) holdOffer(now int64, ip uint32, k lease.ClientKey) {
	if old, ok := h.offerByClient[k]; ok && old != ip {
		// The client's earlier offer is free again, unless it has since
		// gone to someone else.
		if o, ok := h.offers[old]; ok && o.key == k {
			delete(h.offers, old)
		}
	}
	if o, ok := h.offers[ip]; ok && o.key != k {
		if cur, ok := h.offerByClient[o.key]; ok && cur == ip {
			delete(h.offerByClient, o.key)
		}
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

// ExpireOffers forgets offers that were never taken up. The server loop
// calls it from time to time; until then an expired offer holds nothing
// but memory.
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
	giaddr := addrOf(p.GatewayIPAddr)

	var addr netip.Addr
	switch {
	case serverID.IsValid():
		// SELECTING: the client answers an offer. If it chose another
		// server, our offer is free again.
		if !h.isOurServerID(serverID, req.LocalAddrs) {
			if requested.IsValid() {
				h.forgetOffer(lease.AddrToU32(requested), c.id())
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

	// Which network is the client on? A requested-address option means
	// the request was broadcast, so the arrival network (or the relay's)
	// is the client's; so it is for a relayed request with ciaddr
	// (REBINDING through a relay). A request with ciaddr alone may have
	// been unicast through routers from anywhere (RENEWING): the server
	// trusts ciaddr (RFC 2131 §4.3.2; ISC dhcprequest does the same).
	addrSubnet := h.subnetOf(addr)
	if subnet == nil || giaddr.IsValid() && ciaddr.IsValid() || requested.IsValid() && !ciaddr.IsValid() {
		if subnet == nil {
			// From a network we do not know, but claiming one we do.
			if addrSubnet != nil {
				return h.nak(req, addrSubnet, "wrong network")
			}
			return h.drop("no subnet for client")
		}
		if h.onNetwork(subnet, addr) == nil {
			return h.nak(req, subnet, "requested address not on client's network")
		}
	} else {
		if addrSubnet == nil {
			return h.drop("address in no known subnet")
		}
		subnet = addrSubnet
	}
	onNet := h.onNetwork(subnet, addr)

	if a, _ := h.fixedAddress(subnet, c); a.IsValid() {
		// A client with a reserved address on this network gets nothing
		// else (ISC find_lease: "requested address is incorrect").
		if !slices.Contains(c.host.FixedAddresses, addr) {
			return h.nak(req, subnet, "requested address is incorrect")
		}
		prm := h.scope(c, &onNet.Params)
		r := h.reply(p, dhcpv4.MessageTypeAck, onNet, req.LocalAddrs, prm)
		r.YourIPAddr = net.IP(addr.AsSlice())
		r.ClientIPAddr = p.ClientIPAddr
		setLeaseTime(r, leaseTime(prm, p))
		h.addOptions(r, p, onNet, prm)
		return Result{Reply: r}
	}
	l, pool := h.db.Get(lease.AddrToU32(addr))
	if l == nil {
		return h.nak(req, onNet, "requested address is not in a pool")
	}
	// A failover server in a state without service (startup, recover,
	// conflict resolution, shutdown) answers no REQUEST at all, not even a
	// renewal: its partner may know better (fw §7.2).
	if !h.serves(now, pool, c, dhcpv4.MessageTypeRequest, p.NumSeconds) {
		return h.drop("failover state gives no service")
	}
	if !poolAllows(pool, c, false) {
		return h.nak(req, onNet, "client not permitted in pool")
	}
	if ok, why := h.usable(now, pool, l, c, true); !ok {
		if why == "" {
			return h.drop("lease belongs to the failover partner")
		}
		return h.nak(req, onNet, why)
	}

	// A client that asks for an address without claiming one (SELECTING,
	// INIT-REBOOT) no longer uses any other lease it held on this network:
	// free it (ISC find_lease releases the duplicate).
	var other *lease.Lease
	if !ciaddr.IsValid() {
		if o := h.db.FindClient(c.key); o != nil && o.IP != l.IP && o.State == lease.Active && h.onNetwork(subnet, o.Addr()) != nil {
			other = o
		}
	}

	tag := pool.Tag.(PoolTag)
	prm := h.scope(c, &tag.Pool.Params)
	t := leaseTime(prm, p)
	hostname := p.HostName()
	_, _ = h.db.Update(l.IP, func(l *lease.Lease) {
		if failover(pool, h.policy) {
			t = h.policy.GrantTime(now, pool, l, t)
		}
		if !l.Owns(c.key) {
			l.Hostname = ""
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
	h.forgetOffer(l.IP, c.id())
	if other != nil {
		h.releaseLease(now, other.IP)
	}
	r := h.reply(p, dhcpv4.MessageTypeAck, tag.Subnet, req.LocalAddrs, prm)
	r.YourIPAddr = net.IP(addr.AsSlice())
	r.ClientIPAddr = p.ClientIPAddr
	setLeaseTime(r, t)
	h.addOptions(r, p, tag.Subnet, prm)
	return Result{Reply: r, Durable: true}
}

// isOurServerID reports whether a server identifier names this server:
// one configured in any scope, or an address of the receiving interface.
func (h *Handler) isOurServerID(id netip.Addr, local []netip.Prefix) bool {
	if h.serverIDs[id] {
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
	if addrOf(req.Packet.GatewayIPAddr).IsValid() {
		r.SetBroadcast()
	}
	h.stats.countNak(why)
	return Result{Reply: r}
}

// releaseLease ends a binding now; the client stays recorded, so it can
// have the address back if nobody else took it meanwhile.
func (h *Handler) releaseLease(now int64, ip uint32) {
	_, pool := h.db.Get(ip)
	next := h.releasedState(pool)
	_, _ = h.db.Update(ip, func(l *lease.Lease) {
		l.State = next
		l.Next = lease.StateNone
		l.Ends = now
		l.CLTT = now
	})
}

func (h *Handler) release(now int64, p *dhcpv4.DHCPv4, c client) Result {
	ip := lease.AddrToU32(addrOf(p.ClientIPAddr))
	l, _ := h.db.Get(ip)
	if l == nil || l.State != lease.Active || !l.Owns(c.key) {
		return h.drop("RELEASE of a lease the client does not hold")
	}
	h.releaseLease(now, ip)
	h.forgetOffer(ip, c.id())
	return Result{Drop: "RELEASE handled"}
}

// decline marks an address the client found in use (RFC 2131 §4.3.3).
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
	h.forgetOffer(ip, c.id())
	return Result{Drop: "DECLINE handled"}
}

// inform answers DHCPINFORM with configuration only (RFC 2131 §3.4,
// §4.3.5): no lease time, yiaddr 0. As ISC dhcpd, only an authoritative
// server answers, and the client's address (ciaddr) picks the subnet.
func (h *Handler) inform(req Request, subnet *config.Subnet, c client) Result {
	p := req.Packet
	if ciaddr := addrOf(p.ClientIPAddr); ciaddr.IsValid() {
		subnet = h.subnetOf(ciaddr)
	}
	if subnet == nil {
		return h.drop("INFORM from unknown network")
	}
	if !subnet.Params.Authoritative {
		return h.drop("not authoritative: INFORM")
	}
	prm := h.scope(c, &subnet.Params)
	r := h.reply(p, dhcpv4.MessageTypeAck, subnet, req.LocalAddrs, prm)
	r.ClientIPAddr = p.ClientIPAddr
	h.addOptions(r, p, subnet, prm)
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
		r := h.bootReply(p, a)
		h.addOptions(r, p, s, h.scope(c, &s.Params))
		return Result{Reply: r}
	}
	var l *lease.Lease
	var pool *lease.Pool
	cur := h.db.FindClient(c.key)
	if cur != nil && cur.Flags&lease.FlagBootp != 0 && cur.State == lease.Active && h.onNetwork(subnet, cur.Addr()) != nil {
		l, pool = h.db.Get(cur.IP)
	}
	if l == nil {
		l, pool = h.allocate(now, subnet, c, dhcpv4.MessageTypeNone, p.NumSeconds, true)
	}
	if l == nil {
		return h.drop("no dynamic-bootp address")
	}
	hostname := p.HostName()
	_, _ = h.db.Update(l.IP, func(l *lease.Lease) {
		if !l.Owns(c.key) {
			l.Hostname = ""
		}
		l.State = lease.Active
		l.Next = lease.StateNone
		l.Starts = now
		l.Ends = lease.Never
		l.CLTT = now
		l.ClientID = c.key.ClientID
		l.SetHardware(c.key.HType, []byte(c.key.HAddr))
		if hostname != "" {
			l.Hostname = hostname
		}
		l.Flags |= lease.FlagBootp
	})
	h.forgetOffer(l.IP, c.id())
	if cur != nil && cur.IP != l.IP && cur.State == lease.Active && h.onNetwork(subnet, cur.Addr()) != nil {
		// The client moved from DHCP to BOOTP on this network.
		h.releaseLease(now, cur.IP)
	}
	tag := pool.Tag.(PoolTag)
	r := h.bootReply(p, l.Addr())
	h.addOptions(r, p, tag.Subnet, h.scope(c, &tag.Pool.Params))
	return Result{Reply: r, Durable: true}
}

// bootReply is a BOOTREPLY: no DHCP message type, but relay agent
// information echoed as in DHCP replies (RFC 3046 §2.2; ISC bootp.c does
// the same). It is counted as a BOOTP reply (MessageTypeNone).
func (h *Handler) bootReply(p *dhcpv4.DHCPv4, a netip.Addr) *dhcpv4.DHCPv4 {
	r := newReply(p)
	r.YourIPAddr = net.IP(a.AsSlice())
	if v := p.Options.Get(dhcpv4.OptionRelayAgentInformation); v != nil {
		r.Options[uint8(dhcpv4.OptionRelayAgentInformation)] = v
	}
	h.stats.countSent(dhcpv4.MessageTypeNone)
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
		return prl == nil || bytes.IndexByte(prl, code) >= 0
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
