package wire

import (
	"testing"

	"github.com/tandemdhcp/tandem/internal/lease"
)

func TestMessageTypeNames(t *testing.T) {
	// 7 and 9 as in draft §6.1 and ISC, not as Wireshark labels them (fw §2).
	want := []string{"message-type-0", "POOLREQ", "POOLRESP", "BNDUPD", "BNDACK",
		"CONNECT", "CONNECTACK", "UPDREQALL", "UPDDONE", "UPDREQ", "STATE",
		"CONTACT", "DISCONNECT", "message-type-13"}
	for i, w := range want {
		typ := MessageType(i)
		if typ.String() != w {
			t.Errorf("MessageType(%d) = %q, want %q", i, typ, w)
		}
		if typ.Valid() != (i >= 1 && i <= 12) {
			t.Errorf("MessageType(%d).Valid() = %v", i, typ.Valid())
		}
	}
}

func TestServerStates(t *testing.T) {
	want := map[ServerState]string{
		0: "unknown-state", 1: "startup", 2: "normal", 3: "communications-interrupted",
		4: "partner-down", 5: "potential-conflict", 6: "recover", 7: "paused",
		8: "shutdown", 9: "recover-done", 10: "resolution-interrupted",
		11: "conflict-done", 254: "recover-wait",
	}
	for v := 0; v < 256; v++ {
		s := ServerState(v)
		name, defined := want[s]
		if s.Valid() != defined {
			t.Errorf("ServerState(%d).Valid() = %v", v, s.Valid())
		}
		if !defined {
			if _, ok := ParseServerState(s.String()); ok {
				t.Errorf("ParseServerState(%q) accepted an undefined state", s)
			}
			continue
		}
		if s.String() != name {
			t.Errorf("ServerState(%d) = %q, want %q", v, s, name)
		}
		if got, ok := ParseServerState(name); !ok || got != s {
			t.Errorf("ParseServerState(%q) = %d, %v", name, got, ok)
		}
	}
	if got, ok := ParseServerState("Partner-Down"); !ok || got != StatePartnerDown {
		t.Errorf("ParseServerState is case-sensitive: %d, %v", got, ok)
	}
	for _, bad := range []string{"", "comm-interrupted", "down", "recover-wait "} {
		if _, ok := ParseServerState(bad); ok {
			t.Errorf("ParseServerState(%q) accepted", bad)
		}
	}
}

func TestEnumValues(t *testing.T) {
	// Wire values from includes/failover.h (fw §3, §3.2, §7.1).
	checks := []struct {
		name      string
		got, want int
	}{
		{"STARTUP flag", int(ServerFlagStartup), 1},
		{"IP-flags RESERVED", int(IPFlagReserved), 1},
		{"IP-flags BOOTP", int(IPFlagBootp), 2},
		{"reject HBA conflict", int(RejectHBAConflict), 18},
		{"reject IP not reserved", int(RejectIPNotReserved), 19},
		{"reject missing digest", int(RejectMissingDigest), 21},
		{"reject unknown", int(RejectUnknown), 254},
		{"binding free", int(lease.Free), 1},
		{"binding backup", int(lease.Backup), 7},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	for r := RejectReason(1); r <= 21; r++ {
		if r.String() == "" || r.String() == RejectReason(100).String() {
			t.Errorf("reject reason %d has no name", r)
		}
	}
}

func TestOptionCodes(t *testing.T) {
	for c := OptionCode(0); c < 40; c++ {
		if c.Known() != (c >= 1 && c <= 29) {
			t.Errorf("option %d Known = %v", c, c.Known())
		}
	}
	fixed := map[OptionCode]int{
		OptAddressesTransferred: 4, OptAssignedIPAddress: 4, OptBindingStatus: 1,
		OptCLTT: 4, OptDelayedService: 1, OptIPFlags: 2, OptLeaseExpiration: 4,
		OptMaxUnacked: 4, OptMCLT: 4, OptPotentialExpiration: 4, OptReceiveTimer: 4,
		OptProtocolVersion: 1, OptRejectReason: 1, OptServerFlags: 1,
		OptServerState: 1, OptSTOS: 4, OptTLSReply: 1, OptTLSRequest: 1,
	}
	for c := OptionCode(1); c <= 29; c++ {
		if got := c.fixedSize(); got != fixed[c] {
			t.Errorf("%s: fixed size %d, want %d", c, got, fixed[c])
		}
	}
	if OptMCLT.String() != "MCLT" || OptionCode(30).String() != "option-30" {
		t.Errorf("names: %q %q", OptMCLT, OptionCode(30))
	}
}
