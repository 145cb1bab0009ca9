package dhcpnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// sendState is the per-call scratch of SendBatch, pooled.
type sendState struct {
	msgs  []ipv4.Message
	oob   []byte
	addrs []net.UDPAddr
	ips   []byte
	kinds []Kind
	frame []byte
}

func (c *Conn) getSendState(n int) *sendState {
	st, _ := c.sendStates.Get().(*sendState)
	if st == nil {
		st = new(sendState)
	}
	if cap(st.msgs) < n {
		st.msgs = make([]ipv4.Message, n)
		st.oob = make([]byte, n*pktinfoSpace)
		st.addrs = make([]net.UDPAddr, n)
		st.ips = make([]byte, n*4)
		st.kinds = make([]Kind, n)
		for i := range st.msgs {
			st.msgs[i].Buffers = make([][]byte, 1)
			st.addrs[i].IP = st.ips[i*4 : i*4+4]
		}
	}
	st.msgs = st.msgs[:n]
	return st
}

// Send delivers one reply; see SendBatch.
func (c *Conn) Send(r Reply) error {
	_, err := c.SendBatch([]Reply{r})
	return err
}

// SendBatch delivers replies, each addressed by Route: the UDP ones
// (relay, unicast, broadcast) in as few sendmmsg(2) calls as possible, the
// layer-2 ones as Ethernet frames on the interface's AF_PACKET socket. Every
// reply is attempted; it returns how many were sent and the first error.
//
// Broadcasts leave through Reply.IfIndex, chosen with IP_PKTINFO. Routed
// replies take the kernel's route, from SrcAddr when it is one of our
// addresses (otherwise the kernel picks a source).
//
// A layer-2 unicast that cannot be made (interface not Ethernet, no
// AF_PACKET permission, a write error) is counted as an l2 send error and
// the reply is broadcast instead: "If unicasting is not possible, the
// message MAY be sent as an IP broadcast" (RFC 2131 §4.1).
func (c *Conn) SendBatch(rs []Reply) (sent int, err error) {
	st := c.getSendState(len(rs))
	defer c.sendStates.Put(st)
	var failed int
	fail := func(k Kind, dst netip.AddrPort, e error) {
		c.metrics.errorsBy[k].Inc()
		failed++
		if err == nil {
			err = fmt.Errorf("dhcpnet: send %s reply to %s: %w", k, dst, e)
		}
	}

	t := c.table.Load()
	queued := 0
	for i := range rs {
		r := &rs[i]
		d := Route(*r, c.port)
		if len(r.Data) == 0 {
			fail(d.Kind, d.Addr, errors.New("empty reply"))
			continue
		}
		if d.Kind == KindL2 {
			l2err := c.sendL2(r, d, st)
			if l2err == nil {
				c.metrics.sentBy[KindL2].Inc()
				sent++
				continue
			}
			c.metrics.errorsBy[KindL2].Inc()
			c.log.Debug("dhcpnet: layer-2 unicast failed, broadcasting", "chaddr", d.HardwareAddr, "yiaddr", d.Addr.Addr(), "err", l2err)
			d = Destination{Kind: KindBroadcast, Addr: netip.AddrPortFrom(limitedBroadcast, d.Addr.Port()), IfIndex: d.IfIndex}
		}
		if d.Kind == KindBroadcast && d.IfIndex <= 0 {
			// Without an interface the kernel would pick the default
			// route's: the client is not there.
			fail(d.Kind, d.Addr, errors.New("broadcast reply without an interface"))
			continue
		}

		src := r.SrcAddr
		if !t.local[src] {
			src = netip.Addr{}
		}
		m := &st.msgs[queued]
		m.Buffers[0] = r.Data
		ua := &st.addrs[queued]
		a4 := d.Addr.Addr().As4()
		copy(ua.IP, a4[:])
		ua.Port = int(d.Addr.Port())
		m.Addr = ua
		m.OOB = putPktinfo(st.oob[queued*pktinfoSpace:], d.IfIndex, src)
		st.kinds[queued] = d.Kind
		queued++
	}

	for off := 0; off < queued; {
		n, werr := c.pc.WriteBatch(st.msgs[off:queued], 0)
		n = max(n, 0)
		for _, k := range st.kinds[off : off+n] {
			c.metrics.sentBy[k].Inc()
		}
		sent += n
		off += n
		if n == 0 {
			// sendmmsg(2) reports an error only when the first message
			// fails; skip that one and go on with the rest.
			if werr == nil {
				werr = io.ErrShortWrite
			}
			ua := st.addrs[off]
			fail(st.kinds[off], ua.AddrPort(), werr)
			off++
		}
	}
	for i := range st.msgs[:queued] {
		// Do not let the pool pin the caller's buffers.
		st.msgs[i].Buffers[0] = nil
	}
	if failed > 1 {
		err = fmt.Errorf("%w (and %d more failed)", err, failed-1)
	}
	return sent, err
}

// sendL2 sends r to d as a hand-built Ethernet frame (RFC 2131 §4.1: "the
// server unicasts DHCPOFFER and DHCPACK messages to the client's hardware
// address and 'yiaddr' address").
func (c *Conn) sendL2(r *Reply, d Destination, st *sendState) error {
	ifi, ok := c.Interface(d.IfIndex)
	if !ok {
		c.refresh()
		if ifi, ok = c.Interface(d.IfIndex); !ok {
			return fmt.Errorf("unknown interface index %d", d.IfIndex)
		}
	}
	if !ifi.Ethernet || len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("interface %s is not Ethernet", ifi.Name)
	}
	src := r.SrcAddr
	if !src.Is4() {
		src = ifi.AddrFor(d.Addr.Addr())
	}
	if !src.Is4() {
		return fmt.Errorf("interface %s has no IPv4 address to send from", ifi.Name)
	}
	frame, err := appendFrame(st.frame[:0], frameSpec{
		DstMAC:  d.HardwareAddr,
		SrcMAC:  ifi.HardwareAddr,
		Src:     src,
		Dst:     d.Addr.Addr(),
		SrcPort: c.port,
		DstPort: d.Addr.Port(),
	}, r.Data)
	st.frame = frame
	if err != nil {
		return err
	}
	if ifi.MTU > 0 && len(frame)-ethHeaderLen > ifi.MTU {
		return fmt.Errorf("%d-byte packet exceeds the MTU %d of %s", len(frame)-ethHeaderLen, ifi.MTU, ifi.Name)
	}
	pc, err := c.l2Conn(&ifi)
	if err != nil {
		return err
	}
	if _, err := pc.WriteTo(frame, &packet.Addr{HardwareAddr: d.HardwareAddr}); err != nil {
		if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) {
			c.dropL2(ifi.Index, pc)
		}
		return err
	}
	return nil
}

// dropAll is a BPF program accepting no packet: the AF_PACKET sockets only
// send, and must not queue copies of the interface's traffic.
var dropAll = mustAssemble(bpf.RetConstant{Val: 0})

func mustAssemble(insns ...bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(insns)
	if err != nil {
		panic(err)
	}
	return raw
}

// l2Conn returns the interface's AF_PACKET socket, opening it on first use.
// Opening needs CAP_NET_RAW, and happens in the calling thread's network
// namespace, which must be the Conn's.
func (c *Conn) l2Conn(ifi *Interface) (*packet.Conn, error) {
	c.l2mu.Lock()
	defer c.l2mu.Unlock()
	if c.closed.Load() {
		return nil, net.ErrClosed
	}
	if pc := c.l2[ifi.Index]; pc != nil {
		return pc, nil
	}
	pc, err := packet.Listen(&net.Interface{
		Index:        ifi.Index,
		Name:         ifi.Name,
		HardwareAddr: ifi.HardwareAddr,
		MTU:          ifi.MTU,
	}, packet.Raw, unix.ETH_P_IP, &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, err
	}
	c.l2[ifi.Index] = pc
	return pc, nil
}

func (c *Conn) dropL2(ifIndex int, pc *packet.Conn) {
	c.l2mu.Lock()
	defer c.l2mu.Unlock()
	if c.l2[ifIndex] == pc {
		delete(c.l2, ifIndex)
		pc.Close()
	}
}

// forgetL2 closes the AF_PACKET sockets of interfaces that vanished from t;
// an index can be reused by a new interface.
func (c *Conn) forgetL2(t *ifaceTable) {
	c.l2mu.Lock()
	defer c.l2mu.Unlock()
	for idx, pc := range c.l2 {
		if _, ok := t.byIndex[idx]; !ok {
			pc.Close()
			delete(c.l2, idx)
		}
	}
}
