package failover

import (
	"strings"
	"testing"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// peerColumns are the columns of the table in failover-wire.md §12.2.
var peerColumns = []wire.ServerState{
	stNormal, stCommInterrupted, stPartnerDown, stPotentialConflict, stResolutionInterrupted,
	stConflictDone, stRecover, stRecoverWait, stRecoverDone, stShutDown, stPaused,
}

// TestReactToPeerTable checks every cell of the §12.2 table, transcribed
// from failover-wire.md. A cell is "-" (stay), a state name (move there),
// "updreqall" / "updreq" (send it, stay), "poolcheck", or "send+normal"
// (flush updates, then normal). Cells marked "ISC:x" are where ISC does x
// (shut down, exit, or wait for ever) and Tandem does what follows.
func TestReactToPeerTable(t *testing.T) {
	rows := []struct {
		me    wire.ServerState
		cells []string // in peerColumns order
	}{
		{stNormal, []string{"poolcheck", "-", "potential-conflict", "ISC:shutdown potential-conflict", "ISC:shutdown potential-conflict", "ISC:shutdown potential-conflict", "partner-down", "-", "-", "partner-down", "communications-interrupted"}},
		{stCommInterrupted, []string{"send+normal", "send+normal", "potential-conflict", "potential-conflict", "potential-conflict", "potential-conflict", "partner-down", "send+normal", "send+normal", "partner-down", "-"}},
		{stPartnerDown, []string{"potential-conflict", "potential-conflict", "potential-conflict", "potential-conflict", "potential-conflict", "potential-conflict", "-", "-", "normal", "-", "-"}},
		{stRecover, []string{"potential-conflict", "updreqall", "updreqall", "potential-conflict", "potential-conflict", "potential-conflict", "updreqall", "ISC:- updreqall", "ISC:- updreqall", "partner-down", "ISC:- updreqall"}},
		{stPotentialConflict, []string{"ISC:shutdown -", "-", "-", "-", "-", "updreq", "recover", "-", "-", "partner-down", "-"}},
		{stConflictDone, []string{"normal", "ISC:fatal potential-conflict", "ISC:fatal potential-conflict", "-", "-", "ISC:fatal potential-conflict", "ISC:fatal partner-down", "ISC:fatal -", "ISC:fatal normal", "shutdown", "ISC:fatal -"}},
		{stResolutionInterrupted, []string{"potential-conflict", "potential-conflict", "potential-conflict", "potential-conflict", "potential-conflict", "potential-conflict", "potential-conflict", "potential-conflict", "potential-conflict", "partner-down", "-"}},
		{stRecoverWait, []string{"-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"}},
		{stRecoverDone, []string{"normal", "-", "-", "ISC:- potential-conflict", "ISC:- potential-conflict", "ISC:- potential-conflict", "-", "-", "normal", "partner-down", "-"}},
		{stShutDown, []string{"-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"}},
		{stPaused, []string{"-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"}},
	}
	for _, row := range rows {
		for i, peer := range peerColumns {
			cell := row.cells[i]
			iscFault := strings.HasPrefix(cell, "ISC:")
			if iscFault {
				cell = strings.Fields(cell)[1]
			}
			// prev: the partner was in potential-conflict before, which
			// the conflict-done cell of the potential-conflict row needs.
			r := reactToPeer(row.me, false, stPotentialConflict, peer, false)
			got := describeReaction(r)
			if got != cell {
				t.Errorf("me %s, partner → %s: got %q, want %q", row.me, peer, got, cell)
			}
			if iscFault && r.problem == "" && !strings.HasPrefix(row.cells[i], "ISC:-") {
				t.Errorf("me %s, partner → %s: where ISC fails, Tandem must log why it chose %s", row.me, peer, cell)
			}
		}
	}
}

func describeReaction(r reaction) string {
	switch {
	case r.to == stNormal && r.sendUpdates:
		return "send+normal"
	case r.to != 0:
		return r.to.String()
	case r.updReqAll:
		return "updreqall"
	case r.updReq:
		return "updreq"
	case r.poolCheck:
		return "poolcheck"
	}
	return "-"
}

// The rows that depend on more than the two states (fw §12.2 notes).
func TestReactToPeerSpecialCases(t *testing.T) {
	// A partner-down server ignores a partner still starting up.
	if r := reactToPeer(stPartnerDown, false, stNormal, stCommInterrupted, true); r.to != 0 {
		t.Errorf("partner-down, partner starting up in comm-int: got %s, want no change", r.to)
	}
	// Normal while starting up, partner in partner-down: recover, not
	// potential-conflict (we may have lost updates it made meanwhile).
	if r := reactToPeer(stNormal, true, stNormal, stPartnerDown, false); r.to != stRecover {
		t.Errorf("startup (normal), partner partner-down: got %s, want recover", r.to)
	}
	// Recover while starting up sends no UPDREQALL: entering recover does.
	for _, peer := range []wire.ServerState{stRecover, stPartnerDown, stCommInterrupted} {
		if r := reactToPeer(stRecover, true, wire.StateUnknown, peer, false); r.updReqAll {
			t.Errorf("startup (recover), partner %s: UPDREQALL sent from startup", peer)
		}
	}
	// Conflict-done from a partner that was not in potential-conflict is
	// unexpected: no UPDREQ.
	if r := reactToPeer(stPotentialConflict, false, stNormal, stConflictDone, false); r.updReq || r.problem == "" {
		t.Errorf("potential-conflict, partner normal → conflict-done: %+v", r)
	}
	// Coming back to recover-wait or recover-done while the partner went
	// partner-down: recover again (draft §9.3.2 step 5; ISC waits on).
	for _, me := range []wire.ServerState{stRecoverWait, stRecoverDone} {
		if r := reactToPeer(me, true, stNormal, stPartnerDown, false); r.to != stRecover {
			t.Errorf("startup (%s), partner partner-down: %s, want recover", me, r.to)
		}
	}
	// Both in recover-done: ISC logs it and moves on.
	if r := reactToPeer(stRecoverDone, false, stRecover, stRecoverDone, false); r.info != "Both servers have entered recover-done!" {
		t.Errorf("both recover-done: info %q", r.info)
	}
}

// TestDisconnectTable is fw §12.1: what link loss does in each state.
func TestDisconnectTable(t *testing.T) {
	stay := wire.ServerState(0)
	cases := []struct {
		me, saved, want wire.ServerState
	}{
		{stNormal, 0, stCommInterrupted},
		{stPotentialConflict, 0, stResolutionInterrupted},
		{wire.StateUnknown, 0, stResolutionInterrupted},
		{stConflictDone, 0, stay},
		{stCommInterrupted, 0, stay},
		{stPartnerDown, 0, stay},
		{stPaused, 0, stay},
		{stRecover, 0, stay},
		{stRecoverDone, 0, stay},
		{stRecoverWait, 0, stay},
		{stResolutionInterrupted, 0, stay},
		{stShutDown, 0, stay},
		// In startup the saved state decides; "stay" resumes it.
		{stStartup, stNormal, stCommInterrupted},
		{stStartup, stPotentialConflict, stResolutionInterrupted},
		{stStartup, stPartnerDown, stPartnerDown},
		{stStartup, stRecover, stRecover},
		{stStartup, stConflictDone, stConflictDone},
	}
	for _, c := range cases {
		to, ok := disconnectTarget(c.me, c.saved)
		if !ok {
			to = stay
		}
		if to != c.want {
			t.Errorf("link lost in %s (saved %s): got %s, want %s", c.me, c.saved, to, c.want)
		}
	}
}

// TestServiceStates is the service mapping of fw §7.2.
func TestServiceStates(t *testing.T) {
	cases := []struct {
		me, partner wire.ServerState
		want        serviceState
	}{
		{stNormal, stNormal, cooperating},
		{stCommInterrupted, stNormal, notCooperating},
		{stPartnerDown, stNormal, servicePartnerDown},
		{stPartnerDown, stRecover, servicePartnerDown},
		{stStartup, stNormal, serviceStartup},
		// The partner's state can forbid service ("peer demands").
		{stNormal, stPartnerDown, notResponding},
		{stCommInterrupted, stPotentialConflict, notResponding},
		{stPartnerDown, stConflictDone, notResponding},
		{stNormal, stResolutionInterrupted, notResponding},
	}
	for _, c := range cases {
		if got := serviceFor(c.me, c.partner); got != c.want {
			t.Errorf("%s with partner %s: got %s, want %s", c.me, c.partner, got, c.want)
		}
	}
	for _, me := range []wire.ServerState{stRecover, stRecoverWait, stRecoverDone, stPotentialConflict,
		stResolutionInterrupted, stConflictDone, stShutDown, stPaused, wire.StateUnknown} {
		if got := serviceFor(me, stNormal); got != notResponding {
			t.Errorf("%s: got %s, want no service", me, got)
		}
	}
}

func TestStateChangeWording(t *testing.T) {
	cases := []struct {
		c    StateChange
		want string
	}{
		{StateChange{Peer: "dhcp-failover", Kind: LocalMove, From: stNormal, To: stCommInterrupted},
			"failover peer dhcp-failover: I move from normal to communications-interrupted"},
		{StateChange{Peer: "dhcp-failover", Kind: PartnerMove, From: stRecoverDone, To: stNormal},
			"failover peer dhcp-failover: peer moves from recover-done to normal"},
		{StateChange{Peer: "dhcp-failover", Kind: BothNormal, From: stNormal, To: stNormal},
			"failover peer dhcp-failover: Both servers normal"},
		{StateChange{Peer: "x", Kind: LocalMove, From: stRecover, To: stRecoverWait},
			"failover peer x: I move from recover to recover-wait"},
	}
	for _, c := range cases {
		if got := c.c.String(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}
