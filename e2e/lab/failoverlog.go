package lab

import (
	"fmt"
	"regexp"
	"time"
)

// FailoverMove is one state change a server logged in ISC dhcpd's words:
// "failover peer NAME: I move from X to Y" (Local) or "failover peer NAME:
// peer moves from X to Y" (the partner's change, as reported to us). ISC
// dhcpd and Tandem both write these lines, so one reader follows either.
type FailoverMove struct {
	Peer     string
	Local    bool
	From, To string
	// End is the log offset just after the line.
	End int64
}

var failoverMoveLine = regexp.MustCompile(`(?m)failover peer (\S+): (I move|peer moves) from (\S+) to (\S+)\s*$`)

// FailoverMoves returns every state change logged in log, oldest first;
// peer "" means every relationship.
func FailoverMoves(log, peer string) []FailoverMove {
	var out []FailoverMove
	for _, m := range failoverMoveLine.FindAllStringSubmatchIndex(log, -1) {
		mv := FailoverMove{
			Peer:  log[m[2]:m[3]],
			Local: log[m[4]:m[5]] == "I move",
			From:  log[m[6]:m[7]],
			To:    log[m[8]:m[9]],
			End:   int64(m[1]),
		}
		if peer == "" || mv.Peer == peer {
			out = append(out, mv)
		}
	}
	return out
}

// LocalFailoverState is the state the last "I move from X to Y" line of
// log put relationship peer in, or "" if there is none.
func LocalFailoverState(log, peer string) string {
	ms := FailoverMoves(log, peer)
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Local {
			return ms[i].To
		}
	}
	return ""
}

// AwaitFailoverState waits until the process's log, read from offset
// from, says it moved relationship peer into state ("I move from X to
// state"), or, when the log since from has no move at all, until the last
// move before from left it there. It returns the move that got there
// (End = where to continue), failing early if the process exits.
func (p *Proc) AwaitFailoverState(from int64, peer, state string, timeout time.Duration) (FailoverMove, error) {
	deadline := time.Now().Add(timeout)
	for {
		exited := p.Exited()
		log := p.Log()
		if from > int64(len(log)) {
			from = int64(len(log))
		}
		var last *FailoverMove
		for _, mv := range FailoverMoves(log, peer) {
			if !mv.Local {
				continue
			}
			if mv.End > from && mv.To == state {
				return mv, nil
			}
			mv := mv
			last = &mv
		}
		if last != nil && last.End <= from && last.To == state {
			return *last, nil
		}
		if exited {
			return FailoverMove{}, fmt.Errorf("%s on %s exited (%v) before moving to %s; last lines:\n%s",
				p.Name, p.Host.Name, p.waitErr, state, tail(log, 20))
		}
		if time.Now().After(deadline) {
			return FailoverMove{}, fmt.Errorf("%s on %s: failover peer %s not in %s within %v (last move: %s): %w; last lines:\n%s",
				p.Name, p.Host.Name, peer, state, timeout, describeMove(last), ErrTimeout, tail(log, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describeMove(m *FailoverMove) string {
	if m == nil {
		return "none"
	}
	return fmt.Sprintf("%s to %s", m.From, m.To)
}
