package lease

import (
	"container/heap"
	"fmt"
	"net/netip"
	"sort"
)

// Never is the Ends of a lease that does not expire (BOOTP, "ends never;").
const Never int64 = 1<<63 - 1

// Pool is a set of address ranges that are allocated together, as a
// dhcpd.conf pool block. Leases live in the pool's blocks, one per address,
// so that finding a lease by address needs no map.
type Pool struct {
	Index  int          // position in DB.Pools
	Subnet netip.Prefix // the subnet the pool belongs to
	// FailoverPeer names the failover relationship sharing this pool, or "".
	FailoverPeer string
	// Tag is the caller's handle for the pool (the DHCP handler keeps its
	// configuration there).
	Tag any

	blocks []*block
	// queues hold candidate addresses per allocatable state, oldest first.
	// Entries are checked when popped, so a stale entry costs nothing.
	queues [queueCount]fifo
	counts [Backup + 1]int
}

// Counts returns how many of the pool's leases are in each binding state.
func (p *Pool) Counts() map[BindingState]int {
	m := make(map[BindingState]int)
	for s, n := range p.counts {
		if n > 0 {
			m[BindingState(s)] = n
		}
	}
	return m
}

// Count returns how many of the pool's leases are in state s.
func (p *Pool) Count(s BindingState) int { return p.counts[s] }

// Size returns the number of addresses in the pool.
func (p *Pool) Size() int {
	n := 0
	for _, b := range p.blocks {
		n += len(b.leases)
	}
	return n
}

type block struct {
	start, end uint32
	pool       *Pool
	leases     []Lease
}

const (
	queueFree = iota
	queueBackup
	queueAbandoned
	queueCount
)

func queueOf(s BindingState) int {
	switch s {
	case Free:
		return queueFree
	case Backup:
		return queueBackup
	case Abandoned:
		return queueAbandoned
	}
	return -1
}

// internal flags never written to disk.
const (
	flagFixed  Flags = 1 << 6 // address is a host's fixed-address: never allocate
	flagDirty  Flags = 1 << 7 // changed since the last DrainDirty
	diskFlags        = FlagReserved | FlagBootp | FlagDynamicRange
	flagQueued Flags = 1 << 5 // address sits in one of its pool's queues
)

// DB is the lease database of one server. It is not safe for concurrent
// use: the server loop owns it.
type DB struct {
	Pools  []*Pool
	blocks []*block // sorted by start

	byClientID map[string]uint32
	byHardware map[string]uint32

	expiry expiryHeap
	dirty  []uint32
}

// PoolRange describes one range of a pool when building a DB.
type PoolRange struct {
	Start, End   netip.Addr
	DynamicBootp bool
}

// PoolSpec describes a pool when building a DB.
type PoolSpec struct {
	Subnet       netip.Prefix
	Ranges       []PoolRange
	FailoverPeer string
	Tag          any
}

// NewDB builds a database whose pools hold every address of their ranges
// in state Free. Ranges must not overlap.
func NewDB(specs []PoolSpec) (*DB, error) {
	db := &DB{byClientID: make(map[string]uint32), byHardware: make(map[string]uint32)}
	for i, s := range specs {
		p := &Pool{Index: i, Subnet: s.Subnet, FailoverPeer: s.FailoverPeer, Tag: s.Tag}
		for _, r := range s.Ranges {
			lo, hi := AddrToU32(r.Start), AddrToU32(r.End)
			if !r.Start.Is4() || !r.End.Is4() || lo > hi {
				return nil, fmt.Errorf("lease: bad range %s-%s", r.Start, r.End)
			}
			b := &block{start: lo, end: hi, pool: p, leases: make([]Lease, hi-lo+1)}
			for j := range b.leases {
				l := &b.leases[j]
				l.IP = lo + uint32(j)
				l.State = Free
				if r.DynamicBootp {
					l.Flags |= FlagDynamicRange
				}
			}
			p.blocks = append(p.blocks, b)
			db.blocks = append(db.blocks, b)
		}
		db.Pools = append(db.Pools, p)
	}
	sort.Slice(db.blocks, func(i, j int) bool { return db.blocks[i].start < db.blocks[j].start })
	for i := 1; i < len(db.blocks); i++ {
		if db.blocks[i].start <= db.blocks[i-1].end {
			return nil, fmt.Errorf("lease: ranges overlap at %s", U32ToAddr(db.blocks[i].start))
		}
	}
	for _, p := range db.Pools {
		for _, b := range p.blocks {
			for j := range b.leases {
				p.counts[Free]++
				db.enqueue(p, &b.leases[j])
			}
		}
	}
	return db, nil
}

func (db *DB) findBlock(ip uint32) *block {
	i := sort.Search(len(db.blocks), func(i int) bool { return db.blocks[i].end >= ip })
	if i < len(db.blocks) && db.blocks[i].start <= ip {
		return db.blocks[i]
	}
	return nil
}

// Get returns the lease of an address and its pool, or nil if the address
// is in no pool. The lease must be changed only through Update.
func (db *DB) Get(ip uint32) (*Lease, *Pool) {
	b := db.findBlock(ip)
	if b == nil {
		return nil, nil
	}
	return &b.leases[ip-b.start], b.pool
}

// MarkFixed excludes an address from allocation because a host
// declaration reserves it.
func (db *DB) MarkFixed(ip uint32) {
	if l, _ := db.Get(ip); l != nil {
		l.Flags |= flagFixed
	}
}

// IsFixed reports whether a host declaration reserves the lease's address.
func (l *Lease) IsFixed() bool { return l.Flags&flagFixed != 0 }

// ClientKey identifies a client: by client identifier when it sent one,
// else by hardware type and address (RFC 2131 §4.2).
type ClientKey struct {
	ClientID string
	HType    uint8
	HAddr    string
}

func hwKey(htype uint8, addr []byte) string {
	b := make([]byte, 0, 1+len(addr))
	return string(append(append(b, htype), addr...))
}

// KeyOf returns the identity stored in a lease.
func KeyOf(l *Lease) ClientKey {
	return ClientKey{ClientID: l.ClientID, HType: l.HType, HAddr: string(l.HAddr[:l.HLen])}
}

// Owns reports whether the lease records this client as its holder (or
// last holder). A lease with a client identifier matches only that
// identifier; otherwise the hardware address decides.
func (l *Lease) Owns(k ClientKey) bool {
	if l.ClientID != "" || k.ClientID != "" {
		return l.ClientID == k.ClientID && l.ClientID != ""
	}
	return l.HLen > 0 && l.HType == k.HType && string(l.HAddr[:l.HLen]) == k.HAddr
}

// HasClient reports whether the lease names a client at all.
func (l *Lease) HasClient() bool { return l.ClientID != "" || l.HLen > 0 }

// FindClient returns the lease last held by the client, or nil.
func (db *DB) FindClient(k ClientKey) *Lease {
	var ip uint32
	var ok bool
	if k.ClientID != "" {
		ip, ok = db.byClientID[k.ClientID]
	} else if k.HAddr != "" {
		ip, ok = db.byHardware[hwKey(k.HType, []byte(k.HAddr))]
	}
	if !ok {
		return nil
	}
	l, _ := db.Get(ip)
	if l == nil || !l.Owns(k) {
		return nil
	}
	return l
}

// Update applies fn to the lease of ip and keeps counts, queues, indexes
// and the expiry schedule right. The lease is marked dirty, to be written
// by whoever drains DirtyLeases.
func (db *DB) Update(ip uint32, fn func(l *Lease)) (*Lease, error) {
	l, p := db.Get(ip)
	if l == nil {
		return nil, fmt.Errorf("lease: %s is in no pool", U32ToAddr(ip))
	}
	oldState, oldCID := l.State, l.ClientID
	oldHW := ""
	if l.HLen > 0 {
		oldHW = hwKey(l.HType, l.HAddr[:l.HLen])
	}
	oldEnds := l.Ends
	ip0, fixed, queued := l.IP, l.Flags&flagFixed, l.Flags&flagQueued
	wasDirty := l.Flags&flagDirty != 0
	fn(l)
	l.IP = ip0
	l.Flags = l.Flags&(diskFlags) | fixed | queued | flagDirty
	if oldState != l.State {
		p.counts[oldState]--
		p.counts[l.State]++
		db.enqueue(p, l)
	}
	if oldCID != l.ClientID && oldCID != "" && db.byClientID[oldCID] == ip {
		delete(db.byClientID, oldCID)
	}
	newHW := ""
	if l.HLen > 0 {
		newHW = hwKey(l.HType, l.HAddr[:l.HLen])
	}
	if oldHW != newHW && oldHW != "" && db.byHardware[oldHW] == ip {
		delete(db.byHardware, oldHW)
	}
	db.index(l, newHW)
	if l.State == Active && l.Ends != Never && (l.Ends != oldEnds || oldState != Active) {
		heap.Push(&db.expiry, expiryEntry{ends: l.Ends, ip: ip})
	}
	if !wasDirty {
		db.dirty = append(db.dirty, ip)
	}
	return l, nil
}

func (db *DB) index(l *Lease, hw string) {
	if l.ClientID != "" {
		if cur, ok := db.byClientID[l.ClientID]; !ok || cur != l.IP {
			db.byClientID[l.ClientID] = l.IP
		}
	}
	if hw != "" {
		if cur, ok := db.byHardware[hw]; !ok || cur != l.IP {
			db.byHardware[hw] = l.IP
		}
	}
}

func (db *DB) enqueue(p *Pool, l *Lease) {
	q := queueOf(l.State)
	if q < 0 || l.Flags&flagQueued != 0 {
		return
	}
	l.Flags |= flagQueued
	p.queues[q].push(l.IP)
}

// Restore installs a lease read from the lease file. Leases for addresses
// in no pool are reported by the returned false, so the caller can log
// them; they are dropped, as ISC dhcpd does.
func (db *DB) Restore(src *Lease) bool {
	l, _ := db.Get(src.IP)
	if l == nil {
		return false
	}
	_, _ = db.Update(src.IP, func(l *Lease) {
		fixed := l.Flags & FlagDynamicRange
		*l = *src
		l.Flags |= fixed
	})
	return true
}

// Allocate takes the oldest candidate address of pool p in state s (Free,
// Backup or Abandoned) for which ok returns true. It does not change the
// lease: the caller offers or binds it with Update. Candidates that ok
// rejects stay in the queue.
func (db *DB) Allocate(p *Pool, s BindingState, ok func(l *Lease) bool) *Lease {
	qi := queueOf(s)
	if qi < 0 {
		return nil
	}
	q := &p.queues[qi]
	var skipped []uint32
	defer func() {
		for _, ip := range skipped {
			q.push(ip)
		}
	}()
	for q.len() > 0 {
		ip := q.pop()
		l, _ := db.Get(ip)
		l.Flags &^= flagQueued
		if l.State != s {
			// Stale: the lease moved on since it was queued; if it comes
			// back to an allocatable state it is queued again.
			db.enqueue(p, l)
			continue
		}
		if l.Flags&flagFixed != 0 {
			continue
		}
		l.Flags |= flagQueued
		if ok != nil && !ok(l) {
			skipped = append(skipped, ip)
			if len(skipped) > 64 {
				return nil
			}
			continue
		}
		// Leave it at the back of the queue: if the caller does not bind
		// it (an offer that is never taken up) it stays a candidate.
		skipped = append(skipped, ip)
		return l
	}
	return nil
}

// Expire moves every active lease whose Ends is at or before now to its
// next state, via fn which decides that state (Free for a lone server,
// Expired under failover). It returns how many expired.
func (db *DB) Expire(now int64, next func(l *Lease) BindingState) int {
	n := 0
	for db.expiry.Len() > 0 && db.expiry[0].ends <= now {
		e := heap.Pop(&db.expiry).(expiryEntry)
		l, _ := db.Get(e.ip)
		if l == nil || l.State != Active || l.Ends != e.ends {
			continue
		}
		st := next(l)
		_, _ = db.Update(e.ip, func(l *Lease) {
			l.State = st
			l.Next = StateNone
		})
		n++
	}
	return n
}

// NextExpiry returns the earliest Ends among active leases, or 0 if none.
func (db *DB) NextExpiry() int64 {
	for db.expiry.Len() > 0 {
		e := db.expiry[0]
		l, _ := db.Get(e.ip)
		if l != nil && l.State == Active && l.Ends == e.ends {
			return e.ends
		}
		heap.Pop(&db.expiry)
	}
	return 0
}

// DrainDirty calls fn for every lease changed since the last drain, in the
// order of their first change, and forgets them.
func (db *DB) DrainDirty(fn func(l *Lease)) {
	for _, ip := range db.dirty {
		l, _ := db.Get(ip)
		l.Flags &^= flagDirty
		fn(l)
	}
	db.dirty = db.dirty[:0]
}

// DirtyCount returns the number of leases waiting to be written.
func (db *DB) DirtyCount() int { return len(db.dirty) }

// Each calls fn for every lease of every pool, in address order.
func (db *DB) Each(fn func(l *Lease, p *Pool)) {
	for _, b := range db.blocks {
		for i := range b.leases {
			fn(&b.leases[i], b.pool)
		}
	}
}

// Pristine reports whether a lease carries no information beyond "free
// and never used", so snapshots can leave it out.
func (l *Lease) Pristine() bool {
	return l.State == Free && !l.HasClient() && l.Starts == 0 && l.Ends == 0 &&
		l.TSTP == 0 && l.TSFP == 0 && l.ATSFP == 0 && l.CLTT == 0 &&
		l.Flags&(FlagReserved|FlagBootp) == 0
}

// Snapshot returns a copy of the lease with internal flags removed, as it
// should be written to disk.
func (l *Lease) Snapshot() Lease {
	c := *l
	c.Flags &= diskFlags
	return c
}

type fifo struct {
	buf        []uint32
	head, size int
}

func (q *fifo) len() int { return q.size }

func (q *fifo) push(v uint32) {
	if q.size == len(q.buf) {
		n := len(q.buf) * 2
		if n == 0 {
			n = 16
		}
		nb := make([]uint32, n)
		for i := 0; i < q.size; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = v
	q.size++
}

func (q *fifo) pop() uint32 {
	v := q.buf[q.head]
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return v
}

type expiryEntry struct {
	ends int64
	ip   uint32
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].ends < h[j].ends }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
