package failover

import (
	"net/netip"
	"testing"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// TestBalanceLargePoolInOnePass: a new pair's primary gives half of a pool
// far larger than one allocator scan to the secondary in one pass, as ISC
// does, instead of leaving the secondary a few thousand addresses.
func TestBalanceLargePoolInOnePass(t *testing.T) {
	const size = 20000
	start := netip.MustParseAddr("198.18.0.0")
	end := lease.U32ToAddr(lease.AddrToU32(start) + size - 1)
	db, err := lease.NewDB([]lease.PoolSpec{{
		Subnet:       netip.MustParsePrefix("198.18.0.0/15"),
		Ranges:       []lease.PoolRange{{Start: start, End: end}},
		FailoverPeer: relName,
	}})
	if err != nil {
		t.Fatal(err)
	}
	hba := make([]byte, 32)
	fp := config.FailoverPeer{Name: relName, Role: config.Primary, MCLT: 600, HBA: hba,
		MaxLeaseMisbalance: 15, MaxLeaseOwnership: 10, MaxUnackedUpdates: 10}
	n, err := NewNode(NodeConfig{Peer: &fp, DB: db, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	n.me, n.partner, n.startupAt = stNormal, stNormal, 0
	n.lostDB, n.holdRecord = false, false
	linked(t, n, stNormal)
	queued := n.balance(testNow, nil)
	p := db.Pools[0]
	free, backup := p.Count(lease.Free), p.Count(lease.Backup)
	if queued != size/2 || free != size/2 || backup != size/2 {
		t.Errorf("one pass queued %d: free %d, backup %d; want %d each", queued, free, backup, size/2)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}
