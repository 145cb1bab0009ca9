package dhcp

import (
	"fmt"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/lease"
)

const (
	discoverMsg = dhcpv4.MessageTypeDiscover
	requestMsg  = dhcpv4.MessageTypeRequest
	releaseMsg  = dhcpv4.MessageTypeRelease
	declineMsg  = dhcpv4.MessageTypeDecline
	informMsg   = dhcpv4.MessageTypeInform
	bootpMsg    = dhcpv4.MessageTypeNone
)

func a(n int) string { return fmt.Sprintf("198.18.0.%d", n) }
func b(n int) string { return fmt.Sprintf("198.18.1.%d", n) }
func c(n int) string { return fmt.Sprintf("198.18.2.%d", n) }
func d(n int) string { return fmt.Sprintf("198.18.3.%d", n) }

// Shorthands for the common requests.
func disc(m byte) *pb                { return &pb{mt: discoverMsg, mac: m} }
func sel(m byte, addr string) *pb    { return &pb{mt: requestMsg, mac: m, sid: serverA, reqIP: addr} }
func reboot(m byte, addr string) *pb { return &pb{mt: requestMsg, mac: m, reqIP: addr} }
func renew(m byte, addr string) *pb  { return &pb{mt: requestMsg, mac: m, ciaddr: addr} }
func offered(addr string) outcome    { return outcome{Type: "OFFER", YIAddr: addr} }
func ack(addr string) outcome {
	return outcome{Type: "ACK", YIAddr: addr, Durable: true, Dirty: []string{addr}}
}
func nak(why string) outcome          { return outcome{Type: "NAK", Message: why} }
func dropped(why string) outcome      { return outcome{Drop: why} }
func relayed(p *pb, gi string) *pb    { p.giaddr = gi; return p }
func withCID(p *pb, cid string) *pb   { p.cid = cid; return p }
func leaseFor(p *pb, secs uint32) *pb { p.leaseTime = secs; return p }

func active(client string, starts, ends int64) leaseView {
	return leaseView{State: "active", Client: client, Starts: starts, Ends: ends}
}

func TestHandle(t *testing.T) {
	lt := int64(3600) // default-lease-time
	tests := []scenario{
		{
			name: "DORA: offer writes nothing, ACK binds and is durable",
			steps: []step{
				{at: 0, req: disc(1), want: outcome{Type: "OFFER", YIAddr: a(10), Options: map[uint8]string{
					1: "255.255.255.0", 3: serverA, 6: "198.18.0.53", 15: `"example.test"`,
					51: "3600", 53: "OFFER", 54: serverA, 58: "1800", 59: "3150",
				}}},
				{at: 1, req: &pb{mt: requestMsg, mac: 1, sid: serverA, reqIP: a(10), hostname: "one"},
					want: outcome{Type: "ACK", YIAddr: a(10), Durable: true, Dirty: []string{a(10)}, Options: map[uint8]string{
						1: "255.255.255.0", 3: serverA, 6: "198.18.0.53", 15: `"example.test"`,
						51: "3600", 53: "ACK", 54: serverA, 58: "1800", 59: "3150",
					}}},
			},
			leases: map[string]leaseView{
				a(10): {State: "active", Client: hw(1), Starts: 1, Ends: 1 + lt, Hostname: "one"},
				a(11): {State: "free"},
			},
			counts: map[int]map[lease.BindingState]int{0: {lease.Active: 1, lease.Free: 4}},
		},
		{
			name: "the client identifier names the client, not chaddr",
			steps: []step{
				{req: withCID(disc(1), "\x01c1"), want: offered(a(10))},
				{req: withCID(sel(2, a(10)), "\x01c1"), want: ack(a(10))},
				{req: disc(1), want: offered(a(11))},
				{req: withCID(disc(2), "\x01c1"), want: offered(a(10))},
				{req: withCID(disc(3), "\x01c2"), want: offered(a(13))},
			},
			leases: map[string]leaseView{a(10): active(`id:"\x01c1"`, 0, lt)},
		},
		{
			name: "an offered address is held for OfferHold seconds",
			cfg:  onlyPools(a(10), a(11), 0, 1),
			steps: []step{
				{at: 0, req: disc(1), want: offered(a(10))},
				{at: 0, req: disc(2), want: offered(a(11))},
				{at: 1, req: disc(3), want: dropped("no free leases")},
				{at: 1, req: disc(1), want: offered(a(10))},
				{at: 2, req: reboot(2, a(10)), want: nak("address offered to another client")},
				{at: 60, req: disc(3), want: offered(a(11))}, // client 2's hold ran out
				{at: 61, req: disc(4), want: offered(a(10))}, // client 1's too
			},
		},
		{
			name: "SELECTING another server: forget our offer, say nothing",
			cfg:  onlyPools(a(10), a(10), 0),
			steps: []step{
				{req: disc(1), want: offered(a(10))},
				{req: disc(2), want: dropped("no free leases")},
				{req: &pb{mt: requestMsg, mac: 1, sid: "198.18.0.99", reqIP: a(10)}, want: dropped("client chose another server")},
				{req: disc(2), want: offered(a(10))},
			},
			counts: map[int]map[lease.BindingState]int{0: {lease.Free: 1}},
		},
		{
			name: "SELECTING us for an address that is taken: NAK",
			steps: []step{
				{req: disc(1), want: offered(a(10))},
				{req: sel(1, a(10)), want: ack(a(10))},
				{req: disc(2), want: offered(a(11))},
				{req: withCID(sel(2, a(10)), "\x01two"), want: outcome{Type: "NAK", Message: "address leased to another client", Options: map[uint8]string{
					53: "NAK", 54: serverA, 56: `"address leased to another client"`, 61: `"\x01two"`,
				}}},
			},
			leases: map[string]leaseView{a(10): active(hw(1), 0, lt), a(11): {State: "free"}},
		},
		{
			name: "INIT-REBOOT",
			steps: []step{
				{at: 0, req: disc(1), want: offered(a(10))},
				{at: 10, req: sel(1, a(10)), want: ack(a(10))},
				{at: 100, req: reboot(1, a(10)), want: ack(a(10))},
				// A free address the client asks for is honoured, and the
				// lease it held before on this network is released.
				{at: 200, req: reboot(1, a(13)), want: outcome{Type: "ACK", YIAddr: a(13), Durable: true, Dirty: []string{a(13), a(10)}}},
				{at: 201, req: reboot(1, b(10)), want: nak("requested address not on client's network")},
				{at: 202, req: reboot(1, "198.18.9.9"), want: nak("requested address not on client's network")},
				{at: 203, req: reboot(2, a(13)), want: nak("address leased to another client")},
				{at: 204, req: reboot(2, a(12)), want: nak("address reserved for a host")},
				{at: 205, req: reboot(2, a(99)), want: nak("requested address is not in a pool")},
			},
			leases: map[string]leaseView{
				a(10): {State: "free", Client: hw(1), Starts: 10, Ends: 200},
				a(13): active(hw(1), 200, 200+lt),
			},
		},
		{
			name: "RENEWING is unicast from anywhere: ciaddr is trusted",
			steps: []step{
				{at: 0, req: relayed(disc(1), relayB), want: offered(b(10))},
				{at: 0, req: relayed(sel(1, b(10)), relayB), want: ack(b(10))},
				// Unicast to the server's interface on subnet A: no giaddr.
				{at: 1800, req: renew(1, b(10)), want: outcome{Type: "ACK", YIAddr: b(10), CIAddr: b(10), Durable: true, Dirty: []string{b(10)}}},
				{at: 1801, req: renew(2, b(10)), want: nak("address leased to another client")},
				// Ran out a moment ago, the timer has not expired it yet.
				{at: 5500, req: renew(1, b(10)), want: outcome{Type: "ACK", YIAddr: b(10), CIAddr: b(10), Durable: true, Dirty: []string{b(10)}}},
				{at: 20000, expire: true, want: outcome{Dirty: []string{b(10)}}},
				{at: 20001, req: renew(1, b(10)), want: outcome{Type: "ACK", YIAddr: b(10), CIAddr: b(10), Durable: true, Dirty: []string{b(10)}}},
				{at: 20002, req: renew(1, "198.18.9.9"), want: dropped("address in no known subnet")},
			},
			leases: map[string]leaseView{b(10): active(hw(1), 20001, 20001+lt)},
		},
		{
			name: "REBINDING through a relay is checked against the relay's network",
			steps: []step{
				{req: relayed(disc(1), relayB), want: offered(b(10))},
				{req: relayed(sel(1, b(10)), relayB), want: ack(b(10))},
				{req: relayed(renew(1, b(10)), relayC), want: outcome{Type: "ACK", YIAddr: b(10), CIAddr: b(10), Durable: true, Dirty: []string{b(10)}}},
				{req: relayed(renew(1, b(10)), "198.18.0.2"), want: outcome{Type: "NAK", Broadcast: true, Message: "requested address not on client's network"}},
				{req: relayed(renew(1, b(10)), relayD), want: dropped("not authoritative: requested address not on client's network")},
				{req: relayed(renew(1, b(10)), "198.18.9.1"), want: outcome{Type: "NAK", Broadcast: true, Message: "wrong network"}},
			},
		},
		{
			name: "a server that is not authoritative never NAKs",
			steps: []step{
				{req: relayed(disc(1), relayD), want: offered(d(10))},
				{req: relayed(sel(1, d(10)), relayD), want: ack(d(10))},
				{req: relayed(reboot(2, d(10)), relayD), want: dropped("not authoritative: address leased to another client")},
				{req: relayed(sel(2, d(10)), relayD), want: dropped("not authoritative: address leased to another client")},
				{req: relayed(reboot(2, a(10)), relayD), want: dropped("not authoritative: requested address not on client's network")},
				{req: relayed(reboot(2, d(99)), relayD), want: dropped("not authoritative: requested address is not in a pool")},
				{req: relayed(&pb{mt: informMsg, mac: 2, ciaddr: d(50)}, relayD), want: dropped("not authoritative: INFORM")},
			},
		},
		{
			name: "RELEASE, and the client comes back to its address",
			steps: []step{
				{at: 0, req: disc(1), want: offered(a(10))},
				{at: 0, req: sel(1, a(10)), want: ack(a(10))},
				{at: 0, req: disc(2), want: offered(a(11))},
				{at: 0, req: sel(2, a(11)), want: ack(a(11))},
				{at: 50, req: &pb{mt: releaseMsg, mac: 2, ciaddr: a(10), sid: serverA}, want: dropped("RELEASE of a lease the client does not hold")},
				{at: 100, req: &pb{mt: releaseMsg, mac: 1, ciaddr: a(10), sid: serverA}, want: outcome{Drop: "RELEASE handled", Dirty: []string{a(10)}}},
				{at: 101, req: disc(3), want: offered(a(13))},
				{at: 102, req: disc(1), want: offered(a(10))},
			},
			leases: map[string]leaseView{a(10): {State: "free", Client: hw(1), Ends: 100}},
			counts: map[int]map[lease.BindingState]int{0: {lease.Active: 1, lease.Free: 4}},
		},
		{
			name: "DECLINE abandons; abandoned addresses are the last resort",
			cfg:  onlyPools(a(10), a(11), 0),
			steps: []step{
				{at: 0, req: disc(1), want: offered(a(10))},
				{at: 0, req: sel(1, a(10)), want: ack(a(10))},
				{at: 5, req: &pb{mt: declineMsg, mac: 2, reqIP: a(10), sid: serverA}, want: dropped("DECLINE of a lease the client does not hold")},
				{at: 5, req: &pb{mt: declineMsg, mac: 1, reqIP: a(10), sid: serverA}, want: outcome{Drop: "DECLINE handled", Dirty: []string{a(10)}}},
				{at: 6, req: disc(1), want: offered(a(11))},
				{at: 6, req: sel(1, a(11)), want: ack(a(11))},
				{at: 7, req: disc(2), want: offered(a(10))},
				{at: 7, req: sel(2, a(10)), want: ack(a(10))},
				{at: 8, req: disc(3), want: dropped("no free leases")},
			},
			leases: map[string]leaseView{a(10): active(hw(2), 7, 7+lt), a(11): active(hw(1), 6, 6+lt)},
		},
		{
			name: "a client may reclaim an abandoned address by asking for it",
			steps: []step{
				{at: 0, req: disc(1), want: offered(a(10))},
				{at: 0, req: sel(1, a(10)), want: ack(a(10))},
				{at: 1, req: &pb{mt: declineMsg, mac: 1, reqIP: a(10)}, want: outcome{Drop: "DECLINE handled", Dirty: []string{a(10)}}},
				{at: 2, req: &pb{mt: discoverMsg, mac: 3, reqIP: a(10)}, want: offered(a(11))},
				{at: 3, req: reboot(3, a(10)), want: ack(a(10))},
			},
			leases: map[string]leaseView{a(10): active(hw(3), 3, 3+lt)},
		},
		{
			name: "INFORM: configuration only",
			steps: []step{
				{req: &pb{mt: informMsg, mac: 1, ciaddr: a(77), prl: []uint8{1, 3, 6}}, want: outcome{Type: "ACK", CIAddr: a(77), Options: map[uint8]string{
					1: "255.255.255.0", 3: serverA, 6: "198.18.0.53", 53: "ACK", 54: serverA,
				}}},
				{req: relayed(&pb{mt: informMsg, mac: 1, ciaddr: b(50), prl: []uint8{3}}, relayB), want: outcome{Type: "ACK", CIAddr: b(50), Options: map[uint8]string{
					1: "255.255.255.0", 3: relayB, 53: "ACK", 54: serverA,
				}}},
				{req: &pb{mt: informMsg, mac: 1, ciaddr: "198.18.9.9"}, want: dropped("INFORM from unknown network")},
			},
			counts: map[int]map[lease.BindingState]int{0: {lease.Free: 5}},
		},
		{
			name: "a returning client gets its address back after it expired",
			steps: []step{
				{at: 0, req: disc(1), want: offered(a(10))},
				{at: 0, req: leaseFor(sel(1, a(10)), 100), want: ack(a(10))},
				{at: 0, req: disc(2), want: offered(a(11))},
				{at: 200, expire: true, want: outcome{Dirty: []string{a(10)}}},
				{at: 300, req: disc(3), want: offered(a(13))},
				{at: 300, req: disc(1), want: offered(a(10))},
				// Unless someone else took it meanwhile.
				{at: 301, req: reboot(4, a(10)), want: nak("address offered to another client")},
				{at: 400, req: reboot(4, a(10)), want: ack(a(10))},
				// Oldest first: .14 was never used, .11 was offered at t0.
				{at: 401, req: disc(1), want: offered(a(14))},
			},
			leases: map[string]leaseView{a(10): active(hw(4), 400, 400+lt)},
		},
		{
			name: "DISCOVER: a requested address is honoured when free and on the network",
			steps: []step{
				{req: &pb{mt: discoverMsg, mac: 1, reqIP: a(13)}, want: offered(a(13))},
				{req: &pb{mt: discoverMsg, mac: 2, reqIP: a(13)}, want: offered(a(10))},
				{req: &pb{mt: discoverMsg, mac: 3, reqIP: b(10)}, want: offered(a(11))},
				{req: &pb{mt: discoverMsg, mac: 4, reqIP: a(12)}, want: offered(a(14))},
				{req: &pb{mt: discoverMsg, mac: 5, reqIP: a(50)}, want: offered(a(200))},
			},
		},
		{
			name: "host reservations win",
			steps: []step{
				{req: &pb{mt: discoverMsg, mac: macPrinter, reqIP: a(10)}, want: outcome{Type: "OFFER", YIAddr: a(100), Options: map[uint8]string{
					1: "255.255.255.0", 3: serverA, 6: "198.18.0.53", 12: `"printer"`, 15: `"example.test"`,
					51: "3600", 53: "OFFER", 54: serverA, 58: "1800", 59: "3150",
				}}},
				{req: sel(macPrinter, a(100)), want: outcome{Type: "ACK", YIAddr: a(100)}},
				{req: reboot(macPrinter, a(10)), want: nak("requested address is incorrect")},
				{req: relayed(withCID(disc(7), "\x01fixed"), relayB), want: offered(b(100))},
				// Its reservation is on another network: a dynamic address.
				{req: withCID(disc(7), "\x01fixed"), want: offered(a(10))},
				{req: relayed(disc(macTwo), relayC), want: offered(b(101))},
				{req: relayed(reboot(macTwo, c(101)), relayB), want: outcome{Type: "ACK", YIAddr: c(101), Options: map[uint8]string{
					1: "255.255.255.0", 3: relayC, 6: "198.18.0.53", 15: `"example.test"`,
					51: "3600", 53: "ACK", 54: serverA, 58: "1800", 59: "3150",
				}}},
				{req: renew(macTwo, c(101)), want: outcome{Type: "ACK", YIAddr: c(101), CIAddr: c(101)}},
			},
			counts: map[int]map[lease.BindingState]int{0: {lease.Free: 5}, 3: {lease.Free: 2}, 4: {lease.Free: 3}},
		},
		{
			name: "relay: giaddr picks the subnet, option 82 is echoed, NAK is broadcast",
			steps: []step{
				{req: &pb{mt: discoverMsg, mac: 1, giaddr: relayB, agent: []byte{1, 4, 'p', 'o', 'r', 't'}}, want: outcome{Type: "OFFER", YIAddr: b(10), Options: map[uint8]string{
					1: "255.255.255.0", 3: relayB, 6: "198.18.0.53", 15: `"example.test"`,
					51: "3600", 53: "OFFER", 54: serverA, 58: "1800", 59: "3150", 82: `"\x01\x04port"`,
				}}},
				{req: relayed(sel(1, b(10)), relayB), want: ack(b(10))},
				{req: &pb{mt: requestMsg, mac: 2, giaddr: relayB, reqIP: b(10), agent: []byte{2, 1, 'x'}}, want: outcome{Type: "NAK", Broadcast: true, Message: "address leased to another client", Options: map[uint8]string{
					53: "NAK", 54: serverA, 56: `"address leased to another client"`, 82: `"\x02\x01x"`,
				}}},
			},
		},
		{
			name: "shared network: siblings allocate across subnets",
			steps: []step{
				{req: relayed(disc(1), relayB), want: offered(b(10))},
				{req: relayed(sel(1, b(10)), relayB), want: ack(b(10))},
				{req: relayed(disc(2), relayB), want: offered(b(11))},
				{req: &pb{mt: discoverMsg, mac: 3, giaddr: relayB, prl: []uint8{3}}, want: outcome{Type: "OFFER", YIAddr: c(10), Options: map[uint8]string{
					1: "255.255.255.0", 3: relayC, 51: "3600", 53: "OFFER", 54: serverA, 58: "1800", 59: "3150",
				}}},
				{req: relayed(sel(3, c(10)), relayB), want: ack(c(10))},
			},
			counts: map[int]map[lease.BindingState]int{3: {lease.Active: 1, lease.Free: 1}, 4: {lease.Active: 1, lease.Free: 2}},
		},
		{
			name: "deny unknown-clients pools serve known clients only",
			cfg:  onlyPools(a(10), a(10), 0, 1),
			steps: []step{
				{req: disc(1), want: offered(a(10))},
				{req: sel(1, a(10)), want: ack(a(10))},
				{req: disc(2), want: dropped("no free leases")},
				{req: reboot(2, a(50)), want: nak("client not permitted in pool")},
				{req: disc(macKnown), want: offered(a(50))},
				{req: sel(macKnown, a(50)), want: ack(a(50))},
			},
		},
		{
			name: "expired leases are reclaimed and reused",
			cfg:  onlyPools(a(10), a(10), 0),
			steps: []step{
				{at: 0, req: disc(1), want: offered(a(10))},
				{at: 0, req: leaseFor(sel(1, a(10)), 100), want: ack(a(10))},
				{at: 50, req: disc(2), want: dropped("no free leases")},
				{at: 99, expire: true},
				{at: 100, expire: true, want: outcome{Dirty: []string{a(10)}}},
				{at: 101, req: disc(2), want: offered(a(10))},
				{at: 101, req: sel(2, a(10)), want: ack(a(10))},
			},
			leases: map[string]leaseView{a(10): active(hw(2), 101, 101+lt)},
		},
		{
			name: "BOOTP: dynamic-bootp ranges and fixed addresses",
			steps: []step{
				{at: 0, req: &pb{mt: bootpMsg, mac: 1}, want: outcome{Type: "BOOTREPLY", YIAddr: a(200), Durable: true, Dirty: []string{a(200)}, Options: map[uint8]string{
					1: "255.255.255.0", 3: serverA, 6: "198.18.0.53", 15: `"example.test"`,
				}}},
				{at: 5, req: &pb{mt: bootpMsg, mac: 1}, want: outcome{Type: "BOOTREPLY", YIAddr: a(200), Durable: true, Dirty: []string{a(200)}}},
				{at: 6, req: &pb{mt: bootpMsg, mac: 2, cid: "\x01b2"}, want: outcome{Type: "BOOTREPLY", YIAddr: a(201), Durable: true, Dirty: []string{a(201)}}},
				{at: 7, req: &pb{mt: bootpMsg, mac: 2, cid: "\x01b2"}, want: outcome{Type: "BOOTREPLY", YIAddr: a(201), Durable: true, Dirty: []string{a(201)}}},
				{at: 8, req: &pb{mt: bootpMsg, mac: 3}, want: dropped("no dynamic-bootp address")},
				{at: 9, req: &pb{mt: bootpMsg, mac: macPrinter}, want: outcome{Type: "BOOTREPLY", YIAddr: a(100), Options: map[uint8]string{
					1: "255.255.255.0", 3: serverA, 6: "198.18.0.53", 12: `"printer"`, 15: `"example.test"`,
				}}},
			},
			leases: map[string]leaseView{
				a(200): {State: "active", Client: hw(1), Starts: 5, Ends: -1, Bootp: true},
				a(201): {State: "active", Client: `id:"\x01b2"`, Starts: 7, Ends: -1, Bootp: true},
			},
			counts: map[int]map[lease.BindingState]int{0: {lease.Free: 5}, 2: {lease.Active: 2}},
		},
		{
			name: "BOOTP: not without dynamic bootp clients allowed",
			cfg:  func(c *config.Config) { c.Subnets[0].Pools[2].Params.AllowDynamicBootp = false },
			steps: []step{
				{req: &pb{mt: bootpMsg, mac: 1}, want: dropped("no dynamic-bootp address")},
			},
		},
	}
	for _, sc := range tests {
		t.Run(sc.name, func(t *testing.T) { runScenario(t, sc) })
	}
}
