package wire

import (
	"fmt"

	"github.com/tandemdhcp/tandem/internal/lease"
)

// Reject is a well-framed message that ISC refuses with a reject-reason and
// a message text (in a BNDACK or CONNECTACK) instead of closing the link.
type Reject struct {
	Reason RejectReason
	Text   string
}

func (r *Reject) Error() string {
	return fmt.Sprintf("rejected (%d, %s): %s", uint8(r.Reason), r.Reason, r.Text)
}

// CheckBindingUpdate applies the checks ISC makes on a BNDUPD before it
// looks at its lease database (server/failover.c
// dhcp_failover_process_bind_update; fw §4.2), and returns the reject ISC
// would send, or nil:
//
//   - assigned-IP-address and binding-status are required (reason 3);
//   - ACTIVE, EXPIRED and RELEASED need a client-hardware-address (3);
//   - ABANDONED may carry neither chaddr nor client-identifier (6);
//   - a chaddr longer than MaxCHADDRLen does not fit ISC's lease (6).
//
// ISC checks that the address is in one of the relationship's pools
// (reason 1) and resolves dueling updates (16) between the first check and
// the others; those need the lease database and belong to the caller.
func (m *Message) CheckBindingUpdate() *Reject {
	if !m.AssignedIP.Present || !m.BindingStatus.Present {
		return &Reject{RejectMissingBindInfo, "binding update lacks assigned-IP-address or binding-status"}
	}
	status := m.BindingStatus.Value
	if chaddr, ok := m.CHAddr.Get(); ok {
		if status == lease.Abandoned {
			return &Reject{RejectMisc, "BNDUPD to ABANDONED carries a chaddr"}
		}
		if len(chaddr) > MaxCHADDRLen {
			return &Reject{RejectMisc, fmt.Sprintf("chaddr of %d bytes is too long", len(chaddr))}
		}
	} else if status == lease.Active || status == lease.Expired || status == lease.Released {
		return &Reject{RejectMissingBindInfo, fmt.Sprintf("BNDUPD to %s without chaddr", status)}
	}
	if m.ClientID.Present && status == lease.Abandoned {
		return &Reject{RejectMisc, "BNDUPD to ABANDONED carries a client-identifier"}
	}
	return nil
}
