package failover

import (
	"fmt"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// The server states of a failover endpoint (draft §9; ISC's numbers and
// tokens, fw §7.2), under short local names: they are the wire.ServerState
// values, documented here with what they mean to this node. ISC's internal
// unknown-state (0) is wire.StateUnknown; this node never enters it.
const (
	// stStartup (draft §9.3): a short period after process start in which the
	// server answers no client and waits to hear its partner's state. ISC
	// stays at most 15 s, then acts as if the link were lost from the state
	// it saved (fw §12.1). ISC never sends 1 on the wire: it sends the
	// saved state with the STARTUP server flag (fw §7.2).
	stStartup = wire.StateStartup
	// stNormal (draft §9.8): both servers talk; each allocates only from its
	// own free pool (FREE for the primary, BACKUP for the secondary) and
	// answers DISCOVERs by the hash bucket assignment (fw §8).
	stNormal = wire.StateNormal
	// stCommInterrupted (draft §9.9): the link is down; each server
	// serves every client, but only from its own pool and with lease times
	// capped by the MCLT rule (fw §11). ISC's auto-partner-down timer starts
	// here (fw §12.1).
	stCommInterrupted = wire.StateCommunicationsInterrupted
	// stPartnerDown (draft §9.4): the operator (or auto-partner-down, or the
	// partner's graceful SHUTDOWN) declared the partner down; after
	// STOS+MCLT this server may use the partner's free addresses too
	// (fw §11).
	stPartnerDown = wire.StatePartnerDown
	// stPotentialConflict (draft §9.10): both may have served the same
	// addresses; no service until the primary has the secondary's updates
	// (UPDREQ … UPDDONE) and then the reverse (fw §12.5).
	stPotentialConflict = wire.StatePotentialConflict
	// stRecover (draft §9.5): this server may have lost its database (ISC's
	// state when the lease file has none, fw §7.2); no service until the
	// partner has sent everything (ISC always asks with UPDREQALL, fw §14
	// item 14).
	stRecover = wire.StateRecover
	// stPaused (draft §9.13): set only by an operator; no service, no
	// automatic transitions (ISC never enters it on its own, fw §7.2).
	stPaused = wire.StatePaused
	// stShutDown (draft §9.14): a graceful stop was asked for; the partner
	// moves to partner-down at once (fw §12.1, §12.5).
	stShutDown = wire.StateShutdown
	// stRecoverDone (draft §9.7): recovery finished; waiting for the partner
	// to go normal.
	stRecoverDone = wire.StateRecoverDone
	// stResolutionInterrupted (draft §9.11): the link dropped during
	// potential-conflict; no service.
	stResolutionInterrupted = wire.StateResolutionInterrupted
	// stConflictDone (draft §9.12): the primary has the secondary's updates
	// and waits for the secondary to finish; no service. ISC exits
	// (log_fatal) on several unexpected partner states here; Tandem does
	// not (see reactToPeer).
	stConflictDone = wire.StateConflictDone
	// stRecoverWait (draft §9.6; ISC number 254, fw §7.2): the partner's
	// updates are in, but leases this server granted before it lost its
	// state may still be out there: no service until STOS+MCLT (later
	// after a lost lease file, see recoverWaitUntil).
	stRecoverWait = wire.StateRecoverWait
)

// serviceState is what the DHCP side may do in a failover state (ISC
// dhcp_failover_set_service_state, fw §7.2).
type serviceState uint8

const (
	notResponding      serviceState = iota // no DHCP service at all
	serviceStartup                         // startup: no service yet
	cooperating                            // normal: load balance, own pool
	notCooperating                         // communications-interrupted: everyone, own pool, MCLT
	servicePartnerDown                     // partner-down: everyone, partner's pool after STOS+MCLT
)

func (s serviceState) String() string {
	return [...]string{"not responding", "startup", "cooperating", "not cooperating", "partner down"}[s]
}

// serviceFor maps local and partner state to a service state. ISC also
// stops serving when the partner says partner-down, potential-conflict,
// conflict-done or resolution-interrupted ("peer demands …", fw §7.2).
func serviceFor(me, partner wire.ServerState) serviceState {
	var s serviceState
	switch me {
	case stPartnerDown:
		s = servicePartnerDown
	case stNormal:
		s = cooperating
	case stCommInterrupted:
		s = notCooperating
	case stStartup:
		s = serviceStartup
	default:
		return notResponding
	}
	switch partner {
	case stPartnerDown, stPotentialConflict, stConflictDone, stResolutionInterrupted:
		return notResponding
	}
	return s
}

// reaction is what a server does when its partner reports a new state
// (ISC dhcp_failover_peer_state_changed; fw §12.2).
type reaction struct {
	to          wire.ServerState // state to move to; 0 = stay
	updReqAll   bool             // send UPDREQALL
	updReq      bool             // send UPDREQ
	poolCheck   bool             // re-evaluate pool balance
	sendUpdates bool             // flush queued binding updates first
	// onlyIfUnasked: send the update request only if none was sent on
	// this link yet.
	onlyIfUnasked bool
	// problem is logged as an error: the partner did something the
	// protocol does not allow, and Tandem chose a safe state instead of
	// ISC's shutdown or exit.
	problem string
	info    string // logged as information
}

// reactToPeer is the table of fw §12.2. me is the local state (the saved
// state while in startup: inStartup says so), prev and next are the
// partner's old and new states, and peerStartup is the STARTUP flag of its
// STATE message.
//
// Where ISC moves to shutdown (leaving the site without DHCP until an
// operator acts) or exits the process, Tandem picks the state that keeps
// the invariants (no service while the databases may disagree) and lets
// the protocol converge; each such row says so.
func reactToPeer(me wire.ServerState, inStartup bool, prev, next wire.ServerState, peerStartup bool) reaction {
	switch me {
	case stNormal:
		switch next {
		case stNormal:
			return reaction{poolCheck: true}
		case stPartnerDown:
			if inStartup {
				return reaction{to: stRecover}
			}
			return reaction{to: stPotentialConflict}
		case stPotentialConflict, stResolutionInterrupted, stConflictDone:
			// ISC: "Invalid state transition", then shutdown (anchors.md
			// complaint 4). The partner believes the databases may
			// disagree; resolving the conflict with it is safe (no
			// service meanwhile) and needs no operator.
			return reaction{to: stPotentialConflict, problem: fmt.Sprintf("invalid partner state transition %s to %s while normal: resolving as potential-conflict (ISC would shut down)", prev, next)}
		case stRecover, stShutDown:
			return reaction{to: stPartnerDown}
		case stPaused:
			return reaction{to: stCommInterrupted}
		}
	case stRecover:
		switch next {
		case stRecover:
			r := reaction{info: "requesting full update from peer"}
			// ISC sends no UPDREQALL from startup, because leaving
			// startup for recover sends one anyway.
			r.updReqAll = !inStartup
			return r
		case stPotentialConflict, stResolutionInterrupted, stConflictDone, stNormal:
			return reaction{to: stPotentialConflict}
		case stPartnerDown, stCommInterrupted:
			return reaction{updReqAll: !inStartup}
		case stRecoverWait, stRecoverDone, stPaused:
			// Not in ISC, which waits here for ever when both servers
			// recover at once: a recovering server requests the
			// partner's updates whatever its state, except those of
			// conflict resolution (draft §9.5.2), unless it has asked
			// on this link already.
			return reaction{updReqAll: !inStartup, onlyIfUnasked: true}
		case stShutDown:
			return reaction{to: stPartnerDown}
		}
	case stPotentialConflict:
		switch next {
		case stNormal:
			// ISC: "moves to normal during conflict resolution - panic,
			// shutting down". Staying in potential-conflict gives no
			// service, and a Tandem partner answers our STATE by
			// joining the resolution.
			return reaction{problem: "partner moves to normal during conflict resolution: staying in potential-conflict (ISC would shut down)"}
		case stConflictDone:
			if prev == stPotentialConflict {
				return reaction{updReq: true}
			}
			return reaction{problem: "unexpected partner move to conflict-done"}
		case stRecover:
			return reaction{to: stRecover}
		case stShutDown:
			return reaction{to: stPartnerDown}
		}
	case stConflictDone:
		switch next {
		case stNormal, stShutDown:
			return reaction{to: next}
		case stPotentialConflict, stResolutionInterrupted:
			// The link came back after the primary reached
			// conflict-done but before the secondary did: stay.
			return reaction{}
		// ISC calls log_fatal (the daemon exits) for every other
		// partner state here (fw §12.2, §14 item 16).
		case stRecover:
			// The partner lost its database. Our database holds its
			// updates (we got its UPDDONE), so do what normal does.
			return reaction{to: stPartnerDown, problem: "partner moves to recover during conflict resolution: partner-down (ISC would exit)"}
		case stRecoverDone:
			// The partner has everything we sent and waited MCLT.
			return reaction{to: stNormal, problem: "partner moves to recover-done during conflict resolution: normal (ISC would exit)"}
		case stRecoverWait, stPaused:
			return reaction{problem: fmt.Sprintf("partner moves to %s during conflict resolution: waiting (ISC would exit)", next)}
		case stCommInterrupted, stPartnerDown, stConflictDone:
			return reaction{to: stPotentialConflict, problem: fmt.Sprintf("partner moves to %s during conflict resolution: resolving again (ISC would exit)", next)}
		}
	case stPartnerDown:
		if peerStartup {
			// ISC takes no action while the partner is starting up.
			return reaction{}
		}
		switch next {
		case stRecoverDone:
			return reaction{to: stNormal}
		case stNormal, stPotentialConflict, stPartnerDown, stCommInterrupted, stResolutionInterrupted, stConflictDone:
			return reaction{to: stPotentialConflict}
		}
	case stCommInterrupted:
		switch next {
		case stRecover:
			// An amnesic partner: ISC goes partner-down at once.
			return reaction{to: stPartnerDown}
		case stNormal, stCommInterrupted, stRecoverDone, stRecoverWait:
			return reaction{to: stNormal, sendUpdates: true}
		case stPotentialConflict, stPartnerDown, stResolutionInterrupted, stConflictDone:
			return reaction{to: stPotentialConflict}
		case stShutDown:
			return reaction{to: stPartnerDown}
		}
	case stResolutionInterrupted:
		switch next {
		case stNormal, stRecover, stPotentialConflict, stPartnerDown, stCommInterrupted,
			stResolutionInterrupted, stConflictDone, stRecoverDone, stRecoverWait:
			return reaction{to: stPotentialConflict}
		case stShutDown:
			return reaction{to: stPartnerDown}
		}
	case stRecoverDone:
		switch next {
		case stPotentialConflict, stResolutionInterrupted, stConflictDone:
			// Not in ISC, where both would wait for ever: the partner
			// is resolving a conflict, so join it.
			return reaction{to: stPotentialConflict}
		case stPartnerDown:
			if inStartup {
				// Not in ISC: the partner went partner-down while we
				// were away and may have granted leases we have not
				// seen (draft §9.3.2 step 5): recover again.
				return reaction{to: stRecover}
			}
		case stRecoverDone:
			return reaction{to: stNormal, info: "Both servers have entered recover-done!"}
		case stNormal:
			return reaction{to: stNormal}
		case stShutDown:
			return reaction{to: stPartnerDown}
		}
	case stRecoverWait:
		// Recover-wait just waits (ISC), except that a server coming
		// back to it finds a partner that went partner-down meanwhile
		// (draft §9.3.2 step 5, as for recover-done).
		if inStartup && next == stPartnerDown {
			return reaction{to: stRecover}
		}
	case stShutDown, stPaused:
		// No automatic transitions (ISC).
	}
	return reaction{}
}

// disconnectTarget is the state to move to when the link is lost or the
// startup timer runs out (ISC dhcp_failover_state_transition "disconnect";
// fw §12.1). me is the current state, saved the state saved at startup.
// ok is false when the server stays where it is.
func disconnectTarget(me, saved wire.ServerState) (to wire.ServerState, ok bool) {
	s := me
	if me == stStartup {
		s = saved
	}
	switch s {
	case stNormal:
		return stCommInterrupted, true
	case stPotentialConflict, wire.StateUnknown:
		return stResolutionInterrupted, true
	}
	if me == stStartup {
		return saved, true
	}
	return 0, false
}
