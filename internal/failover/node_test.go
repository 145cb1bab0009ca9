package failover

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// linked puts a test node on an established link with its partner in
// state partner, as after CONNECT/CONNECTACK and STATE.
func linked(t *testing.T, n *Node, partner wire.ServerState) {
	t.Helper()
	n.link = link{up: true, established: true, communicating: true, upAt: testNow, lastSend: testNow, lastRecv: testNow,
		partnerMaxUnacked: 10, partnerReceiveTimer: 9}
	n.partner = partner
	n.Ready()
}

func bndupd(xid uint32, addr string, s lease.BindingState, mod func(m *wire.Message)) *wire.Message {
	a := lease.U32ToAddr(ip(addr))
	m := &wire.Message{Type: wire.MsgBndUpd, XID: xid, AssignedIP: wire.Some(a), BindingStatus: wire.Some(s),
		CHAddr: wire.Some([]byte{1, 2, 0, 0, 0, 0, 1}), LeaseExpiry: wire.Some(uint32(testNow + 600)),
		PotentialExpiry: wire.Some(uint32(testNow + 900)), STOS: wire.Some(uint32(testNow)), CLTT: wire.Some(uint32(testNow))}
	m.Time = testNow // the partner's clock agrees with ours
	if mod != nil {
		mod(m)
	}
	return m
}

func types(msgs []*wire.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Type.String())
	}
	return out
}

func TestRecordAndRestore(t *testing.T) {
	db, _ := lease.NewDB(poolSpecs("4"))
	fp := config.FailoverPeer{Name: relName, Role: config.Secondary}
	rec := &lease.FailoverStateRecord{Peer: relName, MyState: "partner-down", MyStateAt: testNow - 50,
		PartnerState: "communications-interrupted", PartnerAt: testNow - 60, MCLT: 1800}
	n, err := NewNode(NodeConfig{Peer: &fp, DB: db, State: rec, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	rd := n.Ready()
	want := lease.FailoverStateRecord{Peer: relName, MyState: "partner-down", MyStateAt: testNow - 50,
		PartnerState: "communications-interrupted", PartnerAt: testNow - 60, MCLT: 1800}
	if rd.StateRecord == nil || *rd.StateRecord != want {
		t.Errorf("record after start: %+v, want %+v (startup is saved as the state it resumes)", rd.StateRecord, want)
	}
	if n.State() != stStartup || n.MCLT() != 1800 || n.STOS() != testNow-50 {
		t.Errorf("restored %s mclt %d stos %d", n.State(), n.MCLT(), n.STOS())
	}
	if got := rd.StateChanges; len(got) != 1 || got[0].String() != "failover peer dhcp-failover: I move from partner-down to startup" {
		t.Errorf("state changes %v", got)
	}

	// Saved states that cannot be resumed safely start in recover.
	for _, s := range []string{"shutdown", "startup", "unknown-state", "bogus"} {
		db, _ := lease.NewDB(poolSpecs("4"))
		rec := &lease.FailoverStateRecord{Peer: relName, MyState: s, MyStateAt: testNow - 50}
		n, err := NewNode(NodeConfig{Peer: &fp, DB: db, State: rec, Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		if r := n.Record(); r.MyState != "recover" || r.MyStateAt != testNow {
			t.Errorf("saved %q: restarts as %s at %+d, want recover now", s, r.MyState, r.MyStateAt-testNow)
		}
	}
	// The primary writes no MCLT (ISC writes it on the secondary only).
	p, _, _ := testNode(t, config.Primary, stNormal, stNormal)
	if p.Record().MCLT != 0 {
		t.Errorf("primary record carries mclt")
	}
}

func TestNewNodeRefusesBadConfig(t *testing.T) {
	db, _ := lease.NewDB(poolSpecs("4"))
	for name, fp := range map[string]config.FailoverPeer{
		"no name":           {Role: config.Primary, HBA: make([]byte, 32)},
		"no role":           {Name: "x"},
		"primary, no HBA":   {Name: "x", Role: config.Primary},
		"HBA of 16 bytes":   {Name: "x", Role: config.Primary, HBA: make([]byte, 16)},
		"secondary bad HBA": {Name: "x", Role: config.Secondary, HBA: make([]byte, 3)},
	} {
		if _, err := NewNode(NodeConfig{Peer: &fp, DB: db}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewNode(NodeConfig{}); err == nil {
		t.Errorf("empty config accepted")
	}
}

// TestFlowControl: no more BNDUPDs in flight than the partner's
// max-unacked-bndupd; each BNDACK frees a slot (fw §4.5).
func TestFlowControl(t *testing.T) {
	n, db, _ := testNode(t, config.Primary, stNormal, stNormal)
	linked(t, n, stNormal)
	n.link.partnerMaxUnacked = 3
	for i := 10; i < 16; i++ {
		a := lease.U32ToAddr(ip("198.18.0.10") + uint32(i-10)).String()
		db.Update(ip(a), func(l *lease.Lease) { l.State, l.TSTP = lease.Active, testNow+100 })
		if err := n.Step(testNow, LeaseChanged{IP: ip(a)}); err != nil {
			t.Fatal(err)
		}
	}
	rd := n.Ready()
	if len(rd.Messages) != 3 {
		t.Fatalf("sent %d BNDUPDs with a window of 3", len(rd.Messages))
	}
	var xids []uint32
	for _, m := range rd.Messages {
		xids = append(xids, m.XID)
	}
	if diff := cmp.Diff([]uint32{1, 2, 3}, xids); diff != "" {
		t.Errorf("xids (BNDUPD never uses 0):\n%s", diff)
	}
	// The rewind state moved on at transmit and the leases are listed
	// for persistence before the messages leave.
	if len(rd.Leases) != 3 {
		t.Errorf("%d leases to persist, want 3", len(rd.Leases))
	}
	ack := &wire.Message{Type: wire.MsgBndAck, XID: 2, AssignedIP: rd.Messages[1].AssignedIP}
	n.Step(testNow, MessageReceived{Msg: ack})
	rd = n.Ready()
	if got := types(rd.Messages); len(got) != 1 || got[0] != "BNDUPD" {
		t.Errorf("after one ack: %v, want one more BNDUPD", got)
	}
	l, _ := db.Get(ip("198.18.0.11"))
	if l.TSFP != testNow+100 || l.ATSFP != testNow+100 || l.Rewind != lease.Active {
		t.Errorf("acked lease: tsfp %+d atsfp %+d rewind %s", l.TSFP-testNow, l.ATSFP-testNow, l.Rewind)
	}
	// A wrong xid changes nothing; a duplicate ack is ignored.
	n.Step(testNow, MessageReceived{Msg: &wire.Message{Type: wire.MsgBndAck, XID: 77, AssignedIP: rd.Messages[0].AssignedIP}})
	n.Step(testNow, MessageReceived{Msg: ack})
	if rd := n.Ready(); len(rd.Messages) != 0 || n.acks.Len() != 3 {
		t.Errorf("bad acks sent %v, %d in flight", types(rd.Messages), n.acks.Len())
	}
	// Link loss: in-flight updates go back to the queue, to be sent again.
	n.Step(testNow, LinkDown{})
	if n.acks.Len() != 0 || n.updates.Len() != 5 {
		t.Errorf("after link loss: %d in flight, %d queued; want 0 and 5", n.acks.Len(), n.updates.Len())
	}
}

// TestBindUpdateApplied: what an accepted BNDUPD stores (fw §4.2), and
// that the same update again changes nothing (duplicates after a
// reconnect are normal, fw §4.5).
func TestBindUpdateApplied(t *testing.T) {
	n, db, _ := testNode(t, config.Secondary, stNormal, stNormal)
	linked(t, n, stNormal)
	m := bndupd(5, "198.18.0.12", lease.Active, func(m *wire.Message) {
		m.ClientID = wire.Some([]byte("client-7"))
		m.IPFlags = wire.Some(wire.IPFlagBootp)
	})
	n.Step(testNow, MessageReceived{Msg: m})
	rd := n.Ready()
	l, _ := db.Get(ip("198.18.0.12"))
	want := lease.Lease{IP: ip("198.18.0.12"), State: lease.Active, Next: lease.Expired, Rewind: lease.Active,
		Flags: lease.FlagBootp, HType: 1, HLen: 6, ClientID: "client-7",
		Starts: testNow, Ends: testNow + 600, TSFP: testNow + 900, ATSFP: testNow + 900, CLTT: testNow}
	copy(want.HAddr[:], []byte{2, 0, 0, 0, 0, 1})
	if diff := cmp.Diff(want, l.Snapshot()); diff != "" {
		t.Errorf("stored lease (-want +got):\n%s", diff)
	}
	if len(rd.Leases) != 1 || rd.Leases[0] != ip("198.18.0.12") {
		t.Errorf("leases to persist: %v", rd.Leases)
	}
	// The ack is held (ISC batches positive acks) and goes after 2 s.
	if len(rd.Messages) != 0 || rd.NextTimer != testNow+AckDelay {
		t.Errorf("ack not held: %v, timer %+d", types(rd.Messages), rd.NextTimer-testNow)
	}
	n.Step(testNow+AckDelay, Tick{})
	rd = n.Ready()
	if len(rd.Messages) != 1 || rd.Messages[0].Type != wire.MsgBndAck || rd.Messages[0].XID != 5 {
		t.Fatalf("after 2 s: %v", types(rd.Messages))
	}
	// Half the partner's window of held acks goes at once.
	for i := uint32(0); i < 5; i++ {
		n.Step(testNow+AckDelay, MessageReceived{Msg: bndupd(20+i, "198.18.0.10", lease.Free, nil)})
	}
	if rd := n.Ready(); len(rd.Messages) != 5 {
		t.Errorf("5 acks held with a window of 10: sent %v", types(rd.Messages))
	}
	// Bare: only the address (fw §4.3).
	if a := rd.Messages[0]; a.ClientID.Present || a.PotentialExpiry.Present || a.RejectReason.Present || !a.AssignedIP.Present {
		t.Errorf("BNDACK is not bare: %+v", a)
	}
	before := l.Snapshot()
	n.Step(testNow+AckDelay, MessageReceived{Msg: m})
	if after := l.Snapshot(); after != before {
		t.Errorf("a duplicate update changed the lease")
	}
	// The caller reporting the node's own change must not make it echo.
	n.Step(testNow+AckDelay, LeaseChanged{IP: ip("198.18.0.12")})
	if n.updates.Len() != 0 || n.acks.Len() != 0 {
		t.Errorf("echoed the partner's update back")
	}

	// EXPIRED from the primary is stored as FREE on the secondary.
	n.Step(testNow+700, MessageReceived{Msg: bndupd(6, "198.18.0.12", lease.Expired, nil)})
	if l.State != lease.Free || l.Rewind != lease.Free {
		t.Errorf("expired update stored as %s (rewind %s), want free", l.State, l.Rewind)
	}
}

// TestDuelingUpdates is ISC's failover_lease_is_better (fw §4.2).
func TestDuelingUpdates(t *testing.T) {
	cases := []struct {
		name      string
		role      config.Role
		ours      lease.BindingState
		ourCLTT   int64
		theirs    lease.BindingState
		theirCLTT uint32
		ourWins   bool
		running   bool // our lease has not ended
	}{
		{"active vs active, ours later", config.Secondary, lease.Active, testNow + 5, lease.Active, testNow, true, false},
		{"active vs active, theirs later", config.Primary, lease.Active, testNow, lease.Active, testNow + 5, false, false},
		{"active vs active, tie: primary", config.Primary, lease.Active, testNow, lease.Active, testNow, true, false},
		{"active vs active, tie: secondary loses", config.Secondary, lease.Active, testNow, lease.Active, testNow, false, false},
		{"their expiry beats our ended active", config.Secondary, lease.Active, testNow, lease.Expired, testNow, false, false},
		{"our running binding beats their release", config.Secondary, lease.Active, testNow, lease.Released, testNow + 5, true, true},
		{"their active beats our free", config.Primary, lease.Free, testNow, lease.Active, testNow, false, false},
		{"free vs backup: primary wins", config.Primary, lease.Free, testNow, lease.Backup, testNow, true, false},
		{"free vs backup: secondary yields", config.Secondary, lease.Backup, testNow, lease.Free, testNow, false, false},
	}
	for _, c := range cases {
		n, db, _ := testNode(t, c.role, stNormal, stNormal)
		linked(t, n, stNormal)
		a := ip("198.18.0.13")
		db.Update(a, func(l *lease.Lease) {
			l.State, l.CLTT, l.TSTP = c.ours, c.ourCLTT, testNow+10
			if c.running {
				l.Ends = testNow + 100
			}
			l.SetHardware(1, []byte{2, 0, 0, 0, 0, 9})
		})
		n.Step(testNow, LeaseChanged{IP: a})
		n.Ready()
		if !n.acks.Has(a) {
			t.Fatalf("%s: our update is not in flight", c.name)
		}
		n.Step(testNow, MessageReceived{Msg: bndupd(40, "198.18.0.13", c.theirs, func(m *wire.Message) { m.CLTT = wire.Some(c.theirCLTT) })})
		rd := n.Ready()
		l, _ := db.Get(a)
		rejected := len(rd.Messages) == 1 && rd.Messages[0].RejectReason.Value == wire.RejectLessCriticalInfo
		if rejected != c.ourWins {
			t.Errorf("%s: rejected %v, want %v (messages %v)", c.name, rejected, c.ourWins, types(rd.Messages))
		}
		if !c.ourWins && n.acks.Has(a) {
			t.Errorf("%s: our losing update is still awaited", c.name)
		}
		if c.ourWins && l.State != c.ours {
			t.Errorf("%s: our lease changed to %s", c.name, l.State)
		}
	}
}

// TestSecondaryLeavesExpiryToPrimary: ISC's secondary does not send the
// expiry of an active lease while normal; the primary's will come.
func TestSecondaryLeavesExpiryToPrimary(t *testing.T) {
	n, db, _ := testNode(t, config.Secondary, stNormal, stNormal)
	linked(t, n, stNormal)
	a := ip("198.18.0.10")
	db.Update(a, func(l *lease.Lease) { l.State, l.Rewind, l.Ends = lease.Active, lease.Active, testNow })
	db.Expire(testNow, n.ExpiredState)
	n.Step(testNow, LeaseChanged{IP: a})
	if rd := n.Ready(); len(rd.Messages) != 0 {
		t.Errorf("secondary sent %v for an expiry", types(rd.Messages))
	}
	// Out of contact it reports it later: on entering normal the
	// transitional lease is queued.
	n.me = stCommInterrupted
	n.Step(testNow, LeaseChanged{IP: a})
	if !n.acks.Has(a) && !n.updates.Has(a) {
		t.Errorf("expiry not queued out of normal")
	}
}

// TestShutdownBackdatesSTOS: a graceful stop whose partner confirms
// partner-down saves recover with STOS back-dated by MCLT (fw §12.1).
func TestShutdownBackdatesSTOS(t *testing.T) {
	n, _, _ := testNode(t, config.Secondary, stNormal, stNormal)
	linked(t, n, stNormal)
	n.Step(testNow, Shutdown{})
	rd := n.Ready()
	if n.State() != stShutDown || len(rd.Messages) != 1 || rd.Messages[0].ServerState.Value != stShutDown {
		t.Fatalf("shutdown: state %s, sent %v", n.State(), types(rd.Messages))
	}
	n.Step(testNow+1, MessageReceived{Msg: &wire.Message{Type: wire.MsgState, XID: 9,
		ServerState: wire.Some(wire.StatePartnerDown), ServerFlags: wire.Some(wire.ServerFlags(0))}})
	rd = n.Ready()
	if !rd.Stopped || rd.StateRecord == nil {
		t.Fatalf("not stopped: %+v", rd)
	}
	if r := *rd.StateRecord; r.MyState != "recover" || r.MyStateAt != testNow+1-600 || r.PartnerState != "partner-down" {
		t.Errorf("saved %+v, want recover at now-MCLT with the partner in partner-down", r)
	}
	if err := n.Step(testNow+2, Tick{}); err != ErrStopped {
		t.Errorf("step after stop: %v", err)
	}

	// Without the partner's confirmation the stop still ends, and STOS
	// is not back-dated.
	n, _, _ = testNode(t, config.Secondary, stNormal, stNormal)
	linked(t, n, stNormal)
	n.Step(testNow, Shutdown{})
	n.Step(testNow+ShutdownGrace, Tick{})
	rd = n.Ready()
	if !rd.Stopped || rd.StateRecord.MyStateAt != testNow+ShutdownGrace || rd.CloseLink == nil {
		t.Errorf("unconfirmed stop: %+v", rd)
	}
}

// TestOperatorStates: what SetState accepts.
func TestOperatorStates(t *testing.T) {
	n, _, _ := testNode(t, config.Primary, stCommInterrupted, stNormal)
	for _, s := range []wire.ServerState{stNormal, stPotentialConflict, stConflictDone, stStartup, stRecoverDone, wire.ServerState(99)} {
		if err := n.Step(testNow, SetState{State: s}); err == nil {
			t.Errorf("operator may set %s", s)
		}
	}
	if err := n.Step(testNow, SetState{State: stPartnerDown}); err != nil || n.State() != stPartnerDown {
		t.Fatalf("partner-down: %v, state %s", err, n.State())
	}
	stos := n.STOS()
	if err := n.Step(testNow+100, SetState{State: stPartnerDown}); err != nil || n.STOS() != stos {
		t.Errorf("repeating partner-down restarted its MCLT wait")
	}
}

// TestAutoPartnerDown: communications-interrupted becomes partner-down
// after auto-partner-down seconds, unless the state changed meanwhile.
func TestAutoPartnerDown(t *testing.T) {
	n, _, _ := testNode(t, config.Primary, stNormal, stNormal)
	n.cfg.AutoPartnerDown = 30
	linked(t, n, stNormal)
	n.Step(testNow, LinkDown{})
	if rd := n.Ready(); n.State() != stCommInterrupted || rd.NextTimer != testNow+30 {
		t.Fatalf("state %s, timer %+d", n.State(), rd.NextTimer-testNow)
	}
	n.Step(testNow+29, Tick{})
	if n.State() != stCommInterrupted {
		t.Fatalf("partner-down too early")
	}
	n.Step(testNow+30, Tick{})
	if n.State() != stPartnerDown || n.STOS() != testNow+30 {
		t.Errorf("state %s since %+d", n.State(), n.STOS()-testNow)
	}
	// Off by default.
	n, _, _ = testNode(t, config.Primary, stNormal, stNormal)
	linked(t, n, stNormal)
	n.Step(testNow, LinkDown{})
	n.Step(testNow+100000, Tick{})
	if n.State() != stCommInterrupted {
		t.Errorf("auto-partner-down without configuration")
	}
}

func TestMetricsCollector(t *testing.T) {
	n, _, _ := testNode(t, config.Primary, stNormal, stNormal)
	linked(t, n, stNormal)
	n.Step(testNow+10, Tick{}) // CONTACT
	c := NewCollector()
	c.Observe(n.Status())
	reg := newRegistry(t, c)
	got := map[string]float64{}
	for _, mf := range reg {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				if lp.GetName() != "peer" {
					key += "/" + lp.GetValue()
				}
			}
			if g := m.GetGauge(); g != nil {
				got[key] = g.GetValue()
			}
			if ctr := m.GetCounter(); ctr != nil {
				got[key] = ctr.GetValue()
			}
		}
	}
	for key, want := range map[string]float64{
		"tandem_failover_local_state":                        2,
		"tandem_failover_partner_state":                      2,
		"tandem_failover_communicating":                      1,
		"tandem_failover_messages_sent_total/CONTACT":        1,
		"tandem_failover_pool_leases/0/free/198.18.0.0/24":   4,
		"tandem_failover_pool_leases/0/backup/198.18.0.0/24": 4,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}

func newRegistry(t *testing.T, c *Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}
