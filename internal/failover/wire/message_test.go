package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemdhcp/tandem/internal/lease"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// everyOption returns a message carrying every typed option and an unknown
// one.
func everyOption(typ MessageType) *Message {
	hba := HBAFromSplit(100)
	return &Message{
		Type: typ, Time: 0x6b025bff, XID: 0x01020304,
		AddressesTransferred: Some[uint32](7),
		AssignedIP:           Some(netip.MustParseAddr("198.18.0.175")),
		BindingStatus:        Some(lease.Active),
		ClientID:             Some([]byte("cli-1")),
		CHAddr:               Some([]byte{1, 0xba, 0x51, 0x11, 0xa6, 0xc2, 0xb4}),
		CLTT:                 Some[uint32](1795316736),
		ClientReplyOptions:   Some([]byte{51, 4, 0, 0, 0x1c, 0x20}),
		ClientRequestOptions: Some([]byte{55, 2, 1, 3}),
		DelayedService:       Some[uint8](3),
		HBA:                  Some(hba[:]),
		IPFlags:              Some(IPFlagReserved | IPFlagBootp),
		LeaseExpiry:          Some[uint32](1795323936),
		MaxUnacked:           Some[uint32](100),
		MCLT:                 Some[uint32](3600),
		MessageText:          Some("hello"),
		MessageDigest:        Some([]byte{1, 2, 3}),
		PotentialExpiry:      Some[uint32](1795327536),
		ReceiveTimer:         Some[uint32](20),
		ProtocolVersion:      Some[uint8](ProtocolVersion),
		RejectReason:         Some(RejectLessCriticalInfo),
		RelationshipName:     Some("dhcp-failover"),
		ServerFlags:          Some(ServerFlagStartup),
		ServerState:          Some(StateRecoverWait),
		STOS:                 Some[uint32](1795316700),
		TLSReply:             Some[uint8](0),
		TLSRequest:           Some[uint8](0),
		VendorClass:          Some("isc-4.4.3-P1"),
		VendorOptions:        Some([]byte{}),
		Unknown:              []RawOption{{Code: 30, Data: []byte("host")}, {Code: 0xffff, Data: []byte{}}},
	}
}

func TestRoundTripEveryType(t *testing.T) {
	for typ := MessageType(0); typ <= maxMessageType; typ++ {
		for _, m := range []*Message{{Type: typ, Time: 1, XID: 2}, everyOption(typ)} {
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("%s: decode own encoding %x: %v", typ, b, err)
			}
			if diff := cmp.Diff(m, got, cmpOpts); diff != "" {
				t.Errorf("%s round trip (-sent +decoded):\n%s", typ, diff)
			}
		}
	}
}

// TestOptionEncoding pins the wire form of every option (draft §12, fw §3):
// code, length and data, big-endian.
func TestOptionEncoding(t *testing.T) {
	hba := HBAFromSplit(9)
	for _, tc := range []struct {
		set  func(*Message)
		want string // the option's TLV
	}{
		{func(m *Message) { m.AddressesTransferred = Some[uint32](0x01020304) }, "0001 0004 01020304"},
		{func(m *Message) { m.AssignedIP = Some(netip.MustParseAddr("198.18.0.250")) }, "0002 0004 c61200fa"},
		{func(m *Message) { m.BindingStatus = Some(lease.Backup) }, "0003 0001 07"},
		{func(m *Message) { m.ClientID = Some([]byte("cli-1")) }, "0004 0005 636c692d31"},
		{func(m *Message) { m.CHAddr = Some([]byte{1, 0xba, 0x51, 0x11, 0xa6, 0xc2, 0xb4}) }, "0005 0007 01ba5111a6c2b4"},
		{func(m *Message) { m.CLTT = Some[uint32](0x6b025c00) }, "0006 0004 6b025c00"},
		{func(m *Message) { m.ClientReplyOptions = Some([]byte{1}) }, "0007 0001 01"},
		{func(m *Message) { m.ClientRequestOptions = Some([]byte{2}) }, "0008 0001 02"},
		{func(m *Message) { m.DelayedService = Some[uint8](9) }, "000a 0001 09"},
		{func(m *Message) { m.HBA = Some(hba[:]) }, "000b 0020 ff01" + strings.Repeat("00", 30)},
		{func(m *Message) { m.IPFlags = Some(IPFlagBootp) }, "000c 0002 0002"},
		{func(m *Message) { m.LeaseExpiry = Some[uint32](0x6b025c3c) }, "000d 0004 6b025c3c"},
		{func(m *Message) { m.MaxUnacked = Some[uint32](10) }, "000e 0004 0000000a"},
		{func(m *Message) { m.MCLT = Some[uint32](60) }, "000f 0004 0000003c"},
		{func(m *Message) { m.MessageText = Some("no") }, "0010 0002 6e6f"},
		{func(m *Message) { m.MessageDigest = Some([]byte{1, 0xaa}) }, "0011 0002 01aa"},
		{func(m *Message) { m.PotentialExpiry = Some[uint32](0x6b02783e) }, "0012 0004 6b02783e"},
		{func(m *Message) { m.ReceiveTimer = Some[uint32](10) }, "0013 0004 0000000a"},
		{func(m *Message) { m.ProtocolVersion = Some[uint8](1) }, "0014 0001 01"},
		{func(m *Message) { m.RejectReason = Some(RejectHBAConflict) }, "0015 0001 12"},
		{func(m *Message) { m.RelationshipName = Some("dhcp-failover") }, "0016 000d 646863702d6661696c6f766572"},
		{func(m *Message) { m.ServerFlags = Some(ServerFlagStartup) }, "0017 0001 01"},
		{func(m *Message) { m.ServerState = Some(StateRecoverWait) }, "0018 0001 fe"},
		{func(m *Message) { m.STOS = Some[uint32](0x6b025bff) }, "0019 0004 6b025bff"},
		{func(m *Message) { m.TLSReply = Some[uint8](0) }, "001a 0001 00"},
		{func(m *Message) { m.TLSRequest = Some[uint8](0) }, "001b 0001 00"},
		{func(m *Message) { m.VendorClass = Some("isc-4.4.3-P1") }, "001c 000c 6973632d342e342e332d5031"},
		{func(m *Message) { m.VendorOptions = Some([]byte{}) }, "001d 0000"},
		{func(m *Message) { m.Unknown = []RawOption{{Code: 30, Data: []byte{0xab}}} }, "001e 0001 ab"},
	} {
		m := &Message{Type: MsgBndUpd, Time: 0x6b025bff, XID: 5}
		tc.set(m)
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", tc.want, err)
		}
		opt := unhex(t, tc.want)
		want := append(unhex(t, "0000 030c 6b025bff 00000005"), opt...)
		want[1] = byte(len(want))
		if !bytes.Equal(b, want) {
			t.Errorf("encoded %x\nwant    %x", b, want)
		}
		got, err := Unmarshal(want)
		if err != nil {
			t.Fatalf("%s: %v", tc.want, err)
		}
		if diff := cmp.Diff(m, got, cmpOpts); diff != "" {
			t.Errorf("%s decoded (-want +got):\n%s", tc.want, diff)
		}
	}
}

// TestISCOrder checks the option order of the messages ISC sends: BNDUPD
// per fw §4.1; CONNECT, CONNECTACK and STATE as in the captures (and
// server/failover.c); the minimal CONTACT of fw §15.
func TestISCOrder(t *testing.T) {
	hba := HBAFromSplit(128)
	for _, tc := range []struct {
		name string
		m    *Message
		want string
	}{
		{"CONTACT", &Message{Type: MsgContact, Time: 0x6b025bff, XID: 9},
			"000c 0b0c 6b025bff 00000009"},
		{"BNDUPD", &Message{Type: MsgBndUpd, Time: 0x6b025c00, XID: 0x107,
			// set in reverse of ISC's order, to show the order is the encoder's
			IPFlags:         Some(IPFlagReserved),
			CLTT:            Some[uint32](0x6b025c00),
			STOS:            Some[uint32](0x6b025c00),
			PotentialExpiry: Some[uint32](0x6b02783e),
			LeaseExpiry:     Some[uint32](0x6b025c3c),
			CHAddr:          Some([]byte{1, 0xba, 0x51, 0x11, 0xa6, 0xc2, 0xb4}),
			ClientID:        Some([]byte("cli-1")),
			BindingStatus:   Some(lease.Active),
			AssignedIP:      Some(netip.MustParseAddr("198.18.0.175")),
		}, "0053 030c 6b025c00 00000107" +
			"0002 0004 c61200af  0003 0001 02  0004 0005 636c692d31" +
			"0005 0007 01ba5111a6c2b4  000d 0004 6b025c3c  0012 0004 6b02783e" +
			"0019 0004 6b025c00  0006 0004 6b025c00  000c 0002 0001"},
		{"BNDACK reject", &Message{Type: MsgBndAck, Time: 1, XID: 0x107,
			MessageText:  Some("x"),
			RejectReason: Some(RejectLessCriticalInfo),
			AssignedIP:   Some(netip.MustParseAddr("198.18.0.175")),
		}, "001e 040c 00000001 00000107  0002 0004 c61200af  0015 0001 10  0010 0001 78"},
		{"CONNECT", &Message{Type: MsgConnect, Time: 0x6b025bff,
			HBA: Some(hba[:]), MCLT: Some[uint32](60), TLSRequest: Some[uint8](0),
			ProtocolVersion: Some[uint8](1), VendorClass: Some("isc-4.4.3-P1"),
			ReceiveTimer: Some[uint32](10), MaxUnacked: Some[uint32](10),
			RelationshipName: Some("dhcp-failover"),
		}, "0073050c6b025bff000000000016000d646863702d6661696c6f766572000e00040000000a001300040000000a001c000c6973632d342e342e332d50310014000101001b000100000f00040000003c000b0020ffffffffffffffffffffffffffffffff00000000000000000000000000000000"},
		{"CONNECTACK", &Message{Type: MsgConnectAck, Time: 0x6b025bff,
			TLSReply: Some[uint8](0), ProtocolVersion: Some[uint8](1),
			VendorClass: Some("isc-4.4.3-P1"), ReceiveTimer: Some[uint32](10),
			MaxUnacked: Some[uint32](10), RelationshipName: Some("dhcp-failover"),
		}, "0047060c6b025bff000000000016000d646863702d6661696c6f766572000e00040000000a001300040000000a001c000c6973632d342e342e332d50310014000101001a000100"},
		{"STATE", &Message{Type: MsgState, Time: 0x6b025bff, XID: 1,
			STOS: Some[uint32](0x6b025bff), ServerFlags: Some(ServerFlagStartup),
			ServerState: Some(StateRecover),
		}, "001e0a0c6b025bff0000000100180001060017000101001900046b025bff"},
		{"DISCONNECT", &Message{Type: MsgDisconnect, Time: 1, XID: 3,
			MessageText: Some("bye"), RejectReason: Some(RejectInvalidPartner),
		}, "0018 0c0c 00000001 00000003  0015 0001 08  0010 0003 627965"},
		{"POOLRESP", &Message{Type: MsgPoolResp, Time: 1, XID: 3,
			AddressesTransferred: Some[uint32](12),
		}, "0014 020c 00000001 00000003  0001 0004 0000000c"},
	} {
		b, err := tc.m.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if want := unhex(t, tc.want); !bytes.Equal(b, want) {
			t.Errorf("%s:\n got %x\nwant %x", tc.name, b, want)
		}
	}
}

func TestAppendTo(t *testing.T) {
	prefix := []byte("prefix")
	m := &Message{Type: MsgContact, XID: 1}
	b, err := m.AppendTo(bytes.Clone(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, prefix) || len(b) != len(prefix)+HeaderLen {
		t.Fatalf("AppendTo = %x", b)
	}
	if _, err := Unmarshal(b[len(prefix):]); err != nil {
		t.Fatal(err)
	}
	// A failed append leaves the buffer as it was.
	bad := &Message{Type: MsgBndUpd, ClientID: Some(make([]byte, 3000))}
	b2, err := bad.AppendTo(bytes.Clone(prefix))
	if !errors.Is(err, ErrTooLarge) || !bytes.Equal(b2, prefix) {
		t.Fatalf("AppendTo(too large) = %q, %v", b2, err)
	}
}

func TestEncodeErrors(t *testing.T) {
	maxID := MaxMessageLen - HeaderLen - 4
	for _, tc := range []struct {
		name string
		m    *Message
		want error // nil: must succeed
	}{
		{"exactly 2048", &Message{Type: MsgBndUpd, ClientID: Some(make([]byte, maxID))}, nil},
		{"2049", &Message{Type: MsgBndUpd, ClientID: Some(make([]byte, maxID+1))}, ErrTooLarge},
		{"option over 64K", &Message{Type: MsgBndUpd, VendorOptions: Some(make([]byte, 70000))}, ErrTooLarge},
		{"unknown options add up", &Message{Type: MsgBndUpd, Unknown: []RawOption{
			{Code: 40, Data: make([]byte, 1000)}, {Code: 41, Data: make([]byte, 1000)}, {Code: 42, Data: make([]byte, 100)}}}, ErrTooLarge},
		{"IPv6 address", &Message{Type: MsgBndUpd, AssignedIP: Some(netip.MustParseAddr("2001:db8::1"))}, ErrNotIPv4},
		{"IPv4-mapped address", &Message{Type: MsgBndUpd, AssignedIP: Some(netip.MustParseAddr("::ffff:198.18.0.1"))}, ErrNotIPv4},
		{"zero address", &Message{Type: MsgBndUpd, AssignedIP: Some(netip.Addr{})}, ErrNotIPv4},
		{"absent zero address", &Message{Type: MsgBndUpd, AssignedIP: Opt[netip.Addr]{}}, nil},
		{"raw DDNS", &Message{Type: MsgBndUpd, Unknown: []RawOption{{Code: OptDDNS}}}, ErrRawKnownOption},
		{"raw MCLT", &Message{Type: MsgConnect, Unknown: []RawOption{{Code: OptMCLT, Data: make([]byte, 4)}}}, ErrRawKnownOption},
		{"type 13 with option", &Message{Type: 13, MCLT: Some[uint32](1)}, ErrMessageType},
		{"type 13 with unknown option", &Message{Type: 13, Unknown: []RawOption{{Code: 99}}}, ErrMessageType},
		{"type 13 bare", &Message{Type: 13}, nil},
		{"type 0 with option", &Message{Type: 0, MCLT: Some[uint32](1)}, nil},
	} {
		b, err := tc.m.MarshalBinary()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if _, err := Unmarshal(b); err != nil {
				t.Errorf("%s: own encoding fails to decode: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
		if b != nil {
			t.Errorf("%s: returned %d bytes with the error", tc.name, len(b))
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	hdr := func(length int, typ, payoff byte) string {
		return hex.EncodeToString([]byte{byte(length >> 8), byte(length), typ, payoff}) + "6b025bff 00000001"
	}
	for _, tc := range []struct {
		name   string
		in     string
		want   error
		option OptionCode
		offset int
	}{
		{"empty", "", ErrLength, 0, 0},
		{"one byte", "00", ErrLength, 0, 0},
		{"length 11", "000b0b0c6b025bff000000", ErrLength, 0, 0},
		{"length 0", hdr(0, 11, 12), ErrLength, 0, 0},
		{"length 2049", hdr(2049, 3, 12) + strings.Repeat("00", 2049-12), ErrLength, 0, 0},
		{"length field larger than bytes", hdr(16, 11, 12), ErrLength, 0, 0},
		{"length field smaller than bytes", hdr(12, 11, 12) + "00", ErrLength, 0, 0},
		{"payload offset 8 (draft, Microsoft)", hdr(12, 11, 8), ErrPayloadOffset, 0, 3},
		{"payload offset 0", hdr(12, 11, 0), ErrPayloadOffset, 0, 3},
		{"payload offset past the end", hdr(14, 11, 15) + "0000", ErrPayloadOffset, 0, 3},
		{"type 13 with an option", hdr(17, 13, 12) + "0014 0001 01", ErrMessageType, 0, 2},
		{"type 255 with an unknown option", hdr(16, 255, 12) + "00ff 0000", ErrMessageType, 0, 2},
		{"1 byte after header", hdr(13, 3, 12) + "00", ErrTruncatedOption, 0, 12},
		{"3 bytes after header", hdr(15, 3, 12) + "000f00", ErrTruncatedOption, 0, 12},
		{"data past the end", hdr(19, 3, 12) + "000f 0004 000000", ErrTruncatedOption, OptMCLT, 12},
		{"unknown option past the end", hdr(17, 3, 12) + "0063 0002 00", ErrTruncatedOption, 99, 12},
		{"second option truncated", hdr(20, 5, 12) + "0014 0001 01 0016 ff", ErrTruncatedOption, 0, 17},
		{"duplicate MCLT", hdr(28, 5, 12) + "000f 0004 0000003c 000f 0004 0000003c", ErrDuplicateOption, OptMCLT, 20},
		{"duplicate relationship-name", hdr(24, 5, 12) + "0016 0002 6162 0016 0002 6162", ErrDuplicateOption, OptRelationshipName, 18},
		{"MCLT of 3 bytes", hdr(19, 5, 12) + "000f 0003 00003c", ErrOptionSize, OptMCLT, 12},
		{"IP-flags of 1 byte (draft's table)", hdr(17, 3, 12) + "000c 0001 01", ErrOptionSize, OptIPFlags, 12},
		{"TLS-request of 2 bytes (ISC 3.0.x)", hdr(18, 5, 12) + "001b 0002 0000", ErrOptionSize, OptTLSRequest, 12},
		{"assigned-IP-address of 16 bytes", hdr(32, 3, 12) + "0002 0010" + strings.Repeat("00", 16), ErrOptionSize, OptAssignedIPAddress, 12},
		{"binding-status of 0 bytes", hdr(16, 3, 12) + "0003 0000", ErrOptionSize, OptBindingStatus, 12},
		{"server-state of 2 bytes", hdr(18, 10, 12) + "0018 0002 0002", ErrOptionSize, OptServerState, 12},
		{"DDNS empty", hdr(16, 3, 12) + "0009 0000", ErrDDNS, OptDDNS, 12},
		{"DDNS with a name", hdr(23, 3, 12) + "0009 0007 0000 03666f6f 00", ErrDDNS, OptDDNS, 12},
	} {
		in := unhex(t, tc.in)
		m, err := Unmarshal(in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Unmarshal(%x) = %+v, %v; want %v", tc.name, in, m, err, tc.want)
			continue
		}
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: error %T is not a *DecodeError", tc.name, err)
			continue
		}
		if de.Option != tc.option || de.Offset != tc.offset {
			t.Errorf("%s: option %d offset %d, want option %d offset %d (%v)", tc.name, de.Option, de.Offset, tc.option, tc.offset, err)
		}
		if m != nil {
			t.Errorf("%s: returned a message with the error", tc.name)
		}
		if err.Error() == "" {
			t.Errorf("%s: empty error text", tc.name)
		}
	}
}

// TestDecodeAccepts covers inputs ISC accepts that are not what it sends.
func TestDecodeAccepts(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want *Message
	}{
		{"payload offset 14 skips 2 header bytes", "0013 0a0e 00000001 00000002 abcd 0018 0001 02",
			&Message{Type: MsgState, Time: 1, XID: 2, ServerState: Some(StateNormal)}},
		{"payload offset equal to length", "000e 0b0e 00000001 00000002 ffff",
			&Message{Type: MsgContact, Time: 1, XID: 2}},
		{"undefined type without options", "000c 0d0c 00000001 00000002",
			&Message{Type: 13, Time: 1, XID: 2}},
		{"type 0 with options", "0011 000c 00000001 00000002 0014 0001 01",
			&Message{Type: 0, Time: 1, XID: 2, ProtocolVersion: Some[uint8](1)}},
		{"options in any order", "0016 0a0c 00000001 00000002 0017 0001 00 0018 0001 02",
			&Message{Type: MsgState, Time: 1, XID: 2, ServerState: Some(StateNormal), ServerFlags: Some[ServerFlags](0)}},
		{"unknown options kept, duplicates too", "0019 030c 00000001 00000002 001e 0001 61 001e 0000 0000 0000",
			&Message{Type: MsgBndUpd, Time: 1, XID: 2, Unknown: []RawOption{{30, []byte("a")}, {30, []byte{}}, {0, []byte{}}}}},
		{"empty variable options are present", "0014 040c 00000001 00000002 0004 0000 0010 0000",
			&Message{Type: MsgBndAck, Time: 1, XID: 2, ClientID: Some([]byte{}), MessageText: Some("")}},
		{"HBA of another size (a reject, not a protocol error)", "0012 050c 00000001 00000002 000b 0002 ffff",
			&Message{Type: MsgConnect, Time: 1, XID: 2, HBA: Some([]byte{0xff, 0xff})}},
		{"undefined state and reason values", "0016 0a0c 00000001 00000002 0018 0001 63 0015 0001 c8",
			&Message{Type: MsgState, Time: 1, XID: 2, ServerState: Some[ServerState](99), RejectReason: Some[RejectReason](200)}},
		{"max length", "0800 030c 00000001 00000002 0004 07f0" + strings.Repeat("61", 2032),
			&Message{Type: MsgBndUpd, Time: 1, XID: 2, ClientID: Some(bytes.Repeat([]byte("a"), 2032))}},
	} {
		got, err := Unmarshal(unhex(t, tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmpOpts); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestUnmarshalCopies checks that a decoded message does not alias its
// input, which a Reader reuses.
func TestUnmarshalCopies(t *testing.T) {
	in := unhex(t, "001e 030c 00000001 00000002 0004 0002 6162 0005 0002 0102 001e 0002 0304")
	m, err := Unmarshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := HeaderLen; i < len(in); i++ {
		in[i] = 0xee
	}
	want := &Message{Type: MsgBndUpd, Time: 1, XID: 2, ClientID: Some([]byte("ab")),
		CHAddr: Some([]byte{1, 2}), Unknown: []RawOption{{30, []byte{3, 4}}}}
	if diff := cmp.Diff(want, m, cmpOpts); diff != "" {
		t.Errorf("message changed with its input (-want +got):\n%s", diff)
	}
}

func TestOpt(t *testing.T) {
	var absent Opt[uint32]
	if v, ok := absent.Get(); ok || v != 0 || absent.Or(5) != 5 {
		t.Errorf("absent: Get = %d, %v; Or = %d", v, ok, absent.Or(5))
	}
	p := Some[uint32](0)
	if v, ok := p.Get(); !ok || v != 0 || p.Or(5) != 0 {
		t.Errorf("Some(0): Get = %d, %v; Or = %d", v, ok, p.Or(5))
	}
}

func TestCheckBindingUpdate(t *testing.T) {
	ip := Some(netip.MustParseAddr("198.18.0.100"))
	mac := Some([]byte{1, 0xba, 0x51, 0x11, 0xa6, 0xc2, 0xb4})
	for _, tc := range []struct {
		name string
		m    Message
		want RejectReason // 0: accepted
	}{
		{"free without chaddr", Message{AssignedIP: ip, BindingStatus: Some(lease.Free)}, 0},
		{"backup without chaddr", Message{AssignedIP: ip, BindingStatus: Some(lease.Backup)}, 0},
		{"reset without chaddr", Message{AssignedIP: ip, BindingStatus: Some(lease.Reset)}, 0},
		{"active with chaddr", Message{AssignedIP: ip, BindingStatus: Some(lease.Active), CHAddr: mac}, 0},
		{"17-byte chaddr", Message{AssignedIP: ip, BindingStatus: Some(lease.Active), CHAddr: Some(make([]byte, 17))}, 0},
		{"abandoned bare", Message{AssignedIP: ip, BindingStatus: Some(lease.Abandoned)}, 0},
		{"no address", Message{BindingStatus: Some(lease.Free)}, RejectMissingBindInfo},
		{"no status", Message{AssignedIP: ip}, RejectMissingBindInfo},
		{"active without chaddr", Message{AssignedIP: ip, BindingStatus: Some(lease.Active)}, RejectMissingBindInfo},
		{"expired without chaddr", Message{AssignedIP: ip, BindingStatus: Some(lease.Expired)}, RejectMissingBindInfo},
		{"released without chaddr", Message{AssignedIP: ip, BindingStatus: Some(lease.Released)}, RejectMissingBindInfo},
		{"18-byte chaddr", Message{AssignedIP: ip, BindingStatus: Some(lease.Active), CHAddr: Some(make([]byte, 18))}, RejectMisc},
		{"abandoned with chaddr", Message{AssignedIP: ip, BindingStatus: Some(lease.Abandoned), CHAddr: mac}, RejectMisc},
		{"abandoned with client-id", Message{AssignedIP: ip, BindingStatus: Some(lease.Abandoned), ClientID: Some([]byte("x"))}, RejectMisc},
	} {
		r := tc.m.CheckBindingUpdate()
		switch {
		case tc.want == 0 && r != nil:
			t.Errorf("%s: rejected: %v", tc.name, r)
		case tc.want != 0 && r == nil:
			t.Errorf("%s: accepted, want reason %d", tc.name, tc.want)
		case tc.want != 0 && (r.Reason != tc.want || r.Text == ""):
			t.Errorf("%s: %v, want reason %d", tc.name, r, tc.want)
		}
	}
}
