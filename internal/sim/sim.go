package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// Epoch is the global time at which every simulation starts (Unix seconds).
const Epoch = 1_700_000_000

// relationship is the failover peer name in the generated configurations.
const relationship = "sim"

// Options shape one simulation. Random fills every field from a seed; the
// scenario tests set them by hand.
type Options struct {
	Seed uint64

	Clients  int // DHCP clients
	PoolSize int // addresses in the one shared pool

	MCLT             uint32 // seconds
	LeaseTime        uint32 // default-lease-time; max-lease-time is twice it
	Split            int    // 0..256
	LBMaxSeconds     uint32 // load balance max seconds (0: no load balancing)
	MaxResponseDelay uint32
	MaxUnacked       uint32

	// Skew of each server's clock against the global clock, seconds
	// (index 0 the primary, 1 the secondary).
	Skew [2]int64

	// Faults turns on the random fault generator for the first Chaos
	// seconds; FaultEvery is the mean time between faults (seconds).
	Faults     bool
	Chaos      int64
	FaultEvery int64
	// Settle is how long the pair runs undisturbed after the chaos before
	// convergence (I5) is checked.
	Settle int64

	// Trace keeps the last Trace events for the failure report.
	Trace int
	// CheckDBEvery runs lease.DB.Check on a server after every n-th step
	// it takes (1: every step, 0: only at crashes and at the end). An
	// inconsistency stays until repaired, so sampling finds it, later;
	// a failing seed is replayed with 1 to find the step.
	CheckDBEvery int
	// Record collects transitions and messages for scenario output.
	Record bool
	// Manual clients do only what they are told (Acquire, Renew,
	// Rebind, Reboot, Release): no timers of their own, no
	// retransmissions, no random release or decline. For scripted
	// reproductions.
	Manual bool
	// Workarounds masks known bugs of the code under test, so that a
	// survey can look past them for others. Never set by default: see
	// the Work* constants.
	Workarounds uint
}

// Workarounds of known bugs, for exploring past them (Options.Workarounds).
const (
	// WorkServeRequests drops a DHCPREQUEST that the failover policy
	// would not serve (Policy.Serve), which dhcp.Handler does not ask
	// for REQUESTs: a server in startup, recover or potential-conflict
	// renews leases it should not.
	WorkServeRequests uint = 1 << iota
)

// Violation is a broken invariant.
type Violation struct {
	Invariant string // I1 … I5, DB (lease.DB.Check), SIM (the simulation itself)
	Step      int
	At        int64 // global time, ms since Epoch
	Detail    string
	Trace     []string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("%s violated at step %d (t=%s): %s", v.Invariant, v.Step, fmtMS(v.At), v.Detail)
}

// fmtMS formats a time in ms since Epoch as +seconds.millis.
func fmtMS(ms int64) string {
	return fmt.Sprintf("+%d.%03ds", ms/1000, ms%1000)
}

// Sim is one simulated world: two servers, a link, clients and a clock.
type Sim struct {
	opts Options
	rng  *rand.Rand
	now  int64 // global time, ms since Epoch
	seq  uint64
	q    eventQueue

	steps   int
	srv     [2]*server
	clients []*client
	cfgs    [2]*config.Config

	link      *conn
	connSeq   uint32
	dialAt    int64 // a dial is scheduled at this time (0: none)
	partition bool
	// inflight counts failover messages other than CONTACT on the wire,
	// for the quiescence test of I5.
	inflight int

	margin  int64 // I1/I3 skew margin, seconds
	holders map[uint32][]int32

	faults     bool
	chaosUntil int64 // ms
	healAt     int64 // ms; a heal is scheduled (0: none)

	violation *Violation
	trace     *traceRing
	lines     []string // Record output

	scratch []uint32
}

// New builds the world: both servers start with empty lease files (a new
// pair, both in recover), clients are idle and start within the first
// minute.
func New(opts Options) (*Sim, error) {
	if opts.Clients <= 0 || opts.PoolSize <= 0 || opts.PoolSize > 60000 {
		return nil, fmt.Errorf("sim: need clients and a pool of 1..60000 addresses")
	}
	s := &Sim{
		opts:    opts,
		rng:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		now:     Epoch * 1000,
		holders: make(map[uint32][]int32),
		faults:  opts.Faults,
	}
	if opts.Trace > 0 {
		s.trace = newTraceRing(opts.Trace)
	}
	d := opts.Skew[0] - opts.Skew[1]
	if d < 0 {
		d = -d
	}
	s.margin = d
	for i := range 2 {
		cfg, err := parseConfig(opts, i)
		if err != nil {
			return nil, err
		}
		s.cfgs[i] = cfg
		sv, err := newServer(s, i, cfg)
		if err != nil {
			return nil, err
		}
		s.srv[i] = sv
	}
	for i := range 2 {
		if err := s.boot(s.srv[i], false); err != nil {
			return nil, err
		}
	}
	s.scheduleDial(500 + s.rng.Int64N(2000))
	for i := range opts.Clients {
		c := newClient(s, int32(i))
		s.clients = append(s.clients, c)
		if !opts.Manual {
			c.sleep(s, s.rng.Int64N(60_000))
		}
	}
	if opts.Faults {
		s.chaosUntil = s.now + opts.Chaos*1000
		s.scheduleFault()
	}
	return s, nil
}

// Addresses: the servers are 198.18.0.1 (primary) and 198.18.0.2
// (secondary) on 198.18.0.0/16; the pool starts at 198.18.1.0.
var (
	serverAddrs = [2]netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")}
	poolStart   = lease.AddrToU32(netip.MustParseAddr("198.18.1.0"))
)

// configText is the dhcpd.conf of one server: its failover peer block and
// the shared subnet with one failover pool, as an operator would write
// them (examples/classic).
func configText(o Options, idx int) string {
	var b strings.Builder
	me, peer := serverAddrs[idx], serverAddrs[1-idx]
	fmt.Fprintf(&b, "failover peer %q {\n", relationship)
	if idx == 0 {
		b.WriteString("  primary;\n")
	} else {
		b.WriteString("  secondary;\n")
	}
	fmt.Fprintf(&b, "  address %s;\n  port 647;\n  peer address %s;\n  peer port 647;\n", me, peer)
	fmt.Fprintf(&b, "  max-response-delay %d;\n  max-unacked-updates %d;\n", o.MaxResponseDelay, o.MaxUnacked)
	if idx == 0 {
		fmt.Fprintf(&b, "  mclt %d;\n  split %d;\n", o.MCLT, o.Split)
	}
	fmt.Fprintf(&b, "  load balance max seconds %d;\n}\n", o.LBMaxSeconds)
	fmt.Fprintf(&b, "authoritative;\ndefault-lease-time %d;\nmax-lease-time %d;\n", o.LeaseTime, 2*o.LeaseTime)
	last := lease.U32ToAddr(poolStart + uint32(o.PoolSize) - 1)
	fmt.Fprintf(&b, "subnet 198.18.0.0 netmask 255.255.0.0 {\n  pool {\n    failover peer %q;\n    range %s %s;\n  }\n}\n",
		relationship, lease.U32ToAddr(poolStart), last)
	return b.String()
}

func parseConfig(o Options, idx int) (*config.Config, error) {
	name := [2]string{"primary.conf", "secondary.conf"}[idx]
	cfg, err := config.Parse(name, []byte(configText(o, idx)), nil)
	if err != nil {
		return nil, fmt.Errorf("sim: %s: %w", name, err)
	}
	return cfg, nil
}

// schedule queues an event.
func (s *Sim) schedule(e event) {
	s.seq++
	e.seq = s.seq
	if e.at < s.now {
		e.at = s.now
	}
	s.q.push(e)
}

// fail records the first violation; the run stops after the current step.
func (s *Sim) fail(inv, format string, args ...any) {
	if s.violation != nil {
		return
	}
	s.violation = &Violation{Invariant: inv, Step: s.steps, At: s.now - Epoch*1000, Detail: fmt.Sprintf(format, args...)}
	if s.trace != nil {
		s.tracef("VIOLATION %s: %s", inv, s.violation.Detail)
		s.violation.Trace = s.trace.lines()
	}
}

// Violation returns the first violation found, or nil.
func (s *Sim) Violation() *Violation { return s.violation }

// Steps returns how many events have run.
func (s *Sim) Steps() int { return s.steps }

// Now returns the global time in seconds since Epoch.
func (s *Sim) Now() int64 { return s.now/1000 - Epoch }

// RunUntil processes events up to global time t (ms since Epoch × 1000
// based), stopping early at a violation. It reports whether the run is
// still healthy.
func (s *Sim) runUntil(t int64) bool {
	for s.violation == nil && s.q.len() > 0 && s.q.peekAt() <= t {
		e := s.q.pop()
		s.now = e.at
		s.dispatch(e)
	}
	if s.violation == nil && s.now < t {
		s.now = t
	}
	return s.violation == nil
}

// maxSteps bounds one simulation: a protocol livelock (two nodes sending
// each other messages forever) must end as a failure, not a hang.
const maxSteps = 5_000_000

func (s *Sim) dispatch(e event) {
	s.steps++
	if s.steps > maxSteps {
		s.fail("SIM", "more than %d steps: livelock?", maxSteps)
		return
	}
	switch e.kind {
	case evClientTimer:
		c := s.clients[e.cl]
		if e.gen == c.gen {
			c.timer(s)
		}
	case evToServer:
		s.serverReceive(s.srv[e.srv], e.cl, e.pkt, e.sent)
	case evToClient:
		s.clients[e.cl].receive(s, int(e.srv), e.pkt, e.sent, e.ack)
	case evPeerMsg:
		s.peerDeliver(e)
	case evPeerDown:
		s.peerDown(int(e.srv), e.gen)
	case evDial:
		s.dial(e.at)
	case evTick:
		sv := s.srv[e.srv]
		if sv.up && e.gen == sv.life && e.at == sv.tickAt {
			s.tick(sv)
		}
	case evExpire:
		sv := s.srv[e.srv]
		if sv.up && e.gen == sv.life && e.at == sv.expireAt {
			s.expire(sv)
		}
	case evSync:
		sv := s.srv[e.srv]
		if sv.up && e.gen == sv.life {
			s.sync(sv)
		}
	case evFault:
		s.fault()
	case evRestart:
		s.restartEvent(s.srv[e.srv], e.flag)
	case evHeal:
		if e.at == s.healAt {
			s.heal()
		}
	}
}

// tracef records a line in the trace (only when tracing).
func (s *Sim) tracef(format string, args ...any) {
	if s.trace == nil {
		return
	}
	s.trace.add(fmt.Sprintf("%s #%d ", fmtMS(s.now-Epoch*1000), s.steps) + fmt.Sprintf(format, args...))
}

// record adds a line to the scenario output (only when recording).
func (s *Sim) record(format string, args ...any) {
	if !s.opts.Record {
		return
	}
	s.lines = append(s.lines, fmt.Sprintf(format, args...))
}

// Output returns and forgets the recorded scenario lines.
func (s *Sim) Output() []string {
	l := s.lines
	s.lines = nil
	return l
}

// stateName is ISC's name for a server state.
func stateName(st wire.ServerState) string { return st.String() }
