package dhcpnet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Topology of the namespace tests (all addresses from 198.18.0.0/15):
//
//	server ns                         peer ns
//	a0 198.18.7.1/24  <-- veth -->    a1 198.18.7.2/24
//	b0 198.18.8.1/24  <-- veth -->    b1 198.18.8.2/24
//	route 198.18.9.1/32 via a1        lo 198.18.9.1/32 (the "relay")
//
// Two links let us check that a broadcast leaves by the interface asked
// for; the relay address off-link checks that relay replies are routed.

const (
	srvPort      = 1067 // helper with every interface; clients on 1068
	filteredPort = 2067 // helper serving only a0
)

var (
	srvA   = netip.MustParseAddr("198.18.7.1")
	peerA  = netip.MustParseAddr("198.18.7.2")
	srvB   = netip.MustParseAddr("198.18.8.1")
	peerB  = netip.MustParseAddr("198.18.8.2")
	giaddr = netip.MustParseAddr("198.18.9.1")
)

type topology struct {
	srv, peer string
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newTopology builds the namespaces, or skips when that is impossible.
// They are deleted when the test ends, whatever its outcome.
func newTopology(t *testing.T) *topology {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespace tests need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespace tests need the ip command (iproute2)")
	}
	tag := fmt.Sprintf("%d-%04x", os.Getpid(), rand.IntN(0x10000))
	tp := &topology{srv: "tdn-dhcpnet-s-" + tag, peer: "tdn-dhcpnet-p-" + tag}
	for _, ns := range []string{tp.srv, tp.peer} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("ip netns unavailable: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("deleting namespace %s: %v: %s", ns, err, out)
			}
		})
		// No IPv6: its autoconfiguration chatter is not what we test.
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	tp.link(t, "a", "198.18.7.1/24", "198.18.7.2/24")
	tp.link(t, "b", "198.18.8.1/24", "198.18.8.2/24")
	run(t, "ip", "-n", tp.peer, "addr", "add", "198.18.9.1/32", "dev", "lo")
	run(t, "ip", "-n", tp.srv, "route", "add", "198.18.9.1/32", "via", "198.18.7.2")
	return tp
}

// link joins the namespaces with a veth pair <x>0 (server) / <x>1 (peer).
func (tp *topology) link(t *testing.T, x, srvCIDR, peerCIDR string) {
	t.Helper()
	run(t, "ip", "-n", tp.srv, "link", "add", x+"0", "type", "veth", "peer", "name", x+"1", "netns", tp.peer)
	run(t, "ip", "-n", tp.srv, "addr", "add", srvCIDR, "dev", x+"0")
	run(t, "ip", "-n", tp.peer, "addr", "add", peerCIDR, "dev", x+"1")
	run(t, "ip", "-n", tp.srv, "link", "set", x+"0", "up")
	run(t, "ip", "-n", tp.peer, "link", "set", x+"1", "up")
}

// inNetns runs fn on a thread switched into namespace name. Sockets made by
// fn stay in that namespace after it returns. The thread is never switched
// back: its goroutine ends locked, so the runtime discards the thread.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(name)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// helper is a Conn running in the server namespace in a child process.
type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	stderr *syncBuffer
	ifaces map[string]Interface
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startHelper(t *testing.T, ns string, cfg helperConfig) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, _ := json.Marshal(cfg)
	cmd := exec.Command("ip", "netns", "exec", ns, exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+string(cfgJSON))
	h := &helper{cmd: cmd, lines: make(chan []byte, 4), stderr: new(syncBuffer)}
	cmd.Stderr = h.stderr
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			h.lines <- bytes.Clone(sc.Bytes())
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		// "ip netns exec" execs the helper, so this PID is the helper.
		h.stdin.Close()
		go func() { cmd.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-waited
		}
		if t.Failed() {
			t.Logf("helper on port %d stderr:\n%s", cfg.Port, h.stderr.String())
		}
	})
	ready := h.read(t)
	if ready.Err != "" {
		t.Fatalf("helper: %s", ready.Err)
	}
	h.setInterfaces(ready.Interfaces)
	return h
}

func (h *helper) setInterfaces(is []Interface) {
	h.ifaces = make(map[string]Interface)
	for _, i := range is {
		h.ifaces[i.Name] = i
	}
}

func (h *helper) read(t *testing.T) helperResp {
	t.Helper()
	select {
	case line, ok := <-h.lines:
		if !ok {
			t.Fatalf("helper exited; stderr:\n%s", h.stderr.String())
		}
		var r helperResp
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("helper said %q: %v", line, err)
		}
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("helper did not answer; stderr:\n%s", h.stderr.String())
	}
	panic("unreachable")
}

func (h *helper) do(t *testing.T, cmd helperCmd) helperResp {
	t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := h.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("writing to helper: %v", err)
	}
	return h.read(t)
}

func (h *helper) index(t *testing.T, name string) int {
	t.Helper()
	i, ok := h.ifaces[name]
	if !ok {
		t.Fatalf("helper has no interface %s", name)
	}
	return i.Index
}

func (h *helper) send(t *testing.T, rs ...Reply) {
	t.Helper()
	r := h.do(t, helperCmd{Op: "send", Replies: rs})
	if r.Err != "" || r.Sent != len(rs) {
		t.Fatalf("send: %d of %d sent, err %q", r.Sent, len(rs), r.Err)
	}
}

func (h *helper) recv(t *testing.T, count int, timeout time.Duration) []Packet {
	t.Helper()
	r := h.do(t, helperCmd{Op: "recv", Count: count, TimeoutMS: int(timeout / time.Millisecond)})
	if r.Err != "" {
		t.Fatalf("recv: %s", r.Err)
	}
	return r.Packets
}

func (h *helper) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	r := h.do(t, helperCmd{Op: "metrics"})
	if r.Err != "" {
		t.Fatalf("metrics: %s", r.Err)
	}
	return r.Metrics
}

// peerSide holds the sockets of the peer namespace.
type peerSide struct {
	capA, capB *packet.Conn // everything IPv4 on a1 and b1
	client     *net.UDPConn // 0.0.0.0:clientPort
	relay      *net.UDPConn // giaddr:srvPort
	macA       net.HardwareAddr
}

func openPeer(t *testing.T, ns string) *peerSide {
	t.Helper()
	p := &peerSide{}
	err := inNetns(ns, func() error {
		var err error
		for _, c := range []struct {
			name string
			dst  **packet.Conn
		}{{"a1", &p.capA}, {"b1", &p.capB}} {
			ifi, err := net.InterfaceByName(c.name)
			if err != nil {
				return err
			}
			if c.name == "a1" {
				p.macA = ifi.HardwareAddr
			}
			if *c.dst, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IP, nil); err != nil {
				return err
			}
		}
		if p.client, err = listenUDP(fmt.Sprintf("0.0.0.0:%d", srvPort+1), ""); err != nil {
			return err
		}
		p.relay, err = listenUDP(netip.AddrPortFrom(giaddr, srvPort).String(), "")
		return err
	})
	if err != nil {
		t.Fatalf("peer sockets: %v", err)
	}
	t.Cleanup(func() {
		p.capA.Close()
		p.capB.Close()
		p.client.Close()
		p.relay.Close()
	})
	return p
}

// listenUDP opens a UDP socket that may broadcast, bound to device if set.
func listenUDP(addr, device string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
				return
			}
			if device != "" {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, device)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// sendFromPeer sends b from the peer namespace to dst, out of device.
func sendFromPeer(t *testing.T, ns, device string, dst netip.AddrPort, b []byte) {
	t.Helper()
	err := inNetns(ns, func() error {
		c, err := listenUDP("0.0.0.0:0", device)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteToUDPAddrPort(b, dst)
		return err
	})
	if err != nil {
		t.Fatalf("sending from %s: %v", device, err)
	}
}

// parseUDPFrame takes apart an Ethernet/IPv4/UDP frame; ok is false for
// anything else.
func parseUDPFrame(f []byte) (d decodedFrame, ok bool) {
	if len(f) < 42 || binary.BigEndian.Uint16(f[12:14]) != 0x0800 || f[14]>>4 != 4 || f[23] != 17 {
		return d, false
	}
	ihl := int(f[14]&0x0f) * 4
	if ihl < 20 || len(f) < 14+ihl+8 {
		return d, false
	}
	udpLen := int(binary.BigEndian.Uint16(f[14+ihl+4:]))
	if udpLen < 8 || len(f) < 14+ihl+udpLen {
		return d, false
	}
	return decodeFrameUnchecked(f), true
}

// expectFrames reads c until frames carrying each of the wanted UDP
// payloads arrived, or the timeout passed; it returns those found, in the
// order of wants.
func expectFrames(c *packet.Conn, timeout time.Duration, wants ...[]byte) ([]decodedFrame, bool) {
	found := make([]decodedFrame, len(wants))
	missing := len(wants)
	seen := make([]bool, len(wants))
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 9000)
	for missing > 0 && time.Now().Before(deadline) {
		c.SetReadDeadline(deadline)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			break
		}
		d, ok := parseUDPFrame(bytes.Clone(buf[:n]))
		if !ok {
			continue
		}
		for i, w := range wants {
			if !seen[i] && bytes.Equal(d.Payload, w) {
				found[i], seen[i] = d, true
				missing--
			}
		}
	}
	return found, missing == 0
}

// expectFrame reads c until a frame whose UDP payload is want arrives, or
// the timeout passes.
func expectFrame(c *packet.Conn, want []byte, timeout time.Duration) (decodedFrame, bool) {
	fs, ok := expectFrames(c, timeout, want)
	return fs[0], ok
}

// expectUDP reads c until a datagram with payload want arrives.
func expectUDP(c *net.UDPConn, want []byte, timeout time.Duration) (netip.AddrPort, bool) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 9000)
	for time.Now().Before(deadline) {
		c.SetReadDeadline(deadline)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return netip.AddrPort{}, false
		}
		if bytes.Equal(buf[:n], want) {
			return netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), true
		}
	}
	return netip.AddrPort{}, false
}

var xidCounter uint32 = 0x7a000000

// offer encodes a DHCPOFFER with a fresh xid, so every test packet is
// unique and a capture can pick it out.
func offer(t *testing.T, chaddr net.HardwareAddr, yiaddr netip.Addr, flags ...func(*dhcpv4.DHCPv4)) []byte {
	t.Helper()
	xidCounter++
	var xid dhcpv4.TransactionID
	binary.BigEndian.PutUint32(xid[:], xidCounter)
	m, err := dhcpv4.New(
		dhcpv4.WithTransactionID(xid),
		dhcpv4.WithHwAddr(chaddr),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
		dhcpv4.WithYourIP(yiaddr.AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srvA.AsSlice())),
	)
	if err != nil {
		t.Fatal(err)
	}
	m.OpCode = dhcpv4.OpcodeBootReply
	for _, f := range flags {
		f(m)
	}
	return m.ToBytes()
}

func discover(t *testing.T) []byte {
	t.Helper()
	xidCounter++
	var xid dhcpv4.TransactionID
	binary.BigEndian.PutUint32(xid[:], xidCounter)
	m, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithTransactionID(xid))
	if err != nil {
		t.Fatal(err)
	}
	return m.ToBytes()
}

func TestNetns(t *testing.T) {
	tp := newTopology(t)
	peer := openPeer(t, tp.peer)
	srv := startHelper(t, tp.srv, helperConfig{Port: srvPort})
	a0, b0 := srv.index(t, "a0"), srv.index(t, "b0")
	const wait = 5 * time.Second
	// quiet is how long we listen for a packet that must not come; the
	// wanted copy on the other link has already arrived by then.
	const quiet = 300 * time.Millisecond

	t.Run("interfaces", func(t *testing.T) {
		for name, want := range map[string]netip.Prefix{"a0": netip.MustParsePrefix("198.18.7.1/24"), "b0": netip.MustParsePrefix("198.18.8.1/24")} {
			i := srv.ifaces[name]
			if len(i.Prefixes) != 1 || i.Prefixes[0] != want || !i.Ethernet || len(i.HardwareAddr) != 6 {
				t.Errorf("%s = %+v, want one prefix %s on Ethernet", name, i, want)
			}
		}
	})

	t.Run("receive broadcast and unicast", func(t *testing.T) {
		d1, d2, d3 := discover(t), discover(t), discover(t)
		sendFromPeer(t, tp.peer, "a1", netip.AddrPortFrom(limitedBroadcast, srvPort), d1)
		sendFromPeer(t, tp.peer, "b1", netip.AddrPortFrom(limitedBroadcast, srvPort), d2)
		sendFromPeer(t, tp.peer, "", netip.AddrPortFrom(srvA, srvPort), d3)
		got := srv.recv(t, 3, wait)
		if len(got) != 3 {
			t.Fatalf("received %d packets, want 3", len(got))
		}
		// Sent from different threads, the packets may arrive in any order.
		for i, want := range []struct {
			data            []byte
			ifIndex         int
			src, dst, local netip.Addr
		}{
			{d1, a0, peerA, limitedBroadcast, srvA},
			{d2, b0, peerB, limitedBroadcast, srvB},
			{d3, a0, peerA, srvA, srvA},
		} {
			j := slices.IndexFunc(got, func(p Packet) bool { return bytes.Equal(p.Data, want.data) })
			if j < 0 {
				t.Errorf("packet %d not received", i)
				continue
			}
			p := got[j]
			if p.IfIndex != want.ifIndex || p.Src.Addr() != want.src || p.Dst != want.dst || p.Local != want.local {
				t.Errorf("packet %d: ifindex %d src %s dst %s local %s; want ifindex %d src %s dst %s local %s",
					i, p.IfIndex, p.Src, p.Dst, p.Local, want.ifIndex, want.src, want.dst, want.local)
			}
		}
	})

	t.Run("broadcast leaves by the interface asked for", func(t *testing.T) {
		// Linux also picks the interface of a limited broadcast from its
		// source address when no interface is given, so the source is
		// either left to the kernel or taken from the other interface:
		// only IP_PKTINFO's ifindex can steer these.
		for _, c := range []struct {
			ifIndex         int
			src, wantSrc    netip.Addr
			wantOn, notOn   *packet.Conn
			wantName, other string
		}{
			{a0, netip.Addr{}, srvA, peer.capA, peer.capB, "a1", "b1"},
			{b0, netip.Addr{}, srvB, peer.capB, peer.capA, "b1", "a1"},
			{a0, srvB, srvB, peer.capA, peer.capB, "a1", "b1"},
			{b0, srvA, srvA, peer.capB, peer.capA, "b1", "a1"},
		} {
			data := offer(t, mac, netip.MustParseAddr("198.18.7.50"), func(m *dhcpv4.DHCPv4) { m.SetBroadcast() })
			srv.send(t, Reply{Data: data, IfIndex: c.ifIndex, Broadcast: true, HType: 1, CHAddr: mac,
				Yiaddr: netip.MustParseAddr("198.18.7.50"), SrcAddr: c.src})
			f, ok := expectFrame(c.wantOn, data, wait)
			if !ok {
				t.Fatalf("broadcast out of ifindex %d from %v did not reach %s", c.ifIndex, c.src, c.wantName)
			}
			if f.DstMAC.String() != "ff:ff:ff:ff:ff:ff" || f.Dst != limitedBroadcast || f.Src != c.wantSrc ||
				f.SrcPort != srvPort || f.DstPort != srvPort+1 {
				t.Errorf("broadcast frame %s→%s %s:%d→%s:%d, want from %s", f.SrcMAC, f.DstMAC, f.Src, f.SrcPort, f.Dst, f.DstPort, c.wantSrc)
			}
			if _, ok := expectFrame(c.notOn, data, quiet); ok {
				t.Errorf("broadcast for ifindex %d also went out towards %s", c.ifIndex, c.other)
			}
		}
	})

	t.Run("NAK is broadcast despite ciaddr", func(t *testing.T) {
		data := offer(t, mac, netip.Addr{})
		srv.send(t, Reply{Data: data, IfIndex: a0, NAK: true, Ciaddr: peerA, HType: 1, CHAddr: mac, SrcAddr: srvA})
		f, ok := expectFrame(peer.capA, data, wait)
		if !ok {
			t.Fatal("NAK not seen on a1")
		}
		if f.Dst != limitedBroadcast {
			t.Errorf("NAK sent to %s, want %s", f.Dst, limitedBroadcast)
		}
	})

	t.Run("layer-2 unicast to a client without an address", func(t *testing.T) {
		// Neither the MAC nor the IP exists on the peer side: only a
		// frame addressed by hand can carry this.
		chaddr := net.HardwareAddr{0x02, 0x00, 0x5e, 0x77, 0x00, 0x01}
		yiaddr := netip.MustParseAddr("198.18.7.50")
		data := offer(t, chaddr, yiaddr)
		srv.send(t, Reply{Data: data, IfIndex: a0, HType: 1, CHAddr: chaddr, Yiaddr: yiaddr, SrcAddr: srvA})
		f, ok := expectFrame(peer.capA, data, wait)
		if !ok {
			t.Fatal("layer-2 unicast not seen on a1")
		}
		want := decodedFrame{
			DstMAC: chaddr, SrcMAC: srv.ifaces["a0"].HardwareAddr, EtherType: 0x0800,
			Version: 4, IHL: 20, TotalLen: 28 + len(data), Flags: 0b010, TTL: 64, Proto: 17,
			Src: srvA, Dst: yiaddr, SrcPort: srvPort, DstPort: srvPort + 1, UDPLen: 8 + len(data),
			IPSumOK: true, UDPSumOK: true, UDPSum: f.UDPSum, Payload: data,
		}
		if diff := cmpDiff(want, f); diff != "" {
			t.Errorf("frame mismatch (-want +got):\n%s", diff)
		}
		m, err := dhcpv4.FromBytes(f.Payload)
		if err != nil || !m.YourIPAddr.Equal(yiaddr.AsSlice()) || m.ClientHWAddr.String() != chaddr.String() {
			t.Errorf("payload decodes to %v, %v", m, err)
		}
		if _, ok := expectFrame(peer.capB, data, quiet); ok {
			t.Error("layer-2 unicast also went out of b0")
		}
	})

	t.Run("layer-2 unicast accepted by the peer kernel", func(t *testing.T) {
		// Addressed to the peer's real MAC and IP, the frame is delivered
		// to a UDP socket only if the kernel finds both checksums right:
		// a check independent of our own arithmetic.
		data := offer(t, peer.macA, peerA)
		srv.send(t, Reply{Data: data, IfIndex: a0, HType: 1, CHAddr: peer.macA, Yiaddr: peerA, SrcAddr: srvA})
		from, ok := expectUDP(peer.client, data, wait)
		if !ok {
			t.Fatal("the peer's UDP socket did not receive the layer-2 unicast")
		}
		if from != netip.AddrPortFrom(srvA, srvPort) {
			t.Errorf("came from %s, want %s:%d", from, srvA, srvPort)
		}
	})

	t.Run("unicast to ciaddr", func(t *testing.T) {
		data := offer(t, mac, netip.Addr{})
		srv.send(t, Reply{Data: data, IfIndex: a0, Ciaddr: peerA, HType: 1, CHAddr: mac, SrcAddr: srvA})
		from, ok := expectUDP(peer.client, data, wait)
		if !ok {
			t.Fatal("ciaddr unicast not received")
		}
		if from != netip.AddrPortFrom(srvA, srvPort) {
			t.Errorf("came from %s, want %s:%d", from, srvA, srvPort)
		}
	})

	t.Run("relay reply to giaddr", func(t *testing.T) {
		data := offer(t, mac, netip.MustParseAddr("198.18.9.77"))
		// IfIndex names b0 to show that relay replies are routed, not
		// sent out of the arrival interface.
		srv.send(t, Reply{Data: data, IfIndex: b0, Giaddr: giaddr, HType: 1, CHAddr: mac, SrcAddr: srvA})
		from, ok := expectUDP(peer.relay, data, wait)
		if !ok {
			t.Fatal("relay reply not received at giaddr")
		}
		if from != netip.AddrPortFrom(srvA, srvPort) {
			t.Errorf("came from %s, want %s:%d", from, srvA, srvPort)
		}
	})

	t.Run("batch of every kind", func(t *testing.T) {
		before := srv.metrics(t)
		yi := netip.MustParseAddr("198.18.7.51")
		chaddr := net.HardwareAddr{0x02, 0x00, 0x5e, 0x77, 0x00, 0x02}
		relayed, unicast := offer(t, mac, yi), offer(t, mac, netip.Addr{})
		bcast, l2 := offer(t, mac, yi), offer(t, chaddr, yi)
		srv.send(t,
			Reply{Data: relayed, IfIndex: a0, Giaddr: giaddr, HType: 1, CHAddr: mac, SrcAddr: srvA},
			Reply{Data: unicast, IfIndex: a0, Ciaddr: peerA, HType: 1, CHAddr: mac, SrcAddr: srvA},
			Reply{Data: bcast, IfIndex: a0, Broadcast: true, HType: 1, CHAddr: mac, Yiaddr: yi, SrcAddr: srvA},
			Reply{Data: l2, IfIndex: a0, HType: 1, CHAddr: chaddr, Yiaddr: yi, SrcAddr: srvA},
		)
		if _, ok := expectUDP(peer.relay, relayed, wait); !ok {
			t.Error("relay reply of the batch missing")
		}
		if _, ok := expectUDP(peer.client, unicast, wait); !ok {
			t.Error("unicast reply of the batch missing")
		}
		fs, ok := expectFrames(peer.capA, wait, bcast, l2)
		if !ok {
			t.Fatal("broadcast or layer-2 reply of the batch missing")
		}
		if fs[0].Dst != limitedBroadcast || fs[1].DstMAC.String() != chaddr.String() || fs[1].Dst != yi {
			t.Errorf("broadcast went to %s, layer-2 reply to %s at %s", fs[0].Dst, fs[1].Dst, fs[1].DstMAC)
		}
		after := srv.metrics(t)
		for _, k := range []string{"relay", "unicast", "broadcast", "l2"} {
			key := "tandem_dhcpnet_sent_replies_total{kind=" + k + "}"
			if after[key]-before[key] != 1 {
				t.Errorf("%s went from %v to %v, want +1", key, before[key], after[key])
			}
			if e := after["tandem_dhcpnet_send_errors_total{kind="+k+"}"]; e != 0 {
				t.Errorf("%d %s send errors", int(e), k)
			}
		}
	})

	t.Run("interface created after start is served", func(t *testing.T) {
		tp.link(t, "c", "198.18.10.1/24", "198.18.10.2/24")
		// A reload is allowed once per second after the last one; keep
		// offering packets until one is taken, within a bound.
		var got []Packet
		for try := 0; try < 10 && len(got) == 0; try++ {
			sendFromPeer(t, tp.peer, "c1", netip.AddrPortFrom(limitedBroadcast, srvPort), discover(t))
			got = srv.recv(t, 1, 500*time.Millisecond)
		}
		if len(got) != 1 {
			t.Fatal("no packet accepted from the new interface c0")
		}
		r := srv.do(t, helperCmd{Op: "interfaces"})
		srv.setInterfaces(r.Interfaces)
		c0, ok := srv.ifaces["c0"]
		if !ok || got[0].IfIndex != c0.Index || len(c0.Prefixes) != 1 || c0.Prefixes[0] != netip.MustParsePrefix("198.18.10.1/24") {
			t.Errorf("packet from ifindex %d; table has c0 = %+v", got[0].IfIndex, c0)
		}
		if m := srv.metrics(t); m["tandem_dhcpnet_interface_refreshes_total"] < 1 {
			t.Error("no interface refresh counted")
		}
	})

	t.Run("only the named interfaces are served", func(t *testing.T) {
		f := startHelper(t, tp.srv, helperConfig{Port: filteredPort, Interfaces: []string{"a0"}})
		onB, onA := discover(t), discover(t)
		sendFromPeer(t, tp.peer, "b1", netip.AddrPortFrom(limitedBroadcast, filteredPort), onB)
		sendFromPeer(t, tp.peer, "a1", netip.AddrPortFrom(limitedBroadcast, filteredPort), onA)
		sendFromPeer(t, tp.peer, "a1", netip.AddrPortFrom(limitedBroadcast, filteredPort), make([]byte, 100))
		got := f.recv(t, 2, time.Second)
		if len(got) != 1 || !bytes.Equal(got[0].Data, onA) || got[0].IfIndex != a0 {
			t.Fatalf("filtered helper received %d packets (%+v), want just the one from a1", len(got), got)
		}
		m := f.metrics(t)
		for k, want := range map[string]float64{
			"tandem_dhcpnet_received_packets_total":                        3,
			"tandem_dhcpnet_dropped_packets_total{reason=wrong_interface}": 1,
			"tandem_dhcpnet_dropped_packets_total{reason=short}":           1,
		} {
			if m[k] != want {
				t.Errorf("%s = %v, want %v", k, m[k], want)
			}
		}
	})
}
