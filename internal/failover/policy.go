package failover

import (
	"math"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// The DHCP handler's failover policy (internal/dhcp Policy). The handler
// asks only about pools of a failover relationship; a pool of another
// relationship gets the answers of a server without failover.

// Serve reports whether this server answers the client at all (fw §7.2,
// §8): not in a state without service (startup, recover, conflict
// resolution, shutdown, paused, or when the partner demands it); and in
// normal state a DISCOVER only if the hash bucket assignment gives the
// client to this server, unless the client's secs exceed
// load-balance-max-seconds (0 turns load balancing off, ISC's default) or
// the partner has no free lease left in the pool (ISC answers anyway:
// "cancel load balance … no free leases"). Other messages are never load
// balanced: a REQUEST's ownership is decided by MayReuse.
func (n *Node) Serve(now int64, p *lease.Pool, key lease.ClientKey, msg dhcpv4.MessageType, secs uint16) bool {
	if p.FailoverPeer != n.name {
		return true
	}
	svc := n.service()
	switch svc {
	case notResponding, serviceStartup:
		return false
	}
	if msg == dhcpv4.MessageTypeDiscover && svc == cooperating && !n.LoadBalanceMine(key, secs) {
		return p.Count(n.peerFree()) == 0
	}
	return true
}

// LoadBalanceMine is ISC's load_balance_mine (fw §8): whether this server
// serves the client by the hash bucket assignment. The key is the client
// identifier if the client sent one, else its hardware address without
// the type byte. A set HBA bit belongs to the primary.
func (n *Node) LoadBalanceMine(key lease.ClientKey, secs uint16) bool {
	if max := n.cfg.LoadBalanceMaxSeconds; max == 0 || uint32(secs) > max {
		return true
	}
	if !n.hasHBA {
		return false // the secondary has not learned the HBA yet
	}
	k := key.HAddr
	if key.ClientID != "" {
		k = key.ClientID
	}
	primary := wire.PrimaryServes(&n.hba, wire.LoadBalanceBucket([]byte(k)))
	if n.role == config.Primary {
		return primary
	}
	return !primary
}

// AllocState is the binding state this server allocates new leases from:
// FREE on the primary, BACKUP on the secondary (draft §5.4), or StateNone
// in a state without service.
func (n *Node) AllocState(now int64, p *lease.Pool) lease.BindingState {
	if p.FailoverPeer != n.name {
		return lease.Free
	}
	switch n.service() {
	case notResponding, serviceStartup:
		return lease.StateNone
	}
	if now < n.ownFreeAt {
		return lease.StateNone
	}
	return n.ownFree()
}

// PartnerAllocState is the partner's free state (BACKUP on the primary,
// FREE on the secondary) while this server is in partner-down, else
// StateNone. In partner-down a server may allocate from the partner's
// free leases too, each only once MayReuse allows it (STOS+MCLT, fw §11);
// a handler that has run out of AllocState leases should try these with
// MayReuse as the filter, as ISC's allocate_lease does.
func (n *Node) PartnerAllocState(now int64, p *lease.Pool) lease.BindingState {
	if p.FailoverPeer != n.name || n.service() != servicePartnerDown ||
		n.link.communicating && (recovering(n.partner) || n.partner == stRecoverDone) {
		return lease.StateNone
	}
	return n.peerFree()
}

// MayReuse is ISC's lease_mine_to_reallocate (fw §11): may this server give
// the non-active lease l to a client now?
//
//   - Our own free state (FREE on the primary, BACKUP on the secondary) and
//     ABANDONED as FREE: always, in a state with service.
//   - The partner's free state: only in partner-down, once MCLT has passed
//     since the later of entering partner-down and the potential expiry
//     the partner acknowledged.
//   - EXPIRED and RELEASED: at once if the partner never heard the lease
//     left our free state (rewind state), else like RESET.
//   - RESET (and the above): only in partner-down, after the wait of
//     reclaimTime.
func (n *Node) MayReuse(now int64, p *lease.Pool, l *lease.Lease) bool {
	if p.FailoverPeer != n.name {
		return l.State == lease.Free || l.State == lease.Backup
	}
	svc := n.service()
	if svc == notResponding || svc == serviceStartup {
		return false
	}
	switch l.State {
	case lease.Free, lease.Abandoned:
		if n.role == config.Primary {
			return now >= n.ownFreeAt
		}
		return n.partnerPoolUsable(now, l)
	case lease.Backup:
		if n.role == config.Secondary {
			return now >= n.ownFreeAt
		}
		return n.partnerPoolUsable(now, l)
	case lease.Expired, lease.Released:
		if l.Rewind == n.ownFree() {
			return true
		}
		fallthrough
	case lease.Reset:
		return svc == servicePartnerDown && now >= n.reclaimTime(l)
	}
	return false
}

// partnerPoolUsable: in partner-down, a lease free on the partner's side
// may be used after max(STOS, tsfp) + MCLT (ISC lease_mine_to_reallocate;
// draft §5.2.2). atsfp counts too: a short grant lowers tsfp below what
// the partner was acknowledged, and may have used (fw §11).
func (n *Node) partnerPoolUsable(now int64, l *lease.Lease) bool {
	if n.service() != servicePartnerDown {
		return false
	}
	if n.link.communicating && (recovering(n.partner) || n.partner == stRecoverDone) {
		// The partner is taking our database and will treat its free
		// leases as its own once done; a grant racing that transfer (or
		// our STATE normal) could reach it too late.
		return false
	}
	return now > max(n.stos, l.TSFP, l.ATSFP)+int64(n.mclt)
}

// reclaimTime is when a transitional lease (EXPIRED, RELEASED, RESET)
// becomes free in partner-down: MCLT after the later of entering
// partner-down and the potential expiries either side acknowledged, and
// not before the lease ended. The partner may have extended the client up
// to MCLT beyond the potential expiry it was acknowledged (draft §5.2.2,
// §9.4.2). ISC uses STOS+MCLT alone (it overwrites tsfp on entering
// partner-down, fw §12.3), which can be too early for a lease the partner
// extended just before it fell silent.
//
// A lease the partner never heard leave our free pool (its rewind state is
// our free state: we granted it out of contact) needs no wait beyond its
// end (draft §5.2.2: "it need not wait … as long as it has never
// communicated with the partner since the lease was given out").
func (n *Node) reclaimTime(l *lease.Lease) int64 {
	if l.Rewind == n.ownFree() {
		return l.Ends
	}
	return max(max(n.stos, l.TSFP, l.ATSFP, l.TSTP)+int64(n.mclt), l.Ends)
}

// GrantTime applies the MCLT rule (fw §11) to a grant of desired seconds
// and sets the lease's potential expiry to tell the partner: while the
// partner has acknowledged nothing beyond now, a grant is at most MCLT;
// otherwise at most MCLT beyond the acknowledged potential expiry tsfp.
// tstp becomes now + desired + granted/2, so that the renewal after the
// partner's ack may get the full desired time; if that lowers the
// potential expiry below tsfp, tsfp follows. The rule holds in every
// state, because updates are lazy. For an offer the handler passes a
// copy, so only the returned time matters.
func (n *Node) GrantTime(now int64, p *lease.Pool, l *lease.Lease, desired uint32) uint32 {
	if p.FailoverPeer != n.name {
		return desired
	}
	mclt := int64(n.mclt)
	t := int64(desired)
	if t > mclt {
		switch {
		case l.TSFP <= now:
			t = mclt
		case now+t > l.TSFP+mclt:
			t = l.TSFP - now + mclt
		}
	}
	if desired == math.MaxUint32 {
		l.TSTP = maxTime // an infinite lease (ISC INFINITE_TIME)
	} else {
		l.TSTP = min(now+int64(desired)+t/2, maxTime-1)
	}
	if l.TSTP < l.TSFP {
		l.TSFP = l.TSTP
	}
	return uint32(t)
}

// Released is the state a lease released by its client moves to: RELEASED,
// which becomes free once the partner acks it (fw §7.1).
func (n *Node) Released(p *lease.Pool) lease.BindingState {
	if p.FailoverPeer != n.name {
		return lease.Free
	}
	return lease.Released
}

// ExpiredState is the state an active lease of this relationship moves to
// when it runs out, for lease.DB.Expire: EXPIRED, which waits for the
// partner's ack (fw §7.1); or, out of contact, our own free state when the
// partner never heard the lease was taken (ISC's rewind, mdb.c pool_timer,
// which ISC applies in communications-interrupted; the same reasoning
// holds in partner-down).
func (n *Node) ExpiredState(l *lease.Lease) lease.BindingState {
	if _, p := n.db.Get(l.IP); p == nil || p.FailoverPeer != n.name {
		return lease.Free
	}
	if svc := n.service(); (svc == notCooperating || svc == servicePartnerDown) && l.Rewind == n.ownFree() {
		return n.ownFree()
	}
	return lease.Expired
}

// noteReclaim arms the partner-down timer for a transitional lease.
func (n *Node) noteReclaim(l *lease.Lease) {
	if at := n.reclaimTime(l); n.reclaimAt == 0 || at < n.reclaimAt {
		n.reclaimAt = at
	}
}

// scheduleReclaim frees, in partner-down, every transitional lease whose
// wait is over (ISC's pool timer moves them to FREE, fw §7.1) and arms the
// timer for the next one.
func (n *Node) scheduleReclaim(now int64) {
	n.reclaimAt = 0
	if n.me != stPartnerDown {
		return
	}
	var due []uint32
	n.db.Each(func(l *lease.Lease, p *lease.Pool) {
		if p.FailoverPeer != n.name || !transitional(l.State) {
			return
		}
		if n.reclaimTime(l) <= now {
			due = append(due, l.IP)
		} else {
			n.noteReclaim(l)
		}
	})
	for _, ip := range due {
		n.update(ip, func(l *lease.Lease) {
			l.State, l.Next = lease.Free, lease.StateNone
			l.ATSFP = 0
		})
		n.queueUpdate(now, ip)
	}
}
