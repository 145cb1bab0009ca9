package failover

// A deterministic harness for scenario scripts: two nodes (primary "p" and
// secondary "s"), each with its own lease DB, joined by an in-memory link
// on a virtual clock. Messages travel encoded (wire.MarshalBinary, then
// wire.Unmarshal), so everything a node sends must be valid on the wire.
//
// Commands (testdata/*.txt, run with datadriven; -rewrite regenerates):
//
//	start [mclt=60] [split=128] [pools=8,4] [auto-partner-down=N] [lbmax=3]
//	      [max-unacked=10] [mrd=10] [bnd=full|brief] [logs=on|off] [contacts=off|on]
//	link up | link down | link raw <node>
//	tick <duration>                  advance the clock, firing timers
//	lease <node> <ip> active <client> [time=7200]   bind as the DHCP handler would
//	lease <node> <ip> release
//	allocate <node> <client> [time=7200] [pool=0]   DISCOVER+REQUEST on one server
//	serve <client>... [secs=N]       load balancing decision of both servers
//	set-state <node> <state>
//	shutdown <node>
//	mute <node> | unmute <node>      lose (or stop losing) what node sends
//	crash <node>                     the server process dies
//	restart <node> [empty]           (crash and) start again (empty: no lease file)
//	inject <node> key=value...       a crafted message from the partner
//	print-state | leases <node> | check

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

const (
	harnessStart = 1_700_000_000
	relName      = "dhcp-failover"
)

type hnode struct {
	tag    string // "p" or "s"
	idx    int
	cfg    config.FailoverPeer
	db     *lease.DB
	node   *Node
	record *lease.FailoverStateRecord // last persisted
	timer  int64                      // NextTimer of the last Ready
	down   bool                       // crashed or stopped, not restarted
}

type harness struct {
	t     testing.TB
	now   int64
	nodes [2]*hnode
	specs []lease.PoolSpec
	up    bool
	// inflight[i] holds the encoded messages from node i to the other.
	inflight [2][][]byte
	closing  [2]bool
	muted    [2]bool // messages from this node are lost
	brief    bool
	logs     bool
	contacts bool
	out      strings.Builder
	lines    []string // output before brief collapsing
	// acked is what each client believes: the address and end of the
	// last DHCPACK it got (design.md I1 is about these).
	acked map[string]clientLease
	// capture, when set, sees every delivered message.
	capture func(dir string, m *wire.Message)
}

type clientLease struct {
	ip   uint32
	ends int64
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, now: harnessStart, acked: make(map[string]clientLease)}
}

func (h *harness) printf(format string, args ...any) {
	h.lines = append(h.lines, fmt.Sprintf(format, args...))
}

func (h *harness) flush() string {
	lines := h.lines
	h.lines = nil
	if h.brief {
		lines = collapse(lines)
	}
	if len(lines) == 0 {
		return "ok\n"
	}
	return strings.Join(lines, "\n") + "\n"
}

// collapse summarises each run of binding-update lines (BNDUPD and
// BNDACK, both directions) as counts, in order of first appearance.
func collapse(lines []string) []string {
	var out []string
	for i := 0; i < len(lines); {
		if _, ok := bndKey(lines[i]); !ok {
			out = append(out, lines[i])
			i++
			continue
		}
		var keys []string
		count := map[string]int{}
		j := i
		for ; j < len(lines); j++ {
			k, ok := bndKey(lines[j])
			if !ok {
				break
			}
			if count[k] == 0 {
				keys = append(keys, k)
			}
			count[k]++
		}
		if j-i == 1 {
			out = append(out, lines[i])
		} else {
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s ×%d", k, count[k]))
			}
			out = append(out, strings.Join(parts, ", "))
		}
		i = j
	}
	return out
}

// bndKey names a binding-update line: direction, type, and for BNDUPD the
// binding state, for BNDACK whether it refuses.
func bndKey(line string) (string, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.Contains(f[0], "→") {
		return "", false
	}
	switch f[1] {
	case "BNDUPD":
		return f[0] + " BNDUPD " + f[4], true
	case "BNDACK":
		if strings.Contains(line, "reject=") {
			return f[0] + " BNDACK(reject)", true
		}
		return f[0] + " BNDACK", true
	}
	return "", false
}

func (h *harness) rel(t int64) string {
	switch {
	case t == 0:
		return "0"
	case t == lease.Never || t >= maxTime:
		return "never"
	}
	return fmt.Sprintf("%+d", t-harnessStart)
}

// peerConfig builds one side's failover peer block.
func peerConfig(role config.Role, d *datadriven.TestData) config.FailoverPeer {
	fp := config.FailoverPeer{
		Name:              relName,
		Role:              role,
		MaxResponseDelay:  uint32(intArg(d, "mrd", 10)),
		MaxUnackedUpdates: uint32(intArg(d, "max-unacked", 10)),
		AutoPartnerDown:   uint32(intArg(d, "auto-partner-down", 0)),
		// ISC's defaults for the balancing knobs come from NewNode.
		LoadBalanceMaxSeconds: uint32(intArg(d, "lbmax", 3)),
	}
	if role == config.Primary {
		fp.MCLT = uint32(intArg(d, "mclt", 60))
		hba := wire.HBAFromSplit(intArg(d, "split", 128))
		fp.HBA = hba[:]
		fp.Split = intArg(d, "split", 128)
	}
	return fp
}

func intArg(d *datadriven.TestData, key string, def int) int {
	if d == nil || !d.HasArg(key) {
		return def
	}
	s := strArg(d, key, "")
	v, err := strconv.Atoi(s)
	if err != nil {
		panic(fmt.Sprintf("%s=%q: %v", key, s, err))
	}
	return v
}

func strArg(d *datadriven.TestData, key, def string) string {
	a, ok := d.Arg(key)
	if !ok {
		return def
	}
	return strings.Join(a.Vals, ",")
}

// poolSpecs: pool i is 198.18.i.10 .. 198.18.i.(10+n-1) in 198.18.i.0/24.
func poolSpecs(sizes string) []lease.PoolSpec {
	var specs []lease.PoolSpec
	for i, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			panic("bad pool size " + s)
		}
		specs = append(specs, lease.PoolSpec{
			Subnet:       netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24),
			Ranges:       []lease.PoolRange{{Start: netip.AddrFrom4([4]byte{198, 18, byte(i), 10}), End: netip.AddrFrom4([4]byte{198, 18, byte(i), byte(10 + n - 1)})}},
			FailoverPeer: relName,
		})
	}
	return specs
}

func (h *harness) start(d *datadriven.TestData) {
	h.specs = poolSpecs(strArg(d, "pools", "8,4"))
	h.brief = strArg(d, "bnd", "full") == "brief"
	h.logs = strArg(d, "logs", "on") == "on"
	h.contacts = strArg(d, "contacts", "off") == "on"
	for i, role := range []config.Role{config.Primary, config.Secondary} {
		hn := &hnode{tag: []string{"p", "s"}[i], idx: i, cfg: peerConfig(role, d)}
		h.nodes[i] = hn
		h.boot(hn, true)
	}
}

// boot builds a node from its saved record (none when fresh) and DB.
func (h *harness) boot(hn *hnode, fresh bool) {
	if fresh {
		db, err := lease.NewDB(h.specs)
		if err != nil {
			h.t.Fatal(err)
		}
		hn.db, hn.record = db, nil
	}
	var rec *lease.FailoverStateRecord
	if hn.record != nil {
		r := *hn.record
		rec = &r
	}
	n, err := NewNode(NodeConfig{Peer: &hn.cfg, DB: hn.db, State: rec, Now: h.now, Version: "test"})
	if err != nil {
		h.t.Fatal(err)
	}
	hn.node, hn.down = n, false
	h.collect(hn)
}

func (h *harness) other(hn *hnode) *hnode { return h.nodes[1-hn.idx] }

// step feeds an event and collects the effects.
func (h *harness) step(hn *hnode, ev Event) {
	if hn.down {
		return
	}
	if err := hn.node.Step(h.now, ev); err != nil {
		h.printf("%s: step error: %v", hn.tag, err)
	}
	h.collect(hn)
}

// collect acts on Ready as the server loop would: persist, send, close.
func (h *harness) collect(hn *hnode) {
	rd := hn.node.Ready()
	hn.timer = rd.NextTimer
	for _, l := range rd.Log {
		if h.logs || strings.HasPrefix(l.Msg, "failover peer "+relName+": I move") ||
			strings.HasPrefix(l.Msg, "failover peer "+relName+": peer moves") {
			h.printf("%s: %s", hn.tag, l.Msg)
		}
	}
	if rd.StateRecord != nil {
		r := *rd.StateRecord
		hn.record = &r
	}
	for _, m := range rd.Messages {
		b, err := m.MarshalBinary()
		if err != nil {
			h.t.Fatalf("%s sent an unencodable %s: %v", hn.tag, m.Type, err)
		}
		if h.up && !h.closing[hn.idx] && !h.muted[hn.idx] {
			h.inflight[hn.idx] = append(h.inflight[hn.idx], b)
		}
	}
	if rd.CloseLink != nil {
		h.printf("%s: close link: %s", hn.tag, rd.CloseLink.Reason)
		if h.up {
			h.closing[hn.idx] = true
		}
	}
	if rd.Stopped {
		h.printf("%s: stopped; saved state %s at %s", hn.tag, hn.record.MyState, h.rel(hn.record.MyStateAt))
		hn.down = true
		if h.up {
			h.closing[hn.idx] = true
		}
	}
}

// settle delivers messages until both directions are empty.
func (h *harness) settle() {
	for range 100_000 {
		moved := false
		for from := range 2 {
			if len(h.inflight[from]) > 0 {
				b := h.inflight[from][0]
				h.inflight[from] = h.inflight[from][1:]
				h.deliver(h.nodes[from], h.nodes[1-from], b)
				moved = true
			}
		}
		for i := range 2 {
			if h.closing[i] && len(h.inflight[i]) == 0 {
				h.teardown("closed by " + h.nodes[i].tag)
				moved = true
			}
		}
		if !moved {
			return
		}
	}
	h.t.Fatal("messages keep flowing: no quiescence after 100000 deliveries")
}

func (h *harness) deliver(from, to *hnode, b []byte) {
	m, err := wire.Unmarshal(b)
	if err != nil {
		h.t.Fatalf("%s→%s: undecodable message: %v", from.tag, to.tag, err)
	}
	if m.Type != wire.MsgContact || h.contacts {
		h.printf("%s→%s %s", from.tag, to.tag, describe(m))
	}
	if h.capture != nil {
		h.capture(from.tag+"→"+to.tag, m)
	}
	h.step(to, MessageReceived{Msg: m})
}

// teardown ends the link: both sides get LinkDown (a node that closed it
// already considers it gone and ignores the event).
func (h *harness) teardown(reason string) {
	if !h.up {
		return
	}
	h.up = false
	h.inflight = [2][][]byte{}
	h.closing = [2]bool{}
	for _, hn := range h.nodes {
		h.step(hn, LinkDown{Reason: reason})
	}
}

func (h *harness) linkUp() {
	if h.up {
		h.printf("link already up")
		return
	}
	for _, hn := range h.nodes {
		if hn.down {
			h.printf("%s is down: no link", hn.tag)
			return
		}
	}
	h.up = true
	for _, hn := range h.nodes {
		h.step(hn, LinkUp{})
	}
	h.settle()
}

// advance moves the clock to target, firing node timers and lease
// expiries in time order.
func (h *harness) advance(target int64) {
	stuck := 0
	for range 1_000_000 {
		next := int64(0)
		for _, hn := range h.nodes {
			if hn.down {
				continue
			}
			for _, t := range []int64{hn.timer, hn.db.NextExpiry()} {
				if t != 0 && (next == 0 || t < next) {
					next = t
				}
			}
		}
		if next == 0 || next > target {
			break
		}
		if next > h.now {
			h.now, stuck = next, 0
		} else if stuck++; stuck > 1000 {
			h.t.Fatalf("a timer at %s does not move on", h.rel(next))
		}
		for _, hn := range h.nodes {
			if hn.down {
				continue
			}
			h.expire(hn)
			if hn.timer != 0 && hn.timer <= h.now {
				h.step(hn, Tick{})
			}
		}
		h.settle()
	}
	if target > h.now {
		h.now = target
	}
}

// expire runs the lease DB's expiry as the server loop does.
func (h *harness) expire(hn *hnode) {
	var ips []uint32
	hn.db.Expire(h.now, func(l *lease.Lease) lease.BindingState {
		ips = append(ips, l.IP)
		return hn.node.ExpiredState(l)
	})
	for _, ip := range ips {
		l, _ := hn.db.Get(ip)
		h.printf("%s: lease %s expires: %s", hn.tag, addrOf(ip), l.State)
		h.step(hn, LeaseChanged{IP: ip})
	}
}

// macOf gives each test client a stable hardware address.
func macOf(client string) []byte {
	f := fnv.New64a()
	f.Write([]byte(client))
	v := f.Sum64()
	return []byte{0x02, byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func keyOf(client string) lease.ClientKey {
	return lease.ClientKey{HType: 1, HAddr: string(macOf(client))}
}

func (h *harness) node(tag string) *hnode {
	for _, hn := range h.nodes {
		if hn != nil && hn.tag == tag {
			return hn
		}
	}
	h.t.Fatalf("no node %q", tag)
	return nil
}

// bind does what the DHCP handler does on a DHCPACK for client on lease l.
func (h *harness) bind(hn *hnode, ip uint32, client string, desired uint32) {
	_, p := hn.db.Get(ip)
	var granted uint32
	hn.db.Update(ip, func(l *lease.Lease) {
		granted = hn.node.GrantTime(h.now, p, l, desired)
		k := keyOf(client)
		if !l.Owns(k) || l.State != lease.Active {
			l.Starts = h.now
		}
		l.State = lease.Active
		l.Next = hn.node.Released(p)
		l.Ends = h.now + int64(granted)
		l.CLTT = h.now
		l.ClientID = ""
		l.SetHardware(1, macOf(client))
	})
	l, _ := hn.db.Get(ip)
	h.acked[client] = clientLease{ip: ip, ends: h.now + int64(granted)}
	h.printf("%s: ack %s to %s for %ds (tstp %s tsfp %s)", hn.tag, addrOf(ip), client, granted, h.rel(l.TSTP), h.rel(l.TSFP))
	h.step(hn, LeaseChanged{IP: ip})
}

// usable is the DHCP handler's test for giving lease l to client.
func usable(now int64, n *Node, p *lease.Pool, l *lease.Lease, client string) bool {
	if l.State == lease.Active {
		return l.Owns(keyOf(client))
	}
	return l.State == n.AllocState(now, p) || n.MayReuse(now, p, l)
}

func (h *harness) leaseCmd(d *datadriven.TestData) {
	hn := h.node(d.CmdArgs[0].Key)
	if hn.down {
		h.printf("%s is down", hn.tag)
		return
	}
	ip := lease.AddrToU32(netip.MustParseAddr(d.CmdArgs[1].Key))
	l, p := hn.db.Get(ip)
	if l == nil {
		h.t.Fatalf("no lease %s", d.CmdArgs[1].Key)
	}
	switch d.CmdArgs[2].Key {
	case "active":
		client := d.CmdArgs[3].Key
		if !hn.node.Serve(h.now, p, keyOf(client), dhcpv4.MessageTypeRequest, 0) || !usable(h.now, hn.node, p, l, client) {
			h.printf("%s: no: %s is %s and not %s's to give (state %s)", hn.tag, addrOf(ip), l.State, hn.tag, hn.node.State())
			return
		}
		h.bind(hn, ip, client, uint32(intArg(d, "time", 7200)))
	case "release":
		hn.db.Update(ip, func(l *lease.Lease) {
			l.State, l.Next = hn.node.Released(p), lease.StateNone
			l.Ends, l.CLTT = h.now, h.now
		})
		for c, cl := range h.acked {
			if cl.ip == ip && l.Owns(keyOf(c)) {
				delete(h.acked, c)
			}
		}
		h.printf("%s: release %s", hn.tag, addrOf(ip))
		h.step(hn, LeaseChanged{IP: ip})
	default:
		h.t.Fatalf("lease: unknown action %q", d.CmdArgs[2].Key)
	}
	h.settle()
}

// clients expands "c1..c3" to c1, c2, c3.
func clients(arg string) []string {
	from, to, ok := strings.Cut(arg, "..")
	if !ok {
		return []string{arg}
	}
	prefix := strings.TrimRight(from, "0123456789")
	a, err1 := strconv.Atoi(from[len(prefix):])
	b, err2 := strconv.Atoi(strings.TrimPrefix(to, prefix))
	if err1 != nil || err2 != nil || b < a {
		panic("bad client range " + arg)
	}
	var out []string
	for i := a; i <= b; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

// allocate is a DISCOVER answered and REQUESTed on one server, for each
// client named (c1..c9 names a range).
func (h *harness) allocate(d *datadriven.TestData) {
	for _, c := range clients(d.CmdArgs[1].Key) {
		h.allocateOne(d, c)
	}
}

func (h *harness) allocateOne(d *datadriven.TestData, client string) {
	hn := h.node(d.CmdArgs[0].Key)
	p := hn.db.Pools[intArg(d, "pool", 0)]
	if hn.down {
		h.printf("%s is down", hn.tag)
		return
	}
	if !hn.node.Serve(h.now, p, keyOf(client), dhcpv4.MessageTypeDiscover, 0) {
		h.printf("%s: %s: not served (state %s)", hn.tag, client, hn.node.State())
		return
	}
	// The client's own lease first, then a new one, as the handler does.
	l := hn.db.FindClient(keyOf(client))
	if l != nil {
		if _, lp := hn.db.Get(l.IP); lp != p || !usable(h.now, hn.node, p, l, client) {
			l = nil
		}
	}
	if l != nil {
	} else if st := hn.node.AllocState(h.now, p); st != lease.StateNone {
		l = hn.db.Allocate(p, st, nil)
	}
	if l == nil {
		if st := hn.node.PartnerAllocState(h.now, p); st != lease.StateNone {
			l = hn.db.Allocate(p, st, func(l *lease.Lease) bool { return hn.node.MayReuse(h.now, p, l) })
		}
	}
	if l == nil {
		h.printf("%s: %s: no free leases (free %d backup %d)", hn.tag, client, p.Count(lease.Free), p.Count(lease.Backup))
		return
	}
	h.bind(hn, l.IP, client, uint32(intArg(d, "time", 7200)))
	h.settle()
}

func (h *harness) serve(d *datadriven.TestData) {
	secs := uint16(intArg(d, "secs", 0))
	for _, a := range d.CmdArgs {
		client := a.Key
		if a.Key == "secs" {
			continue
		}
		var who []string
		for _, hn := range h.nodes {
			p := hn.db.Pools[0]
			if hn.node.Serve(h.now, p, keyOf(client), dhcpv4.MessageTypeDiscover, secs) {
				who = append(who, hn.tag)
			}
		}
		b := wire.LoadBalanceBucket(macOf(client))
		h.printf("%s bucket %d: served by %s", client, b, strings.Join(append(who, "nobody")[:max(1, len(who))], ","))
	}
}

func (h *harness) printState() {
	for _, hn := range h.nodes {
		if hn.down {
			h.printf("%s: down", hn.tag)
			continue
		}
		st := hn.node.Status()
		h.printf("%s: %s since %s, partner %s, mclt %d, linked %v, communicating %v, queued %d, unacked %d",
			hn.tag, st.State, h.rel(st.STOS), st.PartnerState, st.MCLT, st.Linked, st.Communicating, st.UpdatesQueued, st.UpdatesUnacked)
		for _, pb := range st.Pools {
			p := hn.db.Pools[pb.Index]
			c := p.Counts()
			var parts []string
			for s := lease.Free; s <= lease.Backup; s++ {
				if c[s] > 0 {
					parts = append(parts, fmt.Sprintf("%s %d", s, c[s]))
				}
			}
			h.printf("%s:   pool %d %s: %s (lts %d)", hn.tag, pb.Index, pb.Subnet, strings.Join(parts, ", "), pb.LTS)
		}
	}
}

func (h *harness) leasesCmd(hn *hnode) {
	hn.db.Each(func(l *lease.Lease, p *lease.Pool) {
		if l.Pristine() {
			return
		}
		h.printf("%s: %s", hn.tag, h.leaseLine(l))
	})
}

func (h *harness) leaseLine(l *lease.Lease) string {
	client := "-"
	if l.HLen > 0 {
		client = hex.EncodeToString(l.HAddr[:l.HLen])
	}
	return fmt.Sprintf("%s %s client %s starts %s ends %s tstp %s tsfp %s atsfp %s rewind %s",
		addrOf(l.IP), l.State, client, h.rel(l.Starts), h.rel(l.Ends), h.rel(l.TSTP), h.rel(l.TSFP), h.rel(l.ATSFP), l.Rewind)
}

// check compares the two databases: a lease active on both sides for
// different clients is a duplicate (invariant I1); any other difference in
// state or client is a divergence (I5).
func (h *harness) check() {
	a, b := h.nodes[0], h.nodes[1]
	dups, diffs := 0, 0
	a.db.Each(func(la *lease.Lease, _ *lease.Pool) {
		lb, _ := b.db.Get(la.IP)
		ka, kb := lease.KeyOf(la), lease.KeyOf(lb)
		if la.State == lease.Active && lb.State == lease.Active && ka != kb && la.Ends > h.now && lb.Ends > h.now {
			dups++
			h.printf("DUPLICATE %s: p %s / s %s", addrOf(la.IP), h.leaseLine(la), h.leaseLine(lb))
			return
		}
		if la.State != lb.State || (la.State == lease.Active && (ka != kb || la.Ends != lb.Ends)) {
			diffs++
			h.printf("differ %s: p %s / s %s", addrOf(la.IP), la.State, lb.State)
		}
	})
	h.printf("check: %d duplicates, %d differences", dups, diffs)
}

// describe prints a message with its key options.
func describe(m *wire.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s xid=%d", m.Type, m.XID)
	opt := func(format string, args ...any) { fmt.Fprintf(&b, " "+format, args...) }
	if v, ok := m.AssignedIP.Get(); ok {
		opt("%s", v)
	}
	if v, ok := m.BindingStatus.Get(); ok {
		opt("%s", v)
	}
	if v, ok := m.ServerState.Get(); ok {
		opt("%s", v)
		if m.ServerFlags.Value&wire.ServerFlagStartup != 0 {
			opt("(startup)")
		}
	}
	if v, ok := m.RelationshipName.Get(); ok {
		opt("name=%s", v)
	}
	if v, ok := m.MCLT.Get(); ok {
		opt("mclt=%d", v)
	}
	if v, ok := m.MaxUnacked.Get(); ok {
		opt("max-unacked=%d", v)
	}
	if v, ok := m.ReceiveTimer.Get(); ok {
		opt("receive-timer=%d", v)
	}
	if v, ok := m.VendorClass.Get(); ok {
		opt("vendor=%s", v)
	}
	if v, ok := m.HBA.Get(); ok {
		opt("hba=%s", hex.EncodeToString(v))
	}
	if v, ok := m.CHAddr.Get(); ok {
		opt("chaddr=%s", hex.EncodeToString(v))
	}
	if v, ok := m.LeaseExpiry.Get(); ok && m.Type == wire.MsgBndUpd && v != 0 {
		opt("ends=%s", relWire(v))
	}
	if v, ok := m.PotentialExpiry.Get(); ok && v != 0 {
		opt("tstp=%s", relWire(v))
	}
	if v, ok := m.AddressesTransferred.Get(); ok {
		opt("transferred=%d", v)
	}
	if v, ok := m.RejectReason.Get(); ok {
		opt("reject=%d(%s) %q", uint8(v), v, m.MessageText.Value)
	} else if v, ok := m.MessageText.Get(); ok {
		opt("%q", v)
	}
	return b.String()
}

func relWire(v uint32) string {
	if v >= maxTime {
		return "never"
	}
	return fmt.Sprintf("%+d", int64(v)-harnessStart)
}

// inject delivers a crafted message to a node as if the partner sent it.
func (h *harness) inject(d *datadriven.TestData) {
	hn := h.node(d.CmdArgs[0].Key)
	m := &wire.Message{Time: wireTime(h.now)}
	for _, a := range d.CmdArgs[1:] {
		v := ""
		if len(a.Vals) > 0 {
			v = a.Vals[0]
		}
		num := func() uint32 {
			x, err := strconv.ParseUint(v, 0, 32)
			if err != nil {
				h.t.Fatalf("inject %s=%q: %v", a.Key, v, err)
			}
			return uint32(x)
		}
		switch a.Key {
		case "type":
			found := false
			for t := wire.MessageType(0); t < 20; t++ {
				if t.String() == v {
					m.Type, found = t, true
				}
			}
			if !found {
				m.Type = wire.MessageType(num())
			}
		case "xid":
			m.XID = num()
		case "skew":
			s, _ := strconv.Atoi(v)
			m.Time = wireTime(h.now + int64(s))
		case "name":
			m.RelationshipName = wire.Some(v)
		case "mclt":
			m.MCLT = wire.Some(num())
		case "hba-len":
			m.HBA = wire.Some(make([]byte, num()))
		case "state":
			s, ok := wire.ParseServerState(v)
			if !ok {
				s = wire.ServerState(num())
			}
			m.ServerState = wire.Some(s)
		case "ip":
			m.AssignedIP = wire.Some(netip.MustParseAddr(v))
		case "status":
			s, ok := lease.ParseBindingState(v)
			if !ok {
				s = lease.BindingState(num())
			}
			m.BindingStatus = wire.Some(s)
		case "client":
			m.CHAddr = wire.Some(append([]byte{1}, macOf(v)...))
		case "chaddr-len":
			m.CHAddr = wire.Some(make([]byte, num()))
		case "ends":
			s, _ := strconv.Atoi(v)
			m.LeaseExpiry = wire.Some(wireTime(h.now + int64(s)))
		case "tstp":
			s, _ := strconv.Atoi(v)
			m.PotentialExpiry = wire.Some(wireTime(h.now + int64(s)))
		case "reject":
			m.RejectReason = wire.Some(wire.RejectReason(num()))
		default:
			h.t.Fatalf("inject: unknown key %q", a.Key)
		}
	}
	if !h.up {
		h.printf("no link: not delivered")
		return
	}
	// Through the codec, as a real peer's bytes would come.
	b, err := m.MarshalBinary()
	if err != nil {
		h.printf("inject: cannot encode: %v", err)
		return
	}
	h.deliver(h.other(hn), hn, b)
	h.settle()
}

func (h *harness) run(d *datadriven.TestData) string {
	defer h.checkDBs()
	switch d.Cmd {
	case "start":
		h.start(d)
	case "link":
		switch d.CmdArgs[0].Key {
		case "up":
			h.linkUp()
		case "down":
			h.teardown("link cut")
		case "raw":
			// A connection reaches one node only: what it gets is
			// injected by hand, as from a stranger.
			hn := h.node(d.CmdArgs[1].Key)
			h.up = true
			h.step(hn, LinkUp{})
			h.settle()
		}
	case "tick":
		dur, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			h.t.Fatal(err)
		}
		h.advance(h.now + int64(dur/time.Second))
		h.printf("now %s", h.rel(h.now))
	case "lease":
		h.leaseCmd(d)
	case "allocate":
		h.allocate(d)
	case "serve":
		h.serve(d)
	case "set-state":
		hn := h.node(d.CmdArgs[0].Key)
		s, ok := wire.ParseServerState(d.CmdArgs[1].Key)
		if !ok {
			h.t.Fatalf("unknown state %q", d.CmdArgs[1].Key)
		}
		h.step(hn, SetState{State: s})
		h.settle()
	case "shutdown":
		hn := h.node(d.CmdArgs[0].Key)
		h.step(hn, Shutdown{})
		h.settle()
	case "mute", "unmute":
		h.muted[h.node(d.CmdArgs[0].Key).idx] = d.Cmd == "mute"
	case "crash":
		hn := h.node(d.CmdArgs[0].Key)
		hn.down = true
		h.teardown(hn.tag + " crashed")
		h.printf("%s: crashed", hn.tag)
	case "restart":
		hn := h.node(d.CmdArgs[0].Key)
		empty := len(d.CmdArgs) > 1 && d.CmdArgs[1].Key == "empty"
		hn.down = true
		h.teardown(hn.tag + " restarts")
		h.printf("%s: restart%s", hn.tag, map[bool]string{true: " with an empty lease file", false: ""}[empty])
		h.boot(hn, empty)
	case "print-state":
		h.printState()
	case "leases":
		h.leasesCmd(h.node(d.CmdArgs[0].Key))
	case "check":
		h.check()
	case "inject":
		h.inject(d)
	case "record":
		hn := h.node(d.CmdArgs[0].Key)
		r := hn.record
		h.printf("%s: failover peer %q state { my state %s at %s; partner state %s at %s; mclt %d; }",
			hn.tag, r.Peer, r.MyState, h.rel(r.MyStateAt), r.PartnerState, h.rel(r.PartnerAt), r.MCLT)
	default:
		h.t.Fatalf("unknown command %q", d.Cmd)
	}
	return h.flush()
}

// checkDBs verifies that the node left each lease database consistent.
func (h *harness) checkDBs() {
	for _, hn := range h.nodes {
		if hn != nil && hn.db != nil {
			if err := hn.db.Check(); err != nil {
				h.t.Fatalf("%s: lease DB inconsistent: %v", hn.tag, err)
			}
		}
	}
}

func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := newHarness(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(d)
		})
	})
}
