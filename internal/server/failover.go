package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/control"
	"github.com/tandemdhcp/tandem/internal/failover"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
	"github.com/tandemdhcp/tandem/internal/leasefile"
	"github.com/tandemdhcp/tandem/internal/peer"
)

// shutdownWait bounds how long a stopping server waits for its partners
// to acknowledge the shutdown by moving to partner-down.
const shutdownWait = 10 * time.Second

// relationship is one "failover peer" block at run time: the pure state
// machine and the TCP link that carries its messages.
type relationship struct {
	cfg  *config.FailoverPeer
	node *failover.Node
	link *peer.Link
	// conn is the link's current connection; 0 when there is none.
	conn      peer.ConnID
	nextTimer int64
	stopped   bool
	metrics   *failover.Collector
}

type peerEvent struct {
	rel *relationship
	ev  peer.Event
}

// peerSend and peerClose are link actions the committer takes once the
// records they depend on are durable.
type peerSend struct {
	rel  *relationship
	conn peer.ConnID
	msg  *wire.Message
}

type peerClose struct {
	rel    *relationship
	conn   peer.ConnID
	reason string
}

func (s *Server) setupFailover() error {
	s.relByName = make(map[string]*relationship)
	s.peerEvents = make(chan peerEvent, 256)
	now := s.now().Unix()
	for _, fp := range s.opts.Config.FailoverPeers {
		var rec *lease.FailoverStateRecord
		for i := range s.failoverStates {
			if s.failoverStates[i].Peer == fp.Name {
				rec = &s.failoverStates[i]
			}
		}
		node, err := failover.NewNode(failover.NodeConfig{
			Peer: fp, DB: s.db, State: rec, Now: now, Version: s.opts.Version,
		})
		if err != nil {
			return fmt.Errorf("failover peer %q: %w", fp.Name, err)
		}
		pm := peer.NewMetrics()
		link := peer.New(peer.Config{
			Name:             fp.Name,
			LocalAddr:        fp.Address,
			Port:             fp.Port,
			PeerAddr:         fp.PeerAddress,
			PeerPort:         fp.PeerPort,
			MaxResponseDelay: time.Duration(fp.MaxResponseDelay) * time.Second,
			Logger:           s.log, // the link adds failover_peer itself
			Metrics:          pm,
		})
		r := &relationship{cfg: fp, node: node, link: link, metrics: failover.NewCollector()}
		if s.opts.Registerer != nil {
			if err := s.opts.Registerer.Register(pm); err != nil {
				return err
			}
			if err := s.opts.Registerer.Register(r.metrics); err != nil {
				return err
			}
		}
		s.rels = append(s.rels, r)
		s.relByName[fp.Name] = r
		// The state the node starts in (startup, resuming the saved state)
		// goes to the log and the lease file like any other.
		if err := s.persistStartup(r); err != nil {
			return fmt.Errorf("failover peer %q: writing its state: %w", fp.Name, err)
		}
	}
	return nil
}

// persistStartup logs and persists what the node decided at creation.
// The committer is not running yet, so it writes the journal itself; a
// failure stops start-up rather than serving with an unrecorded state.
func (s *Server) persistStartup(r *relationship) error {
	job := s.collectReady(r, commitJob{})
	if len(job.records) == 0 {
		return nil
	}
	if err := s.journal.Write(job.records); err != nil {
		return err
	}
	return s.journal.Sync()
}

func (s *Server) startLinks(ctx context.Context, wg *sync.WaitGroup) {
	for _, r := range s.rels {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := r.link.Run(ctx); err != nil {
				s.log.Error("failover link stopped", "failover peer", r.cfg.Name, "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			for ev := range r.link.Events() {
				select {
				case s.peerEvents <- peerEvent{rel: r, ev: ev}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
}

// step feeds one event to a relationship's state machine.
func (s *Server) step(r *relationship, now int64, ev failover.Event) {
	if err := r.node.Step(now, ev); err != nil {
		s.log.Warn("failover event refused", "failover peer", r.cfg.Name, "event", fmt.Sprintf("%T", ev), "err", err)
	}
}

func (s *Server) handlePeerEvent(pe peerEvent) {
	r, ev := pe.rel, pe.ev
	now := s.now().Unix()
	switch ev.Kind {
	case peer.EventUp:
		if r.conn != 0 {
			// The node still thinks the old connection is up: close it out first.
			s.step(r, now, failover.LinkDown{Reason: "replaced by a new connection"})
		}
		r.conn = ev.Conn
		s.log.Info("failover peer connected", "failover peer", r.cfg.Name, "remote", ev.Remote, "inbound", ev.Inbound)
		s.step(r, now, failover.LinkUp{})
	case peer.EventMessage:
		if ev.Conn != r.conn {
			return
		}
		s.step(r, now, failover.MessageReceived{Msg: ev.Message})
	case peer.EventDown:
		if ev.Conn != r.conn {
			return
		}
		r.conn = 0
		reason := string(ev.Cause)
		if ev.Err != nil {
			reason += ": " + ev.Err.Error()
		}
		s.log.Info("failover peer disconnected", "failover peer", r.cfg.Name, "cause", reason)
		s.step(r, now, failover.LinkDown{Reason: reason})
	}
	s.flush(nil)
}

// collectReady takes a node's effects into a commit job: the state record
// and changed leases are written, then messages sent, then the link closed.
func (s *Server) collectReady(r *relationship, job commitJob) commitJob {
	rd := r.node.Ready()
	r.nextTimer = rd.NextTimer
	// rd.Log already holds ISC's line for every entry of rd.StateChanges,
	// in place among the other lines; logging both doubled each of them.
	for _, l := range rd.Log {
		s.log.Log(context.Background(), l.Level, l.Msg)
	}
	if rd.StateRecord != nil {
		s.setFailoverRecord(*rd.StateRecord)
		job.records = leasefile.AppendFailoverState(job.records, rd.StateRecord)
	}
	for _, m := range rd.Messages {
		job.sends = append(job.sends, peerSend{rel: r, conn: r.conn, msg: m})
	}
	if rd.CloseLink != nil && r.conn != 0 {
		job.closes = append(job.closes, peerClose{rel: r, conn: r.conn, reason: rd.CloseLink.Reason})
		r.conn = 0
	}
	if rd.Stopped {
		r.stopped = true
	}
	r.metrics.Observe(r.node.Status())
	return job
}

func (s *Server) setFailoverRecord(rec lease.FailoverStateRecord) {
	for i := range s.failoverStates {
		if s.failoverStates[i].Peer == rec.Peer {
			s.failoverStates[i] = rec
			return
		}
	}
	s.failoverStates = append(s.failoverStates, rec)
}

// sendPeers runs in the committer, after the records are durable.
func (s *Server) sendPeers(sends []peerSend, closes []peerClose) {
	for _, ps := range sends {
		if ps.conn == 0 {
			continue
		}
		if err := ps.rel.link.Send(ps.conn, ps.msg); err != nil {
			s.log.Debug("failover message not sent", "failover peer", ps.rel.cfg.Name, "type", ps.msg.Type, "err", err)
		}
	}
	for _, pc := range closes {
		pc.rel.link.Close(pc.conn, pc.reason)
	}
}

// tickFailover runs the nodes' timers that are due.
func (s *Server) tickFailover(now int64) {
	for _, r := range s.rels {
		if r.nextTimer != 0 && r.nextTimer <= now {
			s.step(r, now, failover.Tick{})
		}
	}
}

// expiredState is where an active lease goes when it ends: free for a
// lone server, expired (until the partner knows) under failover.
func (s *Server) expiredState(l *lease.Lease) lease.BindingState {
	if _, p := s.db.Get(l.IP); p != nil && p.FailoverPeer != "" {
		if r := s.relByName[p.FailoverPeer]; r != nil {
			return r.node.ExpiredState(l)
		}
	}
	return lease.Free
}

func (s *Server) shutdownFailover() {
	now := s.now().Unix()
	for _, r := range s.rels {
		s.step(r, now, failover.Shutdown{})
	}
	s.flush(nil)
}

func (s *Server) failoverStopped() bool {
	for _, r := range s.rels {
		if !r.stopped {
			return false
		}
	}
	return true
}

// failoverStatus reports the failover relationships.
func (s *Server) failoverStatus() []control.PeerStatus {
	var out []control.PeerStatus
	for _, r := range s.rels {
		st := r.node.Status()
		ps := control.PeerStatus{
			Name:           st.Name,
			Role:           st.Role.String(),
			LocalState:     st.State.String(),
			LocalSince:     time.Unix(st.STOS, 0).UTC(),
			PartnerState:   st.PartnerState.String(),
			PartnerSince:   time.Unix(st.PartnerSTOS, 0).UTC(),
			Connected:      st.Communicating,
			MCLT:           st.MCLT,
			PendingUpdates: st.UpdatesQueued,
			UnackedUpdates: st.UpdatesUnacked,
			LinkLost:       st.LinkLost,
		}
		if st.LinkLostAt != 0 {
			t := time.Unix(st.LinkLostAt, 0).UTC()
			ps.LinkLostAt = &t
		}
		if st.PartnerSTOS == 0 {
			ps.PartnerSince = time.Time{} // never heard from
		}
		out = append(out, ps)
	}
	return out
}

// setFailoverState forces a relationship's state.
func (s *Server) setFailoverState(name, state string) error {
	if len(s.rels) == 0 {
		return errNoFailover
	}
	var r *relationship
	switch {
	case name != "":
		r = s.relByName[name]
		if r == nil {
			return fmt.Errorf("no failover peer %q", name)
		}
	case len(s.rels) == 1:
		r = s.rels[0]
	default:
		return fmt.Errorf("%d failover relationships: name one with -peer", len(s.rels))
	}
	st, ok := wire.ParseServerState(state)
	if !ok {
		return fmt.Errorf("unknown failover state %q", state)
	}
	s.log.Info("operator sets failover state", "failover peer", r.cfg.Name, "state", st)
	return r.node.Step(s.now().Unix(), failover.SetState{State: st})
}

// policyRouter sends the DHCP handler's failover questions to the node of
// the pool's relationship.
type policyRouter map[string]*relationship

func (pr policyRouter) node(p *lease.Pool) *failover.Node { return pr[p.FailoverPeer].node }

func (pr policyRouter) Serve(now int64, p *lease.Pool, key lease.ClientKey, msg dhcpv4.MessageType, secs uint16) bool {
	return pr.node(p).Serve(now, p, key, msg, secs)
}

func (pr policyRouter) AllocState(now int64, p *lease.Pool) lease.BindingState {
	return pr.node(p).AllocState(now, p)
}

func (pr policyRouter) MayReuse(now int64, p *lease.Pool, l *lease.Lease) bool {
	return pr.node(p).MayReuse(now, p, l)
}

func (pr policyRouter) GrantTime(now int64, p *lease.Pool, l *lease.Lease, desired uint32) uint32 {
	return pr.node(p).GrantTime(now, p, l, desired)
}

func (pr policyRouter) Released(p *lease.Pool) lease.BindingState { return pr.node(p).Released(p) }

func (pr policyRouter) PartnerAllocState(now int64, p *lease.Pool) lease.BindingState {
	return pr.node(p).PartnerAllocState(now, p)
}
