package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

var cmpOpts = cmp.Options{cmpopts.EquateComparable(netip.Addr{})}

// startPair runs server A on 127.0.0.1 and server B on 127.0.0.2, each
// listening and dialling the other, and waits until both see the same TCP
// connection as their link.
func startPair(t *testing.T, tweak func(a, b *Config)) (a, b *started, upA, upB Event) {
	t.Helper()
	portA, portB := freePort(t, addrA), freePort(t, addrB)
	ca := testConfig(t, portA, portB)
	ca.Name = "A"
	cb := ca
	cb.Name = "B"
	cb.LocalAddr, cb.Port, cb.PeerAddr, cb.PeerPort = addrB.String(), portB, addrA.String(), portA
	if tweak != nil {
		tweak(&ca, &cb)
	}
	a, b = start(t, ca), start(t, cb)
	upA, upB = waitLinked(t, a, b)
	return a, b, upA, upB
}

// waitLinked waits until A and B hold the two ends of one connection. If
// both dial at about the same time a side may first take up the connection
// that the other side then replaces (see Link.keeps), so this polls rather
// than taking the first Up.
func waitLinked(t *testing.T, a, b *started) (upA, upB Event) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ua, okA := a.rec.up()
		ub, okB := b.rec.up()
		if okA && okB && ua.Local == ub.Remote && ua.Remote == ub.Local {
			return ua, ub
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("A and B never shared one link; A:%s\nB:%s", describe(a.rec.snapshot()), describe(b.rec.snapshot()))
	return
}

func bndupd(xid uint32, ip string) *wire.Message {
	return &wire.Message{
		Type:          wire.MsgBndUpd,
		XID:           xid,
		AssignedIP:    wire.Some(netip.MustParseAddr(ip)),
		BindingStatus: wire.Some(wire.BindingState(2)),
		ClientID:      wire.Some([]byte("client-" + ip)),
		LeaseExpiry:   wire.Some(uint32(1_900_000_000)),
	}
}

// messagesOn collects the messages of conn among events, until n are found.
func messagesOn(t *testing.T, s *started, conn ConnID, n int) []*wire.Message {
	t.Helper()
	var got []*wire.Message
	from := 0
	for len(got) < n {
		var ev Event
		ev, from = s.rec.wait(t, from, 10*time.Second, fmt.Sprintf("message %d of %d on conn %d", len(got)+1, n, conn),
			func(ev Event) bool { return ev.Conn == conn && (ev.Kind == EventMessage || ev.Kind == EventDown) })
		if ev.Kind == EventDown {
			t.Fatalf("conn %d went down (%s: %v) after %d of %d messages", conn, ev.Cause, ev.Err, len(got), n)
		}
		got = append(got, ev.Message)
	}
	return got
}

func TestPairLinksOnceAndCarriesMessagesBothWays(t *testing.T) {
	a, b, upA, upB := startPair(t, nil)
	if upA.Inbound == upB.Inbound {
		t.Errorf("one side must have dialled and the other accepted: A inbound=%v, B inbound=%v", upA.Inbound, upB.Inbound)
	}
	if upA.Remote.Addr() != addrB || upB.Remote.Addr() != addrA {
		t.Errorf("link between %s and %s, want %s and %s", upA.Remote, upB.Remote, addrB, addrA)
	}

	const n = 200
	var wantAB, wantBA []*wire.Message
	for i := range n {
		ab := bndupd(uint32(i+1), fmt.Sprintf("198.18.%d.%d", i/200, i%200+1))
		ba := &wire.Message{Type: wire.MsgBndAck, XID: uint32(i + 1), AssignedIP: ab.AssignedIP}
		if err := a.Send(upA.Conn, ab); err != nil {
			t.Fatalf("A.Send #%d: %v", i, err)
		}
		if err := b.Send(upB.Conn, ba); err != nil {
			t.Fatalf("B.Send #%d: %v", i, err)
		}
		wantAB, wantBA = append(wantAB, ab), append(wantBA, ba)
	}
	before := time.Now().Unix()
	gotAB := messagesOn(t, b, upB.Conn, n)
	gotBA := messagesOn(t, a, upA.Conn, n)
	ignoreTime := cmp.Options{cmpOpts, cmpopts.IgnoreFields(wire.Message{}, "Time")}
	if diff := cmp.Diff(wantAB, gotAB, ignoreTime); diff != "" {
		t.Errorf("A to B, in order (-sent +received):\n%s", diff)
	}
	if diff := cmp.Diff(wantBA, gotBA, ignoreTime); diff != "" {
		t.Errorf("B to A, in order (-sent +received):\n%s", diff)
	}
	// The link stamps the sending time (fw §1): within the test's span.
	for _, m := range append(gotAB, gotBA...) {
		if d := int64(m.Time) - before; d < -60 || d > 60 {
			t.Fatalf("message time %d, want about %d", m.Time, before)
		}
	}

	// Exactly one link on each side: one Up, no Down, in both histories
	// from the shared link on, and the gauges agree.
	for name, s := range map[string]*started{"A": a, "B": b} {
		var ups, downs int
		for _, ev := range s.rec.snapshot() {
			switch ev.Kind {
			case EventUp:
				ups++
			case EventDown:
				downs++
			}
		}
		if ups-downs != 1 {
			t.Errorf("%s: %d Up and %d Down events, want exactly one link up", name, ups, downs)
		}
		if v := value(t, s.Metrics().up); v != 1 {
			t.Errorf("%s: tandem_peer_link_up = %v, want 1", name, v)
		}
		if v := value(t, s.Metrics().sentBy[wire.MsgBndUpd]) + value(t, s.Metrics().sentBy[wire.MsgBndAck]); v != n {
			t.Errorf("%s: %v BNDUPD+BNDACK counted as sent, want %d", name, v, n)
		}
	}
}

func TestMessageTimeKeptWhenSet(t *testing.T) {
	a, b, upA, upB := startPair(t, nil)
	m := &wire.Message{Type: wire.MsgState, XID: 7, Time: 1_000_000_000,
		ServerState: wire.Some(wire.StateNormal), ServerFlags: wire.Some(wire.ServerFlags(0)), STOS: wire.Some(uint32(1))}
	if err := a.Send(upA.Conn, m); err != nil {
		t.Fatal(err)
	}
	got := messagesOn(t, b, upB.Conn, 1)[0]
	if diff := cmp.Diff(m, got, cmpOpts); diff != "" {
		t.Errorf("(-sent +received):\n%s", diff)
	}
}

func TestSendErrors(t *testing.T) {
	a, b, upA, upB := startPair(t, nil)
	if err := a.Send(upA.Conn+1, bndupd(1, "198.18.0.10")); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send on a connection that does not exist: %v, want ErrNotConnected", err)
	}
	// An unencodable message is the caller's error, not the link's.
	bad := &wire.Message{Type: wire.MsgBndUpd, XID: 1, AssignedIP: wire.Some(netip.MustParseAddr("2001:db8::1"))}
	if err := a.Send(upA.Conn, bad); !errors.Is(err, wire.ErrNotIPv4) {
		t.Errorf("Send of an IPv6 assigned address: %v, want wire.ErrNotIPv4", err)
	}
	if err := a.Send(upA.Conn, bndupd(2, "198.18.0.11")); err != nil {
		t.Fatal(err)
	}
	if got := messagesOn(t, b, upB.Conn, 1)[0]; got.XID != 2 {
		t.Errorf("B received xid %d, want 2", got.XID)
	}
}

func TestCloseDropsTheLinkWhichComesBack(t *testing.T) {
	a, b, upA, upB := startPair(t, nil)
	a.Close(upA.Conn+1, "not this one") // not the link: nothing happens
	a.Close(upA.Conn, "protocol error: no relationship name")

	down, _ := a.rec.wait(t, 0, 5*time.Second, "A's Down", downOf(upA.Conn))
	if down.Cause != CauseClosed || down.Err == nil ||
		down.Err.Error() != "protocol error: no relationship name" {
		t.Errorf("A's Down: conn %d cause %s err %v, want conn %d, closed, the reason given", down.Conn, down.Cause, down.Err, upA.Conn)
	}
	downB, _ := b.rec.wait(t, 0, 5*time.Second, "B's Down", downOf(upB.Conn))
	if downB.Cause != CausePeerClosed {
		t.Errorf("B's Down: cause %s (%v), want peer_closed", downB.Cause, downB.Err)
	}
	if err := a.Send(upA.Conn, bndupd(1, "198.18.0.10")); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send on the closed connection: %v, want ErrNotConnected", err)
	}
	if a.logs.count("closing the link") != 1 {
		t.Errorf("want one log line for the Close, got:\n%s", a.logs.String())
	}

	// Both redial; a new link with new connection ids carries messages.
	upA2, upB2 := waitLinked(t, a, b)
	if upA2.Conn <= upA.Conn || upB2.Conn <= upB.Conn {
		t.Fatalf("after Close: conns %d/%d, want new ones after %d/%d", upA2.Conn, upB2.Conn, upA.Conn, upB.Conn)
	}
	if err := b.Send(upB2.Conn, bndupd(5, "198.18.0.12")); err != nil {
		t.Fatal(err)
	}
	if got := messagesOn(t, a, upA2.Conn, 1)[0]; got.XID != 5 {
		t.Errorf("received xid %d, want 5", got.XID)
	}
	if v := value(t, a.Metrics().disconnects.WithLabelValues(string(CauseClosed))); v != 1 {
		t.Errorf("A: disconnects{cause=closed} = %v, want 1", v)
	}
}

func TestWrongSourceRefused(t *testing.T) {
	port := freePort(t, addrA)
	peer := newRawPeer(t)
	a := start(t, testConfig(t, port, peer.port))
	// A dials B at start. Take that connection down and stop B listening,
	// so that A has no link and its redials fail: a refusal below cannot
	// be mistaken for a duplicate.
	dialled := peer.accept(t, 5*time.Second)
	up, _ := a.rec.wait(t, 0, 5*time.Second, "Up", isKind(EventUp))
	peer.ln.Close()
	a.Close(up.Conn, "making room")
	expectClosed(t, dialled, 5*time.Second)
	a.rec.wait(t, 0, 5*time.Second, "Down", isKind(EventDown))

	// 127.0.0.3 is not the peer: closed, and no event.
	target := netip.AddrPortFrom(addrA, uint16(port)).String()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	c, err := d.Dial("tcp4", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c, 5*time.Second)
	if v := value(t, a.Metrics().refused.WithLabelValues(RefusedWrongSource)); v != 1 {
		t.Errorf("refused{reason=wrong_source} = %v, want 1", v)
	}
	if a.logs.count("not the peer's") != 1 {
		t.Errorf("want a log line naming the refusal; log:\n%s", a.logs.String())
	}

	// The same from the peer's address becomes the link.
	d.LocalAddr = &net.TCPAddr{IP: addrB.AsSlice()}
	c2, err := d.Dial("tcp4", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	local := addrPortOf(c2.LocalAddr())
	ev, _ := a.rec.wait(t, 0, 5*time.Second, "Up of the peer's connection", isKind(EventUp))
	ev, _ = a.rec.wait(t, 0, 5*time.Second, "Up of the peer's connection", func(ev Event) bool {
		return ev.Kind == EventUp && ev.Conn != up.Conn
	})
	if ev.Remote != local || !ev.Inbound {
		t.Errorf("Up: remote %s inbound %v, want %s inbound", ev.Remote, ev.Inbound, local)
	}
	for _, ev := range a.rec.snapshot() {
		if ev.Remote.Addr() == netip.MustParseAddr("127.0.0.3") {
			t.Errorf("an event for the refused connection: %s", describe([]Event{ev}))
		}
	}
}

func TestMalformedFrameClosesTheLinkOnly(t *testing.T) {
	header := func(length int, typ wire.MessageType, payoff byte) []byte {
		b := make([]byte, 12)
		binary.BigEndian.PutUint16(b, uint16(length))
		b[2], b[3] = byte(typ), payoff
		return b
	}
	truncated := append(header(20, wire.MsgBndUpd, 12), 0, 2, 0, 100, 1, 2, 3, 4) // option 2 claims 100 bytes
	duplicate := append(header(28, wire.MsgBndUpd, 12), 0, 3, 0, 1, 2, 0, 3, 0, 1, 2, 0, 0, 0, 0)[:28]
	badLength := append(header(5, wire.MsgContact, 12), make([]byte, 20)...)
	tooLong := append(header(5000, wire.MsgContact, 12), make([]byte, 100)...)
	wrongSize := append(header(19, wire.MsgState, 12), 0, 24, 0, 3, 1, 2, 3) // server-state is 1 byte

	for _, tc := range []struct {
		name  string
		frame []byte
		kind  error
	}{
		{"length 5", badLength, wire.ErrLength},
		{"length 5000", tooLong, wire.ErrLength},
		{"truncated option", truncated, wire.ErrTruncatedOption},
		{"duplicate option", duplicate, wire.ErrDuplicateOption},
		{"wrong option size", wrongSize, wire.ErrOptionSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := newRawPeer(t)
			a := start(t, testConfig(t, freePort(t, addrA), peer.port))
			c := peer.accept(t, 5*time.Second)
			up, _ := a.rec.wait(t, 0, 5*time.Second, "Up", isKind(EventUp))

			// A good message first, then the bad frame.
			writeRaw(t, c, encode(t, &wire.Message{Type: wire.MsgContact, XID: 1, Time: 1}))
			writeRaw(t, c, tc.frame)
			ev, _ := a.rec.wait(t, 0, 5*time.Second, "CONTACT", isKind(EventMessage))
			if ev.Message.Type != wire.MsgContact || ev.Conn != up.Conn {
				t.Errorf("first message: %s on conn %d", ev.Message.Type, ev.Conn)
			}
			down, _ := a.rec.wait(t, 0, 5*time.Second, "Down", isKind(EventDown))
			var de *wire.DecodeError
			if down.Cause != CauseMalformed || !errors.As(down.Err, &de) || !errors.Is(down.Err, tc.kind) {
				t.Errorf("Down: cause %s err %v, want malformed with %v", down.Cause, down.Err, tc.kind)
			}
			expectClosed(t, c, 5*time.Second)
			if n := a.logs.count("malformed message"); n != 1 {
				t.Errorf("%d log lines about the malformed message, want 1; log:\n%s", n, a.logs.String())
			}
			if v := value(t, a.Metrics().decodeErrors); v != 1 {
				t.Errorf("decode errors = %v, want 1", v)
			}

			// The link comes back and works.
			c2 := peer.accept(t, 5*time.Second)
			up2, _ := a.rec.wait(t, 0, 5*time.Second, "second Up", func(ev Event) bool {
				return ev.Kind == EventUp && ev.Conn != up.Conn
			})
			writeRaw(t, c2, encode(t, &wire.Message{Type: wire.MsgContact, XID: 2}))
			ev, _ = a.rec.wait(t, 0, 5*time.Second, "CONTACT on the new link", func(ev Event) bool {
				return ev.Kind == EventMessage && ev.Conn == up2.Conn
			})
			if ev.Message.XID != 2 {
				t.Errorf("xid %d, want 2", ev.Message.XID)
			}
		})
	}
}

// The link sends nothing of its own, CONTACT included, however long it
// stays idle: keepalives are the state machine's (fw §6), whose xids come
// from the link's one counter (fw §1).
func TestSendsNothingOfItsOwn(t *testing.T) {
	peer := newRawPeer(t)
	cfg := testConfig(t, freePort(t, addrA), peer.port)
	// ISC would send a CONTACT every 100 ms with this receive-timer.
	cfg.MaxResponseDelay = 300 * time.Millisecond
	cfg.RedialInterval = 5 * time.Second // no redial during the test
	a := start(t, cfg)
	c := peer.accept(t, 5*time.Second)
	up, _ := a.rec.wait(t, 0, 5*time.Second, "Up", isKind(EventUp))
	expectSilence := func(what string, d time.Duration) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(d))
		var one [1]byte
		if n, err := c.Read(one[:]); n != 0 || err == nil {
			t.Fatalf("%s: the link sent %d bytes (%v)", what, n, err)
		}
	}
	// The peer keeps talking (for at most 5 s), so that the link has no
	// reason to drop.
	contact := encode(t, &wire.Message{Type: wire.MsgContact, XID: 7})
	stop := make(chan struct{})
	talked := make(chan struct{})
	go func() {
		defer close(talked)
		for range 100 {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write(contact); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-talked }()

	expectSilence("before any message", time.Second)
	state := &wire.Message{Type: wire.MsgState, XID: 1, ServerState: wire.Some(wire.StateNormal),
		ServerFlags: wire.Some(wire.ServerFlags(0)), STOS: wire.Some(uint32(1))}
	if err := a.Send(up.Conn, state); err != nil {
		t.Fatal(err)
	}
	if m := readMessage(t, c, 5*time.Second); m.Type != wire.MsgState || m.XID != 1 {
		t.Fatalf("first message %s xid %d, want STATE xid 1", m.Type, m.XID)
	}
	expectSilence("after the STATE", time.Second)
	if v := value(t, a.Metrics().sentBy[wire.MsgContact]); v != 0 {
		t.Errorf("%v CONTACTs counted as sent, want 0", v)
	}
	for _, ev := range a.rec.snapshot() {
		if ev.Kind == EventDown {
			t.Errorf("the link dropped although the peer talked: %s", describe([]Event{ev}))
		}
	}
}

// The link's own receive timeout is a backstop well beyond
// max-response-delay: the state machine closes a silent link first.
func TestReceiveTimeoutDefaultsWellBeyondMaxResponseDelay(t *testing.T) {
	for _, tc := range []struct{ mrd, set, want time.Duration }{
		{0, 0, MinReceiveTimeout},                   // ISC's default 20 s
		{5 * time.Second, 0, MinReceiveTimeout},     // the e2e pairs' value
		{45 * time.Second, 0, 90 * time.Second},     // twice a long one
		{5 * time.Second, time.Second, time.Second}, // set by the caller
	} {
		l := New(Config{Name: "x", PeerAddr: "127.0.0.2", MaxResponseDelay: tc.mrd, ReceiveTimeout: tc.set})
		if got := l.cfg.ReceiveTimeout; got != tc.want {
			t.Errorf("max-response-delay %v, ReceiveTimeout %v: receive timeout %v, want %v", tc.mrd, tc.set, got, tc.want)
		}
	}

	peer := newRawPeer(t)
	cfg := testConfig(t, freePort(t, addrA), peer.port)
	cfg.MaxResponseDelay = 200 * time.Millisecond
	cfg.RedialInterval = 5 * time.Second
	a := start(t, cfg)
	c := peer.accept(t, 5*time.Second) // and says nothing
	a.rec.wait(t, 0, 5*time.Second, "Up", isKind(EventUp))
	// Silent for five times max-response-delay: still up.
	time.Sleep(time.Second)
	for _, ev := range a.rec.snapshot() {
		if ev.Kind == EventDown {
			t.Fatalf("the link itself timed out a peer silent for 1 s: %s", describe([]Event{ev}))
		}
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var one [1]byte
	var ne net.Error
	if n, err := c.Read(one[:]); n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("connection: read %d bytes, %v; want it open and quiet", n, err)
	}
	if v := value(t, a.Metrics().timeouts); v != 0 {
		t.Errorf("receive timeouts = %v, want 0", v)
	}
}

func TestReceiveTimeoutClosesASilentLink(t *testing.T) {
	peer := newRawPeer(t)
	cfg := testConfig(t, freePort(t, addrA), peer.port)
	cfg.ReceiveTimeout = 300 * time.Millisecond
	cfg.RedialInterval = 5 * time.Second // no redial during the test
	a := start(t, cfg)
	c := peer.accept(t, 5*time.Second) // and says nothing
	up, _ := a.rec.wait(t, 0, 5*time.Second, "Up", isKind(EventUp))
	down, _ := a.rec.wait(t, 0, 10*time.Second, "Down", isKind(EventDown))
	if down.Conn != up.Conn || down.Cause != CauseTimeout {
		t.Errorf("Down: conn %d cause %s (%v), want conn %d, timeout", down.Conn, down.Cause, down.Err, up.Conn)
	}
	expectClosed(t, c, 5*time.Second)
	if n := a.logs.count("timeout waiting for failover peer tandem-test"); n != 1 {
		t.Errorf("%d ISC-style timeout lines, want 1; log:\n%s", n, a.logs.String())
	}
	if v := value(t, a.Metrics().timeouts); v != 1 {
		t.Errorf("receive timeouts = %v, want 1", v)
	}
}

func TestReceiveTimerResetByEachMessage(t *testing.T) {
	peer := newRawPeer(t)
	cfg := testConfig(t, freePort(t, addrA), peer.port)
	cfg.ReceiveTimeout = 1 * time.Second
	a := start(t, cfg)
	c := peer.accept(t, 5*time.Second)
	up, _ := a.rec.wait(t, 0, 5*time.Second, "Up", isKind(EventUp))
	// 3 s of CONTACTs every 100 ms: three times the timeout, never silent
	// for it.
	for i := range 30 {
		writeRaw(t, c, encode(t, &wire.Message{Type: wire.MsgContact, XID: uint32(i)}))
		time.Sleep(100 * time.Millisecond)
	}
	for _, ev := range a.rec.snapshot() {
		if ev.Kind == EventDown {
			t.Fatalf("the link dropped although the peer talked: %s", describe([]Event{ev}))
		}
	}
	msgs := 0
	for _, ev := range a.rec.snapshot() {
		if ev.Kind == EventMessage && ev.Conn == up.Conn {
			msgs++
		}
	}
	if msgs != 30 {
		t.Errorf("%d messages delivered, want 30", msgs)
	}
}

func TestSendQueueOverflowClosesTheLink(t *testing.T) {
	peer := newRawPeer(t)
	cfg := testConfig(t, freePort(t, addrA), peer.port)
	cfg.SendQueue = 8
	a := start(t, cfg)
	c := peer.accept(t, 5*time.Second) // and never reads
	up, _ := a.rec.wait(t, 0, 5*time.Second, "Up", isKind(EventUp))
	big := &wire.Message{Type: wire.MsgBndUpd, AssignedIP: wire.Some(netip.MustParseAddr("198.18.0.10")),
		ClientID: wire.Some(make([]byte, 2000))}
	var err error
	// The socket buffers take a few megabytes; then the writer blocks and
	// the queue fills. Bounded at 1 GB of attempts.
	for i := 0; i < 500_000 && err == nil; i++ {
		big.XID = uint32(i + 1)
		err = a.Send(up.Conn, big)
	}
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Send to a peer that never reads: %v, want ErrQueueFull", err)
	}
	down, _ := a.rec.wait(t, 0, 5*time.Second, "Down", isKind(EventDown))
	if down.Cause != CauseOverflow {
		t.Errorf("Down: cause %s (%v), want send_overflow", down.Cause, down.Err)
	}
	if err := a.Send(up.Conn, big); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send after the overflow: %v, want ErrNotConnected", err)
	}
	_ = c
}

// A server dials only while it has no link, so a connection from the side
// that dialled the link means that side has given the link up: the new
// connection replaces it, the old one being reported Down first.
func TestRedialBySameSideReplacesLink(t *testing.T) {
	peer := newRawPeer(t)
	a := start(t, testConfig(t, freePort(t, addrA), peer.port))
	first := peer.accept(t, 5*time.Second)
	up, _ := a.rec.wait(t, 0, 5*time.Second, "Up", isKind(EventUp))

	// The peer (127.0.0.2, greater than A's 127.0.0.1) dials while A's own
	// connection is the link: the peer's wins (see
	// TestSimultaneousDialsKeepOneLink); then it dials again, as after a
	// restart, and the newest wins.
	target := netip.AddrPortFrom(addrA, uint16(a.cfg.Port)).String()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: addrB.AsSlice()}}
	prev := up
	for i := range 2 {
		c, err := d.Dial("tcp4", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		down, from := a.rec.wait(t, 0, 5*time.Second, "Down of the replaced link", downOf(prev.Conn))
		if down.Cause != CauseReplaced {
			t.Errorf("dial %d: Down of conn %d: cause %s (%v), want replaced", i+1, prev.Conn, down.Cause, down.Err)
		}
		next, _ := a.rec.wait(t, from, 5*time.Second, "Up of the new connection", isKind(EventUp))
		if !next.Inbound || next.Remote != addrPortOf(c.LocalAddr()) {
			t.Errorf("dial %d: Up inbound=%v from %s, want inbound from %s", i+1, next.Inbound, next.Remote, c.LocalAddr())
		}
		if err := a.Send(next.Conn, bndupd(uint32(i+1), "198.18.0.10")); err != nil {
			t.Fatal(err)
		}
		if got := readMessage(t, c, 5*time.Second); got.XID != uint32(i+1) {
			t.Errorf("dial %d: read xid %d, want %d", i+1, got.XID, i+1)
		}
		prev = next
	}
	expectClosed(t, first, 5*time.Second)
	if n := a.logs.count("a new connection replaces the link"); n != 2 {
		t.Errorf("%d log lines for replaced links, want 2; log:\n%s", n, a.logs.String())
	}
	if v := value(t, a.Metrics().disconnects.WithLabelValues(string(CauseReplaced))); v != 2 {
		t.Errorf("disconnects{cause=replaced} = %v, want 2", v)
	}
}

// A connection from the peer that loses the tie-break (it dialled the
// smaller listening address) does not disturb a link the other side
// dialled.
func TestDuplicateConnectionClosed(t *testing.T) {
	peer := newRawPeer(t) // 127.0.0.2
	addrC := netip.MustParseAddr("127.0.0.3")
	cfg := testConfig(t, freePort(t, addrC), peer.port)
	cfg.LocalAddr = addrC.String()
	a := start(t, cfg)
	first := peer.accept(t, 5*time.Second)
	up, _ := a.rec.wait(t, 0, 5*time.Second, "Up", isKind(EventUp))

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: addrB.AsSlice()}}
	c, err := d.Dial("tcp4", netip.AddrPortFrom(addrC, uint16(cfg.Port)).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c, 5*time.Second)
	if v := value(t, a.Metrics().refused.WithLabelValues(RefusedDuplicate)); v != 1 {
		t.Errorf("refused{reason=duplicate} = %v, want 1", v)
	}
	if cur, ok := a.rec.up(); !ok || cur.Conn != up.Conn {
		t.Errorf("the link must stay: up=%v conn %d, want conn %d", ok, cur.Conn, up.Conn)
	}
	if err := a.Send(up.Conn, bndupd(7, "198.18.0.10")); err != nil {
		t.Fatal(err)
	}
	if got := readMessage(t, first, 5*time.Second); got.XID != 7 {
		t.Errorf("read xid %d on the link, want 7", got.XID)
	}
}

// Both servers dial at once, and each holds both connections before it
// decides. B decides first: it has taken up A's connection when its own
// dial completes. A decides a moment later: it has taken up B's connection
// when its own dial completes. Keeping the first connection each side saw
// ended both links here; both sides must keep the connection B dialled (B's
// address is the greater) without losing the link or redialling.
func TestSimultaneousDialsKeepOneLink(t *testing.T) {
	var listening, accepted sync.WaitGroup
	listening.Add(2)
	accepted.Add(2)
	var dials [2]atomic.Int32
	hold := func(side int, cfg *Config, handOver time.Duration) {
		var once sync.Once
		cfg.Listen = func(ctx context.Context, local netip.AddrPort) (net.Listener, error) {
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp4", local.String())
			if err != nil {
				return nil, err
			}
			listening.Done()
			return &signalListener{Listener: ln, signal: func() { once.Do(accepted.Done) }}, nil
		}
		cfg.Dial = func(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
			dials[side].Add(1)
			listening.Wait() // so that both first dials connect
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}
			c, err := d.DialContext(ctx, "tcp4", remote.String())
			if err != nil {
				return nil, err
			}
			// Hand the connection over only once both listeners have
			// accepted, and their accept loops have had time to take
			// the peer's connections up.
			accepted.Wait()
			select {
			case <-time.After(handOver):
			case <-ctx.Done():
				c.Close()
				return nil, ctx.Err()
			}
			return c, nil
		}
	}
	a, b, upA, upB := startPair(t, func(a, b *Config) {
		hold(0, a, 300*time.Millisecond)
		hold(1, b, 100*time.Millisecond)
	})
	if !upA.Inbound || upB.Inbound {
		t.Errorf("link: inbound at A %v, at B %v; want the connection B dialled", upA.Inbound, upB.Inbound)
	}
	time.Sleep(500 * time.Millisecond) // past A's hand-over, and ten redial intervals
	if cur, ok := a.rec.up(); !ok || cur.Conn != upA.Conn {
		t.Errorf("A's link changed: %s", describe(a.rec.snapshot()))
	}
	if cur, ok := b.rec.up(); !ok || cur.Conn != upB.Conn {
		t.Errorf("B's link changed: %s", describe(b.rec.snapshot()))
	}
	if d := describe(a.rec.snapshot()); strings.Count(d, "up ") != 1 || strings.Contains(d, "down") {
		t.Errorf("A: want one Up and no Down: %s", d)
	}
	// B took A's connection up first, then replaced it with its own.
	evB := b.rec.snapshot()
	if len(evB) != 3 || evB[0].Kind != EventUp || !evB[0].Inbound ||
		evB[1].Kind != EventDown || evB[1].Conn != evB[0].Conn || evB[1].Cause != CauseReplaced ||
		evB[2].Kind != EventUp || evB[2].Conn != upB.Conn {
		t.Errorf("B: want Up of A's connection, its Down (replaced), Up of B's own: %s", describe(evB))
	}
	if v := value(t, a.Metrics().refused.WithLabelValues(RefusedDuplicate)); v != 1 {
		t.Errorf("A: refused{reason=duplicate} = %v, want 1 (its own connection)", v)
	}
	if da, db := dials[0].Load(), dials[1].Load(); da != 1 || db != 1 {
		t.Errorf("dials: A %d, B %d; want one each", da, db)
	}
}

// signalListener calls signal after each connection it accepts.
type signalListener struct {
	net.Listener
	signal func()
}

func (l *signalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.signal()
	}
	return c, err
}

func TestRunStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	a, b, _, _ := startPair(t, func(a, b *Config) {
		a.MaxResponseDelay = 2 * time.Second
		b.MaxResponseDelay = 2 * time.Second
	})
	a.stop()
	b.stop()
	for name, s := range map[string]*started{"A": a, "B": b} {
		s.rec.wait(t, 0, 5*time.Second, name+"'s Down", isKind(EventDown))
		deadline := time.Now().Add(5 * time.Second)
		for {
			s.rec.mu.Lock()
			closed := s.rec.closed
			s.rec.mu.Unlock()
			if closed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Events not closed after Run returned", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The last Down is the one the stop caused. An earlier one is
		// possible: when both sides dial at about the same time, a side
		// may take up a connection the other then replaces.
		if name == "A" {
			s.rec.mu.Lock()
			var last Event
			for _, ev := range s.rec.events {
				if ev.Kind == EventDown {
					last = ev
				}
			}
			s.rec.mu.Unlock()
			if last.Cause != CauseShutdown {
				t.Errorf("A's last Down: %s (%v), want shutdown", last.Cause, last.Err)
			}
		}
		if err := s.Run(context.Background()); err == nil {
			t.Errorf("%s: a second Run succeeded", name)
		}
	}
	// Everything the Links started has ended (the recorders too, as their
	// channels closed).
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the Links ran:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunFailsOnBadAddresses(t *testing.T) {
	for _, cfg := range []Config{
		{Name: "x"},
		{Name: "x", PeerAddr: "2001:db8::1"},
		{Name: "x", PeerAddr: "127.0.0.2", LocalAddr: "::1"},
	} {
		l := New(cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := l.Run(ctx); err == nil {
			t.Errorf("Run with peer %q local %q: no error", cfg.PeerAddr, cfg.LocalAddr)
		}
		cancel()
		if _, open := <-l.Events(); open {
			t.Errorf("Events open after Run failed")
		}
	}
}

func TestBackoff(t *testing.T) {
	base, limit := 5*time.Second, 30*time.Second
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, backoff(base, limit, n))
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
	for range 100 {
		if j := jitter(base); j < base || j >= base+base/5 {
			t.Fatalf("jitter(%v) = %v, want in [%v, %v)", base, j, base, base+base/5)
		}
	}
}

func TestRedialWaitsAfterADrop(t *testing.T) {
	peer := newRawPeer(t)
	cfg := testConfig(t, freePort(t, addrA), peer.port)
	cfg.RedialInterval = 400 * time.Millisecond
	a := start(t, cfg)
	peer.accept(t, 5*time.Second)
	up, _ := a.rec.wait(t, 0, 5*time.Second, "Up", isKind(EventUp))
	a.Close(up.Conn, "test")
	a.rec.wait(t, 0, 5*time.Second, "Down", isKind(EventDown))
	dropped := time.Now()
	peer.accept(t, 5*time.Second)
	// Timers never fire early and the jitter only adds.
	if d := time.Since(dropped); d < 400*time.Millisecond {
		t.Errorf("redialled %v after the drop, want at least RedialInterval (400ms)", d)
	}
}

func TestFailedDialsBackOff(t *testing.T) {
	cfg := testConfig(t, freePort(t, addrA), freePort(t, addrB)) // nobody listens on B
	cfg.RedialInterval = 100 * time.Millisecond
	cfg.RedialMax = 400 * time.Millisecond
	a := start(t, cfg)
	time.Sleep(1500 * time.Millisecond)
	a.stop()
	// Waits of 100, 200, 400, 400 … ms (plus up to a fifth) leave room for
	// at most 6 attempts in 1.5 s; a fixed 100 ms would allow 15.
	n := value(t, a.Metrics().dialFailures)
	if n < 2 || n > 6 {
		t.Errorf("%v failed dials in 1.5 s, want 2..6 with the back-off", n)
	}
	// Each kind of failure is logged once at warning level, then at debug.
	if w := strings.Count(a.logs.String(), "level=WARN msg=\"failover peer tandem-test: cannot connect\""); w != 1 {
		t.Errorf("%d warnings for %v identical failures, want 1", w, n)
	}
}

// A CONNECTACK carrying a reject reason, or a DISCONNECT, is queued just
// before the Close that follows it; the peer must still receive it, since
// it is the only way the peer learns (and logs) why (fw §5).
func TestCloseSendsWhatWasQueuedFirst(t *testing.T) {
	a, b, upA, upB := startPair(t, nil)
	for i := range 3 {
		if err := a.Send(upA.Conn, bndupd(uint32(10+i), "198.18.0.10")); err != nil {
			t.Fatal(err)
		}
	}
	a.Close(upA.Conn, "CONNECT refused: time mismatch")
	got := messagesOn(t, b, upB.Conn, 3)
	for i, m := range got {
		if m.XID != uint32(10+i) {
			t.Errorf("message %d: xid %d, want %d", i, m.XID, 10+i)
		}
	}
	down, _ := a.rec.wait(t, 0, 5*time.Second, "A's Down", downOf(upA.Conn))
	if down.Cause != CauseClosed {
		t.Errorf("A's Down: cause %s, want closed", down.Cause)
	}
}
