package wire

// A small capture reader for the golden tests: classic pcap or pcapng,
// Ethernet / Linux cooked (SLL, SLL2) / raw IPv4 link types, IPv4 + TCP, and
// a per-direction TCP reassembler that orders segments by sequence number
// and drops retransmitted bytes.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Link types (tcpdump.org linktypes).
const (
	linkEthernet = 1
	linkRaw      = 101
	linkSLL      = 113
	linkSLL2     = 276
)

type packet struct {
	link uint16
	data []byte
}

// readCapture returns the packets of a pcap or pcapng file.
func readCapture(path string) ([]packet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%s: too short", path)
	}
	switch {
	case binary.BigEndian.Uint32(b) == 0x0a0d0d0a:
		return readPcapng(b)
	default:
		return readPcap(b)
	}
}

func readPcap(b []byte) ([]packet, error) {
	if len(b) < 24 {
		return nil, fmt.Errorf("pcap: short global header")
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("pcap: bad magic %x", b[:4])
	}
	link := uint16(bo.Uint32(b[20:]))
	var pkts []packet
	for off := 24; off < len(b); {
		if len(b)-off < 16 {
			return nil, fmt.Errorf("pcap: short record header at %d", off)
		}
		incl := int(bo.Uint32(b[off+8:]))
		off += 16
		if incl > len(b)-off {
			return nil, fmt.Errorf("pcap: record of %d bytes past the end", incl)
		}
		pkts = append(pkts, packet{link: link, data: b[off : off+incl]})
		off += incl
	}
	return pkts, nil
}

func readPcapng(b []byte) ([]packet, error) {
	var bo binary.ByteOrder = binary.LittleEndian
	var links []uint16 // per interface of the current section
	var pkts []packet
	for off := 0; off < len(b); {
		if len(b)-off < 12 {
			return nil, fmt.Errorf("pcapng: short block at %d", off)
		}
		if binary.BigEndian.Uint32(b[off:]) == 0x0a0d0d0a {
			// Section header: the byte-order magic decides the section's order.
			switch binary.LittleEndian.Uint32(b[off+8:]) {
			case 0x1a2b3c4d:
				bo = binary.LittleEndian
			case 0x4d3c2b1a:
				bo = binary.BigEndian
			default:
				return nil, fmt.Errorf("pcapng: bad byte-order magic at %d", off)
			}
			links = nil
		}
		typ := bo.Uint32(b[off:])
		total := int(bo.Uint32(b[off+4:]))
		if total < 12 || total%4 != 0 || total > len(b)-off {
			return nil, fmt.Errorf("pcapng: bad block length %d at %d", total, off)
		}
		body := b[off+8 : off+total-4]
		switch typ {
		case 1: // interface description
			if len(body) < 2 {
				return nil, fmt.Errorf("pcapng: short IDB")
			}
			links = append(links, bo.Uint16(body))
		case 6: // enhanced packet
			if len(body) < 20 {
				return nil, fmt.Errorf("pcapng: short EPB")
			}
			ifc := int(bo.Uint32(body))
			capLen := int(bo.Uint32(body[12:]))
			if ifc >= len(links) || capLen > len(body)-20 {
				return nil, fmt.Errorf("pcapng: bad EPB at %d", off)
			}
			pkts = append(pkts, packet{link: links[ifc], data: body[20 : 20+capLen]})
		case 3: // simple packet: interface 0, captured length = block space
			if len(body) < 4 || len(links) == 0 {
				return nil, fmt.Errorf("pcapng: bad SPB at %d", off)
			}
			origLen := int(bo.Uint32(body))
			data := body[4:]
			if origLen < len(data) {
				data = data[:origLen]
			}
			pkts = append(pkts, packet{link: links[0], data: data})
		}
		off += total
	}
	return pkts, nil
}

type tcpSegment struct {
	src, dst netip.AddrPort
	seq      uint32
	syn      bool
	payload  []byte
}

// parseTCP extracts an IPv4 TCP segment from a link-layer frame; ok is false
// for anything else.
func parseTCP(p packet) (seg tcpSegment, ok bool) {
	ip, ok := networkLayer(p)
	if !ok || len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 6 {
		return seg, false
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ihl < 20 || total < ihl || total > len(ip) {
		return seg, false
	}
	ip = ip[:total] // drop Ethernet padding
	tcp := ip[ihl:]
	if len(tcp) < 20 {
		return seg, false
	}
	doff := int(tcp[12]>>4) * 4
	if doff < 20 || doff > len(tcp) {
		return seg, false
	}
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	dst := netip.AddrFrom4([4]byte(ip[16:20]))
	return tcpSegment{
		src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcp[0:])),
		dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(tcp[2:])),
		seq:     binary.BigEndian.Uint32(tcp[4:]),
		syn:     tcp[13]&0x02 != 0,
		payload: tcp[doff:],
	}, true
}

// networkLayer strips the link-layer header of an IPv4 frame.
func networkLayer(p packet) ([]byte, bool) {
	d := p.data
	switch p.link {
	case linkEthernet:
		if len(d) < 14 {
			return nil, false
		}
		etype, rest := binary.BigEndian.Uint16(d[12:]), d[14:]
		for etype == 0x8100 || etype == 0x88a8 { // VLAN tags
			if len(rest) < 4 {
				return nil, false
			}
			etype, rest = binary.BigEndian.Uint16(rest[2:]), rest[4:]
		}
		return rest, etype == 0x0800
	case linkSLL:
		if len(d) < 16 {
			return nil, false
		}
		return d[16:], binary.BigEndian.Uint16(d[14:]) == 0x0800
	case linkSLL2:
		if len(d) < 20 {
			return nil, false
		}
		return d[20:], binary.BigEndian.Uint16(d[0:]) == 0x0800
	case linkRaw:
		return d, true
	}
	return nil, false
}

// tcpFlow is one direction of a TCP connection, reassembled.
type tcpFlow struct {
	key     string // "src>dst"
	listed  bool
	started bool
	next    uint32            // next expected sequence number
	pending map[uint32][]byte // segments that arrived ahead of a gap
	data    []byte
}

func (f *tcpFlow) add(seg tcpSegment) {
	if seg.syn {
		if !f.started {
			f.started, f.next = true, seg.seq+1
		}
		return
	}
	if len(seg.payload) == 0 {
		return
	}
	if !f.started { // the capture began mid-connection
		f.started, f.next = true, seg.seq
	}
	f.pending[seg.seq] = seg.payload
	for progress := true; progress; {
		progress = false
		for seq, p := range f.pending {
			d := int32(seq - f.next)
			switch {
			case d > 0:
				continue // still ahead of a gap
			case int(-d) >= len(p):
				delete(f.pending, seq) // entirely retransmitted
			default:
				f.data = append(f.data, p[-d:]...)
				f.next += uint32(len(p) + int(d))
				delete(f.pending, seq)
				progress = true
			}
		}
	}
}

// reassemble returns the TCP flows of the packets that carry data, in order
// of their first data segment, restricted to those touching port.
func reassemble(pkts []packet, port uint16) ([]*tcpFlow, error) {
	var flows []*tcpFlow
	byKey := map[string]*tcpFlow{}
	for _, p := range pkts {
		seg, ok := parseTCP(p)
		if !ok || (seg.src.Port() != port && seg.dst.Port() != port) {
			continue
		}
		key := seg.src.String() + ">" + seg.dst.String()
		f := byKey[key]
		if f == nil {
			f = &tcpFlow{key: key, pending: map[uint32][]byte{}}
			byKey[key] = f
		}
		if len(seg.payload) > 0 && !f.listed {
			f.listed = true
			flows = append(flows, f)
		}
		f.add(seg)
	}
	for _, f := range flows {
		if len(f.pending) != 0 {
			return nil, fmt.Errorf("flow %s: %d segments after a gap in the capture", f.key, len(f.pending))
		}
	}
	return flows, nil
}

// toPcap re-wraps Ethernet frames as a classic little-endian pcap file of
// the given link type.
func toPcap(t testing.TB, pkts []packet, link uint16) []byte {
	t.Helper()
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr, 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], uint32(link))
	out := hdr
	for _, p := range pkts {
		if p.link != linkEthernet || len(p.data) < 14 {
			t.Fatalf("toPcap needs Ethernet frames")
		}
		etype, payload := p.data[12:14], p.data[14:]
		var frame []byte
		switch link {
		case linkSLL:
			frame = append(make([]byte, 14), etype...)
		case linkSLL2:
			frame = append(append([]byte{}, etype...), make([]byte, 18)...)
		case linkRaw:
		default:
			t.Fatalf("link %d", link)
		}
		frame = append(frame, payload...)
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
		out = append(append(out, rec...), frame...)
	}
	return out
}

func flowData(t testing.TB, pkts []packet) map[string]string {
	t.Helper()
	flows, err := reassemble(pkts, Port)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, f := range flows {
		m[f.key] = string(f.data)
	}
	return m
}

// TestCaptureReader checks the test's own capture reader: classic pcap with
// cooked and raw link types gives the same streams as the pcapng file, and
// reassembly survives reordered and retransmitted segments.
func TestCaptureReader(t *testing.T) {
	pkts, err := readCapture(filepath.Join(captureDir, partitionCapture))
	if err != nil {
		t.Fatal(err)
	}
	want := flowData(t, pkts)
	if len(want) == 0 {
		t.Fatal("no flows")
	}
	for _, link := range []uint16{linkSLL, linkSLL2, linkRaw} {
		path := filepath.Join(t.TempDir(), "c.pcap")
		if err := os.WriteFile(path, toPcap(t, pkts, link), 0o644); err != nil {
			t.Fatal(err)
		}
		again, err := readCapture(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, flowData(t, again)); diff != "" {
			t.Errorf("link type %d: streams differ:\n%s", link, diff)
		}
	}

	// Swap neighbours and repeat every third packet (a retransmission).
	var messy []packet
	for i := 0; i < len(pkts); i += 2 {
		if i+1 < len(pkts) {
			messy = append(messy, pkts[i+1])
		}
		messy = append(messy, pkts[i])
		if i%3 == 0 {
			messy = append(messy, pkts[i])
		}
	}
	if diff := cmp.Diff(want, flowData(t, messy)); diff != "" {
		t.Errorf("reordered/retransmitted: streams differ:\n%s", diff)
	}
}
