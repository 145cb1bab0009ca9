package config

import (
	"fmt"
	"net/netip"
	"slices"
)

// ISC dhcpd's defaults for scope parameters (dhcpd.conf(5), server/dhcpd.c).
const (
	DefaultLeaseTime = 43200
	DefaultMaxLease  = 86400
)

func defaultParams() Params {
	return Params{
		DefaultLeaseTime:    DefaultLeaseTime,
		MaxLeaseTime:        DefaultMaxLease,
		AllowUnknownClients: true,
		AllowKnownClients:   true,
		AllowBootp:          true,
		AllowBooting:        true,
		AllowDynamicBootp:   true,
		PingCheck:           true,
	}
}

func (p Params) clone() Params {
	p.Options = slices.Clone(p.Options)
	return p
}

// params returns the effective parameters of s: its parent's, then its own
// statements in the order written.
func (st *state) params(s *scope) Params {
	if s.resolved == nil {
		var p Params
		if s.parent == nil {
			p = defaultParams()
		} else {
			p = st.params(s.parent)
		}
		for _, set := range s.sets {
			set(&p)
		}
		p.Authoritative = s.auth
		s.resolved = &p
	}
	return s.resolved.clone()
}

// resolve computes effective parameters, places pools in their subnets and
// checks what can only be checked once the whole configuration is known.
func (st *state) resolve() {
	cfg := st.cfg
	cfg.Global = st.params(st.global)

	for _, sh := range st.sharedScopes {
		if len(sh.shared.Subnets) == 0 {
			fail(sh.pos, "shared-network", "empty shared-network %s: it declares no subnet", sh.shared.Name)
		}
		cfg.SharedNetworks = append(cfg.SharedNetworks, sh.shared)
	}

	for i, sc := range st.subnetScopes {
		sn := sc.subnet
		for _, prev := range st.subnetScopes[:i] {
			if prev.subnet.Prefix == sn.Prefix {
				fail(sn.Pos, "subnet", "subnet %s is already declared at %s", sn.Prefix, prev.subnet.Pos)
			}
			if prev.subnet.Prefix.Overlaps(sn.Prefix) {
				st.warn(sn.Pos, "subnet", "subnet %s overlaps subnet %s declared at %s", sn.Prefix, prev.subnet.Prefix, prev.subnet.Pos)
			}
		}
		sn.Params = st.params(sc)
		st.subnetScope[sn] = sc
		sn.Pools = st.implicitPools(sc)
		cfg.Subnets = append(cfg.Subnets, sn)
	}

	for _, ps := range st.poolScopes {
		st.placePool(ps)
	}

	st.checkRanges()
	st.checkFailover()

	for _, hs := range st.hostScopes {
		h := hs.host
		h.Params = st.params(hs)
		if h.Params.UseHostDeclNames {
			// dhcpd.conf(5) use-host-decl-names: the declaration's name
			// is sent as the host-name option unless one is configured.
			if _, ok := h.Params.Option(12); !ok {
				h.Params.Options = append(h.Params.Options, Option{Code: 12, Name: "host-name", Data: []byte(h.Name)})
			}
		}
		if h.HardwareAddr == nil && h.ClientID == nil {
			st.warn(h.Pos, "host", "host %s has neither a hardware address nor a client identifier, so it matches no client", h.Name)
		}
		st.checkFixedAddresses(h)
		cfg.Hosts = append(cfg.Hosts, h)
	}

	if cfg.OMAPIKey != "" {
		if _, ok := st.keys[cfg.OMAPIKey]; !ok {
			fail(st.omapiKey.Pos, "omapi-key", "no key named %s is declared", cfg.OMAPIKey)
		}
	}
}

// implicitPools builds the pools of ranges written directly in a subnet.
// ISC puts them in ad-hoc pools that never take part in failover, one that
// refuses dynamic BOOTP for plain ranges and one that permits all clients
// for "range dynamic-bootp" (server/confpars.c parse_address_range).
func (st *state) implicitPools(sc *scope) []*Pool {
	var plain, dyn *Pool
	var pools []*Pool
	for _, r := range sc.ranges {
		pp := &plain
		if r.DynamicBootp {
			pp = &dyn
		}
		if *pp == nil {
			params := st.params(sc)
			if !r.DynamicBootp {
				params.AllowDynamicBootp = false
			}
			*pp = &Pool{Params: params, Pos: r.Pos}
			pools = append(pools, *pp)
			st.implicit = append(st.implicit, *pp)
		}
		(*pp).Ranges = append((*pp).Ranges, r)
	}
	return pools
}

// placePool attaches an explicit pool to its subnet and resolves its
// failover peer, parameters and permit lists.
func (st *state) placePool(ps *scope) {
	pool := ps.pool
	var sn *Subnet
	switch ps.parent.kind {
	case scopeSubnet:
		sn = ps.parent.subnet
	case scopeShared:
		// A pool in a shared-network belongs to the subnet that holds
		// its ranges.
		first := pool.Ranges[0]
		for _, cand := range ps.parent.shared.Subnets {
			if cand.Prefix.Contains(first.Start) {
				sn = cand
				break
			}
		}
		if sn == nil {
			fail(first.Pos, "range", "address range %s-%s is not on any subnet of shared-network %s", first.Start, first.End, ps.parent.shared.Name)
		}
		for _, r := range pool.Ranges[1:] {
			if !sn.Prefix.Contains(r.Start) {
				fail(r.Pos, "range", "the ranges of this pool lie in different subnets (%s and %s); Tandem needs one pool per subnet", sn.Prefix, r.Start)
			}
		}
	}

	if !ps.noPeer {
		for s := ps; s != nil; s = s.parent {
			if s.peerRef != "" {
				pool.FailoverPeer = s.peerRef
				break
			}
		}
	}

	var params Params
	if ps.parent.kind == scopeShared {
		// ISC evaluates the subnet's statements before the pool's
		// (ack_lease in server/dhcp.c), so a pool written in the
		// shared-network still gets its subnet's options.
		params = st.params(st.subnetScope[sn])
		for _, set := range ps.sets {
			set(&params)
		}
	} else {
		params = st.params(ps)
	}
	// ISC consults only the subnet's (and shared-network's) authoritative
	// flag, never a pool's.
	params.Authoritative = sn.Params.Authoritative
	if err := applyPermits(&params, ps.allow, ps.deny); err != nil {
		fail(ps.pos, "pool", "%v", err)
	}
	pool.Params = params
	sn.Pools = append(sn.Pools, pool)
}

// applyPermits narrows a pool's client flags by its allow and deny lists.
// In ISC a client may use a pool if the allow list is empty or it matches
// an entry of it, and it matches no entry of the deny list. Tandem's flags
// express that for the four kinds of client (known or not, DHCP or BOOTP)
// as AllowKnownClients/AllowUnknownClients for DHCP clients, and for BOOTP
// clients the same AND AllowDynamicBootp. Lists that this cannot express
// are refused rather than approximated.
func applyPermits(pp *Params, allow, deny []permit) error {
	if len(allow) == 0 && len(deny) == 0 {
		return nil
	}
	matches := func(pm permit, known, bootp bool) bool {
		switch pm {
		case permitKnown:
			return known
		case permitUnknown:
			return !known
		case permitDynamicBootp:
			return bootp
		}
		return true // permitAll
	}
	permitted := func(known, bootp bool) bool {
		ok := len(allow) == 0
		for _, a := range allow {
			if matches(a, known, bootp) {
				ok = true
			}
		}
		for _, d := range deny {
			if matches(d, known, bootp) {
				return false
			}
		}
		return ok
	}
	known, unknown := permitted(true, false), permitted(false, false)
	bootpKnown, bootpUnknown := permitted(true, true), permitted(false, true)
	dyn := bootpKnown || bootpUnknown
	if bootpKnown != (dyn && known) || bootpUnknown != (dyn && unknown) {
		return fmt.Errorf("this combination of allow and deny is not supported by Tandem (a pool for BOOTP clients only)")
	}
	pp.AllowKnownClients = pp.AllowKnownClients && known
	pp.AllowUnknownClients = pp.AllowUnknownClients && unknown
	pp.AllowDynamicBootp = pp.AllowDynamicBootp && dyn
	return nil
}

type placedRange struct {
	r    Range
	pool *Pool
	seq  int
}

func (st *state) checkRanges() {
	var all []placedRange
	for _, sn := range st.cfg.Subnets {
		for _, pool := range sn.Pools {
			for _, r := range pool.Ranges {
				if !sn.Prefix.Contains(r.Start) || !sn.Prefix.Contains(r.End) {
					fail(r.Pos, "range", "range %s-%s is not inside subnet %s", r.Start, r.End, sn.Prefix)
				}
				if sn.Prefix.Bits() <= 30 && (r.Start == sn.Prefix.Addr() || r.End == lastAddr(sn.Prefix)) {
					st.warn(r.Pos, "range", "range %s-%s includes the network or broadcast address of subnet %s", r.Start, r.End, sn.Prefix)
				}
				if r.DynamicBootp && pool.FailoverPeer != "" {
					fail(r.Pos, "range", "dynamic-bootp is not permitted in a range of a failover pool (the failover protocol cannot share BOOTP leases)")
				}
				all = append(all, placedRange{r, pool, len(all)})
			}
		}
	}
	// Ranges are recorded in subnet order; sort by start to find overlaps
	// and report the one written later.
	slices.SortFunc(all, func(a, b placedRange) int { return a.r.Start.Compare(b.r.Start) })
	var maxEnd placedRange
	for i, pr := range all {
		if i > 0 && !maxEnd.r.End.Less(pr.r.Start) {
			later, earlier := pr, maxEnd
			if posLess(later.r.Pos, earlier.r.Pos) {
				later, earlier = earlier, later
			}
			fail(later.r.Pos, "range", "range %s-%s overlaps range %s-%s at %s",
				later.r.Start, later.r.End, earlier.r.Start, earlier.r.End, earlier.r.Pos)
		}
		if i == 0 || maxEnd.r.End.Less(pr.r.End) {
			maxEnd = pr
		}
	}
}

// posLess orders positions by file name and line; good enough to pick the
// later of two statements for a message.
func posLess(a, b Pos) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	return a.Line < b.Line
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (st *state) checkFailover() {
	for _, ref := range st.peerRefs {
		if _, ok := st.peers[ref.name]; !ok {
			fail(ref.pos, "failover peer", "reference to unknown failover peer %q", ref.name)
		}
	}
	used := map[string]bool{}
	for _, sn := range st.cfg.Subnets {
		for _, pool := range sn.Pools {
			if pool.FailoverPeer != "" {
				used[pool.FailoverPeer] = true
			}
		}
	}
	for _, fp := range st.cfg.FailoverPeers {
		if !used[fp.Name] {
			fail(fp.Pos, "failover peer", "failover peer %q is not referred to by any pool; write failover peer %q; in each pool it shares", fp.Name, fp.Name)
		}
	}
	if len(st.cfg.FailoverPeers) > 0 {
		for _, ps := range st.poolScopes {
			if ps.pool.FailoverPeer == "" && !ps.noPeer {
				st.warn(ps.pos, "pool", "this pool names no failover peer, so it is not shared with the partner; if the partner serves it too, both will hand out the same addresses. Add failover peer \"NAME\"; (or no failover peer; if that is intended)")
			}
		}
		for _, pool := range st.implicit {
			st.warn(pool.Pos, "range", "this range is outside any pool, so it is not shared with the failover peer (as in ISC dhcpd); if the partner serves it too, both will hand out the same addresses. Put it in a pool with a failover peer statement")
		}
	}
}

func (st *state) checkFixedAddresses(h *Host) {
	for _, a := range h.FixedAddresses {
		var sn *Subnet
		for _, cand := range st.cfg.Subnets {
			if cand.Prefix.Contains(a) {
				sn = cand
			}
		}
		if sn == nil {
			st.warn(h.Pos, "fixed-address", "%s of host %s is on no declared subnet, so it will never be given out", a, h.Name)
			continue
		}
		for _, pool := range sn.Pools {
			for _, r := range pool.Ranges {
				if !a.Less(r.Start) && !r.End.Less(a) {
					st.warn(h.Pos, "fixed-address", "%s of host %s lies inside the dynamic range %s-%s at %s", a, h.Name, r.Start, r.End, r.Pos)
				}
			}
		}
	}
}
