package failover

import (
	"log/slog"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// Pool balancing (ISC dhcp_failover_pool_dobalance and
// dhcp_failover_pool_check, fw §9): in normal state each server gives the
// other free addresses until both hold about half of the pool's FREE +
// BACKUP leases. The primary gives FREE leases away as BACKUP; ISC's
// secondary also gives BACKUP leases back as FREE, and so does Tandem's.

// poolShare is the arithmetic of one pool from this server's side.
type poolShare struct {
	own, peer int // leases in our and the partner's free state
	lts       int // leases to send: (own - peer) / 2
	total     int
	thresh    int // max-lease-misbalance of total
	hold      int // max-lease-ownership of total
	panicAt   int // lts below this means starving: ask with POOLREQ
}

func (n *Node) share(p *lease.Pool) poolShare {
	var s poolShare
	s.own, s.peer = p.Count(n.ownFree()), p.Count(n.peerFree())
	s.lts = (s.own - s.peer) / 2
	s.total = s.own + s.peer
	s.thresh = (s.total*int(n.cfg.MaxLeaseMisbalance) + 50) / 100
	s.hold = (s.total*int(n.cfg.MaxLeaseOwnership) + 50) / 100
	// Panic at twice the misbalance; with a threshold of 0 at -1, so that
	// POOLREQ goes on lts == -2 rather than at once (ISC).
	s.panicAt = -2 * s.thresh
	if s.panicAt == 0 {
		s.panicAt = -1
	}
	return s
}

// freeCounts returns the pool's FREE and BACKUP counts, as ISC logs them.
func freeCounts(p *lease.Pool) (free, backup int) {
	return p.Count(lease.Free), p.Count(lease.Backup)
}

// balance runs one balancing pass over the relationship's pools and
// returns how many leases it queued for the partner. sendreq is set when a
// pool starves (only timer-driven runs pass it: a POOLREQ never answers a
// POOLREQ, to avoid ping-pong).
func (n *Node) balance(now int64, sendreq *bool) int {
	if n.me != stNormal {
		return 0
	}
	n.lastBalance = now
	queued := 0
	n.pools(func(p *lease.Pool) {
		s := n.share(p)
		reqlog := ""
		if sendreq != nil && s.lts < s.panicAt {
			reqlog = "  (requesting peer rebalance!)"
			*sendreq = true
		}
		free, backup := freeCounts(p)
		n.logf(slog.LevelInfo, "balancing pool %x %s  total %d  free %d  backup %d  lts %d  max-own (+/-)%d%s",
			p.Index, p.Subnet, p.Size(), free, backup, s.lts, s.hold, reqlog)

		// Oldest first. Pass 1 gives the leases whose last client the
		// partner would serve (MAC affinity), up to hold in the
		// partner's favour; pass 2 gives any lease, used ones until we
		// keep hold more than half, never-used ones down to an even
		// split.
		cands := queueOrder(n.db, p, n.ownFree())
		lts := s.lts
		moved := make(map[uint32]bool)
		stopped := false
		for _, ip := range cands {
			if lts <= -s.hold {
				stopped = true
				break
			}
			l, _ := n.db.Get(ip)
			if l.State == n.ownFree() && n.peerWantsLease(l) {
				n.giveAway(now, ip)
				moved[ip] = true
				lts--
				queued++
			}
		}
		if !stopped {
			for _, ip := range cands {
				if moved[ip] {
					continue
				}
				l, _ := n.db.Get(ip)
				if l.State != n.ownFree() {
					continue
				}
				if l.Ends != 0 {
					if lts <= s.hold {
						break
					}
				} else if lts <= 0 {
					break
				}
				n.giveAway(now, ip)
				lts--
				queued++
			}
		}
		free, backup = freeCounts(p)
		if lts > s.thresh {
			n.logf(slog.LevelError, "IMBALANCED pool %x %s  total %d  free %d  backup %d  lts %d  max-misbal %d",
				p.Index, p.Subnet, p.Size(), free, backup, lts, s.thresh)
		} else {
			n.logf(slog.LevelInfo, "balanced pool %x %s  total %d  free %d  backup %d  lts %d  max-misbal %d",
				p.Index, p.Subnet, p.Size(), free, backup, lts, s.thresh)
		}
		n.poolCheck(now, p)
	})
	return queued
}

// queueOrder returns the addresses of pool p in state s, oldest first, the
// order in which the allocator would hand them out: the whole queue, as
// ISC's balancing walks the whole free list in one pass.
func queueOrder(db *lease.DB, p *lease.Pool, s lease.BindingState) []uint32 {
	var ips []uint32
	db.Queue(p, s, func(l *lease.Lease) bool {
		ips = append(ips, l.IP)
		return true
	})
	return ips
}

// queueHead returns the oldest lease of p in state s, or nil.
func queueHead(db *lease.DB, p *lease.Pool, s lease.BindingState) *lease.Lease {
	var head *lease.Lease
	db.Queue(p, s, func(l *lease.Lease) bool {
		head = l
		return false
	})
	return head
}

// poolCheck schedules the next rebalance of pool p (ISC
// dhcp_failover_pool_check, fw §9): when the misbalance may have grown
// large enough, judged by how long the oldest free lease of each side has
// been free, bounded by max-balance and by min-balance after the last run.
// ISC adds random()%5 seconds; this node stays deterministic. The timer
// only ever moves earlier.
func (n *Node) poolCheck(now int64, p *lease.Pool) {
	if n.me != stNormal {
		return
	}
	age := func(s lease.BindingState) int64 {
		if h := queueHead(n.db, p, s); h != nil && h.Ends < now {
			return now - h.Ends
		}
		return 0
	}
	mis := int64(n.cfg.MaxLeaseMisbalance)
	estFree := (age(lease.Free)*mis + 50) / 100
	estBackup := (age(lease.Backup)*mis + 50) / 100
	// The side that would panic first counts double.
	if n.ownFree() == lease.Free {
		estFree *= 2
	} else {
		estBackup *= 2
	}
	n.scheduleBalance(now + min(estFree, estBackup, int64(n.cfg.MaxBalance)))
}

// scheduleBalance arms the rebalance timer at t, no earlier than
// min-balance after the last run, and only if that is earlier than the
// time already armed.
func (n *Node) scheduleBalance(t int64) {
	if floor := n.lastBalance + int64(n.cfg.MinBalance); n.lastBalance != 0 && t < floor {
		t = floor
	}
	if n.balanceAt != 0 && t >= n.balanceAt {
		return
	}
	n.balanceAt = t
}

// poolCheckAll runs poolCheck on every pool (ISC
// dhcp_failover_state_pool_check: when the partner reaches normal).
func (n *Node) poolCheckAll(now int64) {
	n.pools(func(p *lease.Pool) { n.poolCheck(now, p) })
}

// starvationCheck rebalances soon when this server's share of pool p fell
// below the panic line, rather than when the age heuristic of poolCheck
// says: "peer holds all free leases" (anchors.md complaint 1) should not
// last while the partner has plenty. The run is timer-driven, so it sends
// POOLREQ if we are the starving side; min-balance still bounds the rate.
func (n *Node) starvationCheck(now int64, p *lease.Pool) {
	if n.me != stNormal {
		return
	}
	s := n.share(p)
	if s.lts < s.panicAt || s.lts > -s.panicAt {
		n.scheduleBalance(now)
	}
}

// sendPoolReq asks the partner to rebalance (fw §2, §9).
func (n *Node) sendPoolReq(now int64) {
	if !n.link.established {
		return
	}
	n.send(now, &wire.Message{Type: wire.MsgPoolReq, XID: n.nextXID()})
	n.logf(slog.LevelInfo, "failover peer %s: sent pool request", n.name)
}

// receivePoolReq rebalances at once and answers with how many leases were
// queued (ISC dhcp_failover_pool_reqbalance).
func (n *Node) receivePoolReq(now int64, m *wire.Message) {
	n.balanceAt = 0
	queued := n.balance(now, nil)
	n.send(now, &wire.Message{Type: wire.MsgPoolResp, XID: m.XID, AddressesTransferred: wire.Some(uint32(queued))})
	if queued > 0 {
		n.sendUpdates(now)
	} else {
		n.logf(slog.LevelInfo, "peer %s: Got POOLREQ, answering negatively!  Peer may be out of leases or database inconsistent.", n.name)
	}
}
