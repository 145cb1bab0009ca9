package config

import (
	"math"
	"strings"
)

// Failover defaults of ISC dhcpd 4.4 (includes/failover.h, applied in
// server/confpars.c parse_failover_peer; failover-wire.md §6). ISC treats
// an explicit 0 like an absent value for all of these.
const (
	DefaultFailoverPort       = 647
	DefaultMaxResponseDelay   = 20
	DefaultMaxUnackedUpdates  = 100
	DefaultMaxLeaseMisbalance = 15
	DefaultMaxLeaseOwnership  = 10
	DefaultMinBalance         = 60
	DefaultMaxBalance         = 3600
)

// HBAFromSplit returns the 32-byte hash bucket assignment for "split n":
// buckets 0..n-1 belong to the primary, bucket i being bit 1<<(i&7) of
// byte i>>3 (failover-wire.md §8; ISC confpars.c). n must be in 0..256.
func HBAFromSplit(n int) []byte {
	hba := make([]byte, 32)
	for i := 0; i < n && i < 256; i++ {
		hba[i>>3] |= 1 << (i & 7)
	}
	return hba
}

func (p *parser) failover(s *scope, t token) {
	stmt := "failover peer"
	p.keyword("peer", stmt)
	name, _ := p.name(stmt, "a failover peer name")
	n := p.peek()
	switch {
	case n.isPunct(';'):
		p.next()
		switch s.kind {
		case scopePool, scopeShared:
		case scopeSubnet:
			p.st.warn(t.Pos, stmt, "ISC dhcpd rejects a failover peer reference in a subnet; write it in the pools (or the shared-network) so that an ISC peer can read the same file")
		default:
			fail(t.Pos, stmt, "a failover peer reference belongs in a pool or shared-network, not at %s", s.kind)
		}
		if s.peerRef != "" {
			fail(t.Pos, stmt, "this %s already refers to failover peer %q", s.kind, s.peerRef)
		}
		s.peerRef, s.peerRefPos = name, t.Pos
		p.st.peerRefs = append(p.st.peerRefs, peerRef{name, t.Pos})
	case n.is("state"):
		fail(n.Pos, "failover peer state", "failover peer state declarations belong in dhcpd.leases, not in dhcpd.conf")
	case n.isPunct('{'):
		p.next()
		if s.kind != scopeGlobal && s.kind != scopeShared {
			fail(t.Pos, stmt, "failover peers may be declared only at global scope or in a shared-network, not in a %s", s.kind)
		}
		if prev, ok := p.st.peers[name]; ok {
			fail(t.Pos, stmt, "failover peer %q is already declared at %s", name, prev.Pos)
		}
		fp := p.peerBlock(name, t, n)
		p.st.peers[name] = fp
		p.st.cfg.FailoverPeers = append(p.st.cfg.FailoverPeers, fp)
		if s.kind == scopeShared {
			// A peer declared in a shared-network applies to its pools.
			s.peerRef, s.peerRefPos = name, t.Pos
		}
	default:
		fail(n.Pos, stmt, "expected ;, { or state after the peer name but found %s", n)
	}
}

// peerBlock parses the body of failover peer "NAME" { … } (dhcpd.conf(5)
// "CONFIGURING FAILOVER").
func (p *parser) peerBlock(name string, start, open token) *FailoverPeer {
	fp := &FailoverPeer{Name: name, Split: -1, Pos: start.Pos}
	seen := map[string]token{}
	once := func(key string, t token) {
		if prev, ok := seen[key]; ok {
			fail(t.Pos, "failover peer", "%s given twice in failover peer %q (first at line %d)", key, name, prev.Pos.Line)
		}
		seen[key] = t
	}
	num := func(stmt string) uint32 {
		v := uint32(p.decimal(stmt, "a number", math.MaxUint32))
		p.semi(stmt)
		return v
	}
	for {
		t := p.next()
		if t.isPunct('}') {
			break
		}
		if t.Kind == tokEOF {
			fail(open.Pos, "failover peer", "block is not closed: missing } before end of %s", t.Pos.File)
		}
		if t.Kind != tokWord {
			fail(t.Pos, "failover peer", "expected a failover peer parameter but found %s", t)
		}
		kw := strings.ToLower(t.Text)
		switch kw {
		case "primary", "secondary":
			once("primary/secondary", t)
			p.semi(kw)
			fp.Role = Primary
			if kw == "secondary" {
				fp.Role = Secondary
			}
		case "address":
			once("address", t)
			fp.Address = p.peerAddress(kw)
		case "port":
			once("port", t)
			fp.Port = int(p.decimal(kw, "a port number", 65535))
			p.semi(kw)
		case "peer":
			w := p.next()
			sub := "peer " + strings.ToLower(w.Text)
			switch {
			case w.is("address"):
				once(sub, t)
				fp.PeerAddress = p.peerAddress(sub)
			case w.is("port"):
				once(sub, t)
				fp.PeerPort = int(p.decimal(sub, "a port number", 65535))
				p.semi(sub)
			case w.is("max-response-delay"), w.is("max-unacked-updates"):
				once(sub, t)
				num(sub)
				p.st.warn(t.Pos, sub, "ignored: the partner announces its own value when it connects")
			default:
				fail(w.Pos, "failover peer", "expected peer address or peer port but found %s", w)
			}
		case "max-response-delay":
			once(kw, t)
			fp.MaxResponseDelay = num(kw)
		case "max-unacked-updates":
			once(kw, t)
			fp.MaxUnackedUpdates = num(kw)
		case "mclt":
			once(kw, t)
			fp.MCLT = num(kw)
		case "split":
			once(kw, t)
			v := p.decimal(kw, "a number of buckets", math.MaxUint32)
			if v > 256 {
				fail(t.Pos, kw, "split must be between 0 and 256, inclusive")
			}
			p.semi(kw)
			fp.Split = int(v)
			fp.HBA = HBAFromSplit(int(v))
		case "hba":
			once(kw, t)
			hba := p.hexList(kw, "the hash bucket assignment")
			if len(hba) != 32 {
				fail(t.Pos, kw, "HBA must be exactly 32 bytes, not %d", len(hba))
			}
			p.semi(kw)
			fp.HBA = hba
		case "load":
			stmt := "load balance max seconds"
			p.keyword("balance", stmt)
			p.keyword("max", stmt)
			p.keyword("seconds", stmt)
			once(stmt, t)
			fp.LoadBalanceMaxSeconds = num(stmt)
		case "max-lease-misbalance":
			once(kw, t)
			fp.MaxLeaseMisbalance = num(kw)
		case "max-lease-ownership":
			once(kw, t)
			fp.MaxLeaseOwnership = num(kw)
		case "min-balance":
			once(kw, t)
			fp.MinBalance = num(kw)
		case "max-balance":
			once(kw, t)
			fp.MaxBalance = num(kw)
		case "auto-partner-down":
			once(kw, t)
			fp.AutoPartnerDown = num(kw)
		default:
			fail(t.Pos, "failover peer", "invalid statement in peer declaration: %s", t.Text)
		}
	}

	stmt := "failover peer"
	if fp.Role == 0 {
		fail(start.Pos, stmt, "failover peer %q must say primary or secondary", name)
	}
	if fp.PeerAddress == "" {
		fail(start.Pos, stmt, "failover peer %q: peer address may not be omitted", name)
	}
	_, hasSplit := seen["split"]
	_, hasHBA := seen["hba"]
	if hasSplit && hasHBA {
		fail(seen["hba"].Pos, "hba", "failover peer %q has both split and hba; give only one", name)
	}
	switch fp.Role {
	case Secondary:
		// dhcpd.conf(5): mclt "may not be specified on the secondary";
		// the secondary learns MCLT and HBA from the primary's CONNECT.
		for _, key := range []string{"mclt", "split", "hba"} {
			if t, ok := seen[key]; ok {
				fail(t.Pos, key, "a secondary may not set %s: it learns it from the primary; remove this line", key)
			}
		}
	case Primary:
		// ISC dhcpd refuses these configurations too (parse_warn in
		// parse_failover_peer), and a primary must always send an HBA
		// and MCLT in CONNECT (failover-wire.md §5).
		if fp.HBA == nil {
			fail(start.Pos, stmt, "primary failover server %q must have hba or split", name)
		}
		if fp.MCLT == 0 {
			fail(start.Pos, stmt, "primary failover server %q must have mclt", name)
		}
		if fp.LoadBalanceMaxSeconds == 0 {
			p.st.warn(start.Pos, stmt, "load balancing is disabled for failover peer %q because load balance max seconds is 0 (ISC dhcpd warns the same; 3 to 5 is usual)", name)
		}
	}
	if fp.MaxLeaseMisbalance > 100 || fp.MaxLeaseOwnership > 100 {
		p.st.warn(start.Pos, stmt, "max-lease-misbalance and max-lease-ownership are percentages; values above 100 make no sense")
	}

	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	if fp.Port == 0 {
		fp.Port = DefaultFailoverPort
	}
	if fp.PeerPort == 0 {
		fp.PeerPort = DefaultFailoverPort
	}
	def(&fp.MaxResponseDelay, DefaultMaxResponseDelay)
	def(&fp.MaxUnackedUpdates, DefaultMaxUnackedUpdates)
	def(&fp.MaxLeaseMisbalance, DefaultMaxLeaseMisbalance)
	def(&fp.MaxLeaseOwnership, DefaultMaxLeaseOwnership)
	def(&fp.MinBalance, DefaultMinBalance)
	def(&fp.MaxBalance, DefaultMaxBalance)
	return fp
}

// peerAddress reads an IPv4 address or a host name; ISC resolves names
// when it connects, so they stay strings here.
func (p *parser) peerAddress(stmt string) string {
	var s string
	if t := p.peek(); t.Kind == tokString {
		p.next()
		s = t.Text
	} else {
		s, _ = p.dotted(stmt, "an address or host name")
	}
	if a, ok := parseIPv4(s); ok {
		s = a.String()
	} else if looksNumeric(s) {
		fail(p.peek().Pos, stmt, "%q is not a valid IPv4 address", s)
	}
	p.semi(stmt)
	return s
}
