package wire

import (
	"bufio"
	"bytes"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tandemdhcp/tandem/internal/lease"
)

// Golden tests against real ISC dhcpd 4.4.3-P1 traffic
// (shared/captures/README.md).

// cmpOpts compares Messages, whose AssignedIP is a netip.Addr.
var cmpOpts = cmp.Options{cmpopts.EquateComparable(netip.Addr{})}

// captureDir holds copies of shared/captures (see testdata/README.md).
const captureDir = "testdata"

const (
	startupCapture   = "isc44-pair-startup-recover.pcap"
	partitionCapture = "isc44-partition-partner-down-heal.pcap"
)

// goldenFlow is the failover traffic of one TCP direction.
type goldenFlow struct {
	key  string
	raws [][]byte
	msgs []*Message
}

// loadCapture reassembles and frames the failover traffic of a capture;
// framing or decoding errors fail the test.
func loadCapture(t testing.TB, name string) []goldenFlow {
	t.Helper()
	pkts, err := readCapture(filepath.Join(captureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	flows, err := reassemble(pkts, Port)
	if err != nil {
		t.Fatal(err)
	}
	var out []goldenFlow
	for _, f := range flows {
		if len(f.data) == 0 {
			continue
		}
		g := goldenFlow{key: f.key}
		sc := bufio.NewScanner(bytes.NewReader(f.data))
		sc.Split(SplitMessages)
		for sc.Scan() {
			raw := bytes.Clone(sc.Bytes())
			m, err := Unmarshal(raw)
			if err != nil {
				t.Fatalf("%s %s message %d: %v", name, f.key, len(g.raws), err)
			}
			g.raws = append(g.raws, raw)
			g.msgs = append(g.msgs, m)
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s %s: framing: %v", name, f.key, err)
		}
		out = append(out, g)
	}
	return out
}

// expandTypes reads a run-length list such as "5 10x2 3" into types.
func expandTypes(t *testing.T, s string) []MessageType {
	t.Helper()
	var out []MessageType
	for _, f := range strings.Fields(s) {
		typ, count, found := strings.Cut(f, "x")
		n := 1
		if found {
			var err error
			if n, err = strconv.Atoi(count); err != nil {
				t.Fatalf("bad count in %q", f)
			}
		}
		v, err := strconv.Atoi(typ)
		if err != nil {
			t.Fatalf("bad type in %q", f)
		}
		for range n {
			out = append(out, MessageType(v))
		}
	}
	return out
}

// The message types of each direction, as tshark's dhcpfo dissector lists
// them (`tshark -r FILE -Y dhcpfo -T fields -e ip.src -e tcp.srcport -e
// ip.dst -e tcp.dstport -e dhcpfo.type`), in order of first appearance.
// "3x10" is ten BNDUPDs. (tshark names 7 and 9 wrongly; the numbers are
// right.)
var goldenTypes = map[string][]struct{ flow, types string }{
	startupCapture: {
		{"198.18.0.1:36711>198.18.0.2:647", "5 10x2 7x2 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3 4 10 8 10 3x86 4 3x2"},
		{"198.18.0.2:647>198.18.0.1:36711", "6 10x2 7x2 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3x10 4x10 3 8 4 10x2 4x86 3 4x2"},
		{"198.18.0.1:647>198.18.0.2:54001", "5 10x2 3x171 8 11 3x2 11x7"},
		{"198.18.0.2:54001>198.18.0.1:647", "6 10x2 7x2 4x171 10 11x2 4x2 11x6"},
	},
	partitionCapture: {
		{"198.18.0.1:647>198.18.0.2:36187", "3 4 11x2"},
		{"198.18.0.2:36187>198.18.0.1:647", "4 3"},
		{"198.18.0.1:647>198.18.0.2:54033", "5 10x2 9 4x3 10 8 10 3x4 11x6 3x2 11x5"},
		{"198.18.0.2:54033>198.18.0.1:647", "6 10x2 3x3 8 9 10 11 4x4 11x6 4x2 11x4"},
		{"198.18.0.1:41393>198.18.0.2:647", "5"},
	},
}

func TestGoldenCaptures(t *testing.T) {
	for name, want := range goldenTypes {
		t.Run(name, func(t *testing.T) {
			flows := loadCapture(t, name)
			if len(flows) != len(want) {
				var keys []string
				for _, f := range flows {
					keys = append(keys, f.key)
				}
				t.Fatalf("flows with failover traffic: %v, want %d", keys, len(want))
			}
			for i, f := range flows {
				if f.key != want[i].flow {
					t.Errorf("flow %d is %s, want %s", i, f.key, want[i].flow)
					continue
				}
				var got []MessageType
				for j, m := range f.msgs {
					got = append(got, m.Type)
					if po := f.raws[j][3]; po != PayloadOffset {
						t.Errorf("%s message %d: payload offset %d", f.key, j, po)
					}
					enc, err := m.MarshalBinary()
					if err != nil {
						t.Errorf("%s message %d (%s): re-encode: %v", f.key, j, m.Type, err)
						continue
					}
					if !bytes.Equal(enc, f.raws[j]) {
						t.Errorf("%s message %d (%s): re-encoded\n %x\nwant\n %x", f.key, j, m.Type, enc, f.raws[j])
					}
					if len(m.Unknown) != 0 {
						t.Errorf("%s message %d: unknown options %v", f.key, j, m.Unknown)
					}
				}
				if diff := cmp.Diff(expandTypes(t, want[i].types), got); diff != "" {
					t.Errorf("%s message types (-tshark +decoded):\n%s", f.key, diff)
				}
			}
		})
	}
}

// TestGoldenHandshake checks the CONNECT / CONNECTACK / STATE exchange
// against the facts of failover-wire.md (header note, §2, §5).
func TestGoldenHandshake(t *testing.T) {
	for _, tc := range []struct {
		capture     string
		connectFlow string // primary -> secondary
		mclt        uint32
		firstState  ServerState
	}{
		{startupCapture, "198.18.0.1:36711>198.18.0.2:647", 60, StateRecover},
		{startupCapture, "198.18.0.1:647>198.18.0.2:54001", 60, 0},
		{partitionCapture, "198.18.0.1:647>198.18.0.2:54033", 30, 0},
	} {
		flows := loadCapture(t, tc.capture)
		fwd, back := findFlows(t, flows, tc.connectFlow)
		hba := HBAFromSplit(128)
		wantConnect := &Message{
			Type: MsgConnect, Time: fwd.msgs[0].Time, XID: 0,
			RelationshipName: Some("dhcp-failover"),
			MaxUnacked:       Some[uint32](10),
			ReceiveTimer:     Some[uint32](10),
			VendorClass:      Some("isc-4.4.3-P1"),
			ProtocolVersion:  Some[uint8](ProtocolVersion),
			TLSRequest:       Some[uint8](0),
			MCLT:             Some(tc.mclt),
			HBA:              Some(hba[:]),
		}
		if diff := cmp.Diff(wantConnect, fwd.msgs[0], cmpOpts); diff != "" {
			t.Errorf("%s %s CONNECT (-want +got):\n%s", tc.capture, fwd.key, diff)
		}
		wantAck := &Message{
			Type: MsgConnectAck, Time: back.msgs[0].Time, XID: 0,
			RelationshipName: Some("dhcp-failover"),
			MaxUnacked:       Some[uint32](10),
			ReceiveTimer:     Some[uint32](10),
			VendorClass:      Some("isc-4.4.3-P1"),
			ProtocolVersion:  Some[uint8](ProtocolVersion),
			TLSReply:         Some[uint8](0),
		}
		if diff := cmp.Diff(wantAck, back.msgs[0], cmpOpts); diff != "" {
			t.Errorf("%s %s CONNECTACK (-want +got):\n%s", tc.capture, back.key, diff)
		}

		// xids start at 0 on each side: the secondary's first own message is
		// the STATE right after CONNECTACK; the primary's next after CONNECT
		// is 1 (fw §1).
		if x := back.msgs[1].XID; back.msgs[1].Type != MsgState || x != 0 {
			t.Errorf("%s: secondary's first STATE is %s xid %d, want STATE xid 0", tc.capture, back.msgs[1].Type, x)
		}
		if x := fwd.msgs[1].XID; fwd.msgs[1].Type != MsgState || x != 1 {
			t.Errorf("%s: primary's first STATE is %s xid %d, want STATE xid 1", tc.capture, fwd.msgs[1].Type, x)
		}

		// STATE always carries state, flags and STOS (fw §2).
		for _, f := range []goldenFlow{fwd, back} {
			for _, m := range f.msgs {
				if m.Type == MsgState && (!m.ServerState.Present || !m.ServerFlags.Present || !m.STOS.Present) {
					t.Errorf("%s: STATE without state/flags/STOS: %+v", f.key, m)
				}
			}
		}
		// Both start from empty lease files: the first STATE of each side is
		// recover with the STARTUP flag (header note of failover-wire.md).
		if tc.firstState != 0 {
			for _, f := range []goldenFlow{fwd, back} {
				st := f.msgs[1]
				if st.ServerState.Value != tc.firstState || st.ServerFlags.Value != ServerFlagStartup {
					t.Errorf("%s: first STATE is %s flags %d, want %s with STARTUP", f.key,
						st.ServerState.Value, st.ServerFlags.Value, tc.firstState)
				}
			}
		}
	}
}

func findFlows(t *testing.T, flows []goldenFlow, key string) (fwd, back goldenFlow) {
	t.Helper()
	src, dst, _ := strings.Cut(key, ">")
	rev := dst + ">" + src
	var okF, okB bool
	for _, f := range flows {
		switch f.key {
		case key:
			fwd, okF = f, true
		case rev:
			back, okB = f, true
		}
	}
	if !okF || !okB {
		t.Fatalf("flows %s and its reverse not both in capture", key)
	}
	return fwd, back
}

// TestGoldenAcks checks the xid discipline and ISC's bare BNDACKs (fw §1,
// §4.1, §4.3) on every connection of both captures.
func TestGoldenAcks(t *testing.T) {
	for _, name := range []string{startupCapture, partitionCapture} {
		flows := loadCapture(t, name)
		byKey := map[string]goldenFlow{}
		for _, f := range flows {
			byKey[f.key] = f
		}
		for _, f := range flows {
			src, dst, _ := strings.Cut(f.key, ">")
			peer, ok := byKey[dst+">"+src]
			if !ok {
				continue
			}
			updates := map[uint32]netip.Addr{} // BNDUPD xid -> address, peer's side
			requests := map[uint32]bool{}      // UPDREQ/UPDREQALL xids, peer's side
			for _, m := range peer.msgs {
				switch m.Type {
				case MsgBndUpd:
					updates[m.XID] = m.AssignedIP.Value
				case MsgUpdReq, MsgUpdReqAll:
					requests[m.XID] = true
				}
			}
			for i, m := range f.msgs {
				switch m.Type {
				case MsgBndUpd:
					if m.XID == 0 {
						t.Errorf("%s message %d: BNDUPD with xid 0", f.key, i)
					}
					if r := m.CheckBindingUpdate(); r != nil {
						t.Errorf("%s message %d: ISC's own BNDUPD fails the check: %v", f.key, i, r)
					}
				case MsgBndAck:
					// Only the address, plus reason and text when rejecting
					// (ISC answers dueling updates with reason 16 here).
					bare := &Message{Type: MsgBndAck, Time: m.Time, XID: m.XID, AssignedIP: m.AssignedIP}
					if m.RejectReason.Present {
						bare.RejectReason, bare.MessageText = m.RejectReason, m.MessageText
						if !m.MessageText.Present {
							t.Errorf("%s message %d: rejecting BNDACK without message", f.key, i)
						}
					}
					if diff := cmp.Diff(bare, m, cmpOpts); diff != "" || !m.AssignedIP.Present {
						t.Errorf("%s message %d: BNDACK is not bare (-bare +got):\n%s", f.key, i, diff)
					}
					// The first connection of the partition capture began
					// before the capture, so its acks may answer unseen updates.
					if addr, ok := updates[m.XID]; ok && addr != m.AssignedIP.Value {
						t.Errorf("%s message %d: BNDACK xid %#x for %v, BNDUPD was for %v", f.key, i, m.XID, m.AssignedIP.Value, addr)
					} else if !ok && f.key != "198.18.0.2:36187>198.18.0.1:647" && f.key != "198.18.0.1:647>198.18.0.2:36187" {
						t.Errorf("%s message %d: BNDACK xid %#x answers no BNDUPD", f.key, i, m.XID)
					}
				case MsgUpdDone:
					if !requests[m.XID] {
						t.Errorf("%s message %d: UPDDONE xid %#x answers no update request", f.key, i, m.XID)
					}
				}
			}
		}
	}
}

// TestGoldenBalancing checks ISC's BNDUPD to BACKUP during pool balancing
// and the load-balancing hash against the real pair: with split 128 and
// "load balance max seconds 3", the server that first leased to each of the
// four clients of the startup capture (while both were in normal) is the
// one the hash assigns.
func TestGoldenBalancing(t *testing.T) {
	flows := loadCapture(t, startupCapture)
	fwd, back := findFlows(t, flows, "198.18.0.1:36711>198.18.0.2:647")
	hba := HBAFromSplit(128)
	first := map[string]bool{} // client id -> leased by primary
	for _, side := range []struct {
		f       goldenFlow
		primary bool
	}{{fwd, true}, {back, false}} {
		backups := 0
		for _, m := range side.f.msgs {
			if m.Type != MsgBndUpd {
				continue
			}
			if m.BindingStatus.Value == lease.Backup {
				backups++
			}
			if m.BindingStatus.Value == lease.Active {
				id := string(m.ClientID.Value)
				if _, dup := first[id]; !dup {
					first[id] = side.primary
				}
			}
		}
		if side.primary && backups == 0 {
			t.Errorf("primary sent no BNDUPD to BACKUP while balancing")
		}
	}
	want := map[string]bool{"cli-1": true, "cli-2": false, "cli-3": true, "cli-4": true}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Fatalf("clients leased on the first connection, true = by primary (-want +got):\n%s", diff)
	}
	for id, byPrimary := range want {
		b := LoadBalanceBucket([]byte(id))
		if got := PrimaryServes(&hba, b); got != byPrimary {
			t.Errorf("client-id %q: bucket %d, PrimaryServes = %v, but ISC's lease came from primary = %v", id, b, got, byPrimary)
		}
	}
}
