package peer

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// The relationship of the interop test. ISC's max-response-delay of 4 s
// makes it drop a link that is silent for 4 s; ours of 3 s makes it send
// CONTACT every second (fw §6). The Link sends no CONTACT of its own; the
// tests play the state machine and send them (keepAlive).
const (
	interopName = "tandem-interop"
	iscMRD      = 4
	ourMRD      = 3
)

// iscSecondaryConf is an ISC dhcpd 4.4 secondary at 198.18.0.2 whose
// primary is 198.18.0.1, on the default port 647.
var iscSecondaryConf = `ping-check false;
default-lease-time 600;
max-lease-time 600;
failover peer "` + interopName + `" {
  secondary;
  address 198.18.0.2;
  port 647;
  peer address 198.18.0.1;
  peer port 647;
  max-response-delay 4;
  max-unacked-updates 10;
  load balance max seconds 3;
}
subnet 198.18.0.0 netmask 255.255.255.0 {
  pool {
    failover peer "` + interopName + `";
    range 198.18.0.100 198.18.0.150;
  }
}
`

// newLab builds two hosts, srv1 at 198.18.0.1 and srv2 at 198.18.0.2, in
// network namespaces of their own; it skips unless root with dhcpd.
func newLab(t *testing.T) (srv1, srv2 *lab.Host) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network namespaces need root")
	}
	for _, prog := range []string{"ip", "dhcpd"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("skipping: %s not installed", prog)
		}
	}
	l := lab.New(t, lab.Options{Servers: 2})
	srv1, srv2 = l.Servers[0], l.Servers[1]
	if srv1.IP != netip.MustParseAddr("198.18.0.1") || srv2.IP != netip.MustParseAddr("198.18.0.2") {
		t.Fatalf("lab servers at %s and %s; the configurations expect 198.18.0.1 and 198.18.0.2", srv1.IP, srv2.IP)
	}
	return srv1, srv2
}

// inNamespace makes cfg open its sockets inside h's network namespace.
func inNamespace(cfg Config, h *lab.Host) Config {
	cfg.Listen = func(ctx context.Context, local netip.AddrPort) (net.Listener, error) {
		var ln net.Listener
		err := h.Do(func() error {
			var err error
			ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp4", local.String())
			return err
		})
		return ln, err
	}
	cfg.Dial = func(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
		var c net.Conn
		err := h.Do(func() error {
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}
			var err error
			c, err = d.DialContext(ctx, "tcp4", remote.String())
			return err
		})
		return c, err
	}
	return cfg
}

// keepAlive plays the state machine's part in fw §6: it sends CONTACT on
// conn every third of the peer's receive-timer, with xids from the test's
// counter, until the connection is gone or the test ends.
func keepAlive(t *testing.T, l *Link, conn ConnID, peerReceiveTimer uint32, nextXID func() uint32) {
	every := time.Duration(max(peerReceiveTimer/3, 1)) * time.Second
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if err := l.Send(conn, &wire.Message{Type: wire.MsgContact, XID: nextXID()}); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// TestInteropISCSecondary runs a Link as the primary (198.18.0.1, lab
// host srv1) against a real ISC dhcpd 4.4 secondary (srv2) in network
// namespaces: a hand-built CONNECT gets CONNECTACK and STATE back over the
// Link, each side's CONTACTs keep the other's receive timer from firing,
// and after the secondary is killed and restarted the link comes back.
func TestInteropISCSecondary(t *testing.T) {
	primary, secondary := newLab(t)
	isc := lab.NewISCDhcpd(secondary, iscSecondaryConf)
	proc := isc.Start()

	var xid atomic.Uint32 // the primary's xid counter, CONTACT's too (fw §1)
	nextXID := func() uint32 { return xid.Add(1) - 1 }
	a := start(t, inNamespace(Config{
		Name:             interopName,
		LocalAddr:        primary.IP.String(),
		PeerAddr:         secondary.IP.String(),
		MaxResponseDelay: ourMRD * time.Second,
		// No state machine times the link out here: the link's own
		// timeout stands in for it, at our max-response-delay.
		ReceiveTimeout: ourMRD * time.Second,
		RedialInterval: 200 * time.Millisecond,
		RedialMax:      time.Second,
	}, primary))

	// handshake sends CONNECT on the link that is up from index from on,
	// and checks ISC's CONNECTACK and STATE. It returns the connection and
	// the event index after the STATE.
	handshake := func(from int) (Event, int) {
		t.Helper()
		up, from := a.rec.wait(t, from, 30*time.Second, "a link to ISC", isKind(EventUp))
		if up.Remote.Addr() != secondary.IP {
			t.Fatalf("link to %s, want %s", up.Remote, secondary.IP)
		}
		hba := wire.HBAFromSplit(128)
		connect := &wire.Message{
			Type:             wire.MsgConnect,
			XID:              nextXID(),
			RelationshipName: wire.Some(interopName),
			MaxUnacked:       wire.Some(uint32(10)),
			ReceiveTimer:     wire.Some(uint32(ourMRD)),
			VendorClass:      wire.Some("tandem-peer-test"),
			ProtocolVersion:  wire.Some(uint8(wire.ProtocolVersion)),
			TLSRequest:       wire.Some(uint8(0)),
			MCLT:             wire.Some(uint32(60)),
			HBA:              wire.Some(hba[:]),
		}
		if err := a.Send(up.Conn, connect); err != nil {
			t.Fatal(err)
		}
		onLink := func(typ wire.MessageType) func(Event) bool {
			return func(ev Event) bool {
				if ev.Conn == up.Conn && ev.Kind == EventDown {
					t.Fatalf("the link dropped during the handshake: %s (%v)", ev.Cause, ev.Err)
				}
				return ev.Conn == up.Conn && ev.Kind == EventMessage && ev.Message.Type == typ
			}
		}
		ev, from := a.rec.wait(t, from, 10*time.Second, "CONNECTACK", onLink(wire.MsgConnectAck))
		ack := ev.Message
		if ack.XID != connect.XID {
			t.Errorf("CONNECTACK xid %d, want the CONNECT's %d (fw §1)", ack.XID, connect.XID)
		}
		if r, ok := ack.RejectReason.Get(); ok {
			t.Fatalf("ISC rejected the CONNECT: %s %q", r, ack.MessageText.Value)
		}
		if ack.RelationshipName.Value != interopName {
			t.Errorf("CONNECTACK relationship name %q, want %q", ack.RelationshipName.Value, interopName)
		}
		if rt := ack.ReceiveTimer.Value; rt != iscMRD {
			t.Errorf("CONNECTACK receive-timer %d, want ISC's max-response-delay %d", rt, iscMRD)
		}
		keepAlive(t, a.Link, up.Conn, ack.ReceiveTimer.Value, nextXID)
		ev, from = a.rec.wait(t, from, 10*time.Second, "STATE", onLink(wire.MsgState))
		if s, ok := ev.Message.ServerState.Get(); !ok || !s.Valid() {
			t.Errorf("ISC's STATE carries server-state %v (present %v)", s, ok)
		}
		t.Logf("ISC: CONNECTACK %+v, then STATE %s flags %d", ack.VendorClass.Value,
			ev.Message.ServerState.Value, ev.Message.ServerFlags.Value)
		return up, from
	}

	up, from := handshake(0)
	mark := proc.LogSize()
	state := &wire.Message{Type: wire.MsgState, XID: nextXID(),
		ServerState: wire.Some(wire.StateRecover), ServerFlags: wire.Some(wire.ServerFlags(0)),
		STOS: wire.Some(uint32(time.Now().Unix()))}
	if err := a.Send(up.Conn, state); err != nil {
		t.Fatal(err)
	}
	// ISC decoded our STATE.
	if _, err := proc.AwaitLog(mark, `peer moves from .* to recover`, 10*time.Second); err != nil {
		t.Errorf("ISC did not take our STATE: %v", err)
	}

	// Longer than both receive timers: ISC's CONTACTs (every second, a third
	// of our 3 s) keep our link, the test's (a third of its 4 s, sent over
	// the Link by keepAlive) keep ISC's.
	time.Sleep(2 * iscMRD * time.Second)
	contacts := 0
	for _, ev := range a.rec.snapshot()[from:] {
		if ev.Conn != up.Conn {
			continue
		}
		switch {
		case ev.Kind == EventDown:
			t.Fatalf("the link dropped while both sides were keeping it alive: %s (%v)", ev.Cause, ev.Err)
		case ev.Kind == EventMessage && ev.Message.Type == wire.MsgContact:
			contacts++
		case ev.Kind == EventMessage:
			t.Logf("ISC sent %s xid %d", ev.Message.Type, ev.Message.XID)
		}
	}
	if contacts < 2 {
		t.Errorf("%d CONTACTs from ISC in %d s, want it to keep the link alive", contacts, 2*iscMRD)
	}
	if v := value(t, a.Metrics().sentBy[wire.MsgContact]); v < 2 {
		t.Errorf("we sent %v CONTACTs in %d s, want some", v, 2*iscMRD)
	}
	if strings.Contains(proc.Log(), "timeout waiting for failover peer") {
		t.Errorf("ISC timed our link out:\n%s", proc.Log())
	}

	// Kill the secondary: the link drops. Restarted, it dials us at once
	// (or our redial gets there first) and the handshake works again.
	proc.Kill9()
	down, from := a.rec.wait(t, from, 10*time.Second, "Down after the kill", func(ev Event) bool {
		return ev.Kind == EventDown && ev.Conn == up.Conn
	})
	if down.Cause != CausePeerClosed && down.Cause != CauseReadError {
		t.Errorf("Down after the kill: %s (%v), want peer_closed", down.Cause, down.Err)
	}
	isc.Start()
	up2, _ := handshake(from)
	t.Logf("after the restart: conn %d, inbound %v", up2.Conn, up2.Inbound)
	if strings.Contains(a.logs.String(), "timeout waiting") {
		t.Errorf("our link timed out:\n%s", a.logs.String())
	}
}

// iscPrimaryConf is an ISC dhcpd 4.4 primary at 198.18.0.1 whose secondary
// is 198.18.0.2.
var iscPrimaryConf = `ping-check false;
default-lease-time 600;
max-lease-time 600;
failover peer "` + interopName + `" {
  primary;
  address 198.18.0.1;
  port 647;
  peer address 198.18.0.2;
  peer port 647;
  max-response-delay 4;
  max-unacked-updates 10;
  load balance max seconds 3;
  mclt 60;
  split 128;
}
subnet 198.18.0.0 netmask 255.255.255.0 {
  pool {
    failover peer "` + interopName + `";
    range 198.18.0.100 198.18.0.150;
  }
}
`

// TestInteropISCPrimary runs a Link as the secondary (srv2) against a
// real ISC dhcpd 4.4 primary (srv1) that dials it: ISC's CONNECT arrives
// over the accepted connection as fw §5 describes it, our CONNECTACK and
// STATE are taken, and ISC's CONTACTs follow at a third of our
// receive-timer.
func TestInteropISCPrimary(t *testing.T) {
	primary, secondary := newLab(t)
	var xid atomic.Uint32
	nextXID := func() uint32 { return xid.Add(1) - 1 }
	b := start(t, inNamespace(Config{
		Name:             interopName,
		LocalAddr:        secondary.IP.String(),
		PeerAddr:         primary.IP.String(),
		MaxResponseDelay: ourMRD * time.Second,
		// ISC listens only once it runs; keep our failed dials from
		// racing its own.
		RedialInterval: time.Minute,
	}, secondary))
	proc := lab.NewISCDhcpd(primary, iscPrimaryConf).Start()

	up, from := b.rec.wait(t, 0, 30*time.Second, "a link from ISC", isKind(EventUp))
	if up.Remote.Addr() != primary.IP {
		t.Fatalf("link from %s, want %s", up.Remote, primary.IP)
	}
	ev, from := b.rec.wait(t, from, 10*time.Second, "CONNECT", func(ev Event) bool {
		return ev.Kind == EventMessage && ev.Message.Type == wire.MsgConnect
	})
	connect := ev.Message
	hba := wire.HBAFromSplit(128)
	if connect.RelationshipName.Value != interopName || connect.MCLT.Value != 60 ||
		string(connect.HBA.Value) != string(hba[:]) || connect.ReceiveTimer.Value != iscMRD {
		t.Errorf("ISC's CONNECT: name %q MCLT %d HBA % x receive-timer %d; want %q, 60, split 128, %d",
			connect.RelationshipName.Value, connect.MCLT.Value, connect.HBA.Value, connect.ReceiveTimer.Value,
			interopName, iscMRD)
	}
	keepAlive(t, b.Link, up.Conn, connect.ReceiveTimer.Value, nextXID)

	mark := proc.LogSize()
	ack := &wire.Message{Type: wire.MsgConnectAck, XID: connect.XID,
		RelationshipName: wire.Some(interopName),
		MaxUnacked:       wire.Some(uint32(10)),
		ReceiveTimer:     wire.Some(uint32(ourMRD)),
		VendorClass:      wire.Some("tandem-peer-test"),
		ProtocolVersion:  wire.Some(uint8(wire.ProtocolVersion)),
		TLSReply:         wire.Some(uint8(0)),
	}
	state := &wire.Message{Type: wire.MsgState, XID: nextXID(),
		ServerState: wire.Some(wire.StateRecover), ServerFlags: wire.Some(wire.ServerFlagStartup),
		STOS: wire.Some(uint32(time.Now().Unix()))}
	for _, m := range []*wire.Message{ack, state} {
		if err := b.Send(up.Conn, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := proc.AwaitLog(mark, `peer moves from .* to recover`, 10*time.Second); err != nil {
		t.Errorf("ISC did not take our CONNECTACK and STATE: %v", err)
	}
	ev, _ = b.rec.wait(t, from, 10*time.Second, "ISC's STATE", func(ev Event) bool {
		return ev.Kind == EventMessage && ev.Message.Type == wire.MsgState
	})
	t.Logf("ISC's STATE: %s flags %d", ev.Message.ServerState.Value, ev.Message.ServerFlags.Value)
	var contacts int
	b.rec.wait(t, from, 10*time.Second, "two CONTACTs from ISC", func(ev Event) bool {
		if ev.Kind == EventDown {
			t.Fatalf("the link dropped: %s (%v)", ev.Cause, ev.Err)
		}
		if ev.Kind == EventMessage && ev.Message.Type == wire.MsgContact {
			contacts++
		}
		return contacts == 2
	})
	if strings.Contains(proc.Log(), "timeout waiting for failover peer") {
		t.Errorf("ISC timed our link out:\n%s", proc.Log())
	}
}
