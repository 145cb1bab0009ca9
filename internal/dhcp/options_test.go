package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/lease"
)

func TestLeaseTime(t *testing.T) {
	type times struct{ Lease, T1, T2 string }
	tests := []struct {
		name          string
		def, max, min uint32
		requested     uint32 // 0: option absent
		want          times
	}{
		{name: "default", def: 3600, max: 7200, want: times{"3600", "1800", "3150"}},
		{name: "requested", def: 3600, max: 7200, requested: 1000, want: times{"1000", "500", "875"}},
		{name: "requested over max", def: 3600, max: 7200, requested: 100000, want: times{"7200", "3600", "6300"}},
		{name: "requested infinite", def: 3600, max: 7200, requested: 0xffffffff, want: times{"7200", "3600", "6300"}},
		{name: "requested under min", def: 3600, max: 7200, min: 300, requested: 60, want: times{"300", "150", "262"}},
		{name: "default over max", def: 10000, max: 7200, want: times{"7200", "3600", "6300"}},
		// ISC caps at max first, then raises to min.
		{name: "min over max", def: 3600, max: 7200, min: 9000, want: times{"9000", "4500", "7875"}},
		{name: "odd", def: 7, max: 7200, want: times{"7", "3", "6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *config.Config) {
				p := &c.Subnets[0].Pools[0].Params
				p.DefaultLeaseTime, p.MaxLeaseTime, p.MinLeaseTime = tc.def, tc.max, tc.min
			}, nil)
			for i, mt := range []dhcpv4.MessageType{discoverMsg, requestMsg} {
				req := &pb{mt: mt, mac: 1, leaseTime: tc.requested}
				if mt == requestMsg {
					req.sid, req.reqIP = serverA, a(10)
				}
				res := f.h.Handle(t0+int64(i), req.build(t))
				if res.Reply == nil {
					t.Fatalf("%v: no reply (%s)", mt, res.Drop)
				}
				o := showOptions(res.Reply.Options)
				if diff := cmp.Diff(tc.want, times{o[51], o[58], o[59]}); diff != "" {
					t.Errorf("%v lease times (-want +got):\n%s", mt, diff)
				}
			}
			l, _ := f.db.Get(lease.AddrToU32(mustAddr(a(10))))
			if got := fmt.Sprint(l.Ends - (t0 + 1)); got != tc.want.Lease {
				t.Errorf("bound lease ends after %s s, want %s", got, tc.want.Lease)
			}
		})
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParameterRequestList(t *testing.T) {
	all := map[uint8]string{
		1: "255.255.255.0", 3: serverA, 6: "198.18.0.53", 15: `"example.test"`,
		51: "3600", 53: "OFFER", 54: serverA, 58: "1800", 59: "3150",
	}
	keep := func(codes ...uint8) map[uint8]string {
		m := make(map[uint8]string)
		for _, c := range codes {
			m[c] = all[c]
		}
		return m
	}
	tests := []struct {
		name string
		prl  []uint8 // nil: no option 55
		want map[uint8]string
	}{
		{"no list: everything configured", nil, all},
		// The reply's own options and the subnet mask are always sent.
		{"routers only", []uint8{3}, keep(1, 3, 51, 53, 54, 58, 59)},
		{"mask and DNS", []uint8{1, 6}, keep(1, 6, 51, 53, 54, 58, 59)},
		{"order does not matter", []uint8{15, 6, 3}, all},
		{"unknown codes only", []uint8{200, 201}, keep(1, 51, 53, 54, 58, 59)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			res := f.h.Handle(t0, (&pb{mt: discoverMsg, mac: 1, prl: tc.prl}).build(t))
			if res.Reply == nil {
				t.Fatalf("no reply: %s", res.Drop)
			}
			if diff := cmp.Diff(tc.want, showOptions(res.Reply.Options)); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerIdentifier(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*config.Config)
		local   []string
		giaddr  string
		wantSID string
	}{
		{name: "receiving interface on the client's subnet", local: []string{"198.18.100.1/24", serverA + "/24"}, wantSID: serverA},
		{name: "relayed: the interface's first address", local: []string{"198.18.100.1/24"}, giaddr: relayB, wantSID: "198.18.100.1"},
		{
			name:    "configured in the pool",
			cfg:     func(c *config.Config) { c.Subnets[1].Pools[0].Params.ServerIdentifier = mustAddr("198.18.100.9") },
			giaddr:  relayB,
			wantSID: "198.18.100.9",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.cfg, nil)
			res := f.h.Handle(t0, (&pb{mt: discoverMsg, mac: 1, giaddr: tc.giaddr, local: tc.local}).build(t))
			if res.Reply == nil {
				t.Fatalf("no reply: %s", res.Drop)
			}
			if got := net.IP(res.Reply.Options.Get(dhcpv4.OptionServerIdentifier)).String(); got != tc.wantSID {
				t.Fatalf("server identifier %s, want %s", got, tc.wantSID)
			}
			// The client answers the offer naming that identifier: it is ours.
			yi := res.Reply.YourIPAddr.String()
			res = f.h.Handle(t0+1, (&pb{mt: requestMsg, mac: 1, giaddr: tc.giaddr, local: tc.local, sid: tc.wantSID, reqIP: yi}).build(t))
			if res.Reply == nil || res.Reply.MessageType() != dhcpv4.MessageTypeAck {
				t.Errorf("REQUEST naming %s: %v %s", tc.wantSID, res.Reply, res.Drop)
			}
		})
	}
}

func TestDrops(t *testing.T) {
	tests := []struct {
		name   string
		packet func(t *testing.T) Request
		want   string
	}{
		{"a reply", func(t *testing.T) Request {
			r := (&pb{mt: discoverMsg, mac: 1}).build(t)
			r.Packet.OpCode = dhcpv4.OpcodeBootReply
			return r
		}, "not a BOOTREQUEST"},
		{"no chaddr, no client id", func(t *testing.T) Request {
			r := (&pb{mt: discoverMsg, mac: 1}).build(t)
			r.Packet.ClientHWAddr = nil
			return r
		}, "no client identity"},
		{"malformed message type", func(t *testing.T) Request {
			r := (&pb{mt: discoverMsg, mac: 1}).build(t)
			r.Packet.Options[uint8(dhcpv4.OptionDHCPMessageType)] = []byte{1, 1}
			return r
		}, "malformed message type"},
		{"server-to-client type", func(t *testing.T) Request { return (&pb{mt: dhcpv4.MessageTypeOffer, mac: 1}).build(t) }, "message type not for a server"},
		{"REQUEST without an address", func(t *testing.T) Request { return (&pb{mt: requestMsg, mac: 1}).build(t) }, "REQUEST without an address"},
		{"unknown network", func(t *testing.T) Request {
			return (&pb{mt: discoverMsg, mac: 1, local: []string{"198.19.0.1/24"}}).build(t)
		}, "no subnet for client"},
		{"unknown relay", func(t *testing.T) Request { return (&pb{mt: discoverMsg, mac: 1, giaddr: "198.19.0.1"}).build(t) }, "no subnet for client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			res := f.h.Handle(t0, tc.packet(t))
			if diff := cmp.Diff(Result{Drop: tc.want}, res); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got := f.h.Stats().Drops()[tc.want]; got != 1 {
				t.Errorf("drop counter %q = %d, want 1", tc.want, got)
			}
		})
	}
}
