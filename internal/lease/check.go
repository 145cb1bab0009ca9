package lease

import (
	"errors"
	"fmt"
)

// Check verifies the database's internal consistency: per-pool counts
// against a recount, one live queue entry for every allocatable lease,
// indexes that point at leases carrying their key, an expiry entry for
// every active lease, and the dirty list against the dirty marks. It is
// for tests, fuzzing and the simulator; it walks every lease.
//
// It does not require the index to find a client's active lease: a client
// can hold two (a renewal of an old lease; ISC allows it too), and when
// the one the index names ends, the other is found again only when it
// next changes.
func (db *DB) Check() error {
	var errs []error
	fail := func(format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}

	for _, p := range db.Pools {
		var counts [Backup + 1]int
		for _, b := range p.blocks {
			for i := range b.leases {
				counts[b.leases[i].State]++
			}
		}
		if counts != p.counts {
			fail("pool %d: counts %v, recount %v", p.Index, p.counts, counts)
		}
		for q := range p.queues {
			seen := make(map[uint32]bool)
			f := &p.queues[q]
			for j := 0; j < f.size; j++ {
				e := f.buf[(f.head+j)%len(f.buf)]
				if db.live(q, e) == nil {
					continue
				}
				if seen[e.ip] {
					fail("pool %d: %s queued twice for %s", p.Index, U32ToAddr(e.ip), queueState(q))
				}
				seen[e.ip] = true
			}
			for _, b := range p.blocks {
				for i := range b.leases {
					l := &b.leases[i]
					if l.State == queueState(q) && !l.IsFixed() && !seen[l.IP] {
						fail("pool %d: %s is %s but not queued", p.Index, l.Addr(), l.State)
					}
				}
			}
		}
	}

	for cid, ip := range db.byClientID {
		l, _ := db.Get(ip)
		if l == nil || l.ClientID != cid {
			fail("client-id index: %x -> %s, which does not carry it", cid, U32ToAddr(ip))
		}
	}
	for k, ip := range db.byHardware {
		l, _ := db.Get(ip)
		if l == nil {
			fail("hardware index: %x -> %s, in no pool", k.addr[:k.hlen], U32ToAddr(ip))
			continue
		}
		if k2, ok := hwKeyOf(l); !ok || k2 != k {
			fail("hardware index: %x -> %s, which does not carry it", k.addr[:k.hlen], U32ToAddr(ip))
		}
	}

	scheduled := make(map[expiryEntry]bool, len(db.expiry))
	for i, e := range db.expiry {
		scheduled[e] = true
		if i > 0 && db.expiry[(i-1)/2].ends > e.ends {
			fail("expiry heap out of order at %d", i)
		}
	}
	dirty := make(map[uint32]bool, len(db.dirty))
	for _, ip := range db.dirty {
		if dirty[ip] {
			fail("%s listed dirty twice", U32ToAddr(ip))
		}
		dirty[ip] = true
	}
	db.Each(func(l *Lease, _ *Pool) {
		if l.HLen > MaxHardwareLen {
			fail("%s: hardware length %d", l.Addr(), l.HLen)
			return
		}
		if (l.Flags&flagDirty != 0) != dirty[l.IP] {
			fail("%s: dirty mark %v, listed %v", l.Addr(), l.Flags&flagDirty != 0, dirty[l.IP])
		}
		if l.State == Active && l.Ends != Never && !scheduled[expiryEntry{ends: l.Ends, ip: l.IP}] {
			fail("%s: active until %d but not scheduled", l.Addr(), l.Ends)
		}
	})
	return errors.Join(errs...)
}
