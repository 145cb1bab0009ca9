package dhcpnet

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var (
	mac      = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}
	relay    = netip.MustParseAddr("198.18.9.1")
	clientIP = netip.MustParseAddr("198.18.7.20")
	offered  = netip.MustParseAddr("198.18.7.50")
	zero     = netip.IPv4Unspecified()
	bcast    = netip.MustParseAddr("255.255.255.255")
)

func TestRoute(t *testing.T) {
	const ifi = 7
	base := Reply{Data: []byte{1}, IfIndex: ifi, HType: 1, CHAddr: mac, Yiaddr: offered}
	with := func(f func(*Reply)) Reply { r := base; f(&r); return r }
	ap := netip.AddrPortFrom
	tests := []struct {
		name string
		r    Reply
		port uint16
		want Destination
	}{
		// RFC 2131 §4.1: "If the 'giaddr' field ... is non-zero, the server
		// sends any return messages to the 'DHCP server' port on the BOOTP
		// relay agent whose address appears in 'giaddr'."
		{"giaddr", with(func(r *Reply) { r.Giaddr = relay }), 67,
			Destination{Kind: KindRelay, Addr: ap(relay, 67)}},
		{"giaddr wins over ciaddr and broadcast", with(func(r *Reply) { r.Giaddr = relay; r.Ciaddr = clientIP; r.Broadcast = true }), 67,
			Destination{Kind: KindRelay, Addr: ap(relay, 67)}},
		{"NAK through a relay goes to the relay", with(func(r *Reply) { r.Giaddr = relay; r.NAK = true }), 67,
			Destination{Kind: KindRelay, Addr: ap(relay, 67)}},
		{"relay on a test port", with(func(r *Reply) { r.Giaddr = relay }), 10067,
			Destination{Kind: KindRelay, Addr: ap(relay, 10067)}},
		// "In all cases, when 'giaddr' is zero, the server broadcasts any
		// DHCPNAK messages to 0xffffffff."
		{"NAK without relay is broadcast even with ciaddr", with(func(r *Reply) { r.NAK = true; r.Ciaddr = clientIP; r.Giaddr = zero }), 67,
			Destination{Kind: KindBroadcast, Addr: ap(bcast, 68), IfIndex: ifi}},
		{"NAK without relay or flag", with(func(r *Reply) { r.NAK = true; r.Yiaddr = netip.Addr{} }), 67,
			Destination{Kind: KindBroadcast, Addr: ap(bcast, 68), IfIndex: ifi}},
		// "If the 'giaddr' field is zero and the 'ciaddr' field is nonzero,
		// then the server unicasts DHCPOFFER and DHCPACK messages to the
		// address in 'ciaddr'."
		{"ciaddr", with(func(r *Reply) { r.Ciaddr = clientIP }), 67,
			Destination{Kind: KindUnicast, Addr: ap(clientIP, 68)}},
		{"ciaddr wins over broadcast bit", with(func(r *Reply) { r.Ciaddr = clientIP; r.Broadcast = true }), 67,
			Destination{Kind: KindUnicast, Addr: ap(clientIP, 68)}},
		{"ciaddr on a test port", with(func(r *Reply) { r.Ciaddr = clientIP }), 10067,
			Destination{Kind: KindUnicast, Addr: ap(clientIP, 10068)}},
		// "If 'giaddr' is zero and 'ciaddr' is zero, and the broadcast bit
		// is set, then the server broadcasts DHCPOFFER and DHCPACK messages
		// to 0xffffffff."
		{"broadcast bit", with(func(r *Reply) { r.Broadcast = true; r.Ciaddr = zero }), 67,
			Destination{Kind: KindBroadcast, Addr: ap(bcast, 68), IfIndex: ifi}},
		// "If the broadcast bit is not set and 'giaddr' is zero and 'ciaddr'
		// is zero, then the server unicasts DHCPOFFER and DHCPACK messages
		// to the client's hardware address and 'yiaddr' address."
		{"layer-2 unicast", base, 67,
			Destination{Kind: KindL2, Addr: ap(offered, 68), HardwareAddr: mac, IfIndex: ifi}},
		{"layer-2 unicast with explicit zero addresses", with(func(r *Reply) { r.Giaddr = zero; r.Ciaddr = zero }), 10067,
			Destination{Kind: KindL2, Addr: ap(offered, 10068), HardwareAddr: mac, IfIndex: ifi}},
		// Where a layer-2 unicast cannot be built, §4.1 allows a broadcast.
		{"not Ethernet", with(func(r *Reply) { r.HType = 6 }), 67,
			Destination{Kind: KindBroadcast, Addr: ap(bcast, 68), IfIndex: ifi}},
		{"hlen not 6", with(func(r *Reply) { r.CHAddr = append(net.HardwareAddr{}, make([]byte, 16)...) }), 67,
			Destination{Kind: KindBroadcast, Addr: ap(bcast, 68), IfIndex: ifi}},
		{"no yiaddr", with(func(r *Reply) { r.Yiaddr = zero }), 67,
			Destination{Kind: KindBroadcast, Addr: ap(bcast, 68), IfIndex: ifi}},
		{"4-in-6 addresses are unmapped", with(func(r *Reply) { r.Ciaddr = netip.AddrFrom16(clientIP.As16()) }), 67,
			Destination{Kind: KindUnicast, Addr: ap(clientIP, 68)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Route(tt.r, tt.port)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("Route() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplyFromMessage(t *testing.T) {
	m, err := dhcpv4.New(
		dhcpv4.WithHwAddr(mac),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(198, 18, 7, 1))),
		dhcpv4.WithBroadcast(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	m.OpCode = dhcpv4.OpcodeBootReply
	m.HWType = iana.HWTypeEthernet
	m.GatewayIPAddr = net.IPv4(198, 18, 9, 1)
	m.ClientIPAddr = net.IPv4(198, 18, 7, 20).To4()
	m.YourIPAddr = net.IPv4zero

	got := ReplyFromMessage(m, 3)
	want := Reply{
		Data:      m.ToBytes(),
		IfIndex:   3,
		Giaddr:    relay,
		Ciaddr:    clientIP,
		Yiaddr:    zero,
		Broadcast: true,
		NAK:       true,
		CHAddr:    mac,
		HType:     1,
		SrcAddr:   netip.MustParseAddr("198.18.7.1"),
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("ReplyFromMessage mismatch (-want +got):\n%s", diff)
	}
}
