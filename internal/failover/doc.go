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
// The node runs the link protocol too: CONNECT/CONNECTACK (fw §5), CONTACT
// keepalives every third of the peer's receive-timer and the receive
// timeout of max-response-delay (fw §6), so that xids come from one counter
// per link, as ISC's do (fw §1). The transport (internal/peer) only moves
// framed messages and reports LinkUp/LinkDown.
package failover
