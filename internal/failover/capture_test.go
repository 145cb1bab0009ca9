package failover

// The fresh-pair scenario against reality: the message sequence two real
// ISC dhcpd 4.4.3-P1 servers exchanged when started together with empty
// lease files (shared/captures/README.md), up to normal.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/google/go-cmp/cmp"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

const startupCapture = "wire/testdata/isc44-pair-startup-recover.pcap"

// captureFlows returns, per direction ("p→s", "s→p"), the failover
// messages of the first TCP connection between the two servers of a
// pcapng capture (Ethernet, IPv4).
func captureFlows(t *testing.T, path string) map[string][]*wire.Message {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type segment struct {
		seq  uint32
		data []byte
	}
	type flow struct {
		first int
		segs  []segment
	}
	flows := map[string]*flow{}
	order := 0
	bo := binary.LittleEndian
	for off := 0; off+12 <= len(b); {
		typ, blen := bo.Uint32(b[off:]), int(bo.Uint32(b[off+4:]))
		if blen < 12 || off+blen > len(b) {
			t.Fatalf("pcapng: bad block at %d", off)
		}
		body := b[off+8 : off+blen-4]
		off += blen
		if typ == 0x0a0d0d0a {
			if bo.Uint32(body) != 0x1a2b3c4d {
				t.Fatal("pcapng: only little-endian sections are read here")
			}
			continue
		}
		if typ != 6 { // enhanced packet block
			continue
		}
		caplen := int(bo.Uint32(body[12:]))
		pkt := body[20 : 20+caplen]
		if len(pkt) < 14 || binary.BigEndian.Uint16(pkt[12:]) != 0x0800 {
			continue
		}
		ip := pkt[14:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[9] != 6 {
			continue
		}
		total := int(binary.BigEndian.Uint16(ip[2:]))
		src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		tcp := ip[ihl:total]
		sport, dport := binary.BigEndian.Uint16(tcp), binary.BigEndian.Uint16(tcp[2:])
		seq := binary.BigEndian.Uint32(tcp[4:])
		payload := tcp[int(tcp[12]>>4)*4:]
		key := fmt.Sprintf("%s:%d>%s:%d", src, sport, dst, dport)
		f := flows[key]
		if f == nil {
			f = &flow{first: order}
			order++
			flows[key] = f
		}
		if len(payload) > 0 {
			f.segs = append(f.segs, segment{seq, payload})
		}
	}
	// The first connection that carried messages: the earliest flow to
	// port 647 with data, and its reverse.
	var first string
	for k, f := range flows {
		if strings.HasSuffix(k, ":647") && len(f.segs) > 0 && (first == "" || f.first < flows[first].first) {
			first = k
		}
	}
	srcPart, dstPart, _ := strings.Cut(first, ">")
	out := map[string][]*wire.Message{}
	for _, k := range []string{first, dstPart + ">" + srcPart} {
		f := flows[k]
		if f == nil {
			t.Fatalf("no flow %s", k)
		}
		sort.SliceStable(f.segs, func(i, j int) bool { return f.segs[i].seq < f.segs[j].seq })
		var stream []byte
		next := f.segs[0].seq
		for _, s := range f.segs {
			if s.seq+uint32(len(s.data)) <= next {
				continue // retransmission
			}
			stream = append(stream, s.data[next-s.seq:]...)
			next = s.seq + uint32(len(s.data))
		}
		dir := "p→s"
		if strings.HasPrefix(k, "198.18.0.2:") {
			dir = "s→p"
		}
		for len(stream) >= 2 {
			n := int(binary.BigEndian.Uint16(stream))
			if n < wire.HeaderLen || n > len(stream) {
				break
			}
			m, err := wire.Unmarshal(stream[:n])
			if err != nil {
				t.Fatalf("%s: %v", dir, err)
			}
			out[dir] = append(out[dir], m)
			stream = stream[n:]
		}
	}
	return out
}

// untilNormal summarises one direction up to and including its first
// STATE(normal): the control messages in order, and how many binding
// updates and acks went before.
func untilNormal(msgs []*wire.Message) (control []string, bndupd, bndack int) {
	for _, m := range msgs {
		switch m.Type {
		case wire.MsgBndUpd:
			bndupd++
			continue
		case wire.MsgBndAck:
			bndack++
			continue
		case wire.MsgContact:
			continue
		}
		s := m.Type.String()
		if v, ok := m.ServerState.Get(); ok {
			s += "(" + v.String()
			if m.ServerFlags.Value&wire.ServerFlagStartup != 0 {
				s += ",startup"
			}
			s += ")"
		}
		control = append(control, s)
		if m.ServerState.Value == wire.StateNormal && m.Type == wire.MsgState {
			break
		}
	}
	return control, bndupd, bndack
}

// optionCodes lists the options present in a message, in wire order.
func optionCodes(t *testing.T, m *wire.Message) []wire.OptionCode {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var codes []wire.OptionCode
	for off := wire.HeaderLen; off+4 <= len(b); {
		codes = append(codes, wire.OptionCode(binary.BigEndian.Uint16(b[off:])))
		off += 4 + int(binary.BigEndian.Uint16(b[off+2:]))
	}
	return codes
}

func TestFreshPairMatchesISCCapture(t *testing.T) {
	real := captureFlows(t, startupCapture)

	// The capture's configuration: a /24 range of 151 addresses and one of
	// 20, MCLT 60, split 128, max-unacked-updates 10,
	// max-response-delay 10, load balance max seconds 3.
	h := newHarness(t)
	h.run(&datadriven.TestData{Cmd: "start", CmdArgs: []datadriven.CmdArg{
		{Key: "mclt", Vals: []string{"60"}}, {Key: "pools", Vals: []string{"151", "20"}},
		{Key: "max-unacked", Vals: []string{"10"}}, {Key: "mrd", Vals: []string{"10"}},
	}})
	var ours = map[string][]*wire.Message{}
	h.capture = func(dir string, m *wire.Message) { ours[dir] = append(ours[dir], m) }
	h.run(&datadriven.TestData{Cmd: "link", CmdArgs: []datadriven.CmdArg{{Key: "up"}}})
	if st := h.nodes[0].node.State(); st != stNormal {
		t.Fatalf("primary ends in %s, not normal", st)
	}

	for _, dir := range []string{"p→s", "s→p"} {
		wantCtl, wantUpd, wantAck := untilNormal(real[dir])
		gotCtl, gotUpd, gotAck := untilNormal(ours[dir])
		t.Logf("%s: ISC %v +%d BNDUPD +%d BNDACK", dir, wantCtl, wantUpd, wantAck)
		if diff := cmp.Diff(wantCtl, gotCtl); diff != "" {
			t.Errorf("%s control messages up to normal (-ISC +Tandem):\n%s", dir, diff)
		}
		if gotUpd != wantUpd || gotAck != wantAck {
			t.Errorf("%s before normal: %d BNDUPD and %d BNDACK, ISC sent %d and %d", dir, gotUpd, gotAck, wantUpd, wantAck)
		}
	}

	// The options of each kind of message, as ISC puts them.
	firstOf := func(msgs []*wire.Message, typ wire.MessageType) *wire.Message {
		for _, m := range msgs {
			if m.Type == typ {
				return m
			}
		}
		t.Fatalf("no %s", typ)
		return nil
	}
	for _, c := range []struct {
		dir string
		typ wire.MessageType
	}{
		{"p→s", wire.MsgConnect}, {"s→p", wire.MsgConnectAck}, {"p→s", wire.MsgState},
		{"p→s", wire.MsgBndUpd}, {"s→p", wire.MsgUpdReqAll}, {"p→s", wire.MsgUpdDone},
	} {
		want := optionCodes(t, firstOf(real[c.dir], c.typ))
		got := optionCodes(t, firstOf(ours[c.dir], c.typ))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s %s options (-ISC +Tandem):\n%s", c.dir, c.typ, diff)
		}
	}
	// ISC's first exchange, field by field where the values are ours to
	// match: xids, the HBA of split 128, protocol version, TLS.
	ic, oc := firstOf(real["p→s"], wire.MsgConnect), firstOf(ours["p→s"], wire.MsgConnect)
	if !cmp.Equal(ic.HBA, oc.HBA) || ic.XID != oc.XID || ic.MCLT != oc.MCLT || ic.TLSRequest != oc.TLSRequest || ic.ProtocolVersion != oc.ProtocolVersion {
		t.Errorf("CONNECT differs from ISC's:\nISC    %+v\nTandem %+v", ic, oc)
	}
}
