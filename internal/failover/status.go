package failover

import (
	"net/netip"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// numMsgTypes sizes the per-type counters: index 0 counts types ISC does
// not define, 1..12 the defined ones.
const numMsgTypes = int(wire.MsgDisconnect) + 1

func msgIndex(t wire.MessageType) int {
	if t.Valid() {
		return int(t)
	}
	return 0
}

// Counters count messages by type (index = wire.MessageType; 0 = others).
type Counters struct {
	Sent, Received [numMsgTypes]uint64
	// ReceiveTimeouts counts links closed because nothing arrived for
	// max-response-delay (fw §6).
	ReceiveTimeouts uint64
}

// PoolBalance is one pool's FREE/BACKUP split as balancing sees it (fw §9).
type PoolBalance struct {
	Index  int
	Subnet netip.Prefix
	Size   int
	Free   int
	Backup int
	// LTS is "leases to send": positive when this server holds more than
	// its half of the free leases.
	LTS int
}

// Status is a snapshot of the node for operators and metrics; it shares
// nothing with the node.
type Status struct {
	Name          string
	Role          config.Role
	State         wire.ServerState
	STOS          int64
	PartnerState  wire.ServerState
	PartnerSTOS   int64 // as the partner reported it
	MCLT          uint32
	Linked        bool // a connection exists
	Communicating bool // the partner's STATE arrived on it
	// LinkLost is why the last connection ended and LinkLostAt when; ""
	// and 0 while none has.
	LinkLost   string
	LinkLostAt int64
	// UpdatesQueued are binding updates not yet sent; UpdatesUnacked are
	// sent and not yet acknowledged.
	UpdatesQueued  int
	UpdatesUnacked int
	Messages       Counters
	// PartnerPoolUsableAt is, in partner-down, the time from which the
	// partner's free leases may be used (STOS+MCLT, fw §11); else 0.
	PartnerPoolUsableAt int64
	Pools               []PoolBalance
}

// Status returns a snapshot of the node.
func (n *Node) Status() Status {
	st := Status{
		Name:           n.name,
		Role:           n.role,
		State:          n.me,
		STOS:           n.stos,
		PartnerState:   n.partner,
		PartnerSTOS:    n.partnerSTOS,
		MCLT:           n.mclt,
		Linked:         n.link.up,
		Communicating:  n.link.communicating,
		LinkLost:       n.lostReason,
		LinkLostAt:     n.lostAt,
		UpdatesQueued:  n.updates.Len(),
		UpdatesUnacked: n.acks.Len(),
		Messages:       n.counts,
	}
	if n.me == stPartnerDown {
		st.PartnerPoolUsableAt = n.stos + int64(n.mclt)
	}
	n.pools(func(p *lease.Pool) {
		s := n.share(p)
		free, backup := freeCounts(p)
		st.Pools = append(st.Pools, PoolBalance{Index: p.Index, Subnet: p.Subnet, Size: p.Size(), Free: free, Backup: backup, LTS: s.lts})
	})
	return st
}
