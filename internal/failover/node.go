package failover

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// Times of the protocol, in seconds.
const (
	// StartupTimeout is how long a server stays in startup waiting for its
	// partner's state before it acts as if the link were lost (ISC,
	// fw §12.1, §12.3).
	StartupTimeout = 15
	// LinkStartupTimeout is how long a new link may take to finish the
	// CONNECT/CONNECTACK handshake before it is closed (ISC, fw §5).
	LinkStartupTimeout = 15
	// MaxClockSkew is the largest difference between the partners' clocks
	// that CONNECT and CONNECTACK accept (reject reason 4, fw §1, §5).
	MaxClockSkew = 60
	// ShutdownGrace is how long a graceful shutdown waits for the partner
	// to report partner-down before it gives up (ISC's shutdown phases
	// poll for about 5 s, fw §12.1).
	ShutdownGrace = 5
	// DefaultMCLT is the MCLT a secondary assumes before it has ever
	// learned the primary's (it persists the learned value, fw §5, §13).
	// Tandem's dhcpd.conf parser requires mclt on the primary, so only a
	// secondary that never connected uses it.
	DefaultMCLT = 3600
)

// defaultPartnerMaxUnacked is the window used when the partner's CONNECT or
// CONNECTACK carried no max-unacked-bndupd. ISC would then send nothing
// (its partner value stays 0, fw §4.5); the man page calls 10 safe.
const defaultPartnerMaxUnacked = 10

// NodeConfig is what a Node is built from.
type NodeConfig struct {
	// Peer is the relationship's "failover peer" block, with ISC's
	// defaults applied (config.FailoverPeer from the parser). Zero knobs
	// get ISC's defaults here too.
	Peer *config.FailoverPeer
	// DB holds the leases of every pool; the node uses those whose
	// FailoverPeer is Peer.Name. The node changes leases only inside Step.
	DB *lease.DB
	// State is the relationship's record from the lease file, or nil when
	// there is none: the server then starts in recover, as ISC does
	// (fw §7.2, §14 item 18).
	State *lease.FailoverStateRecord
	// Now is the time the server starts (Unix seconds).
	Now int64
	// Version goes into the vendor-class-identifier of CONNECT and
	// CONNECTACK as "tandem-<Version>" (ISC sends "isc-<version>", fw §3).
	Version string
}

// Node is the failover endpoint of one relationship. It is not safe for
// concurrent use: the server loop owns it, together with the lease DB.
type Node struct {
	name    string
	role    config.Role
	cfg     config.FailoverPeer
	db      *lease.DB
	vendor  string
	stopped bool

	me      wire.ServerState // local state
	saved   wire.ServerState // the state startup will resume (ISC saved_state)
	stos    int64            // start time of the local state
	partner wire.ServerState // last state the partner reported
	// partnerAt is when the partner's state was learned (ISC records its
	// own clock there, not the partner's STOS, fw §13).
	partnerAt      int64
	partnerSTOS    int64 // the STOS the partner reported
	partnerStartup bool  // the partner's STATE had the STARTUP flag
	mclt           uint32
	hba            [wire.HBALen]byte
	hasHBA         bool

	link link

	// Timers: 0 = not armed.
	startupAt     int64 // leave startup (disconnect transition)
	autoPDAt      int64 // auto-partner-down
	recoverDoneAt int64 // recover-wait → recover-done
	balanceAt     int64 // pool rebalance (ISC sched_balance)
	lastBalance   int64
	ownFreeAt     int64 // own free leases usable from (see setState)
	// normalAfterAcks: move from partner-down to normal once every
	// update is acked (see receiveState).
	normalAfterAcks bool
	reclaimAt       int64 // partner-down: next transitional lease to free
	shutdownAt      int64 // give up waiting for the partner's partner-down
	shuttingDown    bool

	updates *ipQueue             // leases waiting for a BNDUPD
	acks    *ipQueue             // leases whose BNDUPD awaits a BNDACK, in send order
	sent    map[uint32]sentState // per lease on acks: xid and state sent
	updDone updateRequest        // an UPDREQ/UPDREQALL being answered
	curUPD  wire.MessageType     // the update request we sent and await UPDDONE for
	toack   []*wire.Message      // accepted updates whose BNDACK is held
	// lateExpiry: expiries a normal secondary left to the primary, and
	// when to report them itself if the primary did not.
	lateExpiry map[uint32]int64
	// declined and rebound: addresses declined here, and those bound
	// again since, until the partner acks the new binding.
	declined, rebound map[uint32]bool
	ackAt             int64 // send the held BNDACKs (0: none)
	// recent holds the leases the node changed in this and the previous
	// Ready batch, as it left them, so that a caller reporting them back
	// with LeaseChanged does not make the node echo them to the partner.
	recent [2]map[uint32]lease.Lease
	// lostDB: the server started without a lease file (or with no lease
	// ever used), so it may have lost grants it made; recover waits
	// longer (recoverWaitUntil). Cleared once recovery is done.
	lostDB bool
	// holdRecord: lostDB, and the lease file says so by having no state
	// record (or a saved recover-wait); see persistState.
	holdRecord bool

	rd      Ready
	changed map[uint32]bool // leases already in rd.Leases
	counts  Counters
	// lostReason and lostAt: why and when the last link ended (Status).
	lostReason string
	lostAt     int64
}

// link is the state of the TCP connection to the partner, as far as the
// protocol is concerned.
type link struct {
	up bool
	// established: CONNECT/CONNECTACK done (ISC link_to_peer is set).
	established bool
	// communicating: the partner's STATE arrived ("communications OK").
	communicating bool
	xid           uint32 // next xid (ISC link->xid, fw §1)
	requested     bool   // an UPDREQ or UPDREQALL was sent on this link
	upAt          int64
	lastSend      int64
	lastRecv      int64
	connectXID    uint32
	// The partner's knobs from its CONNECT or CONNECTACK.
	partnerMaxUnacked   uint32
	partnerReceiveTimer uint32
	// clockOffset estimates the partner's clock minus ours: the largest
	// message time minus arrival time seen on this link (a message's
	// delay only makes it smaller). Valid once hasClockOffset.
	clockOffset    int64
	hasClockOffset bool
}

type sentState struct {
	xid   uint32
	state lease.BindingState // ISC desired_binding_state
	pe    int64              // the potential expiry sent
}

type updateRequest struct {
	active bool
	xid    uint32
	last   uint32 // send UPDDONE once this lease is acked
}

// NewNode builds the node of one relationship and moves it into startup,
// as ISC does when it starts (its first log line for the relationship is
// "I move from <saved> to startup").
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Peer == nil || cfg.DB == nil {
		return nil, errors.New("failover: NodeConfig needs Peer and DB")
	}
	p := *cfg.Peer
	if p.Name == "" {
		return nil, errors.New("failover: relationship without a name")
	}
	if p.Role != config.Primary && p.Role != config.Secondary {
		return nil, fmt.Errorf("failover peer %s: role must be primary or secondary", p.Name)
	}
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.MaxResponseDelay, config.DefaultMaxResponseDelay)
	def(&p.MaxUnackedUpdates, config.DefaultMaxUnackedUpdates)
	def(&p.MaxLeaseMisbalance, config.DefaultMaxLeaseMisbalance)
	def(&p.MaxLeaseOwnership, config.DefaultMaxLeaseOwnership)
	def(&p.MinBalance, config.DefaultMinBalance)
	def(&p.MaxBalance, config.DefaultMaxBalance)
	n := &Node{
		name:    p.Name,
		role:    p.Role,
		cfg:     p,
		db:      cfg.DB,
		vendor:  "tandem-" + orDefault(cfg.Version, "dev"),
		updates: newIPQueue(),
		acks:    newIPQueue(),
		sent:    make(map[uint32]sentState),

		lateExpiry: make(map[uint32]int64),
		declined:   make(map[uint32]bool),
		rebound:    make(map[uint32]bool),
		changed:    make(map[uint32]bool),
		recent:     [2]map[uint32]lease.Lease{make(map[uint32]lease.Lease), make(map[uint32]lease.Lease)},
	}
	if len(p.HBA) == wire.HBALen {
		copy(n.hba[:], p.HBA)
		n.hasHBA = true
	} else if p.HBA != nil {
		return nil, fmt.Errorf("failover peer %s: hba must be %d bytes, not %d", p.Name, wire.HBALen, len(p.HBA))
	}
	if p.Role == config.Primary && !n.hasHBA {
		// A primary must send an HBA: ISC's secondary refuses a
		// CONNECT without one (fw §5).
		return nil, fmt.Errorf("failover peer %s: a primary needs split or hba", p.Name)
	}

	now := cfg.Now
	n.me, n.stos = stRecover, now
	n.partner, n.partnerAt = wire.StateUnknown, now
	n.mclt = p.MCLT
	if rec := cfg.State; rec != nil {
		n.restore(rec)
	}
	// A server that may have lost grants waits longer in recover
	// (recoverWaitUntil): no lease file, or an unused database, or a
	// crash while such a recovery was still waiting. A saved recover is
	// not taken for lost grants: a graceful shutdown with updates still
	// unacknowledged saves it too (not back-dated), with every grant on
	// disk, and then waits STOS+MCLT as ISC does.
	n.lostDB = cfg.State == nil || n.pristine() || n.me == stRecoverWait
	n.holdRecord = cfg.State == nil || n.me == stRecoverWait
	if n.mclt == 0 {
		n.mclt = DefaultMCLT
	}
	// Whatever the partner may not have heard before we stopped goes
	// again (ISC queues tstp > atsfp at startup, mdb.c expire_all_pools).
	n.queueUnacked(false)
	n.setState(now, stStartup)
	return n, nil
}

// pristine reports whether no lease of the relationship was ever used.
func (n *Node) pristine() bool {
	used := false
	n.db.Each(func(l *lease.Lease, p *lease.Pool) {
		if !used && p.FailoverPeer == n.name && !l.Pristine() {
			used = true
		}
	})
	return !used
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// restore takes the state saved in the lease file. A saved startup or
// unknown state (ISC never writes them) and a saved shutdown (the server
// crashed while stopping: the partner may have gone partner-down and used
// our leases since) restart in recover, which resynchronises everything
// before serving.
func (n *Node) restore(rec *lease.FailoverStateRecord) {
	if rec.Peer != "" && rec.Peer != n.name {
		n.logf(slog.LevelWarn, "failover peer %s: ignoring the lease-file state of relationship %q", n.name, rec.Peer)
		return
	}
	s, ok := wire.ParseServerState(rec.MyState)
	switch {
	case !ok:
		n.logf(slog.LevelWarn, "failover peer %s: unknown saved state %q; starting in recover", n.name, rec.MyState)
	case s == stStartup || s == wire.StateUnknown || s == stShutDown:
		n.logf(slog.LevelWarn, "failover peer %s: saved state %s; starting in recover", n.name, s)
	default:
		n.me, n.stos = s, rec.MyStateAt
	}
	if ps, ok := wire.ParseServerState(rec.PartnerState); ok {
		n.partner, n.partnerAt = ps, rec.PartnerAt
	}
	if n.role == config.Secondary && rec.MCLT != 0 {
		// The secondary persists the MCLT it learned (fw §5, §13).
		n.mclt = rec.MCLT
	}
}

// Event is an input to Step.
type Event interface{ event() }

// LinkUp: a TCP connection to the partner exists (dialled or accepted);
// the primary sends CONNECT on it (fw §5). A LinkUp while a link is up
// replaces the old link.
type LinkUp struct{}

// LinkDown: the connection to the partner is gone. The node ignores it when
// it has no link (for example after it asked for CloseLink itself).
type LinkDown struct{ Reason string }

// MessageReceived: a decoded failover message arrived on the link.
type MessageReceived struct{ Msg *wire.Message }

// Tick: time passed; timers that are due fire.
type Tick struct{}

// SetState: the operator forces the local state (ISC's OMAPI local-state,
// dhcpd.conf(5) "partner-down"). Allowed: partner-down,
// communications-interrupted, recover, paused and shutdown.
type SetState struct{ State wire.ServerState }

// Shutdown: stop gracefully. From normal the node moves to shutdown so that
// the partner goes partner-down at once, waits up to ShutdownGrace for that,
// and saves recover with STOS back-dated by MCLT when nothing was left
// unsent, so that the next start skips the MCLT wait (fw §12.1). Ready
// reports Stopped when the server may exit.
type Shutdown struct{}

// LeaseChanged: the DHCP handler (or lease expiry, see ExpiredState)
// changed the lease of IP; a binding update is queued for the partner, as
// ISC does for every change it makes for a client. Report only those
// changes: a lease the node itself changed (Ready.Leases) and still finds
// exactly as it left it in this or the previous Ready batch is ignored, so
// that draining the DB's dirty list and reporting everything does not echo
// the partner's updates back, but other reports of unchanged leases are
// sent. Addresses of other relationships are ignored; an address in no
// pool is an error.
type LeaseChanged struct{ IP uint32 }

func (LinkUp) event()          {}
func (LinkDown) event()        {}
func (MessageReceived) event() {}
func (Tick) event()            {}
func (SetState) event()        {}
func (Shutdown) event()        {}
func (LeaseChanged) event()    {}

// ErrStopped is returned by Step after a graceful shutdown finished.
var ErrStopped = errors.New("failover: node stopped")

// Step feeds one event at time now (Unix seconds; it must not go
// backwards). Protocol errors are not returned: they close the link
// (Ready.CloseLink). Step returns an error only for a misuse by the caller.
func (n *Node) Step(now int64, ev Event) error {
	if n.stopped {
		return ErrStopped
	}
	switch e := ev.(type) {
	case LinkUp:
		n.linkUp(now)
	case LinkDown:
		if n.link.up {
			n.linkLost(now, orDefault(e.Reason, "link down"))
		}
	case MessageReceived:
		if e.Msg == nil {
			return errors.New("failover: MessageReceived without a message")
		}
		if n.link.up {
			n.receive(now, e.Msg)
		}
	case Tick:
		n.tick(now)
	case SetState:
		return n.operatorSetState(now, e.State)
	case Shutdown:
		n.shutdown(now)
	case LeaseChanged:
		return n.leaseChanged(now, e.IP)
	default:
		return fmt.Errorf("failover: unknown event %T", ev)
	}
	return nil
}

// Ready returns the effects accumulated since the last call and forgets
// them. Act on them in this order: persist StateRecord and the changed
// leases, send Messages, close the link if CloseLink is set. Call Ready
// (and act on it) before delivering another LinkUp.
func (n *Node) Ready() Ready {
	rd := n.rd
	rd.NextTimer = n.nextTimer()
	n.rd = Ready{}
	clear(n.changed)
	n.recent[0], n.recent[1] = n.recent[1], n.recent[0]
	clear(n.recent[1])
	return rd
}

// Ready holds the effects of the events stepped since the last Ready call.
type Ready struct {
	// Messages to send to the partner, in order, after the state record
	// and the leases are durable.
	Messages []*wire.Message
	// StateChanges are the local and partner state changes, in order
	// (String gives ISC's wording; Log has the same lines in place).
	StateChanges []StateChange
	// StateRecord, when set, is the relationship's record to append to
	// the lease file before anything else is done (ISC writes it before it
	// acts on a new state, fw §12).
	StateRecord *lease.FailoverStateRecord
	// Leases the node changed (partner's binding updates, pool balancing,
	// acknowledged expiries, rewind states). They are dirty in the DB too;
	// they must be durable before Messages go out (persist before you
	// tell).
	Leases []uint32
	// CloseLink asks to close the connection to the partner after sending
	// Messages (protocol error, timeout). The node already treats the
	// link as gone.
	CloseLink *CloseLink
	// Log lines, in order, in ISC's wording where ISC has one: state
	// changes, binding update rejects, pool balancing, update requests.
	Log []LogEntry
	// NextTimer is the earliest time (Unix seconds) at which the node
	// needs a Tick; 0 means no timer is armed. It may be at or before the
	// current time: then Tick at once.
	NextTimer int64
	// Stopped: a graceful shutdown is complete; the server may exit
	// once it has persisted this Ready.
	Stopped bool
}

// CloseLink asks the caller to close the link to the partner.
type CloseLink struct {
	Reason string
}

// LogEntry is one log line.
type LogEntry struct {
	Level slog.Level
	Msg   string
}

// StateChangeKind tells what a StateChange reports.
type StateChangeKind uint8

const (
	// LocalMove: this server changed state.
	LocalMove StateChangeKind = iota
	// PartnerMove: the partner reported a new state.
	PartnerMove
	// BothNormal: both servers are now normal.
	BothNormal
)

// StateChange is one state transition to log.
type StateChange struct {
	Peer     string // relationship name
	Kind     StateChangeKind
	From, To wire.ServerState
	At       int64
}

// String returns ISC's log line for the change (server/failover.c
// dhcp_failover_set_state and dhcp_failover_peer_state_changed).
func (c StateChange) String() string {
	switch c.Kind {
	case LocalMove:
		return fmt.Sprintf("failover peer %s: I move from %s to %s", c.Peer, c.From, c.To)
	case PartnerMove:
		return fmt.Sprintf("failover peer %s: peer moves from %s to %s", c.Peer, c.From, c.To)
	}
	return fmt.Sprintf("failover peer %s: Both servers normal", c.Peer)
}

// stateChange records a transition, and logs it in ISC's words.
func (n *Node) stateChange(c StateChange) {
	n.rd.StateChanges = append(n.rd.StateChanges, c)
	n.rd.Log = append(n.rd.Log, LogEntry{Level: slog.LevelInfo, Msg: c.String()})
}

func (n *Node) logf(level slog.Level, format string, args ...any) {
	n.rd.Log = append(n.rd.Log, LogEntry{Level: level, Msg: fmt.Sprintf(format, args...)})
}

// Name returns the relationship name.
func (n *Node) Name() string { return n.name }

// Role returns this server's role in the relationship.
func (n *Node) Role() config.Role { return n.role }

// State returns the local state (startup while starting up).
func (n *Node) State() wire.ServerState { return n.me }

// PartnerState returns the partner's last reported state.
func (n *Node) PartnerState() wire.ServerState { return n.partner }

// STOS returns the start time of the local state.
func (n *Node) STOS() int64 { return n.stos }

// MCLT returns the maximum client lead time in use (the primary's, learned
// by the secondary from CONNECT).
func (n *Node) MCLT() uint32 { return n.mclt }

// Communicating reports whether the partner's STATE has arrived on the
// current link ("communications OK", fw §5).
func (n *Node) Communicating() bool { return n.link.communicating }

// Stopped reports whether a graceful shutdown has completed.
func (n *Node) Stopped() bool { return n.stopped }

// Record returns the relationship's lease-file record as it stands (ISC
// write_failover_state, fw §13): the saved state while in startup, the
// partner's state with the time this server learned it, and the MCLT on
// the secondary only.
func (n *Node) Record() lease.FailoverStateRecord {
	my := n.me
	if my == stStartup {
		my = n.saved
	}
	r := lease.FailoverStateRecord{
		Peer:         n.name,
		MyState:      my.String(),
		MyStateAt:    n.stos,
		PartnerState: n.partner.String(),
		PartnerAt:    n.partnerAt,
	}
	if n.role == config.Secondary {
		r.MCLT = n.mclt
	}
	return r
}

func (n *Node) persistState() {
	if n.holdRecord && (n.me == stStartup || n.me == stRecover) {
		// The lease file has no word for "recovering a lost database":
		// a saved recover reads as a server whose grants are all on
		// disk. Until the recovery reaches recover-wait (which says it)
		// or ends, the file keeps no state record, so that a crash
		// meanwhile restarts as a lost database again, not as one
		// with whatever partial copy of the partner's it got.
		return
	}
	r := n.Record()
	n.rd.StateRecord = &r
}

// setState is ISC's dhcp_failover_set_state (fw §12.3): persist, log, tell
// the partner, then run the new state's entry actions.
func (n *Node) setState(now int64, to wire.ServerState) {
	from := n.me
	switch from {
	case stNormal, stPotentialConflict, stPartnerDown:
		// Updates in flight may be lost with the state change; send them
		// again (fw §4.5). Duplicates are harmless.
		n.rescind()
	}
	// STOS is kept into and out of startup and into recover-wait, whose
	// timer runs from recover's STOS.
	if to != stRecoverWait && to != stStartup && from != stStartup {
		n.stos = now
	}
	if to == stPartnerDown && (from == stStartup || recovering(from) || from == stRecoverDone) {
		// In partner-down without having caught up with the partner:
		// it may have come back and served meanwhile, so the MCLT wait
		// for its free leases starts again (ISC keeps the old STOS).
		// And the partner may have been in partner-down while we were
		// away or recovering, serving from our free leases, and cannot
		// tell us which now (draft §9.3.2 step 6 discusses the risk):
		// our own free leases wait MCLT too. Its grants out of contact
		// last at most MCLT, so the wait is enough.
		n.stos = now
		n.ownFreeAt = now + int64(n.mclt)
	}
	// A server that shut down gracefully, whose partner went
	// partner-down and which left nothing unsent, may skip the MCLT wait
	// on its next start: back-date STOS by MCLT (fw §12.1).
	if to == stRecover && from == stShutDown && n.partner == stPartnerDown &&
		n.updates.Len() == 0 && n.acks.Len() == 0 {
		n.stos = now - int64(n.mclt)
	}
	n.me = to
	n.normalAfterAcks = false
	if to == stStartup && from != stStartup {
		n.saved = from
	}
	n.persistState()
	n.stateChange(StateChange{Peer: n.name, Kind: LocalMove, From: from, To: to, At: now})
	if to == stNormal && n.partner == stNormal {
		n.stateChange(StateChange{Peer: n.name, Kind: BothNormal, From: to, To: to, At: now})
	}
	if from == stStartup && to != stStartup {
		n.startupAt = 0
	}
	// Any state change cancels the delayed automatic transitions.
	n.autoPDAt = 0
	n.recoverDoneAt = 0
	if to != stNormal {
		n.balanceAt = 0
	}
	if to != stPartnerDown {
		n.reclaimAt = 0
	}
	if n.link.established {
		n.sendState(now)
	}
	if to == stRecoverDone || to == stNormal {
		n.lostDB, n.holdRecord = false, false // recovered
	}

	switch to {
	case stCommInterrupted:
		// ISC's auto-partner-down (fw §12.1): off unless configured. The
		// man page warns it is unsafe when the partner may still serve;
		// Tandem keeps it an explicit choice.
		if n.cfg.AutoPartnerDown > 0 {
			n.autoPDAt = now + int64(n.cfg.AutoPartnerDown)
		}
	case stNormal:
		n.balance(now, nil)
		n.queueUnacked(false)
		if n.updates.Len() > 0 {
			n.sendUpdates(now)
			n.logf(slog.LevelInfo, "Sending updates to %s.", n.name)
		}
	case stPotentialConflict:
		if n.role == config.Primary || n.partner == stConflictDone {
			n.sendUpdateRequest(now, wire.MsgUpdReq)
		}
	case stStartup:
		n.startupAt = now + StartupTimeout
	case stRecoverWait:
		if end := n.recoverWaitUntil(now); end > now {
			n.recoverDoneAt = end
		} else {
			n.setState(now, stRecoverDone)
		}
	case stRecover:
		if n.link.established {
			n.sendUpdateRequest(now, wire.MsgUpdReqAll)
		}
	case stRecoverDone:
		// A partner that moved to conflict resolution while we waited
		// sends no new STATE; join it now rather than wait for ever.
		switch n.partner {
		case stPotentialConflict, stResolutionInterrupted, stConflictDone:
			if n.link.communicating {
				n.setState(now, stPotentialConflict)
			}
		}
	case stPartnerDown:
		n.scheduleReclaim(now)
	}
}

// operatorSetState is the SetState event.
func (n *Node) operatorSetState(now int64, s wire.ServerState) error {
	switch s {
	case stPartnerDown, stCommInterrupted, stRecover, stPaused, stShutDown:
	default:
		return fmt.Errorf("failover peer %s: the operator may not set state %s", n.name, s)
	}
	if n.me == s {
		// ISC would restart the state (and its MCLT wait); an operator
		// repeating a command should not.
		return nil
	}
	n.logf(slog.LevelInfo, "failover peer %s: operator sets state %s", n.name, s)
	n.setState(now, s)
	if n.stos != now {
		// Forced out of startup: the state starts now (its MCLT waits
		// too), not when the saved state began.
		n.stos = now
		n.persistState()
	}
	return nil
}

// shutdown starts a graceful stop (ISC dhcpd.c shutdown phases, fw §12.1).
func (n *Node) shutdown(now int64) {
	if n.shuttingDown {
		return
	}
	n.shuttingDown = true
	if n.me == stNormal && n.link.established {
		n.setState(now, stShutDown)
		n.shutdownAt = now + ShutdownGrace
		return
	}
	n.finishShutdown(now)
}

// finishShutdown ends a graceful stop: from shutdown the relationship is
// saved as recover (STOS back-dated when safe, see setState).
func (n *Node) finishShutdown(now int64) {
	n.shutdownAt = 0
	if n.link.up {
		n.link = link{}
		n.rd.CloseLink = &CloseLink{Reason: "shutting down"}
	}
	if n.me == stShutDown {
		n.setState(now, stRecover)
	}
	n.stopped = true
	n.rd.Stopped = true
}

// tick fires the timers that are due.
func (n *Node) tick(now int64) {
	if n.startupAt != 0 && now >= n.startupAt {
		n.startupAt = 0
		if n.me == stStartup {
			if to, ok := disconnectTarget(n.me, n.saved); ok {
				n.setState(now, to)
			}
		}
	}
	n.linkTimers(now)
	if n.ackAt != 0 && now >= n.ackAt && n.link.established {
		n.flushAcks(now)
	}
	n.reportLateExpiries(now)
	if n.shutdownAt != 0 && now >= n.shutdownAt {
		n.logf(slog.LevelWarn, "failover peer %s: partner did not confirm partner-down; stopping anyway", n.name)
		n.finishShutdown(now)
		return
	}
	if n.autoPDAt != 0 && now >= n.autoPDAt {
		n.autoPDAt = 0
		if n.me == stCommInterrupted {
			n.setState(now, stPartnerDown)
		}
	}
	if n.recoverDoneAt != 0 && now >= n.recoverDoneAt {
		n.recoverDoneAt = 0
		if n.me == stRecoverWait {
			n.setState(now, stRecoverDone)
		}
	}
	if n.balanceAt != 0 && now >= n.balanceAt {
		n.balanceAt = 0
		sendreq := false
		if n.balance(now, &sendreq) > 0 {
			n.sendUpdates(now)
		}
		if sendreq {
			n.sendPoolReq(now)
		}
	}
	if n.reclaimAt != 0 && now >= n.reclaimAt {
		n.scheduleReclaim(now)
	}
}

// nextTimer is the earliest armed timer.
func (n *Node) nextTimer() int64 {
	if n.stopped {
		return 0
	}
	var t int64
	at := func(v int64) {
		if v != 0 && (t == 0 || v < t) {
			t = v
		}
	}
	at(n.startupAt)
	at(n.autoPDAt)
	at(n.recoverDoneAt)
	at(n.balanceAt)
	at(n.reclaimAt)
	at(n.shutdownAt)
	at(n.ackAt)
	for _, t := range n.lateExpiry {
		at(t)
	}
	if n.link.up {
		if !n.link.established {
			at(n.link.upAt + LinkStartupTimeout)
		} else {
			at(n.link.lastSend + n.contactInterval())
			at(n.link.lastRecv + int64(n.cfg.MaxResponseDelay))
		}
	}
	return t
}

// update changes a lease through the DB and remembers it for Ready.Leases.
func (n *Node) update(ip uint32, fn func(l *lease.Lease)) *lease.Lease {
	l, err := n.db.Update(ip, fn)
	if err != nil {
		return nil
	}
	if !n.changed[ip] {
		n.changed[ip] = true
		n.rd.Leases = append(n.rd.Leases, ip)
	}
	n.recent[1][ip] = l.Snapshot()
	return l
}

// isRecent reports whether l is exactly as the node left it in this or
// the previous Ready batch.
func (n *Node) isRecent(l *lease.Lease) bool {
	s := l.Snapshot()
	for _, m := range n.recent {
		if r, ok := m[l.IP]; ok && r == s {
			return true
		}
	}
	return false
}

// mine returns the lease of ip and its pool if the pool belongs to this
// relationship.
func (n *Node) mine(ip uint32) (*lease.Lease, *lease.Pool) {
	l, p := n.db.Get(ip)
	if l == nil || p.FailoverPeer != n.name {
		return nil, nil
	}
	return l, p
}

// pools calls fn for each pool of this relationship.
func (n *Node) pools(fn func(p *lease.Pool)) {
	for _, p := range n.db.Pools {
		if p.FailoverPeer == n.name {
			fn(p)
		}
	}
}

// ownFree is the binding state this server allocates from (draft §5.4):
// FREE for the primary, BACKUP for the secondary.
func (n *Node) ownFree() lease.BindingState {
	if n.role == config.Primary {
		return lease.Free
	}
	return lease.Backup
}

// peerFree is the partner's allocatable state.
func (n *Node) peerFree() lease.BindingState {
	if n.role == config.Primary {
		return lease.Backup
	}
	return lease.Free
}

func (n *Node) service() serviceState { return serviceFor(n.me, n.partner) }
