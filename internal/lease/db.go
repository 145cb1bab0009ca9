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
	// queues hold candidate addresses per allocatable state, oldest first
	// (the order in which they entered the state, as ISC dhcpd allocates
	// the lease that has been free longest). A lease is not removed from
	// its queue when it leaves the state; instead every entry carries a
	// sequence number and only the entry whose number the lease's block
	// remembers is live. Stale entries are skipped when popped and swept
	// out when they outnumber the live ones.
	queues  [queueCount]fifo
	nextSeq uint32
	counts  [Backup + 1]int
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
	// seq[i] is the sequence number of leases[i]'s live queue entry.
	seq []uint32
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

func queueState(q int) BindingState {
	return [queueCount]BindingState{queueFree: Free, queueBackup: Backup, queueAbandoned: Abandoned}[q]
}

// internal flags never written to disk.
const (
	flagFixed Flags = 1 << 6 // address is a host's fixed-address: never allocate
	flagDirty Flags = 1 << 7 // changed since the last DrainDirty
	diskFlags       = FlagReserved | FlagBootp | FlagDynamicRange
)

// DB is the lease database of one server. It is not safe for concurrent
// use: the server loop owns it.
type DB struct {
	Pools  []*Pool
	blocks []*block // sorted by start

	byClientID map[string]uint32
	byHardware map[hwIndexKey]uint32

	expiry expiryHeap
	dirty  []uint32
	spare  []uint32 // DrainDirty's second buffer
}

// hwIndexKey is a hardware type, length and address as a fixed-size map key,
// so the index needs no allocation per client.
type hwIndexKey struct {
	htype, hlen uint8
	addr        [MaxHardwareLen]byte
}

// hwKeyOf returns the hardware index key of a lease; only leases without a
// client identifier are indexed by hardware address (see FindClient).
func hwKeyOf(l *Lease) (hwIndexKey, bool) {
	if l.HLen == 0 || l.ClientID != "" {
		return hwIndexKey{}, false
	}
	k := hwIndexKey{htype: l.HType, hlen: l.HLen}
	copy(k.addr[:], l.HAddr[:l.HLen])
	return k, true
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
	db := &DB{byClientID: make(map[string]uint32), byHardware: make(map[hwIndexKey]uint32)}
	for i, s := range specs {
		p := &Pool{Index: i, Subnet: s.Subnet, FailoverPeer: s.FailoverPeer, Tag: s.Tag}
		for _, r := range s.Ranges {
			lo, hi := AddrToU32(r.Start), AddrToU32(r.End)
			if !r.Start.Is4() || !r.End.Is4() || lo > hi {
				return nil, fmt.Errorf("lease: bad range %s-%s", r.Start, r.End)
			}
			b := &block{start: lo, end: hi, pool: p, leases: make([]Lease, hi-lo+1), seq: make([]uint32, hi-lo+1)}
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
	// Queue in address order: with nothing else to go by, the lowest
	// address is the oldest.
	for _, b := range db.blocks {
		for j := range b.leases {
			b.pool.counts[Free]++
			db.enqueue(b, j)
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

// locate returns the block holding ip and the lease's index in it.
func (db *DB) locate(ip uint32) (*block, int) {
	b := db.findBlock(ip)
	if b == nil {
		return nil, 0
	}
	return b, int(ip - b.start)
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

func (k ClientKey) hwIndexKey() hwIndexKey {
	var h hwIndexKey
	h.htype = k.HType
	h.hlen = uint8(copy(h.addr[:], k.HAddr))
	return h
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

// FindClient returns the lease last held by the client, or nil. When the
// client holds an active lease, that is the one returned.
//
// Leases are indexed by client identifier, and by hardware address only
// when they carry no client identifier: a lease with an identifier can
// never be owned (see Owns) by a client that is known by its hardware
// address alone, so indexing it there would only hide a lease that can.
func (db *DB) FindClient(k ClientKey) *Lease {
	var ip uint32
	var ok bool
	if k.ClientID != "" {
		ip, ok = db.byClientID[k.ClientID]
	} else if k.HAddr != "" {
		ip, ok = db.byHardware[k.hwIndexKey()]
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
// by whoever drains DirtyLeases. fn must leave a valid binding state
// (StateNone … Backup); it cannot change the address.
func (db *DB) Update(ip uint32, fn func(l *Lease)) (*Lease, error) {
	b, i := db.locate(ip)
	if b == nil {
		return nil, fmt.Errorf("lease: %s is in no pool", U32ToAddr(ip))
	}
	db.update(b, i, fn)
	return &b.leases[i], nil
}

// update is Update on a located lease; it reports whether the binding
// state changed.
func (db *DB) update(b *block, i int, fn func(l *Lease)) bool {
	l := &b.leases[i]
	p := b.pool
	old := *l
	fn(l)
	l.IP = old.IP
	l.Flags = l.Flags&diskFlags | old.Flags&flagFixed | flagDirty
	if int(l.State) >= len(p.counts) {
		panic(fmt.Sprintf("lease: %s: binding state %d out of range", l.Addr(), l.State))
	}
	changed := old.State != l.State
	if changed {
		p.counts[old.State]--
		p.counts[l.State]++
		db.enqueue(b, i)
	}

	// Drop index entries that named this lease under a key it no longer
	// carries, then (re)index it under its current keys.
	if old.ClientID != "" && old.ClientID != l.ClientID {
		if cur, ok := db.byClientID[old.ClientID]; ok && cur == l.IP {
			delete(db.byClientID, old.ClientID)
		}
	}
	oldHW, hadHW := hwKeyOf(&old)
	newHW, hasHW := hwKeyOf(l)
	if hadHW && (!hasHW || oldHW != newHW) {
		if cur, ok := db.byHardware[oldHW]; ok && cur == l.IP {
			delete(db.byHardware, oldHW)
		}
	}
	if l.ClientID != "" {
		if cur, ok := db.byClientID[l.ClientID]; !ok || cur != l.IP && db.mayTakeIndex(l, cur) {
			db.byClientID[l.ClientID] = l.IP
		}
	}
	if hasHW {
		if cur, ok := db.byHardware[newHW]; !ok || cur != l.IP && db.mayTakeIndex(l, cur) {
			db.byHardware[newHW] = l.IP
		}
	}

	if l.State == Active && l.Ends != Never && (l.Ends != old.Ends || old.State != Active) {
		db.schedule(l.Ends, l.IP)
	}
	if old.Flags&flagDirty == 0 {
		db.dirty = append(db.dirty, l.IP)
	}
	return changed
}

// mayTakeIndex decides whether lease l, which names a client, should
// replace the lease at cur as the one the index returns for that client:
// yes, unless cur is an active lease of the same client and l is not
// active (a client's current binding wins over its history).
func (db *DB) mayTakeIndex(l *Lease, cur uint32) bool {
	if l.State == Active {
		return true
	}
	o, _ := db.Get(cur)
	return o == nil || o.State != Active || !o.Owns(KeyOf(l))
}

// enqueue makes lease i of block b a candidate at the back of its pool's
// queue for its state, if that state is allocatable.
func (db *DB) enqueue(b *block, i int) {
	l := &b.leases[i]
	q := queueOf(l.State)
	if q < 0 {
		return
	}
	p := b.pool
	p.nextSeq++
	b.seq[i] = p.nextSeq
	p.queues[q].pushBack(queueEntry{ip: l.IP, seq: p.nextSeq})
	if p.queues[q].len() > 2*p.counts[l.State]+64 {
		db.sweep(p, q)
	}
}

// live returns the lease of a queue entry if the entry is its current one
// and the lease may still be allocated from queue q.
func (db *DB) live(q int, e queueEntry) *Lease {
	b, i := db.locate(e.ip)
	if b == nil || b.seq[i] != e.seq {
		return nil
	}
	l := &b.leases[i]
	if l.State != queueState(q) || l.Flags&flagFixed != 0 {
		return nil
	}
	return l
}

// sweep drops the stale entries of a queue, keeping the order of the rest.
func (db *DB) sweep(p *Pool, q int) {
	f := &p.queues[q]
	n := f.len()
	for ; n > 0; n-- {
		e := f.popFront()
		if db.live(q, e) != nil {
			f.pushBack(e)
		}
	}
}

// Restore installs a lease read from the lease file. Leases for addresses
// in no pool, or with a binding state this package does not know (or a
// hardware length over MaxHardwareLen), are
// reported by the returned false, so the caller can log them; they are
// dropped, as ISC dhcpd does. Restored leases that are free (or backup, or
// abandoned) and have a history go to the back of their allocation queue
// in the order they are restored, behind the never-used addresses: restore
// a lease file in its order and the least recently used address is
// allocated first. Restored leases are marked dirty like any other change.
func (db *DB) Restore(src *Lease) bool {
	b, i := db.locate(src.IP)
	if b == nil || int(src.State) >= len(b.pool.counts) || src.HLen > MaxHardwareLen {
		return false
	}
	l := &b.leases[i]
	dyn := l.Flags & FlagDynamicRange // from the configuration, not the file
	if !db.update(b, i, func(l *Lease) {
		*l = *src
		l.Flags = l.Flags&^FlagDynamicRange | dyn
	}) && !l.Pristine() {
		db.enqueue(b, i)
	}
	return true
}

// Queue calls fn with each lease of pool p in state s (Free, Backup or
// Abandoned), in the order Allocate would take them, until fn returns
// false. Unlike Allocate it looks at the whole queue and changes nothing;
// fn must not change the DB.
func (db *DB) Queue(p *Pool, s BindingState, fn func(l *Lease) bool) {
	qi := queueOf(s)
	if qi < 0 {
		return
	}
	q := &p.queues[qi]
	for i := range q.size {
		if l := db.live(qi, q.buf[(q.head+i)%len(q.buf)]); l != nil && !fn(l) {
			return
		}
	}
}

// MaxAllocateScan bounds the candidates one Allocate call looks at, so a
// flood of requests for a pool whose candidates are all rejected (every
// address held for an offer) costs bounded work per request. Rejected
// candidates move to the back, so the next call looks at others.
const MaxAllocateScan = 4096

// Allocate takes the oldest candidate address of pool p in state s (Free,
// Backup or Abandoned) for which ok returns true. It does not change the
// lease: the caller offers or binds it with Update. The lease returned
// moves to the back of the queue (if it is not bound, it stays a
// candidate, behind the others), and so do the candidates ok rejects: an
// address held for another client's offer counts as used. It gives up
// after MaxAllocateScan candidates.
//
// Stale entries (leases that have left the state since they were queued)
// are dropped on the way and do not count as candidates: each is dropped
// once, so their cost is paid for by the changes that made them stale.
// Counting them once left a server unable to offer anything for its first
// few DISCOVERs after pool balancing had moved half of a 65,000-address
// free queue to backup: every call used its whole scan on stale entries.
func (db *DB) Allocate(p *Pool, s BindingState, ok func(l *Lease) bool) *Lease {
	qi := queueOf(s)
	if qi < 0 {
		return nil
	}
	q := &p.queues[qi]
	candidates := 0
	for n := q.len(); n > 0 && candidates < MaxAllocateScan; n-- {
		e := q.popFront()
		l := db.live(qi, e)
		if l == nil {
			continue // stale: the lease left the state (or is reserved)
		}
		candidates++
		q.pushBack(e)
		if ok == nil || ok(l) {
			return l
		}
	}
	return nil
}

// Expire moves every active lease whose Ends is at or before now to its
// next state, via fn which decides that state (Free for a lone server,
// Expired under failover). It returns how many expired. The client stays
// recorded in the lease, so a returning client can get its address back.
func (db *DB) Expire(now int64, next func(l *Lease) BindingState) int {
	n := 0
	for len(db.expiry) > 0 && db.expiry[0].ends <= now {
		e := heap.Pop(&db.expiry).(expiryEntry)
		b, i := db.locate(e.ip)
		if b == nil {
			continue
		}
		l := &b.leases[i]
		if l.State != Active || l.Ends != e.ends {
			continue // rescheduled or no longer active
		}
		st := next(l)
		db.update(b, i, func(l *Lease) {
			l.State = st
			l.Next = StateNone
		})
		n++
	}
	return n
}

// NextExpiry returns the earliest Ends among active leases, or 0 if none.
func (db *DB) NextExpiry() int64 {
	for len(db.expiry) > 0 {
		e := db.expiry[0]
		l, _ := db.Get(e.ip)
		if l != nil && l.State == Active && l.Ends == e.ends {
			return e.ends
		}
		heap.Pop(&db.expiry)
	}
	return 0
}

// schedule adds an expiry entry. Entries are not removed when a lease is
// renewed; they are skipped when they come due, and swept out when they
// outnumber the active leases (a client renewing every second must not
// grow the heap without bound).
func (db *DB) schedule(ends int64, ip uint32) {
	heap.Push(&db.expiry, expiryEntry{ends: ends, ip: ip})
	if len(db.expiry) <= 1024 {
		return
	}
	active := 0
	for _, p := range db.Pools {
		active += p.counts[Active]
	}
	if len(db.expiry) > 2*active+1024 {
		db.compactExpiry()
	}
}

func (db *DB) compactExpiry() {
	h := db.expiry[:0]
	for _, e := range db.expiry {
		if l, _ := db.Get(e.ip); l != nil && l.State == Active && l.Ends == e.ends {
			h = append(h, e)
		}
	}
	sort.Slice(h, func(i, j int) bool {
		if h[i].ip != h[j].ip {
			return h[i].ip < h[j].ip
		}
		return h[i].ends < h[j].ends
	})
	u := h[:0]
	for i, e := range h {
		if i == 0 || e != h[i-1] {
			u = append(u, e)
		}
	}
	clear(db.expiry[len(u):])
	db.expiry = u
	heap.Init(&db.expiry)
}

// DrainDirty calls fn for every lease changed since the last drain, in the
// order of their first change, and forgets them. A lease that fn itself
// changes is dirty again for the next drain.
func (db *DB) DrainDirty(fn func(l *Lease)) {
	list := db.dirty
	db.dirty = db.spare[:0]
	for _, ip := range list {
		l, _ := db.Get(ip)
		l.Flags &^= flagDirty
		fn(l)
	}
	db.spare = list[:0]
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
	return l.State == Free && !l.HasClient() && l.Hostname == "" &&
		l.Starts == 0 && l.Ends == 0 &&
		l.TSTP == 0 && l.TSFP == 0 && l.ATSFP == 0 && l.CLTT == 0 &&
		(l.Next == StateNone || l.Next == Free) &&
		(l.Rewind == StateNone || l.Rewind == Free) &&
		l.Flags&(FlagReserved|FlagBootp) == 0
}

// Snapshot returns a copy of the lease with internal flags removed, as it
// should be written to disk.
func (l *Lease) Snapshot() Lease {
	c := *l
	c.Flags &= diskFlags
	return c
}

type queueEntry struct {
	ip, seq uint32
}

// fifo is a ring buffer of queue entries.
type fifo struct {
	buf        []queueEntry
	head, size int
}

func (q *fifo) len() int { return q.size }

func (q *fifo) grow() {
	if q.size < len(q.buf) {
		return
	}
	n := len(q.buf) * 2
	if n == 0 {
		n = 16
	}
	nb := make([]queueEntry, n)
	for i := 0; i < q.size; i++ {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
}

func (q *fifo) pushBack(e queueEntry) {
	q.grow()
	q.buf[(q.head+q.size)%len(q.buf)] = e
	q.size++
}

func (q *fifo) popFront() queueEntry {
	e := q.buf[q.head]
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return e
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
