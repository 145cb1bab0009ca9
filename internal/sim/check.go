package sim

import (
	"fmt"
	"strings"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// hold records that client c believes in its address from now on (a new
// or extended binding) and checks I1 against every other client that
// believes in the same address.
//
// Two beliefs in one address are a violation when the later one began
// more than the skew margin before the earlier one ends (doc.go, I1).
func (s *Sim) hold(c *client) {
	list := s.holders[c.ip]
	keep := list[:0]
	present := false
	for _, j := range list {
		o := s.clients[j]
		if o.ip != c.ip || o.end <= s.now {
			continue // no longer believes: forget it
		}
		keep = append(keep, j)
		if o == c {
			present = true
			continue
		}
		older, newer := o, c
		if c.holdFrom < o.holdFrom {
			older, newer = c, o
		}
		if newer.holdFrom < older.end-s.margin*1000 {
			s.fail("I1", "%s held by c%d (%s, since %s until %s, last ACK %s) and c%d (%s, since %s until %s, last ACK %s); skew margin %ds",
				lease.U32ToAddr(c.ip),
				older.idx, keyString(older.key), fmtMS(older.holdFrom-Epoch*1000), fmtMS(older.end-Epoch*1000), s.srvTag(older.srvID),
				newer.idx, keyString(newer.key), fmtMS(newer.holdFrom-Epoch*1000), fmtMS(newer.end-Epoch*1000), s.srvTag(newer.srvID),
				s.margin)
		}
	}
	if !present {
		keep = append(keep, c.idx)
	}
	s.holders[c.ip] = keep
}

// unhold: c no longer believes in its address.
func (s *Sim) unhold(c *client) {
	list := s.holders[c.ip]
	for i, j := range list {
		if j == c.idx {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.holders, c.ip)
	} else {
		s.holders[c.ip] = list
	}
}

func (s *Sim) srvTag(sid interface{ String() string }) string {
	for _, sv := range s.srv {
		if sv.addr.String() == sid.String() {
			return sv.tag
		}
	}
	return sid.String()
}

func keyString(k lease.ClientKey) string {
	if k.ClientID != "" {
		return fmt.Sprintf("id %x", k.ClientID)
	}
	return fmt.Sprintf("hw %x", k.HAddr)
}

// checkGrant checks one DHCPACK that server sv granted at its time now,
// in state st with STOS stos and MCLT mclt (all as before the request),
// on the lease before → after.
func (s *Sim) checkGrant(sv *server, now int64, st wire.ServerState, stos, mclt int64, before, after *lease.Lease) {
	ip := lease.U32ToAddr(after.IP)
	if after.State != lease.Active {
		s.fail("SIM", "%s ACKed %s but left it %s", sv.tag, ip, after.State)
		return
	}
	// I2: the MCLT rule (fw §11). The lease may end at most MCLT past
	// the later of now and the potential expiry the partner acknowledged.
	pdFree := st == wire.StatePartnerDown && now >= stos+mclt
	if bound := max(now, before.TSFP) + mclt; after.Ends > bound && !pdFree {
		s.fail("I2", "%s (%s) granted %s until %d = now%+d, beyond max(now, tsfp %d) + MCLT %d = %d (by %d s)",
			sv.tag, st, ip, after.Ends, after.Ends-now, before.TSFP, mclt, bound, after.Ends-bound)
		return
	}
	// I2: that acknowledged potential expiry must be one the partner
	// really recorded, or the bound above means nothing.
	if after.Ends > now+mclt && !pdFree {
		partner := s.srv[1-sv.idx]
		if k := partner.known[after.IP]; before.TSFP > k {
			s.fail("I2", "%s granted %s until now%+d on the strength of tsfp %d, but %s never had more than %d on disk for it",
				sv.tag, ip, after.Ends-now, before.TSFP, partner.tag, k)
			return
		}
	}
	// I4: the partner's free addresses only in partner-down, MCLT after
	// entering it (and after the potential expiry the partner
	// acknowledged), and only when the partner has really not been
	// serving for MCLT.
	peerFree := lease.Backup
	if sv.peer.Role == config.Secondary {
		peerFree = lease.Free
	}
	if before.State == peerFree || (before.State == lease.Abandoned && sv.peer.Role == config.Secondary) {
		switch {
		case st != wire.StatePartnerDown:
			s.fail("I4", "%s (%s) granted %s, which was %s (the partner's)", sv.tag, st, ip, before.State)
		case now <= max(stos, before.TSFP)+mclt:
			s.fail("I4", "%s granted the partner's %s (%s) at %d, before max(STOS %d, tsfp %d) + MCLT %d",
				sv.tag, ip, before.State, now, stos, before.TSFP, mclt)
		default:
			partner := s.srv[1-sv.idx]
			if s.servingOwnPool(partner) {
				s.fail("I4", "%s granted the partner's %s (%s) while %s is up in %s", sv.tag, ip, before.State, partner.tag, partner.node.State())
			} else if s.now < partner.lastServing+mclt*1000-s.margin*1000 {
				s.fail("I4", "%s granted the partner's %s (%s) %d ms after %s last served (MCLT %d s)",
					sv.tag, ip, before.State, s.now-partner.lastServing, partner.tag, mclt)
			}
		}
	}
}

// checkDurable is I3, at the moment sv crashes: every lease whose latest
// ACK came from sv and has not ended must be on its disk, for the same
// client, ending no earlier.
func (s *Sim) checkDurable(sv *server) {
	now := s.srvNow(sv)
	for _, c := range s.clients {
		a := &c.lastAck
		if !c.hasLastAck || a.srv != sv.idx || a.disk != sv.diskGen || now+s.margin >= a.ends {
			continue
		}
		d, ok := sv.disk[a.ip]
		switch {
		case !ok:
			s.fail("I3", "%s crashed; its ACK of %s to c%d (until %d) is not on disk", sv.tag, lease.U32ToAddr(a.ip), c.idx, a.ends)
		case !d.Owns(a.key):
			s.fail("I3", "%s crashed; its ACK of %s to c%d is on disk for another client (%s, %s)", sv.tag, lease.U32ToAddr(a.ip), c.idx, keyString(lease.KeyOf(&d)), d.State)
		case d.Ends < a.ends:
			s.fail("I3", "%s crashed; its ACK of %s to c%d until %d is on disk only until %d (%s)", sv.tag, lease.U32ToAddr(a.ip), c.idx, a.ends, d.Ends, d.State)
		}
		if s.violation != nil {
			return
		}
	}
}

// quiescent reports whether the pair is in normal-normal with nothing
// queued, unacknowledged, unsynced or in flight: the moment to compare
// the databases (I5).
func (s *Sim) quiescent() bool {
	if s.inflight != 0 || s.link == nil || s.partition {
		return false
	}
	for _, sv := range s.srv {
		if !sv.up || sv.stopping || len(sv.pending) > 0 ||
			sv.node.State() != wire.StateNormal || sv.node.PartnerState() != wire.StateNormal {
			return false
		}
	}
	for _, sv := range s.srv {
		st := sv.node.Status()
		if st.State != wire.StateNormal || st.PartnerState != wire.StateNormal || !st.Communicating ||
			st.UpdatesQueued != 0 || st.UpdatesUnacked != 0 {
			return false
		}
	}
	return true
}

// compare is I5: both databases agree on every address, except those in
// the middle of expiring. It returns the differences found.
func (s *Sim) compare() []string {
	p, q := s.srv[0], s.srv[1]
	np, nq := s.srvNow(p), s.srvNow(q)
	w := s.margin + 5
	expiring := func(l *lease.Lease, now int64) bool {
		return (l.State == lease.Active || l.State == lease.Expired) && l.Ends > now-w && l.Ends < now+w
	}
	var diffs []string
	p.db.Each(func(la *lease.Lease, _ *lease.Pool) {
		lb, _ := q.db.Get(la.IP)
		if lb == nil {
			diffs = append(diffs, fmt.Sprintf("%s only on p", lease.U32ToAddr(la.IP)))
			return
		}
		if expiring(la, np) || expiring(lb, nq) {
			return
		}
		same := la.State == lb.State
		if same && la.State == lease.Active {
			// Both servers may have answered the same REQUEST (a
			// broadcast INIT-REBOOT or REBINDING), each computing the
			// end on its own clock: the same instant, written down
			// apart by the skew.
			d := la.Ends - lb.Ends
			same = lease.KeyOf(la) == lease.KeyOf(lb) && d <= s.margin && d >= -s.margin
		}
		if !same {
			diffs = append(diffs, fmt.Sprintf("%s: p %s / s %s", lease.U32ToAddr(la.IP), leaseLine(la, np), leaseLine(lb, nq)))
		}
	})
	return diffs
}

func leaseLine(l *lease.Lease, now int64) string {
	var b strings.Builder
	b.WriteString(l.State.String())
	if l.HasClient() {
		k := lease.KeyOf(l)
		fmt.Fprintf(&b, " id %x hw %d/%x", k.ClientID, k.HType, k.HAddr)
	}
	rel := func(t int64) string {
		if t == 0 {
			return "0"
		}
		if t == lease.Never {
			return "never"
		}
		return fmt.Sprintf("now%+d", t-now)
	}
	fmt.Fprintf(&b, " ends %s tstp %s tsfp %s atsfp %s", rel(l.Ends), rel(l.TSTP), rel(l.TSFP), rel(l.ATSFP))
	return b.String()
}
