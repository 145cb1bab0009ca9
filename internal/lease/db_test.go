package lease

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking space) like
// everything else in Tandem's tests.
func ip4(s string) uint32 { return AddrToU32(netip.MustParseAddr(s)) }

// spec builds a pool from "LOW-HIGH" ranges; a "*" suffix marks a
// dynamic-bootp range.
func spec(subnet string, ranges ...string) PoolSpec {
	ps := PoolSpec{Subnet: netip.MustParsePrefix(subnet)}
	for _, r := range ranges {
		dyn := strings.HasSuffix(r, "*")
		lo, hi, _ := strings.Cut(strings.TrimSuffix(r, "*"), "-")
		ps.Ranges = append(ps.Ranges, PoolRange{Start: netip.MustParseAddr(lo), End: netip.MustParseAddr(hi), DynamicBootp: dyn})
	}
	return ps
}

func newDB(t *testing.T, specs ...PoolSpec) *DB {
	t.Helper()
	db, err := NewDB(specs)
	if err != nil {
		t.Fatal(err)
	}
	check(t, db)
	return db
}

func check(t *testing.T, db *DB) {
	t.Helper()
	if err := db.Check(); err != nil {
		t.Fatalf("DB inconsistent:\n%v", err)
	}
}

func update(t *testing.T, db *DB, addr string, fn func(l *Lease)) {
	t.Helper()
	if _, err := db.Update(ip4(addr), fn); err != nil {
		t.Fatal(err)
	}
}

// bind makes addr active for a client identified by cid (may be "") and
// a one-byte hardware address.
func bind(t *testing.T, db *DB, addr, cid string, hw byte, ends int64) {
	t.Helper()
	update(t, db, addr, func(l *Lease) {
		l.State = Active
		l.Ends = ends
		l.ClientID = cid
		l.SetHardware(1, []byte{0, 0, 0, 0, 0, hw})
	})
}

func setState(t *testing.T, db *DB, addr string, s BindingState) {
	t.Helper()
	update(t, db, addr, func(l *Lease) { l.State = s })
}

func hwK(hw byte) ClientKey { return ClientKey{HType: 1, HAddr: string([]byte{0, 0, 0, 0, 0, hw})} }

func addrOf(l *Lease) string {
	if l == nil {
		return "<nil>"
	}
	return l.Addr().String()
}

// takeAll allocates from pool p in state s until nothing is left,
// binding each address so it leaves the queue; it returns the order.
func takeAll(t *testing.T, db *DB, p *Pool, s BindingState) []string {
	t.Helper()
	var got []string
	for i := 0; i < 1000; i++ {
		l := db.Allocate(p, s, nil)
		if l == nil {
			return got
		}
		got = append(got, l.Addr().String())
		setState(t, db, l.Addr().String(), Active)
	}
	t.Fatal("allocation did not end")
	return nil
}

func TestNewDB(t *testing.T) {
	db := newDB(t,
		spec("198.18.0.0/24", "198.18.0.10-198.18.0.14", "198.18.0.20-198.18.0.21*"),
		spec("198.18.1.0/24", "198.18.1.1-198.18.1.1"))
	if got := len(db.Pools); got != 2 {
		t.Fatalf("%d pools", got)
	}
	p0, p1 := db.Pools[0], db.Pools[1]
	if p0.Size() != 7 || p1.Size() != 1 {
		t.Errorf("sizes %d, %d; want 7, 1", p0.Size(), p1.Size())
	}
	if diff := cmp.Diff(map[BindingState]int{Free: 7}, p0.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	tests := []struct {
		addr     string
		wantPool int // -1: none
		wantDyn  bool
	}{
		{"198.18.0.9", -1, false},
		{"198.18.0.10", 0, false},
		{"198.18.0.14", 0, false},
		{"198.18.0.15", -1, false},
		{"198.18.0.21", 0, true},
		{"198.18.1.1", 1, false},
		{"198.18.1.2", -1, false},
	}
	for _, tc := range tests {
		l, p := db.Get(ip4(tc.addr))
		if tc.wantPool < 0 {
			if l != nil || p != nil {
				t.Errorf("Get(%s) = %v, %v; want nothing", tc.addr, l, p)
			}
			continue
		}
		if l == nil || p != db.Pools[tc.wantPool] || l.Addr().String() != tc.addr || l.State != Free {
			t.Errorf("Get(%s) = %+v in pool %v", tc.addr, l, p)
			continue
		}
		if got := l.Flags&FlagDynamicRange != 0; got != tc.wantDyn {
			t.Errorf("%s dynamic-bootp = %v, want %v", tc.addr, got, tc.wantDyn)
		}
	}
	if db.DirtyCount() != 0 {
		t.Errorf("a new DB has %d dirty leases", db.DirtyCount())
	}

	for _, bad := range [][]PoolSpec{
		{spec("198.18.0.0/24", "198.18.0.10-198.18.0.20"), spec("198.18.0.0/24", "198.18.0.20-198.18.0.30")},
		{spec("198.18.0.0/24", "198.18.0.10-198.18.0.9")},
		{{Ranges: []PoolRange{{Start: netip.MustParseAddr("2001:db8::1"), End: netip.MustParseAddr("2001:db8::2")}}}},
	} {
		if _, err := NewDB(bad); err == nil {
			t.Errorf("NewDB(%+v) accepted a bad layout", bad)
		}
	}
	if _, err := db.Update(ip4("198.18.2.1"), func(*Lease) {}); err == nil {
		t.Error("Update outside every pool succeeded")
	}
}

func TestAllocationOrder(t *testing.T) {
	const (
		a1 = "198.18.0.1"
		a2 = "198.18.0.2"
		a3 = "198.18.0.3"
		a4 = "198.18.0.4"
		a5 = "198.18.0.5"
	)
	tests := []struct {
		name  string
		steps func(t *testing.T, db *DB, p *Pool)
		want  []string // the order takeAll sees afterwards
	}{
		{
			name:  "never used: address order",
			steps: func(*testing.T, *DB, *Pool) {},
			want:  []string{a1, a2, a3, a4, a5},
		},
		{
			name: "freed leases go behind the never used, oldest first",
			steps: func(t *testing.T, db *DB, p *Pool) {
				for _, a := range []string{a1, a2, a3} {
					if got := addrOf(db.Allocate(p, Free, nil)); got != a {
						t.Fatalf("allocated %s, want %s", got, a)
					}
					setState(t, db, a, Active)
				}
				setState(t, db, a2, Free)
				setState(t, db, a1, Free)
			},
			want: []string{a4, a5, a2, a1},
		},
		{
			// A client may be bound to a free address without the
			// allocator (INIT-REBOOT, a requested address, a restore):
			// its old queue place must not survive a later release.
			name: "bound in place then freed: back of the queue",
			steps: func(t *testing.T, db *DB, p *Pool) {
				setState(t, db, a1, Active)
				setState(t, db, a1, Free)
			},
			want: []string{a2, a3, a4, a5, a1},
		},
		{
			name: "offered but not bound: stays a candidate, behind the others",
			steps: func(t *testing.T, db *DB, p *Pool) {
				if got := addrOf(db.Allocate(p, Free, nil)); got != a1 {
					t.Fatalf("allocated %s, want %s", got, a1)
				}
			},
			want: []string{a2, a3, a4, a5, a1},
		},
		{
			name: "through backup and back",
			steps: func(t *testing.T, db *DB, p *Pool) {
				setState(t, db, a2, Backup)
				setState(t, db, a3, Backup)
				setState(t, db, a2, Free)
			},
			want: []string{a1, a4, a5, a2},
		},
		{
			name: "free to active to free twice, no duplicates",
			steps: func(t *testing.T, db *DB, p *Pool) {
				for range 2 {
					setState(t, db, a3, Active)
					setState(t, db, a3, Free)
				}
				setState(t, db, a4, Released)
				setState(t, db, a4, Free)
			},
			want: []string{a1, a2, a5, a3, a4},
		},
		{
			name: "fixed addresses are never allocated",
			steps: func(t *testing.T, db *DB, p *Pool) {
				db.MarkFixed(ip4(a2))
				setState(t, db, a2, Active)
				setState(t, db, a2, Free)
			},
			want: []string{a1, a3, a4, a5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := newDB(t, spec("198.18.0.0/24", "198.18.0.1-198.18.0.5"))
			p := db.Pools[0]
			tc.steps(t, db, p)
			check(t, db)
			if diff := cmp.Diff(tc.want, takeAll(t, db, p, Free)); diff != "" {
				t.Errorf("allocation order (-want +got):\n%s", diff)
			}
			check(t, db)
		})
	}
}

func TestAllocatePerState(t *testing.T) {
	db := newDB(t, spec("198.18.0.0/24", "198.18.0.1-198.18.0.6"))
	p := db.Pools[0]
	setState(t, db, "198.18.0.2", Backup)
	setState(t, db, "198.18.0.5", Backup)
	setState(t, db, "198.18.0.3", Abandoned)
	setState(t, db, "198.18.0.4", Expired)
	check(t, db)
	if db.Allocate(p, Active, nil) != nil || db.Allocate(p, Expired, nil) != nil {
		t.Error("allocated from a state that is not allocatable")
	}
	got := map[BindingState][]string{}
	for _, s := range []BindingState{Backup, Abandoned, Free} {
		got[s] = takeAll(t, db, p, s)
	}
	want := map[BindingState][]string{
		Backup:    {"198.18.0.2", "198.18.0.5"},
		Abandoned: {"198.18.0.3"},
		Free:      {"198.18.0.1", "198.18.0.6"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("allocations by state (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[BindingState]int{Active: 5, Expired: 1}, p.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	check(t, db)
}

func TestAllocateRejected(t *testing.T) {
	db := newDB(t, spec("198.18.0.0/16", "198.18.0.1-198.18.39.16")) // 10000 addresses
	p := db.Pools[0]
	// The handler rejects addresses held for other clients' offers; there
	// can be many more than a handful of those.
	held := func(l *Lease) bool { return l.IP > ip4("198.18.0.100") }
	if got := addrOf(db.Allocate(p, Free, held)); got != "198.18.0.101" {
		t.Fatalf("first acceptable = %s, want 198.18.0.101", got)
	}
	// Rejected candidates went behind the others, like the one returned.
	if got := addrOf(db.Allocate(p, Free, nil)); got != "198.18.0.102" {
		t.Errorf("after rejections allocated %s, want 198.18.0.102", got)
	}
	// One call gives up after MaxAllocateScan candidates; the next one
	// goes on where it stopped.
	last := ip4("198.18.0.1") + MaxAllocateScan + 200
	want := func(l *Lease) bool { return l.IP == last }
	if got := db.Allocate(p, Free, want); got != nil {
		t.Fatalf("allocated %s beyond the scan limit", got.Addr())
	}
	if got := db.Allocate(p, Free, want); got == nil || got.IP != last {
		t.Fatalf("second call allocated %s, want %s", addrOf(got), U32ToAddr(last))
	}
	check(t, db)
}

// TestAllocateSkipsStaleEntries: leases that left the free state in bulk
// (pool balancing moves half a pool to backup) leave stale entries at the
// head of the free queue; they must not use up a call's scan, or the first
// DISCOVERs after balancing find "no free leases" in a half-full pool.
func TestAllocateSkipsStaleEntries(t *testing.T) {
	db := newDB(t, spec("198.18.0.0/16", "198.18.0.1-198.18.78.32")) // 20000 addresses
	p := db.Pools[0]
	for ip := ip4("198.18.0.1"); ip < ip4("198.18.0.1")+3*MaxAllocateScan; ip++ {
		setState(t, db, U32ToAddr(ip).String(), Backup)
	}
	if n := p.queues[queueFree].len(); n < 3*MaxAllocateScan+p.Count(Free) {
		t.Fatalf("free queue holds %d entries; the test needs the stale ones still there", n)
	}
	want := ip4("198.18.0.1") + 3*MaxAllocateScan
	if got := db.Allocate(p, Free, nil); got == nil || got.IP != want {
		t.Fatalf("first allocation after the move: %s, want %s", addrOf(got), U32ToAddr(want))
	}
	if n := p.queues[queueFree].len(); n != p.Count(Free) {
		t.Errorf("free queue holds %d entries after the stale ones were met, want %d", n, p.Count(Free))
	}
	check(t, db)
}

func TestQueueStaysBounded(t *testing.T) {
	db := newDB(t, spec("198.18.0.0/24", "198.18.0.1-198.18.0.4"))
	p := db.Pools[0]
	for i := 0; i < 10000; i++ {
		setState(t, db, "198.18.0.1", Active)
		setState(t, db, "198.18.0.1", Free)
	}
	check(t, db)
	if n := p.queues[queueFree].len(); n > 2*p.Count(Free)+64 {
		t.Errorf("free queue holds %d entries for %d free leases", n, p.Count(Free))
	}
	if diff := cmp.Diff([]string{"198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.1"}, takeAll(t, db, p, Free)); diff != "" {
		t.Errorf("allocation order (-want +got):\n%s", diff)
	}
}

func TestIndexes(t *testing.T) {
	const (
		a1 = "198.18.0.1"
		a2 = "198.18.0.2"
		a3 = "198.18.0.3"
	)
	idX := ClientKey{ClientID: "\x01X", HType: 1, HAddr: "\x00\x00\x00\x00\x00\x07"}
	idY := ClientKey{ClientID: "\x01Y", HType: 1, HAddr: "\x00\x00\x00\x00\x00\x07"}
	type lookup struct {
		Key  ClientKey
		Want string
	}
	tests := []struct {
		name  string
		steps func(t *testing.T, db *DB)
		want  []lookup
	}{
		{
			name:  "by client id and by hardware",
			steps: func(t *testing.T, db *DB) { bind(t, db, a1, "\x01X", 7, 100); bind(t, db, a2, "", 8, 100) },
			want:  []lookup{{idX, a1}, {hwK(8), a2}, {hwK(7), "<nil>"}, {idY, "<nil>"}},
		},
		{
			name: "client id changes: the old one is forgotten",
			steps: func(t *testing.T, db *DB) {
				bind(t, db, a1, "\x01X", 7, 100)
				update(t, db, a1, func(l *Lease) { l.ClientID = "\x01Y" })
			},
			want: []lookup{{idX, "<nil>"}, {idY, a1}},
		},
		{
			name: "hardware changes: the old one is forgotten",
			steps: func(t *testing.T, db *DB) {
				bind(t, db, a1, "", 7, 100)
				update(t, db, a1, func(l *Lease) { l.SetHardware(1, []byte{0, 0, 0, 0, 0, 9}) })
			},
			want: []lookup{{hwK(7), "<nil>"}, {hwK(9), a1}},
		},
		{
			name: "a lease that gains a client id leaves the hardware index",
			steps: func(t *testing.T, db *DB) {
				bind(t, db, a1, "", 7, 100)
				update(t, db, a1, func(l *Lease) { l.ClientID = "\x01X" })
			},
			want: []lookup{{hwK(7), "<nil>"}, {idX, a1}},
		},
		{
			name: "cleared client",
			steps: func(t *testing.T, db *DB) {
				bind(t, db, a1, "\x01X", 7, 100)
				bind(t, db, a2, "", 8, 100)
				update(t, db, a1, func(l *Lease) { l.ClearClient(); l.State = Abandoned })
				update(t, db, a2, func(l *Lease) { l.ClearClient(); l.State = Free })
			},
			want: []lookup{{idX, "<nil>"}, {hwK(8), "<nil>"}},
		},
		{
			name: "expired lease still found for the returning client",
			steps: func(t *testing.T, db *DB) {
				bind(t, db, a1, "\x01X", 7, 100)
				db.Expire(100, func(*Lease) BindingState { return Free })
			},
			want: []lookup{{idX, a1}},
		},
		{
			name: "an old lease's update does not hide the active one",
			steps: func(t *testing.T, db *DB) {
				bind(t, db, a1, "\x01X", 7, 100)
				setState(t, db, a1, Free)
				bind(t, db, a2, "\x01X", 7, 200)
				bind(t, db, a3, "", 9, 100)
				setState(t, db, a3, Released)
				bind(t, db, "198.18.0.4", "", 9, 100)
				// Failover pool balancing moves the old leases.
				setState(t, db, a1, Backup)
				setState(t, db, a3, Free)
			},
			want: []lookup{{idX, a2}, {hwK(9), "198.18.0.4"}},
		},
		{
			name: "the newest binding wins",
			steps: func(t *testing.T, db *DB) {
				bind(t, db, a1, "\x01X", 7, 100)
				bind(t, db, a2, "\x01X", 7, 100)
			},
			want: []lookup{{idX, a2}},
		},
		{
			name: "an index entry moved away is not removed by the old lease",
			steps: func(t *testing.T, db *DB) {
				bind(t, db, a1, "\x01X", 7, 100)
				bind(t, db, a2, "\x01X", 7, 100)
				update(t, db, a1, func(l *Lease) { l.ClearClient(); l.State = Free })
			},
			want: []lookup{{idX, a2}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := newDB(t, spec("198.18.0.0/24", "198.18.0.1-198.18.0.9"))
			tc.steps(t, db)
			check(t, db)
			var got, want []lookup
			for _, lk := range tc.want {
				want = append(want, lk)
				got = append(got, lookup{lk.Key, addrOf(db.FindClient(lk.Key))})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("FindClient (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	db := newDB(t, spec("198.18.0.0/24", "198.18.0.1-198.18.0.9"))
	toFree := func(*Lease) BindingState { return Free }
	if got := db.NextExpiry(); got != 0 {
		t.Errorf("NextExpiry of an empty DB = %d", got)
	}
	bind(t, db, "198.18.0.1", "\x01A", 1, 100)
	bind(t, db, "198.18.0.2", "\x01B", 2, 200)
	bind(t, db, "198.18.0.3", "\x01C", 3, Never)
	bind(t, db, "198.18.0.4", "\x01D", 4, 150)
	setState(t, db, "198.18.0.4", Released) // released before it ran out
	if got := db.NextExpiry(); got != 100 {
		t.Errorf("NextExpiry = %d, want 100", got)
	}
	update(t, db, "198.18.0.1", func(l *Lease) { l.Ends = 300 }) // renewed
	if got := db.NextExpiry(); got != 200 {
		t.Errorf("NextExpiry after renewal = %d, want 200", got)
	}
	if n := db.Expire(199, toFree); n != 0 {
		t.Errorf("Expire(199) expired %d", n)
	}
	// A lease that went away and came back with the same end must
	// expire once.
	setState(t, db, "198.18.0.2", Free)
	setState(t, db, "198.18.0.2", Active)
	if n := db.Expire(200, func(l *Lease) BindingState { return Expired }); n != 1 {
		t.Errorf("Expire(200) expired %d, want 1", n)
	}
	l, _ := db.Get(ip4("198.18.0.2"))
	if l.State != Expired || l.ClientID != "\x01B" {
		t.Errorf("expired lease = %v %q; want expired, client kept", l.State, l.ClientID)
	}
	if got := db.NextExpiry(); got != 300 {
		t.Errorf("NextExpiry = %d, want 300", got)
	}
	if n := db.Expire(1e9, toFree); n != 1 {
		t.Errorf("Expire(1e9) expired %d, want 1", n)
	}
	if got := db.NextExpiry(); got != 0 {
		t.Errorf("NextExpiry with only a never-ending lease = %d", got)
	}
	want := map[BindingState]int{Free: 6, Active: 1, Expired: 1, Released: 1}
	if diff := cmp.Diff(want, db.Pools[0].Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	check(t, db)
}

func TestExpiryHeapStaysBounded(t *testing.T) {
	db := newDB(t, spec("198.18.0.0/24", "198.18.0.1-198.18.0.9"))
	bind(t, db, "198.18.0.1", "\x01A", 1, 100)
	bind(t, db, "198.18.0.2", "\x01B", 2, 100)
	for i := int64(0); i < 20000; i++ {
		update(t, db, "198.18.0.1", func(l *Lease) { l.Ends = 1000 + i }) // renews every second
	}
	check(t, db)
	if n := len(db.expiry); n > 2*2+1024+1 {
		t.Errorf("expiry heap holds %d entries for 2 active leases", n)
	}
	if got := db.NextExpiry(); got != 100 {
		t.Errorf("NextExpiry = %d, want 100", got)
	}
	if n := db.Expire(20999, func(*Lease) BindingState { return Free }); n != 2 {
		t.Errorf("expired %d, want 2", n)
	}
}

func TestRestore(t *testing.T) {
	db := newDB(t, spec("198.18.0.0/24", "198.18.0.1-198.18.0.4", "198.18.0.10-198.18.0.10*"))
	p := db.Pools[0]
	db.MarkFixed(ip4("198.18.0.3"))
	active := Lease{
		IP: ip4("198.18.0.2"), State: Active, Next: Free, ClientID: "\x01A", Hostname: "a",
		Starts: 10, Ends: 500, CLTT: 10,
		Flags: FlagBootp | FlagDynamicRange | flagDirty, // the range flag comes from the configuration
	}
	active.SetHardware(1, []byte{0, 0, 0, 0, 0, 1})
	oldFree := Lease{IP: ip4("198.18.0.1"), State: Free, ClientID: "\x01B", Starts: 1, Ends: 100}
	dyn := Lease{IP: ip4("198.18.0.10"), State: Free}
	fixed := Lease{IP: ip4("198.18.0.3"), State: Free, Ends: 50}
	for _, l := range []*Lease{&active, &oldFree, &dyn, &fixed} {
		if !db.Restore(l) {
			t.Fatalf("Restore(%s) refused", l.Addr())
		}
	}
	for _, bad := range []Lease{
		{IP: ip4("198.18.0.5"), State: Free},
		{IP: ip4("198.18.0.4"), State: 9},
		{IP: ip4("198.18.0.4"), State: Free, HLen: MaxHardwareLen + 1},
	} {
		if db.Restore(&bad) {
			t.Errorf("Restore(%+v) accepted", bad)
		}
	}
	check(t, db)

	got, _ := db.Get(ip4("198.18.0.2"))
	want := active
	want.Flags = FlagBootp
	if diff := cmp.Diff(want, got.Snapshot()); diff != "" {
		t.Errorf("restored lease (-want +got):\n%s", diff)
	}
	if l, _ := db.Get(ip4("198.18.0.10")); l.Flags&FlagDynamicRange == 0 {
		t.Error("restore dropped the dynamic-bootp range flag")
	}
	if l, _ := db.Get(ip4("198.18.0.3")); !l.IsFixed() {
		t.Error("restore dropped the fixed-address mark")
	}
	if got := addrOf(db.FindClient(ClientKey{ClientID: "\x01A"})); got != "198.18.0.2" {
		t.Errorf("FindClient(A) = %s", got)
	}
	if got := db.NextExpiry(); got != 500 {
		t.Errorf("NextExpiry = %d, want 500", got)
	}
	if diff := cmp.Diff(map[BindingState]int{Free: 4, Active: 1}, p.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	var dirty []string
	db.DrainDirty(func(l *Lease) { dirty = append(dirty, l.Addr().String()) })
	if diff := cmp.Diff([]string{"198.18.0.2", "198.18.0.1", "198.18.0.10", "198.18.0.3"}, dirty); diff != "" {
		t.Errorf("dirty after restore (-want +got):\n%s", diff)
	}
	// The lease used before goes behind the never-used ones.
	if diff := cmp.Diff([]string{"198.18.0.4", "198.18.0.10", "198.18.0.1"}, takeAll(t, db, p, Free)); diff != "" {
		t.Errorf("allocation order after restore (-want +got):\n%s", diff)
	}
	check(t, db)
}

func TestDrainDirty(t *testing.T) {
	db := newDB(t, spec("198.18.0.0/24", "198.18.0.1-198.18.0.9"))
	db.MarkFixed(ip4("198.18.0.9"))
	db.Allocate(db.Pools[0], Free, nil)
	if n := db.DirtyCount(); n != 0 {
		t.Fatalf("MarkFixed and Allocate dirtied %d leases", n)
	}
	bind(t, db, "198.18.0.3", "\x01A", 1, 100)
	bind(t, db, "198.18.0.1", "\x01B", 2, 100)
	update(t, db, "198.18.0.3", func(l *Lease) { l.Ends = 200 })
	if n := db.DirtyCount(); n != 2 {
		t.Errorf("DirtyCount = %d, want 2", n)
	}
	check(t, db)

	type seen struct {
		Addr string
		Ends int64
	}
	var got []seen
	db.DrainDirty(func(l *Lease) {
		got = append(got, seen{l.Addr().String(), l.Ends})
		if l.Flags&flagDirty != 0 {
			t.Errorf("%s still marked dirty while drained", l.Addr())
		}
		if l.Addr().String() == "198.18.0.3" {
			// A writer that changes a lease (here one it has not
			// reached yet, and one it has) leaves them for the next drain.
			update(t, db, "198.18.0.1", func(l *Lease) { l.Ends = 300 })
			update(t, db, "198.18.0.3", func(l *Lease) { l.Ends = 400 })
		}
	})
	if diff := cmp.Diff([]seen{{"198.18.0.3", 200}, {"198.18.0.1", 300}}, got); diff != "" {
		t.Errorf("drained (-want +got):\n%s", diff)
	}
	check(t, db)
	got = nil
	db.DrainDirty(func(l *Lease) { got = append(got, seen{l.Addr().String(), l.Ends}) })
	if diff := cmp.Diff([]seen{{"198.18.0.3", 400}}, got); diff != "" {
		t.Errorf("second drain (-want +got):\n%s", diff)
	}
	got = nil
	db.DrainDirty(func(l *Lease) { got = append(got, seen{l.Addr().String(), l.Ends}) })
	if len(got) != 0 || db.DirtyCount() != 0 {
		t.Errorf("third drain saw %v", got)
	}
	check(t, db)
}

func TestEach(t *testing.T) {
	// Pool 0's ranges straddle pool 1's: Each walks addresses in order.
	db := newDB(t,
		spec("198.18.0.0/24", "198.18.0.10-198.18.0.11", "198.18.0.1-198.18.0.2"),
		spec("198.18.0.0/24", "198.18.0.5-198.18.0.6"))
	var got []string
	db.Each(func(l *Lease, p *Pool) { got = append(got, fmt.Sprintf("%s/%d", l.Addr(), p.Index)) })
	want := []string{"198.18.0.1/0", "198.18.0.2/0", "198.18.0.5/1", "198.18.0.6/1", "198.18.0.10/0", "198.18.0.11/0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Each (-want +got):\n%s", diff)
	}
}

func TestPristine(t *testing.T) {
	withHW := Lease{State: Free}
	withHW.SetHardware(1, []byte{1})
	tests := []struct {
		name string
		l    Lease
		want bool
	}{
		{"never used", Lease{State: Free}, true},
		{"peer knows it is free", Lease{State: Free, Rewind: Free, Next: Free}, true},
		{"backup", Lease{State: Backup}, false},
		{"abandoned", Lease{State: Abandoned}, false},
		{"client id", Lease{State: Free, ClientID: "x"}, false},
		{"hardware", withHW, false},
		{"hostname", Lease{State: Free, Hostname: "h"}, false},
		{"ends", Lease{State: Free, Ends: 1}, false},
		{"starts", Lease{State: Free, Starts: 1}, false},
		{"tstp", Lease{State: Free, TSTP: 1}, false},
		{"tsfp", Lease{State: Free, TSFP: 1}, false},
		{"atsfp", Lease{State: Free, ATSFP: 1}, false},
		{"cltt", Lease{State: Free, CLTT: 1}, false},
		{"peer not told", Lease{State: Free, Rewind: Active}, false},
		{"next state", Lease{State: Free, Next: Backup}, false},
		{"reserved", Lease{State: Free, Flags: FlagReserved}, false},
		{"bootp", Lease{State: Free, Flags: FlagBootp}, false},
		{"dynamic range only", Lease{State: Free, Flags: FlagDynamicRange}, true},
	}
	for _, tc := range tests {
		if got := tc.l.Pristine(); got != tc.want {
			t.Errorf("%s: Pristine = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSnapshotDropsInternalFlags(t *testing.T) {
	db := newDB(t, spec("198.18.0.0/24", "198.18.0.1-198.18.0.1*"))
	db.MarkFixed(ip4("198.18.0.1"))
	update(t, db, "198.18.0.1", func(l *Lease) { l.Flags |= FlagReserved })
	l, _ := db.Get(ip4("198.18.0.1"))
	if got, want := l.Snapshot().Flags, FlagReserved|FlagDynamicRange; got != want {
		t.Errorf("Snapshot flags = %b, want %b", got, want)
	}
	if !l.IsFixed() {
		t.Error("Update dropped the fixed mark")
	}
}

// TestQueueWalksWholeQueue: Queue sees every candidate, beyond
// MaxAllocateScan, in the order Allocate takes them, and moves nothing.
func TestQueueWalksWholeQueue(t *testing.T) {
	db := newDB(t, spec("198.18.0.0/16", "198.18.0.1-198.18.39.255"))
	p := db.Pools[0]
	// Some leases leave the queue and one comes back at its end.
	setState(t, db, "198.18.0.1", Active)
	setState(t, db, "198.18.0.2", Active)
	setState(t, db, "198.18.0.1", Free)
	var walked []uint32
	db.Queue(p, Free, func(l *Lease) bool {
		walked = append(walked, l.IP)
		return true
	})
	if want := p.Count(Free); len(walked) != want || want <= MaxAllocateScan {
		t.Fatalf("Queue saw %d leases, want all %d (more than MaxAllocateScan %d)", len(walked), want, MaxAllocateScan)
	}
	if walked[0] != ip4("198.18.0.3") || walked[len(walked)-1] != ip4("198.18.0.1") {
		t.Errorf("Queue order starts %s and ends %s, want 198.18.0.3 … 198.18.0.1",
			U32ToAddr(walked[0]), U32ToAddr(walked[len(walked)-1]))
	}
	// Walking again, and stopping early, changes nothing: Allocate still
	// takes the head.
	n := 0
	db.Queue(p, Free, func(*Lease) bool { n++; return n < 10 })
	if n != 10 {
		t.Errorf("Queue went on after false: %d calls", n)
	}
	for i, want := range walked[:5] {
		l := db.Allocate(p, Free, nil)
		if l == nil || l.IP != want {
			t.Fatalf("allocation %d: %v, want %s", i, l, U32ToAddr(want))
		}
		setState(t, db, U32ToAddr(want).String(), Active)
	}
	check(t, db)
}
