package config

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"
)

// The example files are parsed as they are shipped and compared with the
// whole typed result, so any change in how Tandem reads them shows up here.

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func ipBytes(addrs ...string) []byte {
	var b []byte
	for _, a := range addrs {
		v := netip.MustParseAddr(a).As4()
		b = append(b, v[:]...)
	}
	return b
}

func classicShared(file string, peerName string) (Params, []*Subnet, []*Host) {
	pos := func(line int) Pos { return Pos{file, line} }
	global := Params{
		DefaultLeaseTime: 3600, MaxLeaseTime: 7200, Authoritative: true,
		AllowUnknownClients: true, AllowKnownClients: true, AllowBootp: true, AllowBooting: true, AllowDynamicBootp: true,
		PingCheck: true,
		Options: []Option{
			{Code: 15, Name: "domain-name", Data: []byte("example.test")},
			{Code: 6, Name: "domain-name-servers", Data: ipBytes("198.18.0.53", "198.18.1.53")},
			{Code: 119, Name: "domain-search", Data: cat(
				[]byte{7}, []byte("example"), []byte{4}, []byte("test"), []byte{0},
				[]byte{3}, []byte("lab"), []byte{0xc0, 0})},
			{Code: 42, Name: "ntp-servers", Data: ipBytes("198.18.0.123")},
		},
	}
	withOpts := func(p Params, opts ...Option) Params {
		p = p.clone()
		p.Options = append(p.Options, opts...)
		return p
	}
	noBootp := func(p Params) Params {
		p = p.clone()
		p.AllowDynamicBootp = false
		return p
	}

	lan := withOpts(global,
		Option{Code: 3, Name: "routers", Data: ipBytes("198.18.0.254")},
		Option{Code: 28, Name: "broadcast-address", Data: ipBytes("198.18.0.255")})
	relayed := withOpts(global, Option{Code: 3, Name: "routers", Data: ipBytes("198.19.0.1")})
	relayed.DefaultLeaseTime, relayed.MaxLeaseTime = 1800, 3600

	subnets := []*Subnet{
		{
			Prefix: netip.MustParsePrefix("198.18.0.0/24"),
			Pools: []*Pool{{
				Ranges:       []Range{{Start: addr("198.18.0.100"), End: addr("198.18.0.250"), Pos: pos(26)}},
				FailoverPeer: peerName,
				Params:       noBootp(lan),
				Pos:          pos(23),
			}},
			Params: lan,
			Pos:    pos(19),
		},
		{
			Prefix: netip.MustParsePrefix("198.19.0.0/16"),
			Pools: []*Pool{{
				Ranges:       []Range{{Start: addr("198.19.1.0"), End: addr("198.19.3.255"), Pos: pos(40)}},
				FailoverPeer: peerName,
				Params:       noBootp(relayed),
				Pos:          pos(37),
			}},
			Params: relayed,
			Pos:    pos(32),
		},
	}
	hosts := []*Host{{
		Name:           "printer-1",
		HardwareType:   1,
		HardwareAddr:   mustMAC("02:00:5e:10:00:01"),
		FixedAddresses: []netip.Addr{addr("198.18.0.20")},
		Params:         withOpts(global, Option{Code: 12, Name: "host-name", Data: []byte("printer-1")}),
		Pos:            pos(45),
	}}
	return global, subnets, hosts
}

func TestClassicPrimary(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "classic")
	got, err := ParseFile(filepath.Join(dir, "primary.conf"))
	if err != nil {
		t.Fatal(err)
	}
	global, subnets, hosts := classicShared(filepath.Join(dir, "shared.conf"), "dhcp-failover")
	want := &Config{
		Global:  global,
		Subnets: subnets,
		Hosts:   hosts,
		FailoverPeers: []*FailoverPeer{{
			Name: "dhcp-failover", Role: Primary,
			Address: "198.18.0.1", Port: 647, PeerAddress: "198.18.0.2", PeerPort: 647,
			MaxResponseDelay: 30, MaxUnackedUpdates: 10, MCLT: 1800,
			HBA: HBAFromSplit(128), Split: 128, LoadBalanceMaxSeconds: 3,
			MaxLeaseMisbalance: 15, MaxLeaseOwnership: 10, MinBalance: 60, MaxBalance: 3600,
			Pos: Pos{filepath.Join(dir, "primary.conf"), 10},
		}},
		LogFacility:     "local7",
		DDNSUpdateStyle: "none",
	}
	if diff := cmpDiff(want, got); diff != "" {
		t.Errorf("primary.conf (-want +got):\n%s", diff)
	}
}

func TestClassicSecondary(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "classic")
	got, err := ParseFile(filepath.Join(dir, "secondary.conf"))
	if err != nil {
		t.Fatal(err)
	}
	global, subnets, hosts := classicShared(filepath.Join(dir, "shared.conf"), "dhcp-failover")
	want := &Config{
		Global:  global,
		Subnets: subnets,
		Hosts:   hosts,
		FailoverPeers: []*FailoverPeer{{
			Name: "dhcp-failover", Role: Secondary,
			Address: "198.18.0.2", Port: 647, PeerAddress: "198.18.0.1", PeerPort: 647,
			MaxResponseDelay: 30, MaxUnackedUpdates: 10, Split: -1, LoadBalanceMaxSeconds: 3,
			MaxLeaseMisbalance: 15, MaxLeaseOwnership: 10, MinBalance: 60, MaxBalance: 3600,
			Pos: Pos{filepath.Join(dir, "secondary.conf"), 5},
		}},
		LogFacility:     "local7",
		DDNSUpdateStyle: "none",
	}
	if diff := cmpDiff(want, got); diff != "" {
		t.Errorf("secondary.conf (-want +got):\n%s", diff)
	}
}

func TestSingleServerExample(t *testing.T) {
	file := filepath.Join("..", "..", "examples", "single.conf")
	got, err := ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pos := func(line int) Pos { return Pos{file, line} }
	global := Params{
		DefaultLeaseTime: 600, MaxLeaseTime: 7200, Authoritative: true,
		AllowUnknownClients: true, AllowKnownClients: true, AllowBootp: true, AllowBooting: true, AllowDynamicBootp: true,
		PingCheck: true,
		Options: []Option{
			{Code: 15, Name: "domain-name", Data: []byte("example.test")},
			{Code: 6, Name: "domain-name-servers", Data: ipBytes("198.18.0.53")},
		},
	}
	subnet := global.clone()
	subnet.Options = append(subnet.Options, Option{Code: 3, Name: "routers", Data: ipBytes("198.18.0.1")})
	// Ranges outside pool blocks form an implicit pool, which (as in ISC)
	// does not hand out dynamic addresses to BOOTP clients.
	implicit := subnet.clone()
	implicit.AllowDynamicBootp = false
	want := &Config{
		Global: global,
		Subnets: []*Subnet{{
			Prefix: netip.MustParsePrefix("198.18.0.0/24"),
			Pools: []*Pool{{
				Ranges: []Range{{Start: addr("198.18.0.100"), End: addr("198.18.0.199"), Pos: pos(16)}},
				Params: implicit,
				Pos:    pos(16),
			}},
			Params: subnet,
			Pos:    pos(14),
		}},
		Hosts: []*Host{{
			Name:           "lab-pc",
			HardwareType:   1,
			HardwareAddr:   mustMAC("02:00:5e:10:00:02"),
			FixedAddresses: []netip.Addr{addr("198.18.0.10")},
			Params:         global,
			Pos:            pos(19),
		}},
		DDNSUpdateStyle: "none",
	}
	if diff := cmpDiff(want, got); diff != "" {
		t.Errorf("single.conf (-want +got):\n%s", diff)
	}
}
