package sim

import (
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// evKind says what an event does.
type evKind uint8

const (
	evClientTimer evKind = iota // a client's timer (gen guards staleness)
	evToServer                  // a DHCP packet reaches a server
	evToClient                  // a DHCP reply reaches a client
	evPeerMsg                   // a failover message reaches a server
	evPeerDown                  // a server learns its connection is gone
	evDial                      // try to set up the link between the servers
	evTick                      // a failover node's timer
	evExpire                    // lease expiry housekeeping on a server
	evSync                      // a server's group commit completes
	evFault                     // the fault generator acts
	evRestart                   // a down server comes back
	evHeal                      // a partition ends
)

var evNames = [...]string{"client-timer", "to-server", "to-client", "peer-msg", "peer-down", "dial", "tick", "expire", "sync", "fault", "restart", "heal"}

func (k evKind) String() string { return evNames[k] }

// event is one thing that happens at a time. Fields are used per kind.
type event struct {
	at   int64 // global time, ms
	seq  uint64
	kind evKind
	srv  int8   // server index, or -1
	gen  uint32 // staleness guard: client timer generation, server life, connection id
	cl   int32  // client index, or -1
	pkt  *dhcpv4.DHCPv4
	msg  []byte     // an encoded failover message
	flag bool       // evRestart: with an empty disk
	sent int64      // evToServer, evToClient: when the client sent the request
	ack  *ackRecord // evToClient: the DHCPACK's lease as the server recorded it
}

// eventQueue is a binary min-heap on (at, seq): events at the same time
// happen in the order they were scheduled, so runs are deterministic. The
// heap holds small pointer-free keys; the events sit in a slab with a free
// list, so that sifting moves no pointers (no GC write barriers).
type eventQueue struct {
	h    []qkey
	slab []event
	free []int32
}

type qkey struct {
	at   int64
	seq  uint64
	slot int32
}

func (q *eventQueue) less(i, j int) bool {
	a, b := &q.h[i], &q.h[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *eventQueue) push(e event) {
	var slot int32
	if n := len(q.free); n > 0 {
		slot = q.free[n-1]
		q.free = q.free[:n-1]
		q.slab[slot] = e
	} else {
		slot = int32(len(q.slab))
		q.slab = append(q.slab, e)
	}
	q.h = append(q.h, qkey{at: e.at, seq: e.seq, slot: slot})
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *eventQueue) pop() event {
	k := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h = q.h[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && q.less(l, m) {
			m = l
		}
		if r < n && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	e := q.slab[k.slot]
	q.slab[k.slot] = event{}
	q.free = append(q.free, k.slot)
	return e
}

func (q *eventQueue) len() int { return len(q.h) }

func (q *eventQueue) peekAt() int64 { return q.h[0].at }
