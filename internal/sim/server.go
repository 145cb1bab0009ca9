package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/dhcp"
	"github.com/tandemdhcp/tandem/internal/failover"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// server is one simulated Tandem: the pure core (lease DB, DHCP handler,
// failover node) plus the disk and the ordering of internal/server.
type server struct {
	idx   int
	tag   string // "p" or "s"
	cfg   *config.Config
	peer  *config.FailoverPeer
	local []netip.Prefix
	addr  netip.Addr
	skew  int64 // seconds

	up       bool
	life     uint32 // incremented at every crash, stop and restart
	stopping bool   // a graceful shutdown is under way
	db       *lease.DB
	node     *failover.Node
	h        *dhcp.Handler

	// disk is what reached stable storage: leases by address and the
	// relationship's state record.
	disk      map[uint32]lease.Lease
	diskState *lease.FailoverStateRecord
	diskGen   uint32 // incremented when the disk is lost
	// known is, per address, the largest potential expiry (tsfp or tstp)
	// this server ever had on disk, whatever became of the disk later
	// (I2: the partner's tsfp must come from somewhere).
	known map[uint32]int64

	pending []*job // decided, not yet durable
	syncAt  int64  // ms; 0: no sync scheduled

	tickAt   int64 // ms of the scheduled node tick (0: none)
	expireAt int64 // ms of the scheduled expiry (0: none)
	// tickSec and tickRepeat detect a node whose timer is always due.
	tickSec    int64
	tickRepeat int

	conn uint32 // connection the node believes up (0: none)

	collects int // steps taken, for CheckDBEvery

	// amnesic: restarted with an empty disk and not yet back in normal
	// (the contract forbids losing both disks, see doc.go).
	amnesic bool
	// operatorPD: the operator forced partner-down on this server.
	operatorPD bool
	// lastServing is the last time (ms) this server could allocate from
	// its own free pool (I4).
	lastServing int64
	state       wire.ServerState // last state seen, for transitions
}

// job is what one step decided, in the order internal/server commits it:
// records first, then replies and failover messages, then closing the
// link.
type job struct {
	leases  []lease.Lease
	state   *lease.FailoverStateRecord
	replies []pendingReply
	msgs    []*wire.Message
	conn    uint32 // the connection the messages belong to
	close   uint32 // connection to close after sending (0: none)
	stopped bool
}

type pendingReply struct {
	cl   int32
	pkt  *dhcpv4.DHCPv4
	sent int64      // when the client sent the request answered
	ack  *ackRecord // set for DHCPACKs (I3)
}

// ackRecord is a DHCPACK as the server promised it (server clock).
type ackRecord struct {
	srv  int
	disk uint32 // the server's disk generation (a lost lease file is a new one)
	ip   uint32
	key  lease.ClientKey
	ends int64
}

func newServer(s *Sim, idx int, cfg *config.Config) (*server, error) {
	if len(cfg.FailoverPeers) != 1 {
		return nil, errors.New("sim: configuration needs exactly one failover peer")
	}
	sv := &server{
		idx:   idx,
		tag:   [2]string{"p", "s"}[idx],
		cfg:   cfg,
		peer:  cfg.FailoverPeers[0],
		addr:  serverAddrs[idx],
		local: []netip.Prefix{netip.PrefixFrom(serverAddrs[idx], 16)},
		skew:  s.opts.Skew[idx],
		disk:  make(map[uint32]lease.Lease),
		known: make(map[uint32]int64),
	}
	return sv, nil
}

// srvNow is the server's clock: whole seconds of global time plus skew.
func (s *Sim) srvNow(sv *server) int64 { return s.now/1000 + sv.skew }

// globalMS converts a server time (seconds) to global ms.
func globalMS(sv *server, t int64) int64 { return (t - sv.skew) * 1000 }

// boot starts a server from its disk (empty: from nothing, as with a lost
// lease file), as internal/server does: restore the leases, build the
// node from the saved state record, persist what it decided.
func (s *Sim) boot(sv *server, empty bool) error {
	if empty {
		sv.diskGen++
		clear(sv.disk)
		sv.diskState = nil
		sv.amnesic = true
	}
	db, err := dhcp.BuildDB(sv.cfg)
	if err != nil {
		return err
	}
	ips := make([]uint32, 0, len(sv.disk))
	for ip := range sv.disk {
		ips = append(ips, ip)
	}
	slices.Sort(ips)
	for _, ip := range ips {
		l := sv.disk[ip]
		if !db.Restore(&l) {
			return fmt.Errorf("sim: %s: lease %s not restorable", sv.tag, lease.U32ToAddr(ip))
		}
	}
	db.DrainDirty(func(*lease.Lease) {})
	var rec *lease.FailoverStateRecord
	if sv.diskState != nil {
		r := *sv.diskState
		rec = &r
	}
	now := s.srvNow(sv)
	node, err := failover.NewNode(failover.NodeConfig{Peer: sv.peer, DB: db, State: rec, Now: now, Version: "sim"})
	if err != nil {
		return err
	}
	sv.db, sv.node = db, node
	sv.h = dhcp.NewHandler(sv.cfg, db, node, nil)
	sv.up, sv.stopping = true, false
	sv.life++
	sv.pending, sv.syncAt = nil, 0
	sv.tickAt, sv.expireAt = 0, 0
	sv.conn = 0
	sv.state = node.State()
	s.tracef("%s boots%s in %s (saved %s)", sv.tag, map[bool]string{true: " with an EMPTY disk", false: ""}[empty], node.State(), savedState(rec))
	s.record("%s: start%s, saved state %s", sv.tag, map[bool]string{true: " with an empty lease file", false: ""}[empty], savedState(rec))
	s.collect(sv, nil)
	return nil
}

func savedState(r *lease.FailoverStateRecord) string {
	if r == nil {
		return "none"
	}
	return r.MyState
}

// step feeds one event to the server's node.
func (s *Sim) step(sv *server, ev failover.Event) {
	if err := sv.node.Step(s.srvNow(sv), ev); err != nil && !errors.Is(err, failover.ErrStopped) {
		s.fail("SIM", "%s: node refused %T: %v", sv.tag, ev, err)
	}
}

// collect is internal/server's flush: lease changes made by the handler or
// by expiry are reported to the node, the node's effects are gathered,
// and everything becomes one job that is durable before anything in it
// is told.
func (s *Sim) collect(sv *server, replies []pendingReply) {
	j := &job{replies: replies}
	ips := s.scratch[:0]
	sv.db.DrainDirty(func(l *lease.Lease) {
		j.leases = append(j.leases, l.Snapshot())
		ips = append(ips, l.IP)
	})
	for _, ip := range ips {
		s.step(sv, failover.LeaseChanged{IP: ip})
	}
	s.scratch = ips[:0]
	rd := sv.node.Ready()
	s.observe(sv, rd)
	if rd.StateRecord != nil {
		r := *rd.StateRecord
		j.state = &r
	}
	if len(rd.Messages) > 0 {
		j.msgs, j.conn = rd.Messages, sv.conn
	}
	if rd.CloseLink != nil && sv.conn != 0 {
		s.tracef("%s closes the link: %s", sv.tag, rd.CloseLink.Reason)
		j.close = sv.conn
		sv.conn = 0
	}
	j.stopped = rd.Stopped
	sv.db.DrainDirty(func(l *lease.Lease) { j.leases = append(j.leases, l.Snapshot()) })
	s.scheduleTick(sv, rd.NextTimer)
	s.scheduleExpire(sv)
	if n := s.opts.CheckDBEvery; n > 0 {
		sv.collects++
		if sv.collects%n == 0 {
			s.checkDB(sv)
		}
	}
	if s.servingOwnPool(sv) {
		sv.lastServing = s.now
	}
	if len(j.leases) == 0 && j.state == nil && len(j.msgs) == 0 && j.close == 0 && !j.stopped {
		for _, r := range j.replies {
			s.sendToClient(sv, r)
		}
		return
	}
	sv.pending = append(sv.pending, j)
	if sv.syncAt == 0 {
		// An fsync takes a few milliseconds; whatever is decided
		// meanwhile is committed with it (group commit).
		sv.syncAt = s.now + 1 + s.rng.Int64N(20)
		s.schedule(event{at: sv.syncAt, kind: evSync, srv: int8(sv.idx), gen: sv.life})
	}
}

func (s *Sim) checkDB(sv *server) {
	if err := sv.db.Check(); err != nil {
		s.fail("DB", "%s: lease.DB.Check: %v", sv.tag, err)
	}
}

// observe logs transitions and keeps the bookkeeping that follows states.
func (s *Sim) observe(sv *server, rd failover.Ready) {
	for _, c := range rd.StateChanges {
		if c.Kind == failover.LocalMove {
			s.tracef("%s: %s -> %s", sv.tag, c.From, c.To)
			s.record("%s: %s -> %s", sv.tag, c.From, c.To)
		} else if c.Kind == failover.PartnerMove {
			s.tracef("%s: partner %s -> %s", sv.tag, c.From, c.To)
		}
	}
	st := sv.node.State()
	if st == wire.StateNormal {
		sv.amnesic = false
	}
	if st != wire.StatePartnerDown {
		sv.operatorPD = false
	}
	sv.state = st
	if s.trace != nil {
		for _, l := range rd.Log {
			s.tracef("%s log: %s", sv.tag, l.Msg)
		}
	}
}

// servingOwnPool: the server may allocate from its own free pool now (I4
// bookkeeping: the partner's addresses are off limits for MCLT after this).
func (s *Sim) servingOwnPool(sv *server) bool {
	if !sv.up {
		return false
	}
	switch sv.node.State() {
	case wire.StateNormal, wire.StateCommunicationsInterrupted, wire.StatePartnerDown:
		return true
	}
	return false
}

// sync makes every pending job durable, then tells what they decided.
func (s *Sim) sync(sv *server) {
	sv.syncAt = 0
	jobs := sv.pending
	sv.pending = nil
	for _, j := range jobs {
		for i := range j.leases {
			l := &j.leases[i]
			sv.disk[l.IP] = *l
			if k := max(l.TSFP, l.TSTP); k > sv.known[l.IP] {
				sv.known[l.IP] = k
			}
		}
		if j.state != nil {
			sv.diskState = j.state
		}
	}
	for _, j := range jobs {
		for _, r := range j.replies {
			s.sendToClient(sv, r)
		}
		for _, m := range j.msgs {
			s.linkSend(sv, j.conn, m)
		}
		if j.close != 0 {
			s.linkClose(sv, j.close)
		}
		if j.stopped {
			s.tracef("%s stopped gracefully (saved %s)", sv.tag, savedState(sv.diskState))
			s.record("%s: stopped, saved state %s", sv.tag, savedState(sv.diskState))
			s.down(sv)
			return
		}
	}
}

// scheduleTick arms the node's timer (t in server seconds; 0: none).
func (s *Sim) scheduleTick(sv *server, t int64) {
	if t == 0 {
		sv.tickAt = 0
		return
	}
	at := max(globalMS(sv, t), s.now)
	if at == sv.tickAt {
		return
	}
	sv.tickAt = at
	s.schedule(event{at: at, kind: evTick, srv: int8(sv.idx), gen: sv.life})
}

func (s *Sim) tick(sv *server) {
	now := s.srvNow(sv)
	if now == sv.tickSec {
		sv.tickRepeat++
		if sv.tickRepeat > 1000 {
			s.fail("SIM", "%s: node timer due again after 1000 ticks at %d: timer livelock", sv.tag, now)
			return
		}
	} else {
		sv.tickSec, sv.tickRepeat = now, 0
	}
	sv.tickAt = 0
	s.step(sv, failover.Tick{})
	s.collect(sv, nil)
}

// scheduleExpire arms lease expiry at the earliest active lease's end, as
// the server's one-second housekeeping would find it.
func (s *Sim) scheduleExpire(sv *server) {
	t := sv.db.NextExpiry()
	if t == 0 {
		return
	}
	at := max(globalMS(sv, t), s.now)
	if sv.expireAt != 0 && sv.expireAt <= at && sv.expireAt >= s.now {
		return
	}
	sv.expireAt = at
	s.schedule(event{at: at, kind: evExpire, srv: int8(sv.idx), gen: sv.life})
}

func (s *Sim) expire(sv *server) {
	sv.expireAt = 0
	now := s.srvNow(sv)
	n := sv.db.Expire(now, sv.node.ExpiredState)
	sv.h.ExpireOffers(now)
	if n > 0 {
		s.tracef("%s: %d leases expire", sv.tag, n)
	}
	s.collect(sv, nil)
}

// serverReceive hands a client's packet to a running server, checking I2
// and I4 on every lease it grants.
func (s *Sim) serverReceive(sv *server, cl int32, pkt *dhcpv4.DHCPv4, sent int64) {
	if !sv.up {
		return
	}
	now := s.srvNow(sv)
	var before lease.Lease
	var ip uint32
	mt := pkt.MessageType()
	if mt == dhcpv4.MessageTypeRequest {
		a := pkt.RequestedIPAddress()
		if a == nil || a.IsUnspecified() {
			a = pkt.ClientIPAddr
		}
		if v, ok := netip.AddrFromSlice(a.To4()); ok {
			ip = lease.AddrToU32(v)
			if l, _ := sv.db.Get(ip); l != nil {
				before = *l
			}
		}
	}
	st, stos, mclt := sv.node.State(), sv.node.STOS(), int64(sv.node.MCLT())
	served := true
	if mt == dhcpv4.MessageTypeRequest {
		if l, p := sv.db.Get(ip); l != nil {
			served = sv.node.Serve(now, p, s.clients[cl].key, mt, pkt.NumSeconds)
		}
	}
	if !served && s.opts.Workarounds&WorkServeRequests != 0 {
		s.tracef("%s <- c%d %s: dropped (workaround: not served)", sv.tag, cl, describePacket(pkt))
		return
	}
	res := sv.h.Handle(now, dhcp.Request{Packet: pkt, LocalAddrs: sv.local})
	if s.trace != nil {
		what := res.Drop
		if res.Reply != nil {
			what = res.Reply.MessageType().String() + " " + res.Reply.YourIPAddr.String()
		}
		s.tracef("%s <- c%d %s: %s", sv.tag, cl, describePacket(pkt), what)
	}
	if res.Reply == nil {
		s.collect(sv, nil)
		return
	}
	var replies []pendingReply
	r := pendingReply{cl: cl, pkt: res.Reply, sent: sent}
	if res.Reply.MessageType() == dhcpv4.MessageTypeAck && res.Durable {
		yi, _ := netip.AddrFromSlice(res.Reply.YourIPAddr.To4())
		gip := lease.AddrToU32(yi)
		if gip != ip {
			s.fail("SIM", "%s: ACK for %s, but the REQUEST asked for %s", sv.tag, yi, lease.U32ToAddr(ip))
			return
		}
		l, _ := sv.db.Get(ip)
		after := *l
		if !served {
			// The handler must obey the failover policy: no service in
			// startup, recover, conflict resolution, shutdown (fw §7.2).
			s.fail("SVC", "%s ACKed %s to c%d in %s (partner %s), where its failover policy serves no one",
				sv.tag, lease.U32ToAddr(ip), cl, st, sv.node.PartnerState())
			return
		}
		s.checkGrant(sv, now, st, stos, mclt, &before, &after)
		r.ack = &ackRecord{srv: sv.idx, disk: sv.diskGen, ip: ip, key: lease.KeyOf(&after), ends: after.Ends}
	}
	if res.Durable {
		replies = append(replies, r)
		s.collect(sv, replies)
		return
	}
	s.collect(sv, nil)
	s.sendToClient(sv, r)
}

// sendToClient puts a reply on the wire to its client.
func (s *Sim) sendToClient(sv *server, r pendingReply) {
	c := s.clients[r.cl]
	if r.ack != nil && c.awaits(r.pkt) {
		// From now on the client may be using it (I3).
		c.lastAck = *r.ack
		c.hasLastAck = true
	}
	if c.reach&(1<<sv.idx) == 0 {
		return
	}
	s.schedule(event{at: s.now + 1 + s.rng.Int64N(30), kind: evToClient, srv: int8(sv.idx), cl: r.cl, pkt: r.pkt, sent: r.sent, ack: r.ack})
}

// crash kills a server (kill -9): whatever was not synced is lost, and
// so is the link.
func (s *Sim) crash(sv *server) {
	s.tracef("%s CRASHES (kill -9) in %s; %d unsynced jobs lost", sv.tag, sv.node.State(), len(sv.pending))
	s.record("%s: crash (kill -9) in %s", sv.tag, sv.node.State())
	s.checkDurable(sv)
	s.checkDB(sv)
	s.down(sv)
}

// down takes a server off: crash or the end of a graceful stop.
func (s *Sim) down(sv *server) {
	if s.servingOwnPool(sv) {
		sv.lastServing = s.now
	}
	sv.up, sv.stopping = false, false
	sv.life++
	sv.pending, sv.syncAt = nil, 0
	sv.tickAt, sv.expireAt = 0, 0
	if sv.conn != 0 {
		s.linkClose(sv, sv.conn)
		sv.conn = 0
	} else if s.link != nil && s.link.open[sv.idx] {
		s.linkClose(sv, s.link.id)
	}
	sv.node, sv.h, sv.db = nil, nil, nil
}

// shutdown starts a graceful stop (SIGTERM).
func (s *Sim) shutdown(sv *server) {
	if !sv.up || sv.stopping {
		return
	}
	s.tracef("%s: graceful shutdown in %s", sv.tag, sv.node.State())
	s.record("%s: shutdown requested in %s", sv.tag, sv.node.State())
	sv.stopping = true
	s.step(sv, failover.Shutdown{})
	s.collect(sv, nil)
}

// setState is the operator forcing a state.
func (s *Sim) setState(sv *server, st wire.ServerState) {
	if !sv.up {
		return
	}
	s.tracef("%s: operator sets %s", sv.tag, st)
	s.record("%s: operator sets %s", sv.tag, st)
	if st == wire.StatePartnerDown {
		sv.operatorPD = true
	}
	s.step(sv, failover.SetState{State: st})
	s.collect(sv, nil)
}

// restart brings a down server back, from its disk or an empty one.
func (s *Sim) restart(sv *server, empty bool) {
	if sv.up {
		return
	}
	if err := s.boot(sv, empty); err != nil {
		s.fail("SIM", "%s: restart: %v", sv.tag, err)
		return
	}
	s.scheduleDial(100 + s.rng.Int64N(2900))
}
