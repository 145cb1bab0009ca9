// Package failover is the failover state machine of one relationship (one
// dhcpd.conf "failover peer" block), as ISC dhcpd 4.4 runs it and as
// draft-ietf-dhc-failover-12 ("draft §x.y") describes it. The facts it
// follows, with ISC source references, are in
// shared/reference/failover-wire.md ("fw §x").
//
// The package is pure, in the style of etcd's raft: it opens no sockets,
// starts no goroutines, reads no clock and draws no random numbers. The
// caller feeds it the time and events with [Node.Step] and collects the
// effects with [Node.Ready]:
//
//	n, _ := failover.NewNode(failover.NodeConfig{Peer: peer, DB: db, State: rec, Now: now})
//	for {
//		n.Step(now, ev)             // LinkUp, MessageReceived, Tick, LeaseChanged …
//		rd := n.Ready()
//		persist(rd.StateRecord)     // 1. the failover state, and every dirty lease of the DB
//		send(rd.Messages)           // 2. then tell the peer
//		if rd.CloseLink != nil { closeLink() }
//		wakeAt(rd.NextTimer)        // 3. Tick no later than this
//	}
//
// Persist before you tell (design.md, "How data flows"): the node changes
// leases in the lease.DB (binding updates from the peer, pool balancing,
// acknowledged expiries, the rewind state before a BNDUPD leaves) and lists
// them in Ready.Leases; they are also dirty in the DB. The caller must make
// them and Ready.StateRecord durable before it sends Ready.Messages, so that
// a BNDACK or a STATE never promises something a crash would forget (ISC
// commits the lease file before it acks, fw §4.2, and before it acts on a
// state change, fw §12).
//
// The node also implements the DHCP handler's failover policy (dhcp.Policy):
// the handler asks it whether to answer a client (load balancing, service
// state, fw §7.2, §8), which pool state to allocate from, whether a lease
// may be reused (ISC lease_mine_to_reallocate, fw §11) and how long a lease
// may be granted (the MCLT rule, fw §11). After the handler changed a lease
// of this relationship, the caller reports it with [LeaseChanged] so that a
// binding update is queued for the peer.
//
// Where Tandem departs from ISC dhcpd 4.4, it is to keep design.md's
// invariants (no address bound twice, whatever fails) or to avoid states
// ISC never leaves; on the wire every message stays one ISC accepts:
//
//   - No shutdown or process exit on a partner state the table does not
//     expect (fw §12.2, §14 item 16): the node picks a state without
//     service and lets the protocol converge (see reactToPeer). A garbled
//     partner state closes the link instead of forcing shutdown.
//   - Partner-down reclaims an expired or released lease MCLT after the
//     latest of entering partner-down and the potential expiries either
//     side sent or acknowledged (draft §5.2.2, §9.4.2); ISC waits from
//     STOS alone. BNDUPD's potential-expiration-time is the later of tstp
//     and tsfp, so that the partner keeps knowing what it acknowledged.
//   - A server started without a lease file recovers with UPDREQALL only,
//     and stays in recover-wait until MCLT past the potential expiries its
//     partner reports, not just STOS+MCLT: it may have granted leases that
//     long before it lost its file. While either side recovers, acks and
//     binding updates free nothing. Until that recovery reaches
//     recover-wait, the lease file gets no state record, so that a crash
//     in recover restarts as a lost database again.
//   - A binding that has not ended is never freed by the partner's older
//     news: a release crossing a renewal (a release must be later than the
//     last transaction by more than the clock skew CONNECT allows), an
//     expiry the local clock does not see yet, another client's stale
//     binding (within the skew the primary's binding stands, as in ISC's
//     duels), a decline of an address declined and bound again here, a
//     decline that is not later than our binding both by the raw
//     timestamps and corrected by the clock offset the link measured. It
//     also wins a duel against such news, and two grants to the same
//     client merge to the later end. A refused update is answered with the
//     node's own binding, so the two databases converge (except for an
//     early expiry, which would bounce until the clocks agree).
//   - A record with no history (an address never used, as a server that
//     lost its lease file describes all of them) never wins a duel nor
//     erases a known binding while either side recovers.
//   - UPDDONE goes after the last BNDACK (draft §7.5), and a refusal of an
//     older update leaves the one in flight for the same lease alone.
//   - Waits ISC never ends are ended: a recovering server asks a partner in
//     recover-wait or recover-done for updates; recover-done joins a
//     partner in conflict resolution; coming back to recover-wait or
//     recover-done and finding the partner in partner-down, a server
//     recovers again (draft §9.3.2 step 5).
//   - Pool balancing has no random delay, gives leases away (MAC affinity
//     included) only in normal, and runs at once (within min-balance)
//     when one side's share falls below the panic line.
//   - Updates in flight are sent again after every link loss, not only
//     after some state changes, and in normal and partner-down queued
//     updates go as soon as the partner's STATE arrives. A partner-down
//     server joins a recovered partner in normal only once its updates
//     are acked, uses none of the partner's free leases while the partner
//     recovers, and UPDDONE also covers updates queued meanwhile.
//   - A server that goes to partner-down from startup (restarting into
//     it, forced there, or meeting a partner that recovers) or from
//     recover, recover-wait or recover-done (forced there before it caught
//     up) starts the MCLT wait again, for the partner's free leases and
//     for its own: the partner may have been in partner-down and used
//     them meanwhile.
//
// The node runs the link protocol too: CONNECT/CONNECTACK (fw §5), CONTACT
// keepalives every third of the peer's receive-timer and the receive
// timeout of max-response-delay (fw §6), so that xids come from one counter
// per link, as ISC's do (fw §1). The transport (internal/peer) only moves
// framed messages and reports LinkUp/LinkDown.
package failover
