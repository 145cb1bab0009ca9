package lease

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBindingStateNames(t *testing.T) {
	for s := StateNone; s <= Backup; s++ {
		got, ok := ParseBindingState(s.String())
		if s == StateNone {
			if ok {
				t.Errorf("ParseBindingState(%q) = %v, true; want not found", s.String(), got)
			}
			continue
		}
		if !ok || got != s {
			t.Errorf("ParseBindingState(%q) = %v, %v; want %v", s.String(), got, ok, s)
		}
	}
	if got := BindingState(42).String(); got != "state-42" {
		t.Errorf("String of unknown state = %q", got)
	}
	if _, ok := ParseBindingState("bogus"); ok {
		t.Error("ParseBindingState accepted a bogus name")
	}
}

func TestAddrConversion(t *testing.T) {
	a := netip.MustParseAddr("198.18.1.2")
	if got := AddrToU32(a); got != 0xc6120102 {
		t.Errorf("AddrToU32 = %#x", got)
	}
	if got := U32ToAddr(0xc6120102); got != a {
		t.Errorf("U32ToAddr = %v", got)
	}
	if got := AddrToU32(netip.MustParseAddr("2001:db8::1")); got != 0 {
		t.Errorf("AddrToU32(v6) = %#x, want 0", got)
	}
}

func TestHardware(t *testing.T) {
	var l Lease
	l.SetHardware(1, []byte{1, 2, 3, 4, 5, 6})
	if diff := cmp.Diff(net.HardwareAddr{1, 2, 3, 4, 5, 6}, l.HardwareAddr()); diff != "" {
		t.Errorf("HardwareAddr (-want +got):\n%s", diff)
	}
	long := make([]byte, 20)
	for i := range long {
		long[i] = byte(i + 1)
	}
	l.SetHardware(6, long)
	if l.HLen != MaxHardwareLen || l.HType != 6 {
		t.Errorf("HLen, HType = %d, %d; want %d, 6", l.HLen, l.HType, MaxHardwareLen)
	}
	l.SetHardware(1, []byte{9, 9})
	if diff := cmp.Diff([MaxHardwareLen]byte{9, 9}, l.HAddr); diff != "" {
		t.Errorf("shorter address must clear the tail (-want +got):\n%s", diff)
	}
	l.ClientID, l.Hostname = "x", "h"
	l.ClearClient()
	if l.HasClient() || l.Hostname != "" || l.HardwareAddr() != nil {
		t.Errorf("ClearClient left %+v", l)
	}
}

func TestOwns(t *testing.T) {
	hwOnly := Lease{HType: 1, HLen: 2, HAddr: [MaxHardwareLen]byte{0xa, 0xb}}
	withID := hwOnly
	withID.ClientID = "\x01id"
	tests := []struct {
		name string
		l    Lease
		k    ClientKey
		want bool
	}{
		{"same hardware", hwOnly, ClientKey{HType: 1, HAddr: "\x0a\x0b"}, true},
		{"other hardware type", hwOnly, ClientKey{HType: 6, HAddr: "\x0a\x0b"}, false},
		{"other hardware", hwOnly, ClientKey{HType: 1, HAddr: "\x0a\x0c"}, false},
		{"client sends an id the lease lacks", hwOnly, ClientKey{ClientID: "\x01id", HType: 1, HAddr: "\x0a\x0b"}, false},
		{"same id", withID, ClientKey{ClientID: "\x01id", HType: 1, HAddr: "\xff"}, true},
		{"other id, same hardware", withID, ClientKey{ClientID: "\x01other", HType: 1, HAddr: "\x0a\x0b"}, false},
		{"lease has id, client none", withID, ClientKey{HType: 1, HAddr: "\x0a\x0b"}, false},
		{"empty lease", Lease{}, ClientKey{}, false},
	}
	for _, tc := range tests {
		if got := tc.l.Owns(tc.k); got != tc.want {
			t.Errorf("%s: Owns = %v, want %v", tc.name, got, tc.want)
		}
	}
}
