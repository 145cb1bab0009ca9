package failover

import (
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// linkUp starts a link: a fresh xid counter (fw §1) and, on the primary,
// CONNECT at once, whichever side dialled (fw §5).
func (n *Node) linkUp(now int64) {
	if n.link.up {
		n.linkLost(now, "replaced by a new connection")
	}
	n.link = link{up: true, upAt: now, lastSend: now, lastRecv: now}
	if n.role != config.Primary {
		return
	}
	xid := n.nextXID()
	n.link.connectXID = xid
	hba := n.hba
	n.send(now, &wire.Message{
		Type:             wire.MsgConnect,
		XID:              xid,
		RelationshipName: wire.Some(n.name),
		MaxUnacked:       wire.Some(n.cfg.MaxUnackedUpdates),
		ReceiveTimer:     wire.Some(n.cfg.MaxResponseDelay),
		VendorClass:      wire.Some(n.vendor),
		ProtocolVersion:  wire.Some(uint8(wire.ProtocolVersion)),
		TLSRequest:       wire.Some(uint8(0)),
		MCLT:             wire.Some(n.mclt),
		HBA:              wire.Some(hba[:]),
	})
}

// linkLost handles the end of the link: ISC's "disconnect" transition
// (fw §12.1).
func (n *Node) linkLost(now int64, reason string) {
	established := n.link.established
	n.link = link{}
	n.lostReason, n.lostAt = reason, now
	n.logf(slog.LevelInfo, "failover peer %s: disconnected (%s)", n.name, reason)
	// Whatever was in flight went down with the connection: send it again
	// on the next link (ISC rescinds only on some state changes, fw §4.5;
	// doing it on every loss keeps the ack window from clogging).
	n.rescind()
	n.updDone = updateRequest{}
	// Acks not sent are lost with the link; the partner sends those
	// updates again.
	n.toack, n.ackAt = n.toack[:0], 0
	if n.shuttingDown {
		n.finishShutdown(now)
		return
	}
	if !established {
		// A connection that never finished the handshake was never the
		// partner's: nothing changes (ISC ties a link to the
		// relationship only once CONNECT or CONNECTACK is accepted).
		return
	}
	if to, ok := disconnectTarget(n.me, n.saved); ok {
		n.setState(now, to)
	}
}

// closeLink drops the link after a protocol error or timeout: the caller
// closes the connection, and the node acts as if it were already gone.
func (n *Node) closeLink(now int64, reason string) {
	if !n.link.up {
		return
	}
	n.logf(slog.LevelError, "failover peer %s: closing the link: %s", n.name, reason)
	n.dropLink(now, reason)
}

// dropLink is closeLink after a line that already said why.
func (n *Node) dropLink(now int64, reason string) {
	if !n.link.up {
		return
	}
	n.rd.CloseLink = &CloseLink{Reason: reason}
	n.linkLost(now, reason)
}

// linkTimers: the handshake deadline, the receive timeout and CONTACT.
func (n *Node) linkTimers(now int64) {
	if !n.link.up {
		return
	}
	if !n.link.established {
		if now >= n.link.upAt+LinkStartupTimeout {
			n.closeLink(now, "link startup timeout")
		}
		return
	}
	// ISC closes the link, without DISCONNECT, when nothing arrived for
	// its own max-response-delay (fw §6, §14 item 11).
	if now >= n.link.lastRecv+int64(n.cfg.MaxResponseDelay) {
		// ISC's line, word for word (failover.c dhcp_failover_timeout).
		n.logf(slog.LevelError, "timeout waiting for failover peer %s", n.name)
		n.counts.ReceiveTimeouts++
		n.dropLink(now, "timeout")
		return
	}
	if now >= n.link.lastSend+n.contactInterval() {
		n.send(now, &wire.Message{Type: wire.MsgContact, XID: n.nextXID()})
	}
}

// contactInterval is a third of the partner's receive-timer: ISC sends
// CONTACT after that much send idleness (fw §6).
func (n *Node) contactInterval() int64 {
	rt := n.link.partnerReceiveTimer
	if rt == 0 {
		rt = config.DefaultMaxResponseDelay
	}
	if rt/3 == 0 {
		return 1
	}
	return int64(rt / 3)
}

// nextXID takes the link's next xid; ISC post-increments one counter per
// link for every request (fw §1).
func (n *Node) nextXID() uint32 {
	x := n.link.xid
	n.link.xid++
	return x
}

// send queues a message for the partner, stamped with this server's clock.
func (n *Node) send(now int64, m *wire.Message) {
	m.Time = wireTime(now)
	n.link.lastSend = now
	n.counts.Sent[msgIndex(m.Type)]++
	n.rd.Messages = append(n.rd.Messages, m)
}

// sendState tells the partner our state: the saved one with the STARTUP
// flag while starting up (fw §7.2), always with STOS (fw §2).
func (n *Node) sendState(now int64) {
	s, flags := n.me, wire.ServerFlags(0)
	if s == stStartup {
		s, flags = n.saved, wire.ServerFlagStartup
	}
	n.send(now, &wire.Message{
		Type:        wire.MsgState,
		XID:         n.nextXID(),
		ServerState: wire.Some(s),
		ServerFlags: wire.Some(flags),
		STOS:        wire.Some(wireTime(n.stos)),
	})
}

// skewOK reports whether the partner's clock, as stamped in m, is within
// MaxClockSkew of ours, and describes the difference for the log.
func skewOK(now int64, m *wire.Message) (string, bool) {
	d := int64(m.Time) - now
	return skewText(d), max(d, -d) <= MaxClockSkew
}

// skewText describes a partner clock d seconds ahead of ours.
func skewText(d int64) string {
	switch {
	case d > 0:
		return fmt.Sprintf("the partner's clock is %d s ahead of ours", d)
	case d < 0:
		return fmt.Sprintf("the partner's clock is %d s behind ours", -d)
	}
	return "the partner's clock agrees with ours"
}

// receive dispatches one message from the partner.
func (n *Node) receive(now int64, m *wire.Message) {
	n.link.lastRecv = now
	n.counts.Received[msgIndex(m.Type)]++
	if off := int64(m.Time) - now; !n.link.hasClockOffset || off > n.link.clockOffset {
		n.link.clockOffset, n.link.hasClockOffset = off, true
	}
	if !n.link.established {
		switch {
		case m.Type == wire.MsgConnect:
			n.receiveConnect(now, m)
		case m.Type == wire.MsgConnectAck:
			n.receiveConnectAck(now, m)
		case m.Type == wire.MsgDisconnect:
			n.receiveDisconnect(now, m)
		case m.Type == wire.MsgContact:
			// Harmless; nothing to do.
		default:
			n.closeLink(now, fmt.Sprintf("%s before the CONNECT handshake finished", m.Type))
		}
		return
	}
	switch m.Type {
	case wire.MsgConnect:
		n.rejectConnect(now, m, wire.RejectDuplicateConnection, "already connected")
	case wire.MsgConnectAck:
		n.disconnect(now, wire.RejectDuplicateConnection, "already connected")
	case wire.MsgDisconnect:
		n.receiveDisconnect(now, m)
	case wire.MsgState:
		n.receiveState(now, m)
	case wire.MsgContact:
	case wire.MsgBndUpd:
		n.receiveBindUpdate(now, m)
	case wire.MsgBndAck:
		n.receiveBindAck(now, m)
	case wire.MsgUpdReq:
		n.receiveUpdateRequest(now, m, false)
	case wire.MsgUpdReqAll:
		n.receiveUpdateRequest(now, m, true)
	case wire.MsgUpdDone:
		n.receiveUpdateDone(now)
	case wire.MsgPoolReq:
		n.receivePoolReq(now, m)
	case wire.MsgPoolResp:
		n.logf(slog.LevelInfo, "pool response: %d leases", m.AddressesTransferred.Value)
	default:
		// A type ISC does not know and that carried no options; ISC
		// ignores it (fw §1).
		n.logf(slog.LevelWarn, "failover peer %s: ignoring message of unknown %s", n.name, m.Type)
	}
}

// receiveConnect is the secondary's side of the handshake (ISC
// dhcp_failover_link_signal and dhcp_failover_state_signal, fw §5).
func (n *Node) receiveConnect(now int64, m *wire.Message) {
	if n.role != config.Secondary {
		// Two primaries: ISC would answer, and both would allocate from
		// FREE. Refuse, so that the misconfiguration shows.
		n.rejectConnect(now, m, wire.RejectInvalidPartner, "both servers are configured as primary")
		return
	}
	name, ok := m.RelationshipName.Get()
	if !ok || name != n.name {
		n.rejectConnect(now, m, wire.RejectInvalidPartner, fmt.Sprintf("unknown failover relationship name %q", name))
		return
	}
	if d, ok := skewOK(now, m); !ok {
		n.rejectConnect(now, m, wire.RejectTimeMismatch,
			fmt.Sprintf("%s; failover needs them within %d s: synchronise the clocks (NTP)", d, MaxClockSkew))
		return
	}
	hba, ok := m.HBA.Get()
	if !ok || len(hba) != wire.HBALen {
		n.rejectConnect(now, m, wire.RejectHBAConflict, "invalid HBA")
		return
	}
	mclt, ok := m.MCLT.Get()
	if !ok || mclt == 0 {
		// ISC checks only presence; an MCLT of 0 would make every grant
		// 0 s long, so refuse it as invalid.
		n.rejectConnect(now, m, wire.RejectInvalidMCLT, "no MCLT provided")
		return
	}
	copy(n.hba[:], hba)
	n.hasHBA = true
	ack := &wire.Message{
		Type:             wire.MsgConnectAck,
		XID:              m.XID,
		RelationshipName: wire.Some(n.name),
		MaxUnacked:       wire.Some(n.cfg.MaxUnackedUpdates),
		ReceiveTimer:     wire.Some(n.cfg.MaxResponseDelay),
		VendorClass:      wire.Some(n.vendor),
		ProtocolVersion:  wire.Some(uint8(wire.ProtocolVersion)),
	}
	if m.TLSRequest.Present {
		ack.TLSReply = wire.Some(uint8(0)) // no TLS (fw §10)
	}
	n.send(now, ack)
	n.link.established = true
	n.learnPartnerKnobs(m)
	if n.mclt != mclt {
		n.mclt = mclt
		n.persistState() // the secondary keeps the learned MCLT (fw §13)
	}
	n.sendState(now)
}

// rejectConnect answers a CONNECT with a CONNECTACK carrying a reject
// reason, and closes the link (fw §5).
func (n *Node) rejectConnect(now int64, m *wire.Message, r wire.RejectReason, text string) {
	n.logf(slog.LevelError, "failover peer %s: refusing CONNECT: %s: %s", n.name, r, text)
	n.send(now, &wire.Message{
		Type:             wire.MsgConnectAck,
		XID:              m.XID,
		RelationshipName: wire.Some(n.name),
		VendorClass:      wire.Some(n.vendor),
		ProtocolVersion:  wire.Some(uint8(wire.ProtocolVersion)),
		RejectReason:     wire.Some(r),
		MessageText:      wire.Some(text),
	})
	n.dropLink(now, fmt.Sprintf("CONNECT refused: %s", text))
}

// receiveConnectAck is the primary's side of the handshake (fw §5).
func (n *Node) receiveConnectAck(now int64, m *wire.Message) {
	if n.role != config.Primary {
		n.closeLink(now, "CONNECTACK sent to a secondary")
		return
	}
	name, ok := m.RelationshipName.Get()
	if !ok {
		n.disconnect(now, wire.RejectInvalidPartner, "missing relationship-name")
		return
	}
	if r, ok := m.RejectReason.Get(); ok {
		text := r.String()
		if t, ok := m.MessageText.Get(); ok {
			text += ": " + t
		}
		if r == wire.RejectTimeMismatch {
			// ISC says only "time offset too large"; its CONNECTACK's
			// time tells by how much.
			text += fmt.Sprintf(" (%s; failover needs them within %d s: synchronise the clocks (NTP))",
				skewText(int64(m.Time)-now), MaxClockSkew)
		}
		n.logf(slog.LevelError, "Failover CONNECT to %s rejected: %s", n.name, text)
		n.dropLink(now, "CONNECT rejected: "+text)
		return
	}
	if name != n.name {
		n.disconnect(now, wire.RejectInvalidPartner, fmt.Sprintf("remote failover relationship name %s does not match", name))
		return
	}
	if d, ok := skewOK(now, m); !ok {
		n.disconnect(now, wire.RejectTimeMismatch,
			fmt.Sprintf("time offset too large: %s, more than %d s: synchronise the clocks (NTP)", d, MaxClockSkew))
		return
	}
	n.link.established = true
	n.learnPartnerKnobs(m)
	n.sendState(now)
}

func (n *Node) learnPartnerKnobs(m *wire.Message) {
	if v, ok := m.MaxUnacked.Get(); ok {
		n.link.partnerMaxUnacked = v
	}
	if v, ok := m.ReceiveTimer.Get(); ok {
		n.link.partnerReceiveTimer = v
	}
}

// disconnect sends DISCONNECT and closes the link (the primary's answer to
// a bad CONNECTACK, fw §2, §5).
func (n *Node) disconnect(now int64, r wire.RejectReason, text string) {
	n.logf(slog.LevelError, "Failover CONNECTACK from %s: %s", n.name, text)
	n.send(now, &wire.Message{
		Type:         wire.MsgDisconnect,
		XID:          n.nextXID(),
		RejectReason: wire.Some(r),
		MessageText:  wire.Some(text),
	})
	n.dropLink(now, text)
}

func (n *Node) receiveDisconnect(now int64, m *wire.Message) {
	r := m.RejectReason.Or(wire.RejectUnknown)
	n.logf(slog.LevelError, "Failover DISCONNECT from %s: %s", n.name, m.MessageText.Or(r.String()))
	n.dropLink(now, "partner sent DISCONNECT: "+r.String())
}

// receiveState is ISC's dhcp_failover_peer_state_changed (fw §12.2).
func (n *Node) receiveState(now int64, m *wire.Message) {
	next, ok := m.ServerState.Get()
	if !ok {
		n.closeLink(now, "STATE without server-state")
		return
	}
	if !next.Valid() || next == stStartup {
		// ISC moves to shutdown (fw §7.2). A garbled state says nothing
		// about the partner's database; dropping the link leaves us in
		// a state that is safe without it.
		n.closeLink(now, fmt.Sprintf("partner reports invalid state %d", uint8(next)))
		return
	}
	n.link.communicating = true
	startupFlag := m.ServerFlags.Value&wire.ServerFlagStartup != 0
	n.partnerSTOS = int64(m.STOS.Value)
	n.partnerStartup = startupFlag

	resumed := false
	if n.partner == next {
		switch n.me {
		case stStartup:
			// Connected, and the partner is where we last saw it:
			// resume at once (ISC).
			to := n.saved
			switch {
			case to == stResolutionInterrupted:
				to = stPotentialConflict
			case next == stPartnerDown && (to == stRecoverWait || to == stRecoverDone):
				// It may have granted leases while we were away:
				// fetch them again (draft §9.3.2 step 5).
				to = stRecover
			}
			n.setState(now, to)
			// ISC stops here. Both may have changed nothing since, yet
			// the pair can be in a combination that waits for a STATE
			// that will never come (communications-interrupted against
			// recover-done; both in partner-down): react as to a new
			// state.
			resumed = true
		case stPartnerDown, stCommInterrupted, stResolutionInterrupted, stRecover, stConflictDone, stRecoverDone:
			// Processed even without a change: we were disconnected.
			// (ISC ignores a repeated state in recover-done, and then
			// waits for ever on a partner already resolving a conflict.)
		default:
			return
		}
	}
	prev := n.partner
	if !resumed {
		n.partner, n.partnerAt = next, now
		n.stateChange(StateChange{Peer: n.name, Kind: PartnerMove, From: prev, To: next, At: now})
		if n.me == stNormal && next == stNormal {
			n.stateChange(StateChange{Peer: n.name, Kind: BothNormal, From: next, To: next, At: now})
		}
		n.persistState()
	}

	if n.me == stShutDown && next == stPartnerDown && n.shuttingDown {
		n.finishShutdown(now)
		return
	}

	me, inStartup := n.me, false
	if me == stStartup {
		me, inStartup = n.saved, true
	}
	r := reactToPeer(me, inStartup, prev, next, startupFlag)
	if resumed {
		r.onlyIfUnasked = true // entering the state asked already
	}
	if n.lostDB && me == stRecover && r.to == stPotentialConflict {
		// A server that may have lost its database has nothing to
		// resolve a conflict with: it stays in recover and asks for
		// everything (its partner then recovers too, fw §12.2), so that
		// recover-wait protects what it may have granted.
		r = reaction{updReqAll: !inStartup, onlyIfUnasked: true,
			info: fmt.Sprintf("partner is in %s, but this server may have lost its leases: recovering instead", next)}
	}
	if r.problem != "" {
		n.logf(slog.LevelError, "failover peer %s: %s", n.name, r.problem)
	}
	if r.info != "" {
		n.logf(slog.LevelInfo, "failover peer %s: %s", n.name, r.info)
	}
	if r.sendUpdates {
		n.sendUpdates(now)
	}
	if r.poolCheck {
		n.poolCheckAll(now)
	}
	if r.updReqAll && !(r.onlyIfUnasked && n.link.requested) {
		n.sendUpdateRequest(now, wire.MsgUpdReqAll)
	}
	if r.updReq {
		n.sendUpdateRequest(now, wire.MsgUpdReq)
	}
	if r.to == stNormal && n.me == stPartnerDown && (n.updates.Len() > 0 || n.acks.Len() > 0) {
		// The partner recovered from us and will serve its own pool as
		// soon as we say normal; our grants since (made while the link
		// was down, some from that pool) must reach it first: STATE
		// would overtake updates held back by the window. Normal follows
		// the last ack (ackedAll).
		n.normalAfterAcks = true
		n.sendUpdates(now)
		r.to = 0
	}
	if r.to != 0 && r.to != n.me {
		n.setState(now, r.to)
	}
	if n.me == stStartup {
		n.setState(now, n.saved)
	}
	// Communications OK: in normal and partner-down, what waited for a
	// link goes now (ISC sends it only on some state changes; a
	// partner-down server reconnecting to a partner in recover-wait
	// would keep it). Conflict resolution and recovery have their own
	// exchange (UPDREQ, UPDREQALL).
	if n.me == stNormal || n.me == stPartnerDown {
		n.sendUpdates(now)
	}
}

// wireTime converts a Unix time to the protocol's unsigned 32 bits.
func wireTime(t int64) uint32 {
	switch {
	case t <= 0:
		return 0
	case t >= 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(t)
}

func addrOf(ip uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)})
}
