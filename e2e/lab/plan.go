package lab

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// The address plan. Everything lives in 198.18.0.0/15 (RFC 2544 benchmarking
// space), so nothing the lab sends can reach a real network.
var (
	// LANPrefix is the shared segment: servers, the relay host and clients.
	LANPrefix = netip.MustParsePrefix("198.18.0.0/24")
	// RelayPrefix is the remote subnet behind the relay host; perfdhcp's
	// relayed requests carry giaddr RelayIP and get addresses from here.
	RelayPrefix = netip.MustParsePrefix("198.19.0.0/16")
	// RelayIP is the relay host's address in RelayPrefix (perfdhcp -l).
	RelayIP = netip.MustParseAddr("198.19.0.1")
	// RelayHostIP is the relay host's address on the LAN, the servers'
	// next hop for RelayPrefix.
	RelayHostIP = netip.MustParseAddr("198.18.0.3")
	// LANRangeFirst..LANRangeLast is the dynamic range for LAN clients.
	LANRangeFirst = netip.MustParseAddr("198.18.0.100")
	LANRangeLast  = netip.MustParseAddr("198.18.0.250")
	// RelayRangeFirst starts the dynamic range in RelayPrefix.
	RelayRangeFirst = netip.MustParseAddr("198.19.1.0")
)

// ServerIP is the LAN address of server i (1-based): 198.18.0.1 and
// 198.18.0.2 for a pair; any further servers get 198.18.0.21 and up.
func ServerIP(i int) netip.Addr {
	if i < 1 || i > maxServers {
		panic(fmt.Sprintf("lab: server index %d out of 1..%d", i, maxServers))
	}
	last := byte(i)
	if i > 2 {
		last = byte(20 + i)
	}
	return netip.AddrFrom4([4]byte{198, 18, 0, last})
}

const (
	maxServers = 8
	maxClients = 1000
)

// Deterministic MACs (locally administered, 02:…) so that configs can name
// hosts and captures are readable.
func serverMAC(i int) net.HardwareAddr { return net.HardwareAddr{0x02, 0x74, 0x64, 0, 0, byte(i)} }
func relayMAC() net.HardwareAddr       { return net.HardwareAddr{0x02, 0x74, 0x64, 0, 1, 0} }
func clientMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x74, 0x64, 1, byte(i >> 8), byte(i)}
}

// Pools describes the standard dynamic pools of the lab, the same for every
// server program so that benchmark figures compare like with like.
type Pools struct {
	// LeaseTime is the granted lease time; 0 means 10 minutes.
	LeaseTime time.Duration
	// RelaySize is the number of addresses in the relayed range starting at
	// RelayRangeFirst; 0 means 4096.
	RelaySize int
}

func (p Pools) leaseSeconds() int {
	if p.LeaseTime <= 0 {
		return 600
	}
	return int(p.LeaseTime / time.Second)
}

// RelayRange returns the first and last address of the relayed range.
func (p Pools) RelayRange() (first, last netip.Addr) {
	n := p.RelaySize
	if n <= 0 {
		n = 4096
	}
	// The /16 has room for 65534-256 addresses from 198.19.1.0 on.
	if max := 65534 - 256; n > max {
		n = max
	}
	first = RelayRangeFirst
	last = addrAdd(first, n-1)
	return first, last
}

// DhcpdConf is a standalone ISC dhcpd configuration serving both subnets.
// ping-check is off: with it dhcpd waits about a second before offering an
// unused address, which is a policy choice, not server speed.
func (p Pools) DhcpdConf() string {
	first, last := p.RelayRange()
	var b strings.Builder
	fmt.Fprintf(&b, "authoritative;\nping-check false;\n")
	fmt.Fprintf(&b, "default-lease-time %d;\nmax-lease-time %d;\n", p.leaseSeconds(), p.leaseSeconds())
	fmt.Fprintf(&b, "subnet %s netmask %s {\n  range %s %s;\n}\n",
		LANPrefix.Addr(), prefixMask(LANPrefix), LANRangeFirst, LANRangeLast)
	fmt.Fprintf(&b, "subnet %s netmask %s {\n  range %s %s;\n}\n",
		RelayPrefix.Addr(), prefixMask(RelayPrefix), first, last)
	return b.String()
}

// KeaDhcp4 is the Dhcp4 object of an equivalent kea-dhcp4 configuration.
// NewKea fills in interfaces, lease database and loggers.
func (p Pools) KeaDhcp4() map[string]any {
	first, last := p.RelayRange()
	return map[string]any{
		"valid-lifetime": p.leaseSeconds(),
		"authoritative":  true,
		"subnet4": []any{
			map[string]any{
				"id":     1,
				"subnet": LANPrefix.String(),
				"pools":  []any{map[string]any{"pool": fmt.Sprintf("%s - %s", LANRangeFirst, LANRangeLast)}},
			},
			map[string]any{
				"id":     2,
				"subnet": RelayPrefix.String(),
				"pools":  []any{map[string]any{"pool": fmt.Sprintf("%s - %s", first, last)}},
			},
		},
	}
}

func prefixMask(p netip.Prefix) string {
	m := net.CIDRMask(p.Bits(), 32)
	return net.IP(m).String()
}

func addrAdd(a netip.Addr, n int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
