package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// The test network, all in 198.18.0.0/15:
//
//	subnet A 198.18.0.0/24   the server's own interface, 198.18.0.1
//	  pool 0  .10-.14          (.12 is also host "in-pool"'s fixed address)
//	  pool 1  .50-.51          deny unknown-clients
//	  pool 2  .200-.201        range dynamic-bootp
//	shared-network "campus", relayed:
//	  subnet B 198.18.1.0/24   relay 198.18.1.1, pool 3 .10-.11
//	  subnet C 198.18.2.0/24   relay 198.18.2.1, pool 4 .10-.12
//	subnet D 198.18.3.0/24   not authoritative, relay 198.18.3.1, pool 5 .10-.12
//
// Hosts: "printer" (hardware 02:00:00:00:00:f1) fixed at 198.18.0.100 with
// its own host-name option; "by-id" (client id "\x01fixed") fixed at
// 198.18.1.100; "known" (…:f3) without address; "in-pool" (…:f4) fixed at
// 198.18.0.12; "two" (…:f5) fixed at 198.18.1.101 and 198.18.2.101.

const (
	macPrinter = 0xf1
	macKnown   = 0xf3
	macInPool  = 0xf4
	macTwo     = 0xf5
	serverA    = "198.18.0.1"
	relayB     = "198.18.1.1"
	relayC     = "198.18.2.1"
	relayD     = "198.18.3.1"
	t0         = 1_000_000 // "now" at the start of every scenario
)

func ipb(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func mac(n byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, n} }

var (
	optDNS    = config.Option{Code: 6, Name: "domain-name-servers", Data: ipb("198.18.0.53")}
	optDomain = config.Option{Code: 15, Name: "domain-name", Data: []byte("example.test")}
	optHost   = config.Option{Code: 12, Name: "host-name", Data: []byte("printer")}
)

func routers(a string) config.Option { return config.Option{Code: 3, Name: "routers", Data: ipb(a)} }

// with returns a copy of base (options cloned) changed by fn.
func with(base config.Params, fn func(p *config.Params)) config.Params {
	base.Options = slices.Clone(base.Options)
	if fn != nil {
		fn(&base)
	}
	return base
}

func setOption(p *config.Params, o config.Option) {
	for i := range p.Options {
		if p.Options[i].Code == o.Code {
			p.Options[i] = o
			return
		}
	}
	p.Options = append(p.Options, o)
}

func rng(lo, hi string) config.Range {
	return config.Range{Start: netip.MustParseAddr(lo), End: netip.MustParseAddr(hi)}
}

// testConfig builds the network above by hand, with the values the
// parser would resolve (ISC defaults, inheritance applied).
func testConfig() *config.Config {
	global := config.Params{
		DefaultLeaseTime: 3600, MaxLeaseTime: 7200, Authoritative: true,
		AllowUnknownClients: true, AllowBootp: true, AllowDynamicBootp: true,
		Options: []config.Option{optDNS, optDomain},
	}
	subnet := func(prefix, router, shared string, fn func(*config.Params)) *config.Subnet {
		return &config.Subnet{
			Prefix: netip.MustParsePrefix(prefix), SharedNetwork: shared,
			Params: with(global, func(p *config.Params) {
				setOption(p, routers(router))
				if fn != nil {
					fn(p)
				}
			}),
		}
	}
	pool := func(s *config.Subnet, fn func(*config.Params), ranges ...config.Range) *config.Pool {
		return &config.Pool{Ranges: ranges, Params: with(s.Params, fn)}
	}
	a := subnet("198.18.0.0/24", serverA, "", nil)
	dyn := rng("198.18.0.200", "198.18.0.201")
	dyn.DynamicBootp = true
	a.Pools = []*config.Pool{
		pool(a, nil, rng("198.18.0.10", "198.18.0.14")),
		pool(a, func(p *config.Params) { p.AllowUnknownClients = false }, rng("198.18.0.50", "198.18.0.51")),
		pool(a, nil, dyn),
	}
	b := subnet("198.18.1.0/24", relayB, "campus", nil)
	b.Pools = []*config.Pool{pool(b, nil, rng("198.18.1.10", "198.18.1.11"))}
	c := subnet("198.18.2.0/24", relayC, "campus", nil)
	c.Pools = []*config.Pool{pool(c, nil, rng("198.18.2.10", "198.18.2.12"))}
	d := subnet("198.18.3.0/24", relayD, "", func(p *config.Params) { p.Authoritative = false })
	d.Pools = []*config.Pool{pool(d, nil, rng("198.18.3.10", "198.18.3.12"))}

	host := func(name string, hw byte, cid string, fixed ...string) *config.Host {
		h := &config.Host{Name: name, Params: with(global, nil)}
		if hw != 0 {
			h.HardwareType, h.HardwareAddr = 1, mac(hw)
		}
		if cid != "" {
			h.ClientID = []byte(cid)
		}
		for _, f := range fixed {
			h.FixedAddresses = append(h.FixedAddresses, netip.MustParseAddr(f))
		}
		return h
	}
	printer := host("printer", macPrinter, "", "198.18.0.100")
	setOption(&printer.Params, optHost)
	return &config.Config{
		Global:         global,
		Subnets:        []*config.Subnet{a, b, c, d},
		SharedNetworks: []*config.SharedNetwork{{Name: "campus", Subnets: []*config.Subnet{b, c}}},
		Hosts: []*config.Host{
			printer,
			host("by-id", 0, "\x01fixed", "198.18.1.100"),
			host("known", macKnown, ""),
			host("in-pool", macInPool, "", "198.18.0.12"),
			host("two", macTwo, "", "198.18.1.101", "198.18.2.101"),
		},
	}
}

// pb describes a request packet. Every field is explicit, so packets are
// the same on every run.
type pb struct {
	mt        dhcpv4.MessageType // MessageTypeNone: a BOOTP request
	mac       byte
	cid       string
	ciaddr    string
	giaddr    string
	reqIP     string
	sid       string
	leaseTime uint32
	prl       []uint8
	hostname  string
	agent     []byte // option 82, raw
	local     []string
}

func (b pb) build(t testing.TB) Request {
	t.Helper()
	addr := func(s string) net.IP {
		if s == "" {
			return net.IPv4zero.To4()
		}
		return net.IP(ipb(s))
	}
	p := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        iana.HWTypeEthernet,
		TransactionID: dhcpv4.TransactionID{0x74, 0x64, byte(b.mt), b.mac},
		ClientIPAddr:  addr(b.ciaddr),
		YourIPAddr:    addr(""),
		ServerIPAddr:  addr(""),
		GatewayIPAddr: addr(b.giaddr),
		ClientHWAddr:  mac(b.mac),
		Options:       dhcpv4.Options{},
	}
	if b.giaddr != "" {
		p.HopCount = 1
	}
	if b.mt != dhcpv4.MessageTypeNone {
		p.UpdateOption(dhcpv4.OptMessageType(b.mt))
	}
	if b.cid != "" {
		p.UpdateOption(dhcpv4.OptClientIdentifier([]byte(b.cid)))
	}
	if b.reqIP != "" {
		p.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IP(ipb(b.reqIP))))
	}
	if b.sid != "" {
		p.UpdateOption(dhcpv4.OptServerIdentifier(net.IP(ipb(b.sid))))
	}
	if b.leaseTime != 0 {
		p.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Duration(b.leaseTime) * time.Second))
	}
	if b.prl != nil {
		p.Options[uint8(dhcpv4.OptionParameterRequestList)] = b.prl
	}
	if b.hostname != "" {
		p.UpdateOption(dhcpv4.OptHostName(b.hostname))
	}
	if b.agent != nil {
		p.Options[uint8(dhcpv4.OptionRelayAgentInformation)] = b.agent
	}
	// Decode what would go on the wire, so the handler sees what a socket
	// would hand it.
	wire, err := dhcpv4.FromBytes(p.ToBytes())
	if err != nil {
		t.Fatalf("test packet does not decode: %v", err)
	}
	local := b.local
	if local == nil {
		local = []string{serverA + "/24"}
	}
	req := Request{Packet: wire}
	for _, l := range local {
		req.LocalAddrs = append(req.LocalAddrs, netip.MustParsePrefix(l))
	}
	return req
}

// outcome is what a step expects from the handler.
type outcome struct {
	Type      string // "OFFER", "ACK", "NAK", "BOOTREPLY"; "" for silence
	YIAddr    string // "" for 0.0.0.0
	CIAddr    string
	Broadcast bool
	Message   string // option 56, the NAK's reason
	Durable   bool
	Drop      string
	// Options, when not nil, is the reply's complete option set,
	// rendered by showOptions.
	Options map[uint8]string
	// Dirty lists the leases the request changed (drained after it).
	Dirty []string
}

func showIP(ip net.IP) string {
	if ip == nil || ip.IsUnspecified() {
		return ""
	}
	return ip.String()
}

// showOptions renders options readably: addresses dotted, times and
// counts in decimal, names as strings.
func showOptions(o dhcpv4.Options) map[uint8]string {
	m := make(map[uint8]string, len(o))
	for code, v := range o {
		switch code {
		case 1, 3, 6, 28, 50, 54:
			var parts []string
			for i := 0; i+4 <= len(v); i += 4 {
				parts = append(parts, net.IP(v[i:i+4]).String())
			}
			m[code] = strings.Join(parts, ",")
		case 51, 58, 59:
			if len(v) == 4 {
				m[code] = fmt.Sprint(uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3]))
			} else {
				m[code] = fmt.Sprintf("%x", v)
			}
		case 53:
			m[code] = dhcpv4.MessageType(v[0]).String()
		case 12, 15, 56, 61, 82:
			m[code] = fmt.Sprintf("%q", v)
		default:
			m[code] = fmt.Sprintf("%x", v)
		}
	}
	return m
}

func describe(t *testing.T, res Result, wantOptions bool) outcome {
	t.Helper()
	o := outcome{Durable: res.Durable, Drop: res.Drop}
	r := res.Reply
	if r == nil {
		return o
	}
	checkWire(t, r)
	o.Drop = res.Drop
	o.Type = "BOOTREPLY"
	if r.Options.Has(dhcpv4.OptionDHCPMessageType) {
		o.Type = strings.TrimPrefix(r.MessageType().String(), "DHCP")
		o.Type = strings.ToUpper(o.Type)
	}
	o.YIAddr, o.CIAddr = showIP(r.YourIPAddr), showIP(r.ClientIPAddr)
	o.Broadcast = r.IsBroadcast()
	o.Message = string(r.Options.Get(dhcpv4.OptionMessage))
	if wantOptions {
		o.Options = showOptions(r.Options)
	}
	return o
}

// checkWire encodes a reply and checks what every reply must satisfy on
// the wire: it decodes, it is a BOOTREPLY, and option 82, if echoed, is
// the last option (RFC 3046 §2.1).
func checkWire(t *testing.T, r *dhcpv4.DHCPv4) {
	t.Helper()
	b := r.ToBytes()
	back, err := dhcpv4.FromBytes(b)
	if err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	if back.OpCode != dhcpv4.OpcodeBootReply {
		t.Errorf("reply op = %v", back.OpCode)
	}
	opts := b[240:]
	last := -1
	for i := 0; i < len(opts) && opts[i] != 255; {
		if opts[i] == 0 {
			i++
			continue
		}
		last = int(opts[i])
		i += 2 + int(opts[i+1])
	}
	if r.Options.Has(dhcpv4.OptionRelayAgentInformation) && last != 82 {
		t.Errorf("option 82 is not the last option (last is %d)", last)
	}
}

// leaseView is what the tests check of a lease.
type leaseView struct {
	State    string
	Client   string // client id, else hardware address
	Starts   int64  // relative to t0
	Ends     int64  // relative to t0; -1 for never
	Hostname string
	Bootp    bool
	TSTP     int64 // relative to t0; 0 when unset
}

func viewLease(l *lease.Lease) leaseView {
	v := leaseView{State: l.State.String(), Hostname: l.Hostname, Bootp: l.Flags&lease.FlagBootp != 0}
	switch {
	case l.ClientID != "":
		v.Client = fmt.Sprintf("id:%q", l.ClientID)
	case l.HLen > 0:
		v.Client = l.HardwareAddr().String()
	}
	if l.Starts != 0 {
		v.Starts = l.Starts - t0
	}
	if l.TSTP != 0 {
		v.TSTP = l.TSTP - t0
	}
	switch l.Ends {
	case 0:
	case lease.Never:
		v.Ends = -1
	default:
		v.Ends = l.Ends - t0
	}
	return v
}

// step is one event of a scenario: a request, or (expire) the server
// loop's timer running DB.Expire and ExpireOffers.
type step struct {
	at     int64 // seconds after t0
	req    *pb
	expire bool
	want   outcome
}

type scenario struct {
	name   string
	cfg    func(c *config.Config)
	policy Policy
	setup  func(t *testing.T, db *lease.DB)
	steps  []step
	// leases maps addresses to the expected end state.
	leases map[string]leaseView
	// counts maps pool indexes to expected state counts.
	counts map[int]map[lease.BindingState]int
}

type fixture struct {
	cfg *config.Config
	db  *lease.DB
	h   *Handler
}

func newFixture(t *testing.T, mutate func(*config.Config), policy Policy) *fixture {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(cfg)
	}
	db, err := BuildDB(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{cfg: cfg, db: db, h: NewHandler(cfg, db, policy, nil)}
}

func drain(db *lease.DB) []string {
	var out []string
	db.DrainDirty(func(l *lease.Lease) { out = append(out, l.Addr().String()) })
	return out
}

func runScenario(t *testing.T, sc scenario) *fixture {
	t.Helper()
	f := newFixture(t, sc.cfg, sc.policy)
	if sc.setup != nil {
		sc.setup(t, f.db)
	}
	drain(f.db)
	for i, st := range sc.steps {
		now := t0 + st.at
		var got outcome
		switch {
		case st.expire:
			f.db.Expire(now, func(l *lease.Lease) lease.BindingState { return f.h.releasedState(mustPool(f.db, l)) })
			f.h.ExpireOffers(now)
		case st.req != nil:
			got = describe(t, f.h.Handle(now, st.req.build(t)), st.want.Options != nil)
		default:
			t.Fatalf("step %d does nothing", i)
		}
		got.Dirty = drain(f.db)
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("step %d (t0+%d) %+v: (-want +got):\n%s", i, st.at, st.req, diff)
		}
		if err := f.db.Check(); err != nil {
			t.Fatalf("step %d: DB inconsistent: %v", i, err)
		}
	}
	if sc.leases != nil {
		got := make(map[string]leaseView)
		for a := range sc.leases {
			l, _ := f.db.Get(lease.AddrToU32(netip.MustParseAddr(a)))
			if l == nil {
				t.Fatalf("%s is in no pool", a)
			}
			got[a] = viewLease(l)
		}
		if diff := cmp.Diff(sc.leases, got); diff != "" {
			t.Errorf("leases (-want +got):\n%s", diff)
		}
	}
	for i, want := range sc.counts {
		if diff := cmp.Diff(want, f.db.Pools[i].Counts()); diff != "" {
			t.Errorf("pool %d counts (-want +got):\n%s", i, diff)
		}
	}
	return f
}

func mustPool(db *lease.DB, l *lease.Lease) *lease.Pool {
	_, p := db.Get(l.IP)
	return p
}

// onlyPools keeps subnet A's pools with the given indexes and shrinks
// pool 0 to the range lo-hi.
func onlyPools(lo, hi string, keep ...int) func(*config.Config) {
	return func(c *config.Config) {
		a := c.Subnets[0]
		a.Pools[0].Ranges = []config.Range{rng(lo, hi)}
		var ps []*config.Pool
		for _, i := range keep {
			ps = append(ps, a.Pools[i])
		}
		a.Pools = ps
	}
}

// hw renders mac n as leaseView shows a hardware-identified client.
func hw(n byte) string { return mac(n).String() }
