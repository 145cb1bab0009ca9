package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// sentReply is one DHCP reply seen on the wire.
type sentReply struct {
	At        time.Time
	Type      dhcpv4.MessageType
	CHAddr    string // net.HardwareAddr.String()
	YIAddr    netip.Addr
	LeaseTime time.Duration // option 51; 0 if absent
}

// replyCapture records the DHCP replies a server sends to a relay agent:
// an AF_PACKET socket on the relay host's interface sees every frame that
// reaches it, whoever owns UDP port 67 there (perfdhcp does). What it
// records has left the server: the evidence a durability check needs.
type replyCapture struct {
	fd     int
	server netip.Addr

	mu       sync.Mutex
	replies  []sentReply
	undecode int // server frames to port 67 that were not DHCP

	stop chan struct{}
	done chan struct{}
}

// startReplyCapture opens the capture on h's interface for replies from
// server. Call close (the test's Cleanup does too) to stop it.
func startReplyCapture(h *lab.Host, server netip.Addr) (*replyCapture, error) {
	c := &replyCapture{fd: -1, server: server, stop: make(chan struct{}), done: make(chan struct{})}
	proto := htons(unix.ETH_P_IP)
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Iface)
		if err != nil {
			return err
		}
		// SOCK_DGRAM: the kernel strips the link-layer header, so each read
		// starts with the IPv4 header.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		c.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("binding packet socket to %s: %w", h.Iface, err)
		}
		// Room for seconds of load, so that a slow reader loses nothing; a
		// wake-up every 50 ms lets close stop the reader.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20); err != nil {
			return fmt.Errorf("SO_RCVBUFFORCE: %w", err)
		}
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		return nil, err
	}
	go c.read()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *replyCapture) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		at := time.Now()
		payload, ok := c.dhcpFromServer(buf[:n])
		if !ok {
			continue
		}
		msg, err := dhcpv4.FromBytes(payload)
		c.mu.Lock()
		if err != nil {
			c.undecode++
		} else {
			r := sentReply{At: at, Type: msg.MessageType(), CHAddr: msg.ClientHWAddr.String()}
			r.YIAddr, _ = netip.AddrFromSlice(msg.YourIPAddr.To4())
			if lt := msg.Options.Get(dhcpv4.OptionIPAddressLeaseTime); len(lt) == 4 {
				r.LeaseTime = time.Duration(binary.BigEndian.Uint32(lt)) * time.Second
			}
			c.replies = append(c.replies, r)
		}
		c.mu.Unlock()
	}
}

// dhcpFromServer returns the UDP payload of an IPv4 packet from the
// server's port 67 to port 67 (a reply to a relay agent, RFC 2131 §4.1).
func (c *replyCapture) dhcpFromServer(p []byte) ([]byte, bool) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return nil, false
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	if ihl < 20 || total < ihl+8 || total > len(p) || p[9] != unix.IPPROTO_UDP {
		return nil, false
	}
	// Fragments never carry a whole DHCP reply here; skip them.
	if binary.BigEndian.Uint16(p[6:8])&0x3fff != 0 {
		return nil, false
	}
	if src := netip.AddrFrom4([4]byte(p[12:16])); src != c.server {
		return nil, false
	}
	udp := p[ihl:total]
	if binary.BigEndian.Uint16(udp[0:2]) != 67 || binary.BigEndian.Uint16(udp[2:4]) != 67 {
		return nil, false
	}
	return udp[8:], true
}

// Len is the number of replies recorded so far.
func (c *replyCapture) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.replies)
}

// Replies returns the replies recorded from index from on, of the given
// type (any type if none).
func (c *replyCapture) Replies(from int, types ...dhcpv4.MessageType) []sentReply {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []sentReply
	for _, r := range c.replies[from:] {
		if len(types) == 0 || containsType(types, r.Type) {
			out = append(out, r)
		}
	}
	return out
}

func containsType(ts []dhcpv4.MessageType, t dhcpv4.MessageType) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// Drops is how many frames the kernel dropped because the capture's
// buffer was full since the last call: replies the capture missed.
func (c *replyCapture) Drops() (uint32, error) {
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, err
	}
	return st.Drops, nil
}

// Undecodable counts frames from the server to port 67 that were not DHCP.
func (c *replyCapture) Undecodable() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.undecode
}

// close stops the reader and closes the socket; later calls do nothing.
func (c *replyCapture) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	<-c.done
	unix.Close(c.fd)
}
