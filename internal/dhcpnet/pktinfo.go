package dhcpnet

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// IP_PKTINFO (ip(7)) carries struct in_pktinfo { int ipi_ifindex; struct
// in_addr ipi_spec_dst; struct in_addr ipi_addr; }. On receive it says which
// interface a datagram came in on and its header destination; on send it
// chooses the outgoing interface and source address. These helpers encode
// and decode it in caller-owned buffers: the x/net and x/sys helpers
// allocate per packet.

// pktinfoSpace is the room one IP_PKTINFO control message takes.
var pktinfoSpace = unix.CmsgSpace(unix.SizeofInet4Pktinfo)

type pktinfo struct {
	IfIndex int
	// Local is ipi_spec_dst: the local address the kernel would reply from.
	Local netip.Addr
	// Dst is ipi_addr: the destination address in the IP header.
	Dst netip.Addr
}

// parsePktinfo finds IP_PKTINFO among the control messages in oob.
func parsePktinfo(oob []byte) (pktinfo, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return pktinfo{}, false
		}
		if h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo {
			return pktinfo{
				IfIndex: int(int32(binary.NativeEndian.Uint32(data[0:4]))),
				Local:   netip.AddrFrom4([4]byte(data[4:8])),
				Dst:     netip.AddrFrom4([4]byte(data[8:12])),
			}, true
		}
		oob = rest
	}
	return pktinfo{}, false
}

// putPktinfo writes an IP_PKTINFO control message into b, which must hold
// pktinfoSpace bytes and be aligned like any Go allocation of that size,
// and returns the used part. An invalid src leaves ipi_spec_dst 0.0.0.0 so
// the kernel picks the source; ifIndex 0 leaves the interface to routing.
func putPktinfo(b []byte, ifIndex int, src netip.Addr) []byte {
	b = b[:pktinfoSpace]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.IPPROTO_IP
	h.Type = unix.IP_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	data := b[unix.CmsgLen(0):]
	binary.NativeEndian.PutUint32(data[0:4], uint32(int32(ifIndex)))
	if src.Is4() {
		a := src.As4()
		copy(data[4:8], a[:])
	}
	return b
}
