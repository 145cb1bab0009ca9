package dhcpnet

import (
	"fmt"
	"net"
	"net/netip"
)

// DefaultServerPort is the BOOTP/DHCP server port (RFC 2131 §4.1); clients
// listen on the next port up.
const DefaultServerPort = 67

// htypeEthernet is the ARP hardware type of Ethernet (RFC 1700), the only
// link type for which we know how to build a frame.
const htypeEthernet = 1

// Reply is an encoded DHCP reply plus the header fields that decide where it
// goes. The fields repeat what is inside Data so that addressing needs no
// decoding; ReplyFromMessage fills them consistently.
type Reply struct {
	// Data is the encoded BOOTP/DHCP message, sent as the UDP payload.
	Data []byte
	// IfIndex is the interface the request came in on; broadcasts and
	// layer-2 unicasts leave through it.
	IfIndex int
	// Giaddr, Ciaddr and Yiaddr are the reply's giaddr, ciaddr and yiaddr;
	// an invalid or unspecified address means 0.0.0.0.
	Giaddr, Ciaddr, Yiaddr netip.Addr
	// Broadcast is the BROADCAST bit of the flags field (RFC 2131 §2).
	Broadcast bool
	// NAK marks a DHCPNAK, which is broadcast when there is no relay.
	NAK bool
	// CHAddr is the client hardware address (hlen bytes of chaddr).
	CHAddr net.HardwareAddr
	// HType is the hardware type; 1 is Ethernet.
	HType uint8
	// SrcAddr is the server address to send from, normally the server
	// identifier. Invalid lets the kernel choose.
	SrcAddr netip.Addr
}

// Kind says how a reply is delivered.
type Kind uint8

const (
	// KindRelay: unicast UDP to the relay agent at giaddr, server port.
	KindRelay Kind = iota + 1
	// KindUnicast: unicast UDP to a client that has an address (ciaddr).
	KindUnicast
	// KindBroadcast: UDP to 255.255.255.255 out of the request's interface.
	KindBroadcast
	// KindL2: an Ethernet frame to chaddr carrying an IP packet to yiaddr,
	// for a client that cannot answer ARP yet.
	KindL2

	numKinds = int(KindL2) + 1
)

var kindNames = [numKinds]string{
	KindRelay:     "relay",
	KindUnicast:   "unicast",
	KindBroadcast: "broadcast",
	KindL2:        "l2",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind-%d", uint8(k))
}

// Destination is where Route sends a reply.
type Destination struct {
	Kind Kind
	// Addr is the IP destination and UDP port.
	Addr netip.AddrPort
	// HardwareAddr is the Ethernet destination; only for KindL2.
	HardwareAddr net.HardwareAddr
	// IfIndex is the interface to leave by for KindBroadcast and KindL2;
	// 0 (routing decides) for the unicast kinds.
	IfIndex int
}

// limitedBroadcast is 255.255.255.255, the address RFC 2131 §4.1 broadcasts to.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// set reports whether a is a real address, treating 0.0.0.0 like "absent".
func set(a netip.Addr) bool { return a.IsValid() && !a.IsUnspecified() }

// Route decides where a reply goes, following RFC 2131 §4.1 ("If the
// 'giaddr' field in a DHCP message from a client is non-zero ..."):
//
//  1. giaddr ≠ 0: to the relay agent at giaddr, server port. NAKs too: the
//     relay broadcasts them on the client's link (§4.3.2).
//  2. DHCPNAK (giaddr = 0): broadcast, whatever ciaddr and the flags say.
//  3. ciaddr ≠ 0: unicast to ciaddr, client port.
//  4. BROADCAST flag set: broadcast to 255.255.255.255, client port.
//  5. otherwise: unicast to yiaddr at chaddr, without ARP (the client has
//     no address to answer it with).
//
// Case 5 falls back to a broadcast where a layer-2 unicast cannot be built:
// a hardware type other than Ethernet, a chaddr that is not 6 bytes long,
// or no yiaddr. The client port is serverPort+1, as 68 is to 67.
func Route(r Reply, serverPort uint16) Destination {
	clientPort := serverPort + 1
	broadcast := Destination{
		Kind:    KindBroadcast,
		Addr:    netip.AddrPortFrom(limitedBroadcast, clientPort),
		IfIndex: r.IfIndex,
	}
	switch {
	case set(r.Giaddr):
		return Destination{Kind: KindRelay, Addr: netip.AddrPortFrom(r.Giaddr.Unmap(), serverPort)}
	case r.NAK:
		return broadcast
	case set(r.Ciaddr):
		return Destination{Kind: KindUnicast, Addr: netip.AddrPortFrom(r.Ciaddr.Unmap(), clientPort)}
	case r.Broadcast:
		return broadcast
	case r.HType != htypeEthernet || len(r.CHAddr) != 6 || !set(r.Yiaddr):
		return broadcast
	default:
		return Destination{
			Kind:         KindL2,
			Addr:         netip.AddrPortFrom(r.Yiaddr.Unmap(), clientPort),
			HardwareAddr: r.CHAddr,
			IfIndex:      r.IfIndex,
		}
	}
}
