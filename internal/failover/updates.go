package failover

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// maxTime is ISC's MAX_TIME: the lease end of a lease that never expires,
// and the potential expiry of an infinite grant (includes/dhcpd.h).
const maxTime = 0x7fffffff

// recovering reports whether a server in state s is rebuilding its
// database from its partner (and may have lost grants it made).
func recovering(s wire.ServerState) bool { return s == stRecover || s == stRecoverWait }

// transitional reports whether s waits for the partner's ack before the
// address is free again (fw §7.1).
func transitional(s lease.BindingState) bool {
	return s == lease.Expired || s == lease.Released || s == lease.Reset
}

// leaseChanged is the LeaseChanged event: queue a BNDUPD, as ISC's
// supersede_lease does for every change it makes on behalf of a client
// (fw §4.5).
func (n *Node) leaseChanged(now int64, ip uint32) error {
	l, p := n.db.Get(ip)
	if l == nil {
		return fmt.Errorf("failover: %s is in no pool", addrOf(ip))
	}
	if p.FailoverPeer != n.name {
		return nil
	}
	if n.isRecent(l) {
		// The caller reported a lease the node itself just set from
		// the partner's data; sending it back would only echo.
		return nil
	}
	if n.role == config.Secondary && n.me == stNormal && l.State == lease.Expired && l.Rewind == lease.Active {
		// ISC's secondary leaves the expiry of active leases to the
		// primary while normal (mdb.c pool_timer): the primary's
		// EXPIRED update will come, and ISC's primary refuses an
		// expiry from the secondary (fw §4.2). If it has not come after
		// LateExpiry (the primary may hold the lease free already),
		// the secondary reports it after all.
		n.lateExpiry[ip] = now + LateExpiry
		return nil
	}
	if n.me == stPartnerDown && transitional(l.State) {
		n.noteReclaim(l)
	}
	// Remember an address declined here and bound again, until the
	// partner has our new binding: its report of the decline is old news
	// then (see receiveBindUpdate).
	switch l.State {
	case lease.Abandoned:
		n.declined[ip] = true
	case lease.Active:
		if n.declined[ip] {
			n.rebound[ip] = true
		}
		delete(n.declined, ip)
	default:
		delete(n.declined, ip)
	}
	n.queueUpdate(now, ip)
	n.starvationCheck(now, p)
	return nil
}

// LateExpiry is how long a secondary in normal waits for the primary to
// report the expiry of an active lease before it reports it itself: the
// clock skew CONNECT allows, plus ISC's ack delay and a margin.
const LateExpiry = MaxClockSkew + 2*AckDelay + 1

// reportLateExpiries queues the expiries the primary has not reported.
func (n *Node) reportLateExpiries(now int64) {
	var due []uint32
	for ip, at := range n.lateExpiry {
		if at <= now {
			due = append(due, ip)
		}
	}
	slices.Sort(due) // deterministic order: the simulator replays seeds
	for _, ip := range due {
		delete(n.lateExpiry, ip)
		if l, _ := n.mine(ip); l != nil && l.State == lease.Expired {
			n.queueUpdate(now, ip)
		}
	}
}

// queueUpdate puts a lease on the update queue and sends what the window
// allows (ISC dhcp_failover_queue_update with immediate set).
func (n *Node) queueUpdate(now int64, ip uint32) {
	if n.updates.Has(ip) {
		n.sendUpdates(now) // the queue may have waited for a link
		return
	}
	if n.acks.Remove(ip) {
		// Its BNDACK, if it ever comes, is for an older version.
		delete(n.sent, ip)
	}
	n.updates.PushBack(ip)
	n.sendUpdates(now)
}

// queueUnacked is ISC's dhcp_failover_generate_update_queue: queue every
// lease the partner may not know (tstp > atsfp), every transitional lease,
// or with all every lease of the relationship (fw §12.4). Tandem also
// queues a lease whose binding state differs from the last one the partner
// was told (its rewind state), which catches a decline or an operator's
// change made just before a crash.
func (n *Node) queueUnacked(all bool) {
	n.db.Each(func(l *lease.Lease, p *lease.Pool) {
		if p.FailoverPeer != n.name || n.updates.Has(l.IP) || n.acks.Has(l.IP) {
			return
		}
		if all || l.TSTP > l.ATSFP || transitional(l.State) || l.Rewind != lease.StateNone && l.Rewind != l.State {
			n.updates.PushBack(l.IP)
		}
	})
}

// window is how many BNDUPDs may await a BNDACK: the partner's
// max-unacked-bndupd (fw §4.5).
func (n *Node) window() int {
	if w := n.link.partnerMaxUnacked; w > 0 {
		return int(w)
	}
	return defaultPartnerMaxUnacked
}

// sendUpdates sends queued updates while the partner's window allows
// (ISC dhcp_failover_send_updates).
func (n *Node) sendUpdates(now int64) {
	if !n.link.established {
		return
	}
	// Acks first, so that our update for a lease the partner just sent
	// follows our ack of it.
	n.flushAcks(now)
	for n.acks.Len() < n.window() {
		ip, ok := n.updates.Front()
		if !ok {
			return
		}
		n.updates.Remove(ip)
		n.sendBindUpdate(now, ip)
	}
}

// sendBindUpdate sends one BNDUPD (ISC dhcp_failover_send_bind_update,
// fw §4.1) and puts the lease on the ack queue.
func (n *Node) sendBindUpdate(now int64, ip uint32) {
	l, _ := n.mine(ip)
	if l == nil {
		return
	}
	if n.link.xid == 0 {
		n.link.xid = 1 // a BNDUPD never has xid 0 (fw §1)
	}
	xid := n.nextXID()
	if l.Rewind != l.State {
		// The partner may act on this update even if its ack never
		// arrives, so the state we could rewind to moves on now, on
		// transmit (ISC does the same and commits it).
		l = n.update(ip, func(l *lease.Lease) { l.Rewind = l.State })
	}
	m := bindUpdate(l)
	m.XID = xid
	n.acks.PushBack(ip)
	n.sent[ip] = sentState{xid: xid, state: l.State, pe: potentialExpiry(l)}
	n.send(now, m)
}

// potentialExpiry is the potential-expiration-time sent for a lease: our
// tstp, or what the partner holds as acknowledged or sent to us (tsfp,
// atsfp) if that is later. ISC sends tstp alone; the later value keeps a partner
// that lost its lease file aware that its own lost grants may run until
// then plus MCLT (draft §7.1.5 lists the times a server must wait on; see
// recoverWaitUntil).
func potentialExpiry(l *lease.Lease) int64 { return max(l.TSTP, l.TSFP, l.ATSFP) }

// bindUpdate builds a BNDUPD with ISC's options (fw §4.1): the lease's
// state as binding-status, its start time in STOS (ISC's quirk, fw §14
// item 8), and the potential expiry.
func bindUpdate(l *lease.Lease) *wire.Message {
	m := &wire.Message{
		Type:          wire.MsgBndUpd,
		AssignedIP:    wire.Some(addrOf(l.IP)),
		BindingStatus: wire.Some(l.State),
	}
	if l.ClientID != "" {
		m.ClientID = wire.Some([]byte(l.ClientID))
	}
	if l.HLen > 0 {
		m.CHAddr = wire.Some(append([]byte{l.HType}, l.HAddr[:l.HLen]...))
	}
	m.LeaseExpiry = wire.Some(endsWire(l.Ends))
	m.PotentialExpiry = wire.Some(endsWire(potentialExpiry(l)))
	m.STOS = wire.Some(wireTime(l.Starts))
	if l.CLTT != 0 {
		m.CLTT = wire.Some(wireTime(l.CLTT))
	}
	var f wire.IPFlags
	if l.Flags&lease.FlagReserved != 0 {
		f |= wire.IPFlagReserved
	}
	if l.Flags&lease.FlagBootp != 0 {
		f |= wire.IPFlagBootp
	}
	if f != 0 {
		m.IPFlags = wire.Some(f)
	}
	return m
}

// endsWire puts a lease time on the wire; "never" is ISC's MAX_TIME.
func endsWire(t int64) uint32 {
	if t >= maxTime {
		return maxTime
	}
	return wireTime(t)
}

// endsFromWire reads a lease end; ISC's MAX_TIME and beyond mean never.
func endsFromWire(v uint32) int64 {
	if v >= maxTime {
		return lease.Never
	}
	return int64(v)
}

// rescind moves the ack queue back to the front of the update queue (ISC
// dhcp_failover_rescind_updates, fw §4.5): those updates go again.
func (n *Node) rescind() {
	var ips []uint32
	n.acks.Each(func(ip uint32) { ips = append(ips, ip) })
	for i := len(ips) - 1; i >= 0; i-- {
		n.updates.PushFront(ips[i])
	}
	n.acks.Clear()
	clear(n.sent)
}

// sendBindAck answers a BNDUPD: bare (only the address) when accepting, plus
// reject-reason and message when refusing. ISC misreads a BNDACK that
// carries a client-identifier, so nothing else goes in (fw §4.3, §4.4).
func (n *Node) sendBindAck(now int64, m *wire.Message, reject *wire.Reject) {
	ack := &wire.Message{Type: wire.MsgBndAck, XID: m.XID}
	if a, ok := m.AssignedIP.Get(); ok {
		ack.AssignedIP = wire.Some(a)
	}
	if reject != nil {
		ack.RejectReason = wire.Some(reject.Reason)
		ack.MessageText = wire.Some(reject.Text)
		what := "a binding update without an address"
		if a, ok := m.AssignedIP.Get(); ok {
			what = "the binding update for " + a.String()
		}
		n.logf(rejectLevel(reject.Reason), "failover peer %s: refusing %s: %s", n.name, what, reject.Text)
	}
	n.send(now, ack)
}

// rejectLevel is the log level of a refused binding update. A duel lost
// ("less critical") is the protocol settling two updates that crossed: a
// new pair's first full exchange has one per address, thousands of lines
// that are nobody's error. An "outdated" refusal is the protocol too (the
// refuser sends its newer binding next) but worth seeing. Anything else
// means the two servers disagree about the protocol and stays an error, as
// in ISC.
func rejectLevel(r wire.RejectReason) slog.Level {
	switch r {
	case wire.RejectLessCriticalInfo:
		return slog.LevelDebug
	case wire.RejectOutdatedBindInfo:
		return slog.LevelInfo
	}
	return slog.LevelError
}

// AckDelay is how long an accepted binding update may wait for its BNDACK:
// ISC batches positive acks and sends them when half the partner's window
// is pending, whenever it sends updates, or after 2 s (fw §4.2). Refusals
// go at once.
const AckDelay = 2

// queueAck holds the BNDACK accepting m (ISC dhcp_failover_queue_ack).
func (n *Node) queueAck(now int64, m *wire.Message) {
	ack := &wire.Message{Type: wire.MsgBndAck, XID: m.XID, AssignedIP: m.AssignedIP}
	n.toack = append(n.toack, ack)
	if len(n.toack) >= max(1, n.window()/2) {
		n.flushAcks(now)
		return
	}
	n.ackAt = now + AckDelay
}

// flushAcks sends the held BNDACKs.
func (n *Node) flushAcks(now int64) {
	for _, ack := range n.toack {
		n.send(now, ack)
	}
	n.toack = n.toack[:0]
	n.ackAt = 0
}

// receiveBindUpdate is ISC's dhcp_failover_process_bind_update (fw §4.2).
func (n *Node) receiveBindUpdate(now int64, m *wire.Message) {
	if !m.AssignedIP.Present || !m.BindingStatus.Present {
		n.sendBindAck(now, m, m.CheckBindingUpdate())
		return
	}
	a := m.AssignedIP.Value
	ip := lease.AddrToU32(a)
	l, p := n.db.Get(ip)
	if !a.Is4() || l == nil {
		n.sendBindAck(now, m, &wire.Reject{Reason: wire.RejectIllegalIPAddr, Text: "unknown IP address"})
		return
	}
	if p.FailoverPeer != n.name {
		n.sendBindAck(now, m, &wire.Reject{Reason: wire.RejectIllegalIPAddr, Text: "IP address is covered by a different failover relationship state"})
		return
	}
	status := m.BindingStatus.Value
	if status < lease.Free || status > lease.Backup {
		n.sendBindAck(now, m, &wire.Reject{Reason: wire.RejectMisc, Text: fmt.Sprintf("unknown binding state %d", uint8(status))})
		return
	}
	// Dueling updates: only a lease whose own update is in flight (fw §4.2).
	// Two grants to the same client do not compete: the client holds the
	// later one, and each side keeps the later end (see below).
	if n.acks.Has(ip) && !(status == lease.Active && l.State == lease.Active && sameClientAs(l, m)) {
		if n.localIsBetter(now, l, m) {
			n.sendBindAck(now, m, &wire.Reject{Reason: wire.RejectLessCriticalInfo, Text: "incoming update is less critical than outgoing update"})
			return
		}
		n.unqueueAck(now, ip)
	}
	if r := m.CheckBindingUpdate(); r != nil {
		n.sendBindAck(now, m, r)
		return
	}
	if pristineUpdate(m) && !l.Pristine() && (recovering(n.partner) || recovering(n.me)) {
		// A recovering partner's blank record would erase what we know
		// of the address (its potential expiry above all, which that
		// partner must wait for): keep ours and send it.
		n.sendBindAck(now, m, &wire.Reject{Reason: wire.RejectOutdatedBindInfo,
			Text: fmt.Sprintf("%s: outdated: a blank record over a known binding", a)})
		n.queueUpdate(now, ip)
		return
	}
	flags, _ := m.IPFlags.Get()
	if flags&wire.IPFlagReserved != 0 && l.State == n.ownFree() && l.Flags&lease.FlagReserved == 0 {
		n.sendBindAck(now, m, &wire.Reject{Reason: wire.RejectIPNotReserved, Text: "Address is not reserved."})
		return
	}
	if flags&wire.IPFlagBootp != 0 && l.State == n.ownFree() && l.Flags&lease.FlagBootp == 0 {
		n.sendBindAck(now, m, &wire.Reject{Reason: wire.RejectMisc, Text: "Address is not allocated to BOOTP."})
		return
	}
	pe := int64(m.PotentialExpiry.Value)
	// Transaction times are compared raw, as ISC does: a lease's CLTT
	// may come from either clock (ours, or the partner's in its
	// updates), so a correction for skew would mix them.
	inCLTT := int64(m.CLTT.Value)
	sameClient := status == lease.Active && l.State == lease.Active && sameClientAs(l, m)
	if l.State == lease.Active && l.Ends > now && status == lease.Active && !sameClient && l.CLTT != 0 &&
		(inCLTT < l.CLTT-MaxClockSkew || inCLTT <= l.CLTT+MaxClockSkew && n.role == config.Primary) {
		// Another client's binding, older than the one we hold; or too
		// close in time to tell, the clocks being up to MaxClockSkew
		// apart, and we are the primary (ISC's tie-break; the secondary
		// yields, so the two agree): ours stands, and the partner gets
		// it.
		n.sendBindAck(now, m, &wire.Reject{Reason: wire.RejectOutdatedBindInfo,
			Text: fmt.Sprintf("%s: outdated: we hold a more recent binding", a)})
		n.queueUpdate(now, ip)
		return
	}
	if l.State == lease.Active && l.Ends > now && status != lease.Active {
		// We hold a binding that has not ended. The partner may end it
		// only with news that is newer than ours: a release by the same
		// client after our last transaction with it, a decline or an
		// operator's reset. Anything else is about an older binding (our
		// renewal crossed it) or another client's, or an expiry our clock
		// does not see yet (ISC accepts one 65 s early, which under clock
		// skew frees an address its client still holds): it would take
		// the address from a client that holds it, so refuse it.
		var newer bool
		switch status {
		case lease.Abandoned, lease.Reset:
			// A decline comes right after the ACK, often in the same
			// second; an operator's reset is news too. Unless we told
			// the partner that very state and bound the address again
			// since (from the abandoned pool): then it is old news.
			//
			// The partner stamped its news with its own clock, and our
			// CLTT may come from either clock: the news must be later
			// both raw and corrected by the link's clock offset. A
			// stale decline taken for news frees an address a client
			// holds; a real one refused costs only the address's
			// use until the client's lease ends.
			newer = inCLTT >= l.CLTT && n.partnerTimeNotBefore(inCLTT, l.CLTT) &&
				l.Rewind != status && !n.rebound[ip]
		case lease.Released:
			// Clearly after our last transaction with the client even
			// if the partner's clock is ahead by all CONNECT allows: a
			// renewal here may otherwise have followed the release.
			newer = inCLTT > l.CLTT+MaxClockSkew && sameClientAs(l, m)
		}
		if !newer {
			n.sendBindAck(now, m, &wire.Reject{Reason: wire.RejectOutdatedBindInfo,
				Text: fmt.Sprintf("%s: outdated: our binding to the client runs until %d", a, l.Ends)})
			// Tell the partner our binding, unless it only expired this
			// very binding early (its clock is ahead): then it keeps
			// the lease EXPIRED, unusable, until our own expiry reaches
			// it, and bouncing the binding would make it expire it again
			// at once, a storm until the clocks agree.
			e, _ := m.LeaseExpiry.Get()
			if !(status == lease.Expired && sameClientAs(l, m) && endsFromWire(e) >= l.Ends) {
				n.queueUpdate(now, ip)
			}
			return
		}
	}
	var ok bool
	if n.me == stNormal {
		ok = normalTransitionOK(l, n.role, status, pe, now)
	} else {
		ok = conflictTransitionOK(l, status, now)
	}
	if !ok {
		n.sendBindAck(now, m, &wire.Reject{Reason: wire.RejectFatalConflict,
			Text: fmt.Sprintf("%s: invalid state transition: %s to %s", a, l.State, status)})
		// The partner's view of the lease is wrong; ISC leaves it so
		// (a refused update is not sent again). Tandem sends its own,
		// which the partner can accept, so that the two converge.
		n.queueUpdate(now, ip)
		return
	}
	stored := status
	if transitional(status) && !recovering(n.me) && !recovering(n.partner) {
		// The partner frees it on its side once we ack: it is FREE here
		// now (fw §4.2). While either side recovers, an ack is no
		// agreement (receiveBindAck): the lease stays transitional on
		// both until the recovery is over.
		stored = lease.Free
	}
	l = n.update(ip, func(l *lease.Lease) {
		before := lease.KeyOf(l)
		if c, ok := m.CHAddr.Get(); ok {
			if len(c) > 0 {
				l.SetHardware(c[0], c[1:])
			} else {
				l.SetHardware(0, nil)
			}
		} else if status == lease.Abandoned {
			l.SetHardware(0, nil)
		}
		if id, ok := m.ClientID.Get(); ok {
			l.ClientID = string(id)
		} else if status != lease.Reset && status != lease.Free && status != lease.Backup {
			// No client-identifier means the client sent none (fw §4.2).
			l.ClientID = ""
		}
		if lease.KeyOf(l) != before || status == lease.Abandoned {
			l.Hostname = ""
		}
		// Times are taken raw, as ISC does: it applies no clock-skew
		// correction (fw §1, §4.2).
		if v, ok := m.STOS.Get(); ok {
			l.Starts = int64(v)
		}
		if v, ok := m.LeaseExpiry.Get(); ok {
			if e := endsFromWire(v); !sameClient || e > l.Ends {
				// The same client's lease only grows: it holds the
				// later of the two grants (draft §7.1.5 on
				// lease-expiration-time; ISC takes the partner's).
				l.Ends = e
			}
		}
		if m.PotentialExpiry.Present {
			l.TSFP, l.ATSFP = pe, pe
		}
		// ISC ignores the CLTT of a BNDUPD except to settle dueling
		// updates; keeping it makes the next duel fair and the lease
		// file truthful.
		if v, ok := m.CLTT.Get(); ok && (!sameClient || int64(v) > l.CLTT) {
			l.CLTT = int64(v)
		}
		l.Flags &^= lease.FlagReserved | lease.FlagBootp
		if flags&wire.IPFlagReserved != 0 {
			l.Flags |= lease.FlagReserved
		}
		if flags&wire.IPFlagBootp != 0 {
			l.Flags |= lease.FlagBootp
		}
		l.State = stored
		// We can no longer rewind behind what the partner holds.
		l.Rewind = stored
		l.Next = lease.StateNone
		if stored == lease.Active {
			l.Next = lease.Expired
		}
	})
	if l == nil {
		return
	}
	n.queueAck(now, m)
	// MAC affinity: the primary hands a freed lease to the secondary when
	// the secondary would serve its last client (fw §4.2, §9). Only in
	// normal, as balancing: ISC also does it while recovering, when what
	// it holds as free may still be in use by a grant it lost.
	if n.me == stNormal && transitional(status) && n.role == config.Primary && l.Flags&(lease.FlagReserved|lease.FlagBootp) == 0 &&
		n.peerWantsLease(l) && n.secondaryNotHoarding(p) {
		n.giveAway(now, ip)
		n.sendUpdates(now)
	}
	if n.me == stPartnerDown && transitional(l.State) {
		n.noteReclaim(l)
	}
	n.starvationCheck(now, p)
}

// partnerTimeNotBefore reports whether the partner's time t (its clock)
// is, corrected by the link's clock offset, no earlier than our time ours,
// give or take the second both round to.
func (n *Node) partnerTimeNotBefore(t, ours int64) bool {
	if !n.link.hasClockOffset {
		return true
	}
	return t-n.link.clockOffset >= ours-1
}

// sameClientAs reports whether the BNDUPD m names the client lease l
// records (by client identifier when either has one, else hardware
// address).
func sameClientAs(l *lease.Lease, m *wire.Message) bool {
	id, hasID := m.ClientID.Get()
	if l.ClientID != "" || hasID {
		return hasID && string(id) == l.ClientID
	}
	c, ok := m.CHAddr.Get()
	return ok && len(c) > 1 && l.HLen > 0 && c[0] == l.HType && string(c[1:]) == string(l.HAddr[:l.HLen])
}

// pristineUpdate reports whether a BNDUPD carries no history: a free
// address never given to anyone, as a server that lost its lease file
// describes every address.
func pristineUpdate(m *wire.Message) bool {
	s := m.BindingStatus.Value
	return (s == lease.Free || s == lease.Backup) && !m.CHAddr.Present && !m.ClientID.Present &&
		m.PotentialExpiry.Value == 0 && m.LeaseExpiry.Value == 0 && m.CLTT.Value == 0
}

// localIsBetter is ISC's failover_lease_is_better: true when our update in
// flight should win over the partner's (fw §4.2). A record with no history
// loses to one with history whatever the roles (ISC decides by role): it
// may come from a server that lost its lease file, and the other record
// holds the potential expiry that server must wait for.
func (n *Node) localIsBetter(now int64, l *lease.Lease, m *wire.Message) bool {
	switch pl, pm := l.Pristine(), pristineUpdate(m); {
	case pl && !pm:
		return false
	case pm && !pl:
		return true
	}
	local := l.State
	if s, ok := n.sent[l.IP]; ok {
		local = s.state
	}
	in := m.BindingStatus.Value
	cltt := int64(m.CLTT.Value)
	if local == lease.Active && l.Ends > now && in != lease.Active {
		// A binding that runs beats anything that would end it while
		// both updates cross: the partner's news left before ours
		// reached it (ISC lets an expiry, and the primary's anything,
		// win here).
		return true
	}
	if local == lease.Active {
		switch {
		case in == lease.Active:
			if cltt != l.CLTT {
				return cltt < l.CLTT
			}
			return n.role == config.Primary
		case in == lease.Expired:
			return false
		}
	}
	if in == lease.Active {
		return false
	}
	return n.role == config.Primary
}

// normalTransitionOK is ISC's normal_binding_state_transition_check
// (fw §4.2): may the partner move lease l to state in while normal? pe is
// the update's potential expiry.
func normalTransitionOK(l *lease.Lease, role config.Role, in lease.BindingState, pe, now int64) bool {
	if in == l.State {
		return true
	}
	switch l.State {
	case lease.Active:
		if role == config.Primary {
			// The secondary may not change an active lease, except that
			// the client may release or decline it there; Tandem also
			// takes its expiry once the lease has ended here too (see
			// LateExpiry).
			return in == lease.Released || in == lease.Abandoned || in == lease.Expired && l.Ends <= now
		}
		switch in {
		case lease.Free, lease.Backup:
			// Not before the partner agrees it expired (ISC), nor while
			// our client's lease runs: a primary whose database is
			// behind ours must not free a live binding (Tandem's
			// stricter rule; ISC checks the potential expiry only).
			return pe <= now && l.Ends <= now
		case lease.Expired:
			// 65 s: the clock skew CONNECT allows, plus a margin.
			return l.Ends-65 <= now
		}
		return true
	case lease.Expired, lease.Reset:
		if in == lease.Free || in == lease.Backup {
			return pe <= now
		}
	}
	// FREE, ABANDONED, RELEASED and BACKUP may become anything.
	return true
}

// conflictTransitionOK is ISC's conflict_binding_state_transition_check,
// used in every state but normal: a lease we hold active is not taken
// back to free by the partner, nor expired early.
func conflictTransitionOK(l *lease.Lease, in lease.BindingState, now int64) bool {
	if in == l.State || l.State != lease.Active {
		return true
	}
	switch in {
	case lease.Free, lease.Backup:
		return false
	case lease.Expired:
		return l.Ends-65 <= now
	}
	return true
}

// receiveBindAck is ISC's dhcp_failover_process_bind_ack (fw §4.4).
func (n *Node) receiveBindAck(now int64, m *wire.Message) {
	a, ok := m.AssignedIP.Get()
	if !ok || !a.Is4() {
		n.logf(slog.LevelWarn, "failover peer %s: BNDACK without an IPv4 assigned-IP-address", n.name)
		return
	}
	ip := lease.AddrToU32(a)
	l, p := n.mine(ip)
	if l == nil {
		n.logf(slog.LevelInfo, "bind update on %s got ack from %s: no such lease.", a, n.name)
		return
	}
	if r, ok := m.RejectReason.Get(); ok {
		n.logf(rejectLevel(r), "bind update on %s from %s rejected: %s", a, n.name, m.MessageText.Or(r.String()))
		// ISC does not send it again (fw §4.4, §14 item 9). A refusal of
		// an older update leaves the one now in flight alone (ISC drops
		// whatever is queued for the address).
		if s, ok := n.sent[ip]; ok && s.xid == m.XID {
			n.unqueueAck(now, ip)
		}
		n.ackedLast(now, ip)
		n.sendUpdates(now)
		n.ackedAll(now)
		return
	}
	s, ok := n.sent[ip]
	if !ok {
		// A duplicate, or the ack of an update since superseded.
		n.ackedLast(now, ip)
		return
	}
	if s.xid != m.XID {
		n.logf(slog.LevelInfo, "bind update on %s got ack from %s: xid mismatch.", a, n.name)
		return
	}
	// The partner now holds what we sent as this lease's potential
	// expiry. A BNDACK's own potential-expiration-time is ignored: ISC
	// sends bare acks, and its test for the option is broken (fw §4.4).
	pe := s.pe
	affinity := false
	// A partner still recovering its database acks without knowing what
	// it granted before it may have lost it, so its ack frees nothing: the
	// lease stays transitional (as the partner stores it, see
	// receiveBindUpdate) and goes again, to be freed by the ack, once the
	// partner has recovered; or partner-down's reclaim frees it. ISC frees
	// it at once.
	unsafeAck := recovering(n.partner)
	if transitional(s.state) && l.State == s.state && !unsafeAck {
		to := lease.Free
		if n.role == config.Secondary && l.Flags&lease.FlagReserved != 0 {
			to = lease.Backup
		}
		l = n.update(ip, func(l *lease.Lease) {
			l.TSFP, l.ATSFP = pe, pe
			l.State, l.Rewind, l.Next = to, to, lease.StateNone
		})
		affinity = n.me == stNormal && n.role == config.Primary && l.Flags&(lease.FlagReserved|lease.FlagBootp) == 0 && n.peerWantsLease(l)
	} else {
		n.update(ip, func(l *lease.Lease) { l.TSFP, l.ATSFP = pe, pe })
	}
	delete(n.rebound, ip) // the partner has our binding now
	n.unqueueAck(now, ip)
	n.ackedLast(now, ip)
	if affinity && n.secondaryNotHoarding(p) {
		n.giveAway(now, ip)
	}
	n.starvationCheck(now, p)
	n.sendUpdates(now)
	n.ackedAll(now)
}

// ackedAll moves a partner-down server waiting for its updates to reach
// a recovered partner on to normal (see receiveState).
func (n *Node) ackedAll(now int64) {
	if n.normalAfterAcks && n.me == stPartnerDown && n.partner == stRecoverDone &&
		n.updates.Len() == 0 && n.acks.Len() == 0 {
		n.setState(now, stNormal)
	}
}

// unqueueAck takes a lease off the ack queue.
func (n *Node) unqueueAck(now int64, ip uint32) {
	n.acks.Remove(ip)
	delete(n.sent, ip)
}

// ackedLast sends UPDDONE when a BNDACK (accepting or refusing) answered
// the last lease of an update request (ISC send_update_done, fw §12.4),
// unless that lease waits to be sent again. Updates queued since the
// request (a grant made meanwhile) go first: the partner leaves recovery
// on UPDDONE and must not miss them, so the mark moves to the new last.
func (n *Node) ackedLast(now int64, ip uint32) {
	if !n.updDone.active || n.updDone.last != ip || n.updates.Has(ip) {
		return
	}
	if last, ok := n.updates.Back(); ok {
		n.updDone.last = last
		return
	}
	if last, ok := n.acks.Back(); ok {
		n.updDone.last = last
		return
	}
	n.sendUpdateDone(now)
}

// sendUpdateRequest sends UPDREQ or UPDREQALL. While an UPDREQALL is
// unanswered a new UPDREQ asks for everything again (ISC curUPD).
func (n *Node) sendUpdateRequest(now int64, t wire.MessageType) {
	if !n.link.established {
		return
	}
	if t == wire.MsgUpdReq && (n.curUPD == wire.MsgUpdReqAll || n.lostDB) {
		// Still waiting for everything, or nothing of our own to
		// compare with: ask for everything.
		t = wire.MsgUpdReqAll
	}
	n.curUPD = t
	n.link.requested = true
	n.send(now, &wire.Message{Type: t, XID: n.nextXID()})
	if t == wire.MsgUpdReqAll {
		n.logf(slog.LevelInfo, "Sent update request all message to %s", n.name)
	} else {
		n.logf(slog.LevelInfo, "Sent update request message to %s", n.name)
	}
}

// receiveUpdateRequest answers UPDREQ / UPDREQALL: queue what the partner
// may lack (or everything) and send UPDDONE after the last ack (fw §12.4).
func (n *Node) receiveUpdateRequest(now int64, m *wire.Message, all bool) {
	what := "Update request"
	if all {
		what = "Update request all"
	}
	if n.updDone.active {
		n.logf(slog.LevelInfo, "Received update request while old update still flying!  Silently discarding old request.")
	}
	n.queueUnacked(all)
	n.updDone = updateRequest{xid: m.XID}
	// UPDDONE goes once every requested update has its BNDACK (draft
	// §7.5): after the ack of the last lease queued, or, when everything
	// is sent already (ISC then answers at once), of the last in flight.
	last, ok := n.updates.Back()
	if !ok {
		last, ok = n.acks.Back()
	}
	if ok {
		n.updDone.active, n.updDone.last = true, last
		n.sendUpdates(now)
		n.logf(slog.LevelInfo, "%s from %s: sending update", what, n.name)
		return
	}
	n.sendUpdateDone(now)
	n.logf(slog.LevelInfo, "%s from %s: nothing pending", what, n.name)
}

func (n *Node) sendUpdateDone(now int64) {
	n.send(now, &wire.Message{Type: wire.MsgUpdDone, XID: n.updDone.xid})
	n.updDone = updateRequest{}
	n.logf(slog.LevelInfo, "Sent update done message to %s", n.name)
}

// receiveUpdateDone is ISC's dhcp_failover_process_update_done (fw §12.4).
func (n *Node) receiveUpdateDone(now int64) {
	n.logf(slog.LevelInfo, "failover peer %s: peer update completed.", n.name)
	n.curUPD = 0
	switch n.me {
	case stPotentialConflict:
		if n.partner == stConflictDone {
			if n.role == config.Secondary {
				n.setState(now, stNormal)
			} else {
				// ISC shuts down. Both claim to be primary or the
				// partner is confused; no service in
				// potential-conflict is the safe place to wait.
				n.logf(slog.LevelError, "failover peer %s: secondary is in conflict-done after conflict resolution, which is illegal; staying in potential-conflict", n.name)
			}
		} else if n.role == config.Primary {
			n.setState(now, stConflictDone)
		} else {
			n.logf(slog.LevelError, "Spurious update-done message.")
		}
	case stConflictDone:
		n.logf(slog.LevelError, "Spurious update-done message.")
	case stRecover:
		if n.recoverWaitUntil(now) > now {
			n.setState(now, stRecoverWait)
		} else {
			n.setState(now, stRecoverDone)
		}
	}
}

// recoverWaitUntil is when recover-wait may end (draft §9.6, fw §12.4):
// MCLT after entering recover, so that leases this server granted before
// it lost its state can time out or reach the partner; nothing to wait
// for if both came up in recover (a new pair).
//
// A server that started without a lease file (lostDB) may have granted,
// before it lost it, leases running to MCLT beyond a potential expiry the
// partner acknowledged, which can be much later than STOS+MCLT. The
// partner's updates carry those potential expiries (a Tandem partner
// sends the later of tstp and tsfp; ISC sends tstp), so such a server
// waits until MCLT past the latest of them as well. This is longer than
// ISC's wait, and only happens after an empty lease file; the partner
// serves meanwhile (it is in partner-down or communications-interrupted).
func (n *Node) recoverWaitUntil(now int64) int64 {
	var until int64
	if n.partner != stRecover && n.partner != stRecoverDone {
		until = n.stos + int64(n.mclt)
	}
	if n.lostDB {
		n.db.Each(func(l *lease.Lease, p *lease.Pool) {
			if pe := max(l.TSFP, l.ATSFP); p.FailoverPeer == n.name && pe > 0 {
				until = max(until, pe+int64(n.mclt))
			}
		})
	}
	return until
}

// peerWantsLease is ISC's peer_wants_lease: would the partner serve the
// lease's last client by the hash bucket assignment (fw §8, §9)?
func (n *Node) peerWantsLease(l *lease.Lease) bool {
	if !n.hasHBA {
		return false
	}
	var key []byte
	switch {
	case l.ClientID != "":
		key = []byte(l.ClientID)
	case l.HLen > 0:
		key = l.HAddr[:l.HLen]
	default:
		return false
	}
	primary := wire.PrimaryServes(&n.hba, wire.LoadBalanceBucket(key))
	if n.role == config.Primary {
		return !primary
	}
	return primary
}

// secondaryNotHoarding is ISC's check before a MAC-affinity move: the
// secondary does not already hold more than its share (fw §9).
func (n *Node) secondaryNotHoarding(p *lease.Pool) bool {
	free, backup := p.Count(lease.Free), p.Count(lease.Backup)
	hold := ((free+backup)*int(n.cfg.MaxLeaseOwnership) + 50) / 100
	return (free-backup)/2 > -hold
}

// giveAway moves one of our free leases to the partner's free state and
// queues the update (pool balancing and MAC affinity, fw §9).
func (n *Node) giveAway(now int64, ip uint32) {
	to := n.peerFree()
	n.update(ip, func(l *lease.Lease) {
		l.State, l.Next = to, lease.StateNone
		l.TSTP, l.Starts = now, now
		l.ATSFP = 0 // ISC clears it on every change it propagates
	})
	if n.updates.PushBack(ip) {
		n.acks.Remove(ip)
		delete(n.sent, ip)
	}
}
