package dhcpnet

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// onesSum is an independent RFC 1071 sum for the tests: byte pairs summed
// into a uint32 with the carry folded after every addition.
func onesSum(chunks ...[]byte) uint16 {
	var all []byte
	for _, c := range chunks {
		all = append(all, c...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint32
	for i := 0; i < len(all); i += 2 {
		s += uint32(binary.BigEndian.Uint16(all[i:]))
		s = (s & 0xffff) + (s >> 16)
	}
	return uint16(s)
}

// decodedFrame is a frame taken apart by the test's own parser.
type decodedFrame struct {
	DstMAC, SrcMAC   net.HardwareAddr
	EtherType        uint16
	Version, IHL     int
	TotalLen         int
	Flags            byte
	TTL, Proto       byte
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	UDPLen           int
	IPSumOK          bool
	UDPSumOK         bool
	UDPSum           uint16
	Payload          []byte
}

func decodeFrame(t *testing.T, f []byte) decodedFrame {
	t.Helper()
	d, ok := parseUDPFrame(f)
	if !ok {
		t.Fatalf("not an Ethernet/IPv4/UDP frame: % x", f)
	}
	return d
}

// decodeFrameUnchecked decodes a frame parseUDPFrame has checked.
func decodeFrameUnchecked(f []byte) decodedFrame {
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	udp := ip[ihl:]
	d := decodedFrame{
		DstMAC:    net.HardwareAddr(f[0:6]),
		SrcMAC:    net.HardwareAddr(f[6:12]),
		EtherType: binary.BigEndian.Uint16(f[12:14]),
		Version:   int(ip[0] >> 4),
		IHL:       ihl,
		TotalLen:  int(binary.BigEndian.Uint16(ip[2:4])),
		Flags:     ip[6] >> 5,
		TTL:       ip[8],
		Proto:     ip[9],
		Src:       netip.AddrFrom4([4]byte(ip[12:16])),
		Dst:       netip.AddrFrom4([4]byte(ip[16:20])),
		SrcPort:   binary.BigEndian.Uint16(udp[0:2]),
		DstPort:   binary.BigEndian.Uint16(udp[2:4]),
		UDPLen:    int(binary.BigEndian.Uint16(udp[4:6])),
		UDPSum:    binary.BigEndian.Uint16(udp[6:8]),
		// A header whose checksum is right sums to all ones.
		IPSumOK: onesSum(ip[:ihl]) == 0xffff,
	}
	udp = udp[:d.UDPLen]
	pseudo := append(append(append([]byte{}, ip[12:20]...), 0, 17), byte(d.UDPLen>>8), byte(d.UDPLen))
	d.UDPSumOK = onesSum(pseudo, udp) == 0xffff
	d.Payload = udp[8:]
	return d
}

func TestAppendFrame(t *testing.T) {
	srcMAC := net.HardwareAddr{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01}
	msg, err := dhcpv4.New(
		dhcpv4.WithHwAddr(mac),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
		dhcpv4.WithYourIP(offered.AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(198, 18, 7, 1))),
		dhcpv4.WithLeaseTime(3600),
	)
	if err != nil {
		t.Fatal(err)
	}
	msg.OpCode = dhcpv4.OpcodeBootReply
	even := msg.ToBytes()
	odd := append(bytes.Clone(even), 0) // a trailing pad option makes the length odd
	if len(even)%2 != 0 {
		even, odd = odd, even
	}

	for _, payload := range [][]byte{even, odd} {
		spec := frameSpec{
			DstMAC: mac, SrcMAC: srcMAC,
			Src: netip.MustParseAddr("198.18.7.1"), Dst: offered,
			SrcPort: 67, DstPort: 68,
		}
		prefix := []byte("keep")
		frame, err := appendFrame(bytes.Clone(prefix), spec, payload)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(frame[:4], prefix) {
			t.Fatalf("appendFrame overwrote the bytes before it")
		}
		got := decodeFrame(t, frame[4:])
		want := decodedFrame{
			DstMAC: mac, SrcMAC: srcMAC, EtherType: 0x0800,
			Version: 4, IHL: 20, TotalLen: 28 + len(payload), Flags: 0b010,
			TTL: 64, Proto: 17,
			Src: spec.Src, Dst: spec.Dst, SrcPort: 67, DstPort: 68,
			UDPLen: 8 + len(payload), IPSumOK: true, UDPSumOK: true,
			UDPSum: got.UDPSum, Payload: payload,
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("len %d: frame mismatch (-want +got):\n%s", len(payload), diff)
		}
		if len(frame)-4 != 42+len(payload) {
			t.Errorf("frame length %d, want %d", len(frame)-4, 42+len(payload))
		}
		back, err := dhcpv4.FromBytes(got.Payload)
		if err != nil {
			t.Fatalf("payload does not decode: %v", err)
		}
		if back.MessageType() != dhcpv4.MessageTypeOffer || !back.YourIPAddr.Equal(offered.AsSlice()) ||
			back.ClientHWAddr.String() != mac.String() {
			t.Errorf("decoded payload = %s", back.Summary())
		}
	}
}

// TestAppendFrameZeroChecksum finds a payload whose UDP checksum computes
// to zero and checks it goes out as 0xffff, since a zero checksum field
// means "none" (RFC 768).
func TestAppendFrameZeroChecksum(t *testing.T) {
	spec := frameSpec{
		DstMAC: mac, SrcMAC: mac,
		Src: netip.MustParseAddr("198.18.7.1"), Dst: offered,
		SrcPort: 67, DstPort: 68,
	}
	payload := make([]byte, 300)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for w := 0; w <= 0xffff; w++ {
		binary.BigEndian.PutUint16(payload[len(payload)-2:], uint16(w))
		frame, err := appendFrame(nil, spec, payload)
		if err != nil {
			t.Fatal(err)
		}
		udp := frame[34:]
		saved := binary.BigEndian.Uint16(udp[6:8])
		binary.BigEndian.PutUint16(udp[6:8], 0)
		pseudo := append(append(append([]byte{}, frame[26:34]...), 0, 17), byte(len(udp)>>8), byte(len(udp)))
		if ^onesSum(pseudo, udp) != 0 {
			continue
		}
		if saved != 0xffff {
			t.Fatalf("a computed zero checksum was sent as %#04x, want 0xffff", saved)
		}
		return
	}
	t.Fatal("no payload word gives a zero checksum")
}

func TestAppendFrameRejects(t *testing.T) {
	good := frameSpec{DstMAC: mac, SrcMAC: mac, Src: relay, Dst: offered, SrcPort: 67, DstPort: 68}
	bad := []frameSpec{good, good, good}
	bad[0].DstMAC = mac[:5]
	bad[1].Src = netip.MustParseAddr("2001:db8::1")
	bad[2].Dst = netip.Addr{}
	for i, s := range bad {
		if _, err := appendFrame(nil, s, []byte{1}); err == nil {
			t.Errorf("case %d: appendFrame accepted %+v", i, s)
		}
	}
	if _, err := appendFrame(nil, good, make([]byte, 70000)); err == nil {
		t.Error("appendFrame accepted a payload too large for IPv4")
	}
}

func TestPktinfoRoundTrip(t *testing.T) {
	b := make([]byte, pktinfoSpace+16)
	oob := putPktinfo(b, 42, netip.MustParseAddr("198.18.7.1"))
	got, ok := parsePktinfo(oob)
	if !ok {
		t.Fatal("parsePktinfo found nothing")
	}
	want := pktinfo{IfIndex: 42, Local: netip.MustParseAddr("198.18.7.1"), Dst: zero}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, ok := parsePktinfo(oob[:8]); ok {
		t.Error("parsePktinfo accepted a truncated control message")
	}
	if _, ok := parsePktinfo(nil); ok {
		t.Error("parsePktinfo accepted nothing")
	}
}

func cmpDiff(want, got any) string {
	return cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }))
}
