// Package dhcpnet moves DHCPv4 packets between the network and the server:
// one UDP socket on the server port receives requests from every served
// interface, and replies leave addressed as RFC 2131 §4.1 requires,
// including the layer-2 unicast to a client that has no address yet. It
// decides nothing about DHCP itself. Linux only (IP_PKTINFO, AF_PACKET).
package dhcpnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

const (
	// bootpFixedLen is the size of the fixed BOOTP header (RFC 2131 §2,
	// figure 1: op through file). Anything shorter is not a DHCP message.
	bootpFixedLen = 236

	defaultMaxPacketSize = 4096
	defaultReadBuffer    = 4 << 20
	// oobSize has room for IP_PKTINFO and a spare control message.
	oobSize = 128
	// minRefreshInterval bounds how often packets from unknown interfaces
	// may make us reload the interface table, so a flood cannot turn into a
	// netlink storm.
	minRefreshInterval = time.Second
)

// Config configures Listen. The zero value listens on port 67 on every
// broadcast-capable interface with an IPv4 address.
type Config struct {
	// Port is the server port; 0 means 67. Replies to clients go to Port+1.
	Port uint16
	// Interfaces, when not empty, restricts service to these interface
	// names (loopback only if named), like the interface arguments of ISC
	// dhcpd. Packets arriving elsewhere are dropped and counted.
	Interfaces []string
	// MaxPacketSize is the receive buffer per packet; larger datagrams are
	// dropped as truncated. 0 means 4096.
	MaxPacketSize int
	// ReadBuffer is the SO_RCVBUF size asked for, to absorb bursts; 0 means
	// 4 MiB. The kernel caps it at net.core.rmem_max.
	ReadBuffer int
	// Metrics receives the counters; nil makes a private, unregistered set.
	Metrics *Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Packet is one received datagram.
type Packet struct {
	// Data is the UDP payload. ReadBatch reuses its backing array on the
	// next call; to keep a packet, copy it or set Data to nil in the slice
	// (ReadBatch then allocates a fresh buffer for that slot).
	Data []byte
	// IfIndex is the interface the packet arrived on.
	IfIndex int
	// Src is the sender's address and port (a relay, or a client that
	// already has an address, or 0.0.0.0:68).
	Src netip.AddrPort
	// Dst is the destination address in the IP header (255.255.255.255 for
	// a broadcast, a local address for a unicast).
	Dst netip.Addr
	// Local is the local address the kernel associates with the packet
	// (ipi_spec_dst): for a broadcast, an address of the arrival interface.
	Local netip.Addr
}

// Conn is the DHCP server's socket set: one UDP socket on 0.0.0.0:Port for
// receiving and for routed and broadcast replies, plus an AF_PACKET socket
// per interface, opened on first use, for layer-2 unicast replies. Its
// methods may be called from several goroutines at once.
type Conn struct {
	udp     *net.UDPConn
	pc      *ipv4.PacketConn
	port    uint16
	bufSize int
	sel     selector
	metrics *Metrics
	log     *slog.Logger

	nl        *netlink.Handle
	table     atomic.Pointer[ifaceTable]
	refreshMu sync.Mutex
	lastLoad  time.Time

	l2mu sync.Mutex
	l2   map[int]*packet.Conn

	readStates sync.Pool // *readState
	sendStates sync.Pool // *sendState
	closed     atomic.Bool
}

// Listen opens the server socket on 0.0.0.0:cfg.Port with SO_REUSEADDR,
// SO_BROADCAST and IP_PKTINFO, and loads the interface table. It fails if a
// named interface does not exist: a typo should stop the daemon, not leave
// a network unserved.
func Listen(cfg Config) (*Conn, error) {
	port := cfg.Port
	if port == 0 {
		port = DefaultServerPort
	}
	if port == 0xffff {
		return nil, errors.New("dhcpnet: port 65535 leaves no client port")
	}
	c := &Conn{
		port:    port,
		bufSize: cfg.MaxPacketSize,
		metrics: cfg.Metrics,
		log:     cfg.Logger,
		l2:      make(map[int]*packet.Conn),
	}
	if c.bufSize <= 0 {
		c.bufSize = defaultMaxPacketSize
	}
	if c.metrics == nil {
		c.metrics = NewMetrics()
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if len(cfg.Interfaces) > 0 {
		c.sel.names = make(map[string]bool, len(cfg.Interfaces))
		for _, n := range cfg.Interfaces {
			c.sel.names[n] = true
		}
	}

	// The netlink handle and the sockets are created now, on this thread,
	// so they all belong to the caller's network namespace.
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("dhcpnet: netlink: %w", err)
	}
	c.nl = nl
	t, err := loadInterfaces(nl, c.sel)
	if err != nil {
		nl.Close()
		return nil, err
	}
	c.table.Store(t)
	c.lastLoad = time.Now()
	if !c.sel.auto() {
		var missing []string
		for _, n := range cfg.Interfaces {
			if !slices.ContainsFunc(c.Interfaces(), func(i Interface) bool { return i.Name == n }) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			nl.Close()
			return nil, fmt.Errorf("dhcpnet: no such interface: %v", missing)
		}
	}
	if len(t.serve) == 0 {
		c.log.Warn("dhcpnet: no interface to serve yet (none broadcast-capable with an IPv4 address)")
	}

	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			for _, o := range [...]struct{ level, opt int }{
				{unix.SOL_SOCKET, unix.SO_REUSEADDR},
				{unix.SOL_SOCKET, unix.SO_BROADCAST},
				{unix.IPPROTO_IP, unix.IP_PKTINFO},
			} {
				if serr = unix.SetsockoptInt(int(fd), o.level, o.opt, 1); serr != nil {
					return
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), port).String())
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("dhcpnet: listen: %w", err)
	}
	c.udp = pc.(*net.UDPConn)
	rb := cfg.ReadBuffer
	if rb <= 0 {
		rb = defaultReadBuffer
	}
	if err := c.udp.SetReadBuffer(rb); err != nil {
		c.log.Warn("dhcpnet: cannot set receive buffer", "bytes", rb, "err", err)
	}
	c.pc = ipv4.NewPacketConn(c.udp)
	c.log.Info("dhcpnet: listening", "port", port, "interfaces", c.servedNames())
	return c, nil
}

func (c *Conn) servedNames() []string {
	var names []string
	for _, i := range c.Interfaces() {
		if c.table.Load().serve[i.Index] {
			names = append(names, i.Name)
		}
	}
	slices.Sort(names)
	return names
}

// Port is the server port the Conn listens on.
func (c *Conn) Port() uint16 { return c.port }

// LocalAddr is the UDP socket's address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.udp.LocalAddr().(*net.UDPAddr).AddrPort() }

// Metrics returns the counters the Conn updates.
func (c *Conn) Metrics() *Metrics { return c.metrics }

// Interface looks up an interface by index, as of the last table load.
// The returned value shares slices with the table; do not modify them.
func (c *Conn) Interface(ifIndex int) (Interface, bool) {
	i, ok := c.table.Load().byIndex[ifIndex]
	if !ok {
		return Interface{}, false
	}
	return *i, true
}

// Interfaces lists every interface of the namespace, by index.
func (c *Conn) Interfaces() []Interface {
	t := c.table.Load()
	out := make([]Interface, 0, len(t.byIndex))
	for _, i := range t.byIndex {
		out = append(out, *i)
	}
	slices.SortFunc(out, func(a, b Interface) int { return a.Index - b.Index })
	return out
}

// Serves reports whether packets arriving on ifIndex are accepted.
func (c *Conn) Serves(ifIndex int) bool { return c.table.Load().serve[ifIndex] }

// accept decides whether to take a packet from ifIndex. An index missing
// from the table (an interface created since the last load), or in
// automatic mode one not served yet (it may have gained an address),
// triggers a reload, at most once per minRefreshInterval.
func (c *Conn) accept(ifIndex int) bool {
	t := c.table.Load()
	if t.serve[ifIndex] {
		return true
	}
	if _, known := t.byIndex[ifIndex]; known && !c.sel.auto() {
		return false
	}
	return c.refresh().serve[ifIndex]
}

func (c *Conn) refresh() *ifaceTable {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	if time.Since(c.lastLoad) < minRefreshInterval {
		return c.table.Load()
	}
	c.lastLoad = time.Now()
	c.metrics.ifaceRefresh.Inc()
	t, err := loadInterfaces(c.nl, c.sel)
	if err != nil {
		c.log.Warn("dhcpnet: reloading interfaces", "err", err)
		return c.table.Load()
	}
	c.table.Store(t)
	c.forgetL2(t)
	return t
}

// readState holds the per-call scratch of ReadBatch, pooled so that
// several goroutines may read at once without allocating.
type readState struct {
	msgs []ipv4.Message
	oob  []byte
}

func (c *Conn) getReadState(n int) *readState {
	st, _ := c.readStates.Get().(*readState)
	if st == nil {
		st = new(readState)
	}
	if cap(st.msgs) < n {
		st.msgs = make([]ipv4.Message, n)
		st.oob = make([]byte, n*oobSize)
		for i := range st.msgs {
			st.msgs[i].Buffers = make([][]byte, 1)
		}
	}
	st.msgs = st.msgs[:n]
	return st
}

// ReadBatch waits for packets and fills pkts with up to len(pkts) of them
// in one recvmmsg(2), returning how many. Packets from interfaces not
// served, shorter than a BOOTP header or truncated are dropped and counted;
// ReadBatch does not return with zero packets and no error.
//
// The buffers behind pkts[i].Data are reused: a slot whose Data has at
// least MaxPacketSize capacity is read into again, others get a new buffer.
// A caller that reuses the same pkts slice therefore reads without
// allocating, and keeps a packet past the next call only by copying it or
// by taking its Data and setting the slot to nil.
func (c *Conn) ReadBatch(pkts []Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	st := c.getReadState(len(pkts))
	defer c.readStates.Put(st)
	for i := range pkts {
		buf := pkts[i].Data[:cap(pkts[i].Data)]
		if len(buf) < c.bufSize {
			buf = make([]byte, c.bufSize)
		}
		pkts[i].Data = buf
		st.msgs[i].Buffers[0] = buf
		st.msgs[i].OOB = st.oob[i*oobSize : (i+1)*oobSize]
	}
	for {
		n, err := c.pc.ReadBatch(st.msgs, 0)
		if n < 0 {
			n = 0
		}
		out := 0
		for i := 0; i < n; i++ {
			if c.admit(&st.msgs[i], &pkts[i]) {
				// Compact accepted packets to the front, swapping buffers so
				// none is lost: slot out holds a dropped packet or is i.
				pkts[out], pkts[i] = pkts[i], pkts[out]
				out++
			}
		}
		if out > 0 || err != nil {
			// Give the unreturned slots back their full buffers.
			for i := out; i < len(pkts); i++ {
				pkts[i].Data = pkts[i].Data[:cap(pkts[i].Data)]
			}
			return out, err
		}
	}
}

// admit checks one received message and, if it is taken, fills p with it.
func (c *Conn) admit(m *ipv4.Message, p *Packet) bool {
	c.metrics.received.Inc()
	if m.Flags&unix.MSG_TRUNC != 0 {
		c.metrics.dropTruncated.Inc()
		return false
	}
	if m.N < bootpFixedLen {
		c.metrics.dropShort.Inc()
		return false
	}
	info, ok := parsePktinfo(m.OOB[:m.NN])
	if !ok || !c.accept(info.IfIndex) {
		c.metrics.dropWrongIf.Inc()
		return false
	}
	var src netip.AddrPort
	if ua, ok := m.Addr.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	*p = Packet{
		Data:    p.Data[:m.N],
		IfIndex: info.IfIndex,
		Src:     src,
		Dst:     info.Dst,
		Local:   info.Local,
	}
	return true
}

// SetReadDeadline makes blocked and future ReadBatch calls return a timeout
// error after t; the zero time means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.udp.SetReadDeadline(t) }

// Run reads batches of up to batch packets and hands each to fn until ctx
// is done (it then returns ctx's error) or the Conn is closed (net.ErrClosed).
// fn runs on Run's goroutine and must not keep the packets' Data past its
// return without copying it. Run uses the read deadline to stop, so only
// one Run per Conn should be given a cancellable ctx.
func (c *Conn) Run(ctx context.Context, batch int, fn func([]Packet)) error {
	if batch <= 0 {
		batch = 64
	}
	stop := context.AfterFunc(ctx, func() { _ = c.udp.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	pkts := make([]Packet, batch)
	var backoff time.Duration
	for {
		n, err := c.ReadBatch(pkts)
		if n > 0 {
			fn(pkts[:n])
		}
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		// Errors on an unconnected UDP socket are transient (ENOMEM,
		// a pending ICMP error); keep serving but do not spin.
		backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
		c.log.Warn("dhcpnet: read", "err", err)
		time.Sleep(backoff)
	}
}

// Close closes every socket. Blocked reads return net.ErrClosed.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return net.ErrClosed
	}
	err := c.udp.Close()
	c.l2mu.Lock()
	for idx, p := range c.l2 {
		p.Close()
		delete(c.l2, idx)
	}
	c.l2mu.Unlock()
	c.refreshMu.Lock()
	c.nl.Close()
	c.refreshMu.Unlock()
	return err
}
