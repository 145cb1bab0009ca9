package sim

import (
	"fmt"
	"math/rand/v2"

	"github.com/tandemdhcp/tandem/internal/failover"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// Random draws the shape of one short schedule from its seed: pool and
// client counts, protocol knobs, skews and the length of the chaos. Every
// draw comes from a generator separate from the simulation's, so the
// shape of a seed does not depend on how the simulation uses its
// randomness.
//
// Short means 6 to 20 clients and 7 to 23 minutes of faults, with lease
// times and MCLTs of a minute to ten: long enough for every fault to hit
// every state (expiry, renewal, rebinding, MCLT waits, recover, conflict
// resolution), short enough for thousands of schedules a minute.
// RandomLarge draws longer schedules with more clients.
func Random(seed uint64) Options { return random(seed, false) }

// RandomLarge draws a schedule of 20 to 200 clients and 30 minutes to 2
// hours of faults.
func RandomLarge(seed uint64) Options { return random(seed, true) }

func random(seed uint64, large bool) Options {
	r := rand.New(rand.NewPCG(seed^0x5eed5eed5eed5eed, seed))
	o := Options{Seed: seed, Faults: true, CheckDBEvery: 64}
	o.Clients = 6 + r.IntN(15)
	if large {
		o.Clients = 20 + r.IntN(181)
	}
	// Sometimes scarce, sometimes plenty.
	o.PoolSize = max(4, o.Clients*(50+r.IntN(100))/100)
	o.MCLT = [...]uint32{30, 60, 120, 300}[r.IntN(4)]
	o.LeaseTime = [...]uint32{60, 120, 300, 600, 1200}[r.IntN(5)]
	o.Split = [...]int{0, 64, 128, 128, 200, 256}[r.IntN(6)]
	o.LBMaxSeconds = [...]uint32{0, 3, 3, 10}[r.IntN(4)]
	o.MaxResponseDelay = [...]uint32{10, 20, 30}[r.IntN(3)]
	o.MaxUnacked = [...]uint32{1, 3, 10, 100}[r.IntN(4)]
	switch v := r.IntN(20); {
	case v < 7:
		// No skew: I1 and I3 are checked without margin.
	case v < 19:
		// Each clock within ±60 s, and within what CONNECT accepts of
		// each other (a second is lost to whole-second timestamps).
		for {
			o.Skew[0], o.Skew[1] = r.Int64N(121)-60, r.Int64N(121)-60
			if d := o.Skew[0] - o.Skew[1]; d >= -58 && d <= 58 {
				break
			}
		}
	default:
		// Clocks too far apart for CONNECT: the pair never links.
		o.Skew[0] = 30 + r.Int64N(31)
		o.Skew[1] = -30 - r.Int64N(31)
	}
	o.Chaos = 400 + r.Int64N(1000)
	o.FaultEvery = 30 + r.Int64N(270)
	if large {
		o.Chaos = 1800 + r.Int64N(3*1800)
		o.FaultEvery = 60 + r.Int64N(600)
	}
	o.Settle = 2*int64(o.MCLT) + 300
	return o
}

// linkable reports whether the clocks allow a link at all.
func (o Options) linkable() bool {
	d := o.Skew[0] - o.Skew[1]
	return d >= -58 && d <= 58
}

// Run runs one schedule: chaos with random faults, then healing, then
// the check that the pair converges (I5). It returns the first violation,
// or nil.
func Run(o Options) *Violation {
	s, err := New(o)
	if err != nil {
		return &Violation{Invariant: "SIM", Detail: err.Error()}
	}
	return s.RunSchedule()
}

// RunSchedule runs the chaos phase, heals everything, lets the pair
// settle and checks convergence.
func (s *Sim) RunSchedule() *Violation {
	if !s.runUntil(s.chaosUntil) {
		return s.violation
	}
	s.endChaos()
	if !s.runUntil(s.now + s.opts.Settle*1000) {
		return s.violation
	}
	if !s.opts.linkable() {
		return s.violation
	}
	// A server that lost its lease file may wait until every potential
	// expiry it learned has passed, plus MCLT: up to 1.5 max-lease-time
	// (tstp = now + desired + granted/2, fw §11) beyond the last grant.
	s.Converge(int64(4*s.opts.LeaseTime) + 2*int64(s.opts.MCLT) + 900)
	return s.violation
}

// endChaos stops the faults, heals the network and brings every server
// back with its disk.
func (s *Sim) endChaos() {
	s.faults = false
	s.tracef("END OF CHAOS")
	s.heal()
	for _, sv := range s.srv {
		if !sv.up && !sv.stopping {
			s.restart(sv, false)
		}
	}
}

// Converge runs until the pair is quiescent in normal-normal (at most
// within seconds), then compares the databases (I5).
func (s *Sim) Converge(within int64) []string {
	deadline := s.now + within*1000
	for s.violation == nil && !s.quiescent() {
		if s.q.len() == 0 || s.q.peekAt() > deadline {
			var st []string
			for _, sv := range s.srv {
				if !sv.up {
					st = append(st, sv.tag+" down")
					continue
				}
				ns := sv.node.Status()
				timer := "none"
				if sv.tickAt != 0 {
					timer = fmt.Sprintf("now%+d", (sv.tickAt-s.now)/1000)
				}
				st = append(st, fmt.Sprintf("%s %s since now%+d (partner %s, mclt %d, queued %d, unacked %d, pending jobs %d, timer %s)",
					sv.tag, ns.State, ns.STOS-s.srvNow(sv), ns.PartnerState, ns.MCLT, ns.UpdatesQueued, ns.UpdatesUnacked, len(sv.pending), timer))
			}
			s.fail("I5", "the pair did not reach a quiet normal-normal within %d s after healing: %v, link %v, in flight %d",
				within, st, s.link != nil, s.inflight)
			return nil
		}
		e := s.q.pop()
		s.now = e.at
		s.dispatch(e)
	}
	if s.violation != nil {
		return nil
	}
	for _, sv := range s.srv {
		s.checkDB(sv)
	}
	diffs := s.compare()
	if len(diffs) > 0 {
		n := min(len(diffs), 8)
		s.fail("I5", "the databases differ in %d addresses after convergence: %v", len(diffs), diffs[:n])
	}
	return diffs
}

// scheduleFault arms the next random fault.
func (s *Sim) scheduleFault() {
	mean := float64(s.opts.FaultEvery) * 1000
	after := int64(s.rng.ExpFloat64()*mean) + 1
	s.schedule(event{at: s.now + after, kind: evFault, srv: -1})
}

// fault injects one random fault, within the operator's contract
// (doc.go).
func (s *Sim) fault() {
	if !s.faults || s.now >= s.chaosUntil {
		return
	}
	defer s.scheduleFault()
	i := s.rng.IntN(2)
	sv, other := s.srv[i], s.srv[1-i]
	switch r := s.rng.IntN(100); {
	case r < 30:
		if s.partition || s.inStartup() {
			return
		}
		s.startPartition(s.rng.IntN(3) > 0)
		s.healAt = s.now + 10_000 + s.rng.Int64N(int64(3*s.opts.MCLT)*1000+600_000)
		s.schedule(event{at: s.healAt, kind: evHeal, srv: -1})
	case r < 55:
		if !sv.up {
			return
		}
		s.crash(sv)
		s.scheduleRestart(sv)
	case r < 70:
		if !sv.up || sv.stopping {
			return
		}
		s.shutdown(sv)
		s.scheduleRestart(sv)
	case r < 85:
		// The operator declares a dead partner down (never a live one,
		// and never on a server that lost its lease file and has not
		// resynchronised: it knows nothing to serve from).
		if !sv.up || other.up || sv.amnesic || !s.opts.linkable() || sv.node.State() == wire.StatePartnerDown {
			return
		}
		s.setState(sv, wire.StatePartnerDown)
	case r < 95:
		if s.partition && s.healAt != 0 {
			// An early heal.
			s.healAt = s.now
			s.heal()
		}
	default:
		// A client moves to where it reaches one server only, or back.
		if s.partition {
			c := s.clients[s.rng.IntN(len(s.clients))]
			c.reach = uint8(1 + s.rng.IntN(3))
		}
	}
}

// inStartup: a running server has not yet heard its partner's state
// after starting (the contract keeps partitions away then).
func (s *Sim) inStartup() bool {
	for _, sv := range s.srv {
		if sv.up && sv.node.State() == wire.StateStartup {
			return true
		}
	}
	return false
}

func (s *Sim) scheduleRestart(sv *server) {
	after := 5_000 + s.rng.Int64N(int64(2*s.opts.MCLT)*1000+300_000)
	// A fifth of the restarts are with a lost lease file.
	empty := s.rng.IntN(5) == 0
	s.schedule(event{at: s.now + after, kind: evRestart, srv: int8(sv.idx), flag: empty})
}

// restartEvent restarts a server when the contract allows it; otherwise
// it tries again later.
func (s *Sim) restartEvent(sv *server, empty bool) {
	if sv.up && !sv.stopping {
		return
	}
	other := s.srv[1-sv.idx]
	retry := func() {
		s.schedule(event{at: s.now + 1000 + s.rng.Int64N(30_000), kind: evRestart, srv: int8(sv.idx), flag: empty})
	}
	if sv.stopping {
		retry()
		return
	}
	if empty && other.amnesic {
		empty = false
	}
	// The operator's contract (doc.go): while a server is in
	// partner-down, its partner starts only where the two can talk
	// (dhcpd.conf(5): "make sure that the other server will not restart
	// automatically"), and a server that saved partner-down starts only
	// where it can reach a running partner. A server coming back in
	// recover (a graceful shutdown, a lost lease file) serves no one
	// until it has talked to its partner, so it may start any time.
	pd := func(x *server) bool {
		if x.up {
			return x.node.State() == wire.StatePartnerDown
		}
		return x.diskState != nil && x.diskState.MyState == wire.StatePartnerDown.String()
	}
	recovering := empty || sv.diskState == nil || sv.diskState.MyState == wire.StateRecover.String() ||
		sv.diskState.MyState == wire.StateShutdown.String()
	if !recovering && (pd(sv) || pd(other)) && (!other.up || s.partition) {
		retry()
		return
	}
	s.restart(sv, empty)
}

// Public controls, for the scenario tests.

// Advance runs the world for d seconds.
func (s *Sim) Advance(d int64) bool { return s.runUntil(s.now + d*1000) }

// Partition cuts the servers apart; clients split lets some clients reach
// one server only.
func (s *Sim) Partition(clientsSplit bool) { s.startPartition(clientsSplit) }

// Heal ends a partition.
func (s *Sim) Heal() { s.heal() }

// Crash kills server i (0 primary, 1 secondary).
func (s *Sim) Crash(i int) {
	if s.srv[i].up {
		s.crash(s.srv[i])
	}
}

// Restart brings server i back, from its disk or an empty one.
func (s *Sim) Restart(i int, empty bool) { s.restart(s.srv[i], empty) }

// Shutdown stops server i gracefully.
func (s *Sim) Shutdown(i int) { s.shutdown(s.srv[i]) }

// SetState forces server i's failover state, as an operator would.
func (s *Sim) SetState(i int, st wire.ServerState) { s.setState(s.srv[i], st) }

// ServerStatus returns the failover status of server i, or false when it
// is down.
func (s *Sim) ServerStatus(i int) (failover.Status, bool) {
	sv := s.srv[i]
	if !sv.up {
		return failover.Status{}, false
	}
	return sv.node.Status(), true
}
