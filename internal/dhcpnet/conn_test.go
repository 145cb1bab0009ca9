package dhcpnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// counterValues flattens the Metrics into "name{label=value}" -> value.
func counterValues(m *Metrics) (map[string]float64, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			var labels []string
			for _, l := range mm.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = mm.GetCounter().GetValue()
		}
	}
	return out, nil
}

// netipEqual lets cmp compare netip values, whose fields are unexported.
var netipEqual = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// loopbackConn opens a Conn serving only "lo" on a free random port pair.
func loopbackConn(t testing.TB, cfg Config) *Conn {
	t.Helper()
	cfg.Interfaces = []string{"lo"}
	cfg.Logger = quietLogger()
	for range 20 {
		port := uint16(20000 + rand.IntN(40000))
		// Probe without SO_REUSEADDR so we do not share a port with
		// someone else's socket.
		free := true
		for _, p := range []uint16{port, port + 1} {
			pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				break
			}
			pc.Close()
		}
		if !free {
			continue
		}
		cfg.Port = port
		c, err := Listen(cfg)
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Fatal("no free port pair found")
	return nil
}

func loIndex(t *testing.T, c *Conn) int {
	t.Helper()
	for _, i := range c.Interfaces() {
		if i.Name == "lo" {
			return i.Index
		}
	}
	t.Fatal("no lo in the interface table")
	return 0
}

func payload(tag byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = tag ^ byte(i)
	}
	return b
}

// readAll reads until want packets arrived or the deadline passed, copying
// their data; it returns the sizes of the batches ReadBatch returned.
func readAll(t *testing.T, c *Conn, pkts []Packet, want int) ([]Packet, []int) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []Packet
	var batches []int
	for len(got) < want {
		n, err := c.ReadBatch(pkts)
		for _, p := range pkts[:n] {
			p.Data = bytes.Clone(p.Data)
			got = append(got, p)
		}
		if n > 0 {
			batches = append(batches, n)
		}
		if err != nil {
			t.Fatalf("ReadBatch after %d of %d packets: %v", len(got), want, err)
		}
	}
	return got, batches
}

func TestLoopbackReadBatch(t *testing.T) {
	c := loopbackConn(t, Config{MaxPacketSize: 600})
	lo := loIndex(t, c)
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(c.Port())}

	// Queue everything before reading so one recvmmsg can take many.
	const good = 40
	send := func(b []byte) {
		t.Helper()
		if _, err := client.WriteToUDP(b, server); err != nil {
			t.Fatal(err)
		}
	}
	send(payload(0xee, bootpFixedLen-1)) // short
	for i := range good {
		send(payload(byte(i), 300+i))
	}
	send(payload(0xdd, 700)) // larger than MaxPacketSize: truncated

	pkts := make([]Packet, 16)
	got, batches := readAll(t, c, pkts, good)
	if len(got) != good {
		t.Fatalf("got %d packets, want %d", len(got), good)
	}
	// The first recvmmsg takes a full batch, whose first datagram (the
	// short one) is dropped.
	if batches[0] != len(pkts)-1 {
		t.Errorf("first ReadBatch returned %d packets with %d queued, want %d", batches[0], good, len(pkts)-1)
	}
	src := netip.MustParseAddrPort(client.LocalAddr().String())
	for i, p := range got {
		if !bytes.Equal(p.Data, payload(byte(i), 300+i)) {
			t.Fatalf("packet %d: wrong data (len %d)", i, len(p.Data))
		}
		want := Packet{Data: p.Data, IfIndex: lo, Src: src, Dst: netip.MustParseAddr("127.0.0.1"), Local: netip.MustParseAddr("127.0.0.1")}
		if diff := cmp.Diff(want, p, netipEqual); diff != "" {
			t.Errorf("packet %d mismatch (-want +got):\n%s", i, diff)
		}
	}

	// The truncated datagram is behind the last good one; wait for it to be
	// counted with a short deadline (nothing valid is left to return).
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.ReadBatch(pkts); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadBatch = %d, %v; want 0 and a timeout", n, err)
	}
	vals, err := counterValues(c.Metrics())
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		"tandem_dhcpnet_received_packets_total":                        good + 2,
		"tandem_dhcpnet_dropped_packets_total{reason=short}":           1,
		"tandem_dhcpnet_dropped_packets_total{reason=truncated}":       1,
		"tandem_dhcpnet_dropped_packets_total{reason=wrong_interface}": 0,
		"tandem_dhcpnet_interface_refreshes_total":                     0,
		"tandem_dhcpnet_sent_replies_total{kind=broadcast}":            0,
		"tandem_dhcpnet_send_errors_total{kind=l2}":                    0,
	} {
		if vals[k] != want {
			t.Errorf("%s = %v, want %v", k, vals[k], want)
		}
	}
}

// TestReadBatchBufferOwnership checks the documented contract: a slot whose
// Data the caller took (set to nil) gets a new buffer, so the kept packet
// is not overwritten; the other slots' buffers are reused.
func TestReadBatchBufferOwnership(t *testing.T) {
	c := loopbackConn(t, Config{})
	client, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(c.Port())})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	pkts := make([]Packet, 1)
	client.Write(payload(1, 300))
	readAll(t, c, pkts, 1)
	kept := pkts[0].Data
	pkts[0].Data = nil
	client.Write(payload(2, 300))
	readAll(t, c, pkts, 1)
	if !bytes.Equal(kept, payload(1, 300)) {
		t.Fatal("a packet the caller took was overwritten by the next read")
	}
	reused := &pkts[0].Data[:1][0]
	client.Write(payload(3, 300))
	readAll(t, c, pkts, 1)
	if &pkts[0].Data[:1][0] != reused {
		t.Error("ReadBatch did not reuse the slot's buffer")
	}
	if !bytes.Equal(pkts[0].Data, payload(3, 300)) {
		t.Error("wrong data in the reused buffer")
	}
}

// TestLoopbackSend sends routed replies over loopback: a relay reply comes
// back to the server port (our own socket), a ciaddr reply to the client
// port.
func TestLoopbackSend(t *testing.T) {
	c := loopbackConn(t, Config{})
	lo := loIndex(t, c)
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(c.Port()) + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	local := netip.MustParseAddr("127.0.0.1")

	sent, err := c.SendBatch([]Reply{
		{Data: payload(7, 300), IfIndex: lo, Giaddr: local, SrcAddr: local},
		{Data: payload(8, 300), IfIndex: lo, Ciaddr: local, SrcAddr: local},
		{Data: nil, IfIndex: lo, Ciaddr: local},
	})
	if sent != 2 || err == nil || !strings.Contains(err.Error(), "empty reply") {
		t.Fatalf("SendBatch = %d, %v; want 2 sent and an empty-reply error", sent, err)
	}

	pkts := make([]Packet, 4)
	got, _ := readAll(t, c, pkts, 1)
	if !bytes.Equal(got[0].Data, payload(7, 300)) || got[0].Src != netip.AddrPortFrom(local, c.Port()) {
		t.Errorf("relay reply arrived as %+v", got[0])
	}

	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1000)
	n, from, err := client.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], payload(8, 300)) || from != netip.AddrPortFrom(local, c.Port()) {
		t.Errorf("unicast reply from %v, %d bytes", from, n)
	}

	vals, err := counterValues(c.Metrics())
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		"tandem_dhcpnet_sent_replies_total{kind=relay}":   1,
		"tandem_dhcpnet_sent_replies_total{kind=unicast}": 1,
		"tandem_dhcpnet_send_errors_total{kind=unicast}":  1,
	} {
		if vals[k] != want {
			t.Errorf("%s = %v, want %v", k, vals[k], want)
		}
	}
}

// TestLoopbackL2Fallback asks for a layer-2 unicast out of "lo", which is
// not Ethernet: the reply must go out as a broadcast (RFC 2131 §4.1 "If
// unicasting is not possible ...") and count as a failed l2 attempt.
func TestLoopbackL2Fallback(t *testing.T) {
	c := loopbackConn(t, Config{})
	lo := loIndex(t, c)
	client, err := listenUDP(fmt.Sprintf("0.0.0.0:%d", c.Port()+1), "")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	data := payload(5, 300)
	sent, err := c.SendBatch([]Reply{
		{Data: data, IfIndex: lo, HType: 1, CHAddr: mac, Yiaddr: netip.MustParseAddr("127.0.0.2")},
		{Data: data, IfIndex: 0, Broadcast: true},
	})
	if sent != 1 || err == nil || !strings.Contains(err.Error(), "without an interface") {
		t.Fatalf("SendBatch = %d, %v; want 1 sent and an error for the broadcast without interface", sent, err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1000)
	n, from, err := client.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], data) || from.Port() != c.Port() {
		t.Errorf("got %d bytes from %v", n, from)
	}
	vals, err := counterValues(c.Metrics())
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		"tandem_dhcpnet_sent_replies_total{kind=broadcast}": 1,
		"tandem_dhcpnet_sent_replies_total{kind=l2}":        0,
		"tandem_dhcpnet_send_errors_total{kind=l2}":         1,
		"tandem_dhcpnet_send_errors_total{kind=broadcast}":  1,
	} {
		if vals[k] != want {
			t.Errorf("%s = %v, want %v", k, vals[k], want)
		}
	}
}

func TestListenUnknownInterface(t *testing.T) {
	_, err := Listen(Config{Port: 20000 + uint16(rand.IntN(40000)), Interfaces: []string{"lo", "no-such-if0"}, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "no-such-if0") {
		t.Fatalf("Listen with a missing interface: %v", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	c := loopbackConn(t, Config{})
	client, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(c.Port())})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan []byte, 1)
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, 8, func(ps []Packet) {
			for _, p := range ps {
				select {
				case got <- bytes.Clone(p.Data):
				default:
				}
			}
		})
	}()
	client.Write(payload(9, 250))
	select {
	case b := <-got:
		if !bytes.Equal(b, payload(9, 250)) {
			t.Error("Run handed over the wrong data")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run delivered nothing")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
}
