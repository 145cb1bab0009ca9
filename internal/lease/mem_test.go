package lease

import (
	"net/netip"
	"runtime"
	"testing"
	"unsafe"
)

// TestMemoryPerLease measures the heap a fully used /16 pool costs: 65,536
// leases, each active for its own client with a client identifier (type 1
// + MAC, as most clients send) and a hardware address, drained, with their
// expiry scheduled. The figure includes the lease records, queues, indexes
// and expiry heap. Target: under 300 bytes per lease.
func TestMemoryPerLease(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a large pool")
	}
	const n = 1 << 16
	base := netip.MustParseAddr("198.18.0.0")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	db, err := NewDB([]PoolSpec{{
		Subnet: netip.MustParsePrefix("198.18.0.0/16"),
		Ranges: []PoolRange{{Start: base, End: netip.MustParseAddr("198.18.255.255")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := db.Pools[0]
	for i := range n {
		l := db.Allocate(p, Free, nil)
		if l == nil {
			t.Fatalf("pool exhausted after %d", i)
		}
		mac := []byte{0x02, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		cid := string(append([]byte{1}, mac...)) // a fresh string, as the handler makes one
		if _, err := db.Update(l.IP, func(l *Lease) {
			l.State = Active
			l.Next = Free
			l.Starts = 1000
			l.Ends = 1000 + 43200 + int64(i%3600)
			l.CLTT = 1000
			l.ClientID = cid
			l.SetHardware(1, mac)
		}); err != nil {
			t.Fatal(err)
		}
	}
	db.DrainDirty(func(*Lease) {})

	runtime.GC()
	runtime.ReadMemStats(&after)
	perLease := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d active leases: %.1f bytes per lease on the heap (Lease struct %d bytes)",
		n, perLease, unsafe.Sizeof(Lease{}))
	if got := p.Count(Active); got != n {
		t.Fatalf("%d active, want %d", got, n)
	}
	// A generous bound, well above the measured figure, so only a real
	// regression (say, an index entry that allocates per client) trips it.
	if perLease > 400 {
		t.Errorf("%.1f bytes per lease; the target is under 300", perLease)
	}
	runtime.KeepAlive(db)
}
