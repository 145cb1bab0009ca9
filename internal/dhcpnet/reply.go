package dhcpnet

import (
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// ReplyFromMessage encodes m and copies into the Reply the header fields
// Route needs, so that they cannot disagree with the bytes sent. ifIndex is
// the interface the request arrived on; the server identifier option, when
// present, becomes the source address.
func ReplyFromMessage(m *dhcpv4.DHCPv4, ifIndex int) Reply {
	r := Reply{
		Data:      m.ToBytes(),
		IfIndex:   ifIndex,
		Giaddr:    ipv4Of(m.GatewayIPAddr),
		Ciaddr:    ipv4Of(m.ClientIPAddr),
		Yiaddr:    ipv4Of(m.YourIPAddr),
		Broadcast: m.IsBroadcast(),
		NAK:       m.MessageType() == dhcpv4.MessageTypeNak,
		CHAddr:    m.ClientHWAddr,
		HType:     uint8(m.HWType),
		SrcAddr:   ipv4Of(m.ServerIdentifier()),
	}
	return r
}

// ipv4Of converts a 4- or 16-byte net.IP holding an IPv4 address; anything
// else is "no address".
func ipv4Of(ip net.IP) netip.Addr {
	v4 := ip.To4()
	if v4 == nil {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(v4))
}
