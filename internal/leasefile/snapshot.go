package leasefile

import (
	"io"
	"iter"

	"github.com/tandemdhcp/tandem/internal/lease"
)

// WriteSnapshot writes a whole database as records, for Compact: failover
// states first, then leases, the order of ISC's write_leases
// (server/mdb.c). It writes in chunks of about 64 KiB.
func WriteSnapshot(w io.Writer, leases iter.Seq[*lease.Lease], states []lease.FailoverStateRecord) error {
	buf := make([]byte, 0, 1<<16+512)
	for i := range states {
		buf = AppendFailoverState(buf, &states[i])
	}
	for l := range leases {
		buf = AppendLease(buf, l)
		if len(buf) >= 1<<16 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := w.Write(buf)
	return err
}

// All yields pointers to the leases of a slice, for WriteSnapshot.
func All(leases []lease.Lease) iter.Seq[*lease.Lease] {
	return func(yield func(*lease.Lease) bool) {
		for i := range leases {
			if !yield(&leases[i]) {
				return
			}
		}
	}
}

// IsPristine reports whether l carries nothing a lease file needs: a free
// lease never given to a client and never acknowledged by a peer. ISC leaves
// such leases out of a rewritten file (server/mdb.c write_leases4) because
// the pool declaration recreates them; a caller may filter them out of
// WriteSnapshot the same way.
func IsPristine(l *lease.Lease) bool {
	return l.State == lease.Free && l.HType == 0 && l.HLen == 0 && l.ClientID == "" && l.TSFP == 0
}
