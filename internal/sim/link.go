package sim

import (
	"github.com/tandemdhcp/tandem/internal/failover"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// conn is one TCP connection between the servers.
type conn struct {
	id uint32
	// open: the side still holds the connection (its node has not been
	// told it is gone, or it has not closed it).
	open [2]bool
	// broken: a partition cut it; what is in flight and everything sent
	// later is lost (TCP delivers a prefix of the stream, then nothing).
	broken bool
	// last is, per sending side, the arrival time of its last message:
	// one direction of a TCP connection never reorders.
	last [2]int64
}

// Peer message delays: a LAN, a few milliseconds, sometimes more.
func (s *Sim) peerDelay() int64 {
	if s.rng.IntN(20) == 0 {
		return 1 + s.rng.Int64N(1500)
	}
	return 1 + s.rng.Int64N(20)
}

// linkSend puts a node's message on connection id.
func (s *Sim) linkSend(sv *server, id uint32, m *wire.Message) {
	c := s.link
	if c == nil || c.id != id || !c.open[sv.idx] || c.broken {
		return
	}
	b, err := m.MarshalBinary()
	if err != nil {
		s.fail("SIM", "%s sent an unencodable %s: %v", sv.tag, m.Type, err)
		return
	}
	at := max(s.now+s.peerDelay(), c.last[sv.idx])
	c.last[sv.idx] = at
	if m.Type != wire.MsgContact {
		s.inflight++
	}
	s.schedule(event{at: at, kind: evPeerMsg, srv: int8(1 - sv.idx), gen: id, msg: b})
}

func (s *Sim) peerDeliver(e event) {
	data := e.msg
	m, err := wire.Unmarshal(data)
	if err != nil {
		s.fail("SIM", "undecodable failover message to %s: %v", s.srv[e.srv].tag, err)
		return
	}
	if m.Type != wire.MsgContact {
		s.inflight--
	}
	c := s.link
	if c == nil || c.id != e.gen || c.broken {
		return
	}
	dst := s.srv[e.srv]
	if !dst.up || dst.conn != e.gen {
		return
	}
	if s.trace != nil {
		s.tracef("%s→%s %s", s.srv[1-e.srv].tag, dst.tag, describeMsg(m))
	}
	if s.opts.Record {
		s.recordMsg(s.srv[1-e.srv].tag+"→"+dst.tag, m)
	}
	s.step(dst, failover.MessageReceived{Msg: m})
	s.collect(dst, nil)
}

// linkClose: side sv closes connection id (after sending what it sent).
// The other side learns it once the data before the FIN has arrived.
func (s *Sim) linkClose(sv *server, id uint32) {
	c := s.link
	if c == nil || c.id != id || !c.open[sv.idx] {
		return
	}
	c.open[sv.idx] = false
	o := 1 - sv.idx
	if c.open[o] {
		at := max(s.now+s.peerDelay(), c.last[sv.idx]) + 1
		s.schedule(event{at: at, kind: evPeerDown, srv: int8(o), gen: id})
		return
	}
	s.linkGone()
}

// peerDown: server i learns that connection id is gone.
func (s *Sim) peerDown(i int, id uint32) {
	c := s.link
	if c == nil || c.id != id || !c.open[i] {
		return
	}
	c.open[i] = false
	sv := s.srv[i]
	if sv.up && sv.conn == id {
		sv.conn = 0
		s.tracef("%s: link down", sv.tag)
		s.step(sv, failover.LinkDown{Reason: "connection lost"})
		s.collect(sv, nil)
	}
	if !c.open[1-i] {
		s.linkGone()
	}
}

// linkGone: neither side holds the connection; redial in a while
// (internal/peer waits 5 s after a link ends).
func (s *Sim) linkGone() {
	s.link = nil
	s.scheduleDial(4000 + s.rng.Int64N(2000))
}

func (s *Sim) scheduleDial(after int64) {
	at := s.now + after
	if s.dialAt != 0 && s.dialAt >= s.now && s.dialAt <= at {
		return
	}
	s.dialAt = at
	s.schedule(event{at: at, kind: evDial, srv: -1})
}

// dial sets up a connection when both servers run and can reach each
// other. Both nodes get LinkUp at once; the primary sends CONNECT.
func (s *Sim) dial(at int64) {
	if at != s.dialAt {
		return
	}
	s.dialAt = 0
	p, q := s.srv[0], s.srv[1]
	if s.link != nil || s.partition || !p.up || !q.up {
		return
	}
	s.connSeq++
	c := &conn{id: s.connSeq, open: [2]bool{true, true}}
	s.link = c
	s.tracef("link up (connection %d)", c.id)
	s.record("link up")
	for _, sv := range []*server{p, q} {
		sv.conn = c.id
		s.step(sv, failover.LinkUp{})
	}
	for _, sv := range []*server{p, q} {
		s.collect(sv, nil)
	}
}

// startPartition cuts the servers apart; clients may be left reaching one
// server only. Each side learns of the loss by a reset or by its own
// receive timeout, whichever comes first.
func (s *Sim) startPartition(clientsSplit bool) {
	if s.partition {
		return
	}
	s.partition = true
	s.tracef("PARTITION (clients split: %v)", clientsSplit)
	s.record("partition")
	if c := s.link; c != nil {
		c.broken = true
		for i := range 2 {
			if c.open[i] {
				after := int64(0)
				if s.rng.IntN(2) == 0 {
					after = s.rng.Int64N(int64(s.opts.MaxResponseDelay)*1000 + 10_000)
				}
				s.schedule(event{at: s.now + 1 + after, kind: evPeerDown, srv: int8(i), gen: c.id})
			}
		}
	}
	if clientsSplit {
		for _, cl := range s.clients {
			switch s.rng.IntN(4) {
			case 0:
				cl.reach = 1
			case 1:
				cl.reach = 2
			default:
				cl.reach = 3
			}
		}
	}
}

// heal ends a partition: everyone reaches everyone again.
func (s *Sim) heal() {
	s.healAt = 0
	if !s.partition {
		return
	}
	s.partition = false
	s.tracef("HEAL")
	s.record("heal")
	for _, cl := range s.clients {
		cl.reach = 3
	}
	s.scheduleDial(s.rng.Int64N(3000))
}
