// Package lease holds Tandem's lease database: leases with their failover
// binding states, the pools they belong to, the indexes that find a client's
// lease, and the allocator. It does no I/O and reads no clock: callers pass
// now.
package lease

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
)

// BindingState is a lease's binding state as numbered by
// draft-ietf-dhc-failover-12 §12.3 and ISC dhcpd (includes/dhcpd.h); the
// same numbers travel in the failover binding-status option.
type BindingState uint8

const (
	// StateNone means "not set" (a lease-file record without "next binding state").
	StateNone BindingState = 0
	// Free: available for allocation by the primary (or by a server with no partner).
	Free BindingState = 1
	// Active: bound to a client until Ends.
	Active BindingState = 2
	// Expired: the lease ran out; with failover it waits for the peer's ack
	// before it becomes free again (draft §5.2.3).
	Expired BindingState = 3
	// Released: the client released it; same wait as Expired.
	Released BindingState = 4
	// Abandoned: declined by a client or found in use; reused only as a last resort.
	Abandoned BindingState = 5
	// Reset: freed by an operator; same wait as Expired.
	Reset BindingState = 6
	// Backup: available for allocation by the secondary (draft §5.2.2).
	Backup BindingState = 7
)

var bindingStateNames = [...]string{
	StateNone: "none",
	Free:      "free",
	Active:    "active",
	Expired:   "expired",
	Released:  "released",
	Abandoned: "abandoned",
	Reset:     "reset",
	Backup:    "backup",
}

// String returns the name dhcpd.leases uses ("free", "active", …).
func (s BindingState) String() string {
	if int(s) < len(bindingStateNames) {
		return bindingStateNames[s]
	}
	return fmt.Sprintf("state-%d", uint8(s))
}

// ParseBindingState reads a dhcpd.leases binding state name.
func ParseBindingState(name string) (BindingState, bool) {
	for i, n := range bindingStateNames {
		if i != 0 && n == name {
			return BindingState(i), true
		}
	}
	return StateNone, false
}

// Flags of a lease, with the bits of the failover IP-flags option where
// one exists (failover-wire.md §3).
type Flags uint8

const (
	FlagReserved     Flags = 1 << 0 // "reserved;" in dhcpd.leases, IP-flags RESERVED
	FlagBootp        Flags = 1 << 1 // "dynamic-bootp;", IP-flags BOOTP
	FlagDynamicRange Flags = 1 << 2 // the address lies in a "range dynamic-bootp"
)

// MaxHardwareLen is the longest chaddr kept (DHCP's chaddr field is 16 bytes).
const MaxHardwareLen = 16

// Lease is one address's record. Times are Unix seconds; 0 means "never" /
// "not set" as in dhcpd.leases. The struct is kept small (no pointers but
// two strings) because a server holds one per address of every pool.
type Lease struct {
	IP uint32 // IPv4 address, big-endian value

	State  BindingState // "binding state"
	Next   BindingState // "next binding state": the state at Ends
	Rewind BindingState // "rewind binding state": the last state the peer was told of
	Flags  Flags

	HType uint8 // hardware type, 1 = ethernet
	HLen  uint8
	HAddr [MaxHardwareLen]byte

	ClientID string // client identifier (option 61) bytes; "" if none
	Hostname string // client-hostname, for operators only

	Starts int64 // when the current binding began
	Ends   int64 // when it ends
	TSTP   int64 // time sent to partner: potential expiry we told the peer
	TSFP   int64 // time sent from partner: potential expiry the peer acked / sent
	ATSFP  int64 // acknowledged TSFP
	CLTT   int64 // client last transaction time
}

// Addr returns the lease's address.
func (l *Lease) Addr() netip.Addr { return U32ToAddr(l.IP) }

// HardwareAddr returns the client's hardware address (nil if none).
func (l *Lease) HardwareAddr() net.HardwareAddr {
	if l.HLen == 0 {
		return nil
	}
	return net.HardwareAddr(bytes.Clone(l.HAddr[:l.HLen]))
}

// SetHardware stores a hardware type and address, truncated to MaxHardwareLen.
func (l *Lease) SetHardware(htype uint8, addr []byte) {
	l.HType = htype
	n := copy(l.HAddr[:], addr)
	clear(l.HAddr[n:])
	l.HLen = uint8(n)
}

// ClearClient forgets who held the lease.
func (l *Lease) ClearClient() {
	l.SetHardware(0, nil)
	l.ClientID = ""
	l.Hostname = ""
}

// AddrToU32 converts an IPv4 address to its 32-bit value; it returns 0 for
// anything but IPv4.
func AddrToU32(a netip.Addr) uint32 {
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// U32ToAddr converts a 32-bit value to an IPv4 address.
func U32ToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// FailoverStateRecord is the "failover peer "NAME" state { … }" record of
// dhcpd.leases (failover-wire.md §13). States are ISC's names
// ("normal", "communications-interrupted", …); times are Unix seconds.
type FailoverStateRecord struct {
	Peer         string
	MyState      string
	MyStateAt    int64
	PartnerState string
	PartnerAt    int64
	MCLT         uint32 // 0 when absent (ISC writes it on the secondary only)
}
