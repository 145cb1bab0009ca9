package failover

// ipQueue is an ordered set of addresses: FIFO order, O(1) membership test,
// push and removal anywhere. ISC threads its update and ack queues through
// the leases (next_pending, fw §4.5); here the queues live beside the lease
// database, which has no room for them.
type ipQueue struct {
	nodes      map[uint32]*qnode
	head, tail *qnode
}

type qnode struct {
	ip         uint32
	prev, next *qnode
}

func newIPQueue() *ipQueue { return &ipQueue{nodes: make(map[uint32]*qnode)} }

func (q *ipQueue) Len() int { return len(q.nodes) }

func (q *ipQueue) Has(ip uint32) bool {
	_, ok := q.nodes[ip]
	return ok
}

// PushBack appends ip unless it is queued already; it reports whether it
// added it.
func (q *ipQueue) PushBack(ip uint32) bool {
	if q.Has(ip) {
		return false
	}
	n := &qnode{ip: ip, prev: q.tail}
	if q.tail != nil {
		q.tail.next = n
	} else {
		q.head = n
	}
	q.tail = n
	q.nodes[ip] = n
	return true
}

// PushFront puts ip first unless it is queued already.
func (q *ipQueue) PushFront(ip uint32) bool {
	if q.Has(ip) {
		return false
	}
	n := &qnode{ip: ip, next: q.head}
	if q.head != nil {
		q.head.prev = n
	} else {
		q.tail = n
	}
	q.head = n
	q.nodes[ip] = n
	return true
}

// Remove takes ip out of the queue; it reports whether it was there.
func (q *ipQueue) Remove(ip uint32) bool {
	n, ok := q.nodes[ip]
	if !ok {
		return false
	}
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		q.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		q.tail = n.prev
	}
	delete(q.nodes, ip)
	return true
}

// Front returns the first address; ok is false when the queue is empty.
func (q *ipQueue) Front() (ip uint32, ok bool) {
	if q.head == nil {
		return 0, false
	}
	return q.head.ip, true
}

// Back returns the last address.
func (q *ipQueue) Back() (ip uint32, ok bool) {
	if q.tail == nil {
		return 0, false
	}
	return q.tail.ip, true
}

// Each calls fn for every address, first to last.
func (q *ipQueue) Each(fn func(ip uint32)) {
	for n := q.head; n != nil; n = n.next {
		fn(n.ip)
	}
}

// Clear empties the queue.
func (q *ipQueue) Clear() {
	clear(q.nodes)
	q.head, q.tail = nil, nil
}
