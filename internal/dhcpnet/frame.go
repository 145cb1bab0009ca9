package dhcpnet

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
)

const (
	ethHeaderLen  = 14
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	// frameOverhead is what wraps the DHCP message in a layer-2 reply.
	frameOverhead = ethHeaderLen + ipv4HeaderLen + udpHeaderLen

	etherTypeIPv4 = 0x0800
	protoUDP      = 17
	// replyTTL is the TTL of hand-built packets, Linux's default.
	replyTTL = 64
)

// frameSpec describes the headers of a layer-2 unicast reply.
type frameSpec struct {
	DstMAC, SrcMAC   net.HardwareAddr
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

var errFrameAddrs = errors.New("dhcpnet: layer-2 frame needs 6-byte MACs and IPv4 addresses")

// appendFrame appends an Ethernet II frame carrying payload in UDP in IPv4.
// The headers are built by hand because the client has no address yet: the
// kernel would try to ARP for yiaddr and never get an answer.
func appendFrame(b []byte, f frameSpec, payload []byte) ([]byte, error) {
	if len(f.DstMAC) != 6 || len(f.SrcMAC) != 6 || !f.Src.Is4() || !f.Dst.Is4() {
		return b, errFrameAddrs
	}
	ipLen := ipv4HeaderLen + udpHeaderLen + len(payload)
	if ipLen > 0xffff {
		return b, errors.New("dhcpnet: reply too large for one IPv4 packet")
	}
	b = append(b, f.DstMAC...)
	b = append(b, f.SrcMAC...)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)

	// IPv4 header, RFC 791 §3.1. DF is set and the ID left 0: the packet is
	// never fragmented, which makes it "atomic" (RFC 6864 §4.1).
	src, dst := f.Src.As4(), f.Dst.As4()
	ip := len(b)
	b = append(b,
		0x45, 0, // version 4, IHL 5 words; TOS 0
		byte(ipLen>>8), byte(ipLen),
		0, 0, // identification
		0x40, 0, // flags DF, fragment offset 0
		replyTTL, protoUDP,
		0, 0, // header checksum, filled below
	)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	binary.BigEndian.PutUint16(b[ip+10:], ^fold(sum16(0, b[ip:ip+ipv4HeaderLen])))

	// UDP header, RFC 768.
	udp := len(b)
	udpLen := udpHeaderLen + len(payload)
	b = binary.BigEndian.AppendUint16(b, f.SrcPort)
	b = binary.BigEndian.AppendUint16(b, f.DstPort)
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
	b = append(b, 0, 0)
	b = append(b, payload...)

	// The UDP checksum covers a pseudo-header of source, destination,
	// protocol and UDP length, then the UDP header and data (RFC 768).
	var s uint64
	s = sum16(s, src[:])
	s = sum16(s, dst[:])
	s += protoUDP + uint64(udpLen)
	s = sum16(s, b[udp:])
	c := ^fold(s)
	if c == 0 {
		// A computed zero is sent as all ones; zero means "no checksum".
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[udp+6:], c)
	return b, nil
}

// sum16 adds data as big-endian 16-bit words to s, padding an odd tail with
// a zero byte (RFC 1071). The caller folds the carries.
func sum16(s uint64, data []byte) uint64 {
	for len(data) >= 2 {
		s += uint64(data[0])<<8 | uint64(data[1])
		data = data[2:]
	}
	if len(data) == 1 {
		s += uint64(data[0]) << 8
	}
	return s
}

// fold reduces a one's-complement sum to 16 bits by adding the carries back.
func fold(s uint64) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
