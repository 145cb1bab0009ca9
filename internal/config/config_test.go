package config

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

const subnetHead = "subnet 198.18.0.0 netmask 255.255.255.0 {\n"

func TestScopeParameters(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		check func(t *testing.T, c *Config)
	}{
		{"defaults", ``, func(t *testing.T, c *Config) {
			want := Params{DefaultLeaseTime: 43200, MaxLeaseTime: 86400, AllowUnknownClients: true, AllowKnownClients: true,
				AllowBootp: true, AllowBooting: true, AllowDynamicBootp: true, PingCheck: true}
			if diff := cmpDiff(want, c.Global); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
		{"lease times", "default-lease-time 600; max-lease-time infinite; min-lease-time 0x3c;", func(t *testing.T, c *Config) {
			if c.Global.DefaultLeaseTime != 600 || c.Global.MaxLeaseTime != 0xffffffff || c.Global.MinLeaseTime != 60 {
				t.Errorf("got %d %d %d", c.Global.DefaultLeaseTime, c.Global.MaxLeaseTime, c.Global.MinLeaseTime)
			}
		}},
		{"allow deny ignore", "deny unknown-clients; ignore bootp; deny booting; deny dynamic-bootp;", func(t *testing.T, c *Config) {
			g := c.Global
			if g.AllowUnknownClients || g.AllowBootp || g.AllowBooting || g.AllowDynamicBootp || !g.AllowKnownClients {
				t.Errorf("got %+v", g)
			}
		}},
		{"flag forms", "boot-unknown-clients false; allow-bootp off; allow-booting ignore; dynamic-bootp false;", func(t *testing.T, c *Config) {
			g := c.Global
			if g.AllowUnknownClients || g.AllowBootp || g.AllowBooting || g.AllowDynamicBootp {
				t.Errorf("got %+v", g)
			}
		}},
		{"allow after deny", "deny unknown-clients; allow unknown-clients;", func(t *testing.T, c *Config) {
			if !c.Global.AllowUnknownClients {
				t.Error("later allow did not win")
			}
		}},
		{"server identifier", "server-identifier 198.18.0.1;", func(t *testing.T, c *Config) {
			if c.Global.ServerIdentifier != addr("198.18.0.1") {
				t.Errorf("got %v", c.Global.ServerIdentifier)
			}
		}},
		{"server identifier option", "option dhcp-server-identifier 198.18.0.2;", func(t *testing.T, c *Config) {
			if c.Global.ServerIdentifier != addr("198.18.0.2") || len(c.Global.Options) != 0 {
				t.Errorf("got %v %v", c.Global.ServerIdentifier, c.Global.Options)
			}
		}},
		{"ping", "ping-check false; ping-timeout 2;", func(t *testing.T, c *Config) {
			if c.Global.PingCheck {
				t.Error("ping-check still true")
			}
			want := []string{"test.conf:1: ping-timeout: ignored: Tandem does not ping addresses before offering them"}
			if diff := cmpDiff(want, c.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		}},
		{"boot file", `filename "pxelinux.0"; next-server 198.18.0.69; server-name "boot";`, func(t *testing.T, c *Config) {
			g := c.Global
			if g.Filename != "pxelinux.0" || g.NextServer != addr("198.18.0.69") || g.ServerName != "boot" {
				t.Errorf("got %q %v %q", g.Filename, g.NextServer, g.ServerName)
			}
		}},
		{"global settings", `
lease-file-name "/var/lib/tandem/dhcpd.leases";
pid-file-name "/run/tandem.pid";
local-address 198.18.0.1;
local-port 1067;
remote-port 1068;
log-facility LOCAL7;
ddns-update-style none;
ddns-updates off;
omapi-port 7911;
`, func(t *testing.T, c *Config) {
			if c.LeaseFileName != "/var/lib/tandem/dhcpd.leases" || c.PIDFileName != "/run/tandem.pid" ||
				c.LocalAddress != addr("198.18.0.1") || c.LocalPort != 1067 || c.RemotePort != 1068 ||
				c.LogFacility != "local7" || c.DDNSUpdateStyle != "none" || c.OMAPIPort != 7911 {
				t.Errorf("got %+v", c)
			}
			if len(c.Warnings) != 0 {
				t.Errorf("warnings: %v", c.Warnings)
			}
		}},
		{"harmless statements warn", "one-lease-per-client true;\nget-lease-hostnames true;\nupdate-static-leases on;\nallow declines;\ndb-time-format local;\nshared-network n { interface eth0; subnet 198.18.0.0 netmask 255.255.255.0 { } }", func(t *testing.T, c *Config) {
			want := []string{
				"test.conf:1: one-lease-per-client: ignored: accepted but has no effect in Tandem",
				"test.conf:2: get-lease-hostnames: ignored: Tandem does no reverse DNS lookups",
				"test.conf:3: update-static-leases: ignored: Tandem does no DNS updates",
				"test.conf:4: allow declines: accepted but has no effect in Tandem",
				"test.conf:5: db-time-format: ignored: Tandem writes lease times in UTC, as db-time-format default does",
				"test.conf:6: interface: ignored: Tandem chooses interfaces from its command line",
			}
			if diff := cmpDiff(want, c.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		}},
		{"parameters apply to the whole scope", subnetHead + "range 198.18.0.10 198.18.0.20;\n}\ndefault-lease-time 99;", func(t *testing.T, c *Config) {
			if got := c.Subnets[0].Pools[0].Params.DefaultLeaseTime; got != 99 {
				t.Errorf("pool lease time %d, want 99 (parameters apply wherever written in the scope)", got)
			}
		}},
		{"inner scope overrides", "default-lease-time 100;\nshared-network n { default-lease-time 200;\n" + subnetHead +
			"default-lease-time 300; pool { default-lease-time 400; range 198.18.0.10 198.18.0.20; } range 198.18.0.30 198.18.0.40; } }", func(t *testing.T, c *Config) {
			sn := c.Subnets[0]
			got := []uint32{c.Global.DefaultLeaseTime, sn.Params.DefaultLeaseTime, sn.Pools[0].Params.DefaultLeaseTime, sn.Pools[1].Params.DefaultLeaseTime}
			if diff := cmpDiff([]uint32{100, 300, 300, 400}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
		{"group", "group { default-lease-time 5; " + subnetHead + "} host h { hardware ethernet 0:1:2:3:4:5; } }\nsubnet 198.19.0.0 netmask 255.255.0.0 { }", func(t *testing.T, c *Config) {
			if c.Subnets[0].Params.DefaultLeaseTime != 5 || c.Hosts[0].Params.DefaultLeaseTime != 5 || c.Subnets[1].Params.DefaultLeaseTime != 43200 {
				t.Errorf("group parameters not applied to its members only")
			}
		}},
		{"named group", `group "office" { default-lease-time 5; }`, func(t *testing.T, c *Config) {}},
		// authoritative is copied into a scope when the scope is declared
		// (ISC's clone_group), so it only affects later declarations.
		{"authoritative order", subnetHead + "}\nauthoritative;\nsubnet 198.19.0.0 netmask 255.255.0.0 { }\nsubnet 198.20.0.0 netmask 255.255.0.0 { not authoritative; }", func(t *testing.T, c *Config) {
			got := []bool{c.Global.Authoritative, c.Subnets[0].Params.Authoritative, c.Subnets[1].Params.Authoritative, c.Subnets[2].Params.Authoritative}
			if diff := cmpDiff([]bool{true, false, true, false}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
		{"use-host-decl-names", "use-host-decl-names on;\nhost alpha { hardware ethernet 0:1:2:3:4:5; }\nhost beta { hardware ethernet 0:1:2:3:4:6; option host-name \"b\"; }", func(t *testing.T, c *Config) {
			if o, _ := c.Hosts[0].Params.Option(12); string(o.Data) != "alpha" {
				t.Errorf("alpha host-name %q", o.Data)
			}
			if o, _ := c.Hosts[1].Params.Option(12); string(o.Data) != "b" {
				t.Errorf("beta host-name %q", o.Data)
			}
			if _, ok := c.Global.Option(12); ok {
				t.Error("global scope got a host-name")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, mustParse(t, tc.src))
		})
	}
}

func TestPoolPermits(t *testing.T) {
	for _, tc := range []struct {
		permits                  string
		known, unknown, dynBootp bool
	}{
		{"", true, true, true},
		{"deny unknown-clients;", true, false, true},
		{"deny unknown clients;", true, false, true},
		{"allow known-clients;", true, false, true},
		{"allow known clients;", true, false, true},
		{"deny known-clients;", false, true, true},
		{"allow unknown-clients;", false, true, true},
		{"allow known-clients; allow unknown-clients;", true, true, true},
		{"allow all clients;", true, true, true},
		{"deny all clients;", false, false, false},
		{"deny dynamic bootp clients;", true, true, false},
		{"allow known-clients; deny dynamic bootp clients;", true, false, false},
	} {
		c, err := Parse("test.conf", []byte(subnetHead+"pool { "+tc.permits+" range 198.18.0.10 198.18.0.20; } }"), nil)
		if err != nil {
			t.Errorf("%s: %v", tc.permits, err)
			continue
		}
		p := c.Subnets[0].Pools[0].Params
		if p.AllowKnownClients != tc.known || p.AllowUnknownClients != tc.unknown || p.AllowDynamicBootp != tc.dynBootp {
			t.Errorf("%q: known=%v unknown=%v dynbootp=%v, want %v %v %v", tc.permits,
				p.AllowKnownClients, p.AllowUnknownClients, p.AllowDynamicBootp, tc.known, tc.unknown, tc.dynBootp)
		}
	}

	// A scope-level deny still applies inside a pool that allows.
	c := mustParse(t, "deny unknown-clients;\n"+subnetHead+"pool { allow unknown-clients; range 198.18.0.10 198.18.0.20; } }")
	if c.Subnets[0].Pools[0].Params.AllowUnknownClients {
		t.Error("pool allow overrode the scope's deny unknown-clients")
	}

	for _, tc := range []struct{ src, want string }{
		{"allow dynamic bootp clients;", "test.conf:2: pool: this combination of allow and deny is not supported by Tandem (a pool for BOOTP clients only)"},
		{"allow members of \"voip\";", "test.conf:3: allow members: client classes are not supported by Tandem"},
		{"deny bootp;", "test.conf:3: deny bootp: not a pool permit; inside a pool allow and deny take known-clients, unknown-clients, all clients or dynamic bootp clients"},
		{"allow after 4 2030/01/01 00:00:00;", "test.conf:3: allow after: time-limited pools are not supported by Tandem"},
		{"allow all;", "test.conf:3: allow all: expected \"clients\" but found \";\""},
	} {
		_, err := Parse("test.conf", []byte(subnetHead+"pool {\n"+tc.src+" range 198.18.0.10 198.18.0.20; } }"), nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s\n got: %v\nwant: %s", tc.src, err, tc.want)
		}
	}
}

func TestSubnetsAndPools(t *testing.T) {
	c := mustParse(t, `
shared-network "floor 1" {
  subnet 198.18.0.0 netmask 255.255.255.0 {
    range 198.18.0.10 198.18.0.20;
    range dynamic-bootp 198.18.0.30;
    range 198.18.0.50 198.18.0.40;
  }
  subnet 198.18.1.0 netmask 255.255.255.128 { option routers 198.18.1.1; }
  pool { range 198.18.1.10 198.18.1.20; option domain-name "p.test"; }
}
shared-network floor2.example { subnet 198.19.0.0 netmask 255.255.0.0 { } }
subnet 198.20.0.0 netmask 255.255.255.252 { }
`)
	if len(c.SharedNetworks) != 2 || c.SharedNetworks[0].Name != "floor 1" || c.SharedNetworks[1].Name != "floor2.example" {
		t.Fatalf("shared networks: %+v", c.SharedNetworks)
	}
	if got := len(c.SharedNetworks[0].Subnets); got != 2 || c.SharedNetworks[0].Subnets[1] != c.Subnets[1] {
		t.Errorf("shared-network subnets wrong")
	}
	var prefixes, shared []string
	for _, s := range c.Subnets {
		prefixes = append(prefixes, s.Prefix.String())
		shared = append(shared, s.SharedNetwork)
	}
	if diff := cmpDiff([]string{"198.18.0.0/24", "198.18.1.0/25", "198.19.0.0/16", "198.20.0.0/30"}, prefixes); diff != "" {
		t.Errorf("prefixes (-want +got):\n%s", diff)
	}
	if diff := cmpDiff([]string{"floor 1", "floor 1", "floor2.example", ""}, shared); diff != "" {
		t.Errorf("shared names (-want +got):\n%s", diff)
	}
	// Plain ranges and dynamic-bootp ranges form separate implicit pools,
	// as in ISC; ranges written high-to-low are turned around.
	pools := c.Subnets[0].Pools
	if len(pools) != 2 {
		t.Fatalf("%d pools, want 2", len(pools))
	}
	want0 := []Range{
		{Start: addr("198.18.0.10"), End: addr("198.18.0.20"), Pos: Pos{"test.conf", 4}},
		{Start: addr("198.18.0.40"), End: addr("198.18.0.50"), Pos: Pos{"test.conf", 6}},
	}
	if diff := cmpDiff(want0, pools[0].Ranges); diff != "" {
		t.Errorf("plain pool (-want +got):\n%s", diff)
	}
	if pools[0].Params.AllowDynamicBootp || pools[0].Pos != (Pos{"test.conf", 4}) {
		t.Errorf("plain pool params %+v pos %v", pools[0].Params, pools[0].Pos)
	}
	want1 := []Range{{Start: addr("198.18.0.30"), End: addr("198.18.0.30"), DynamicBootp: true, Pos: Pos{"test.conf", 5}}}
	if diff := cmpDiff(want1, pools[1].Ranges); diff != "" {
		t.Errorf("dynamic-bootp pool (-want +got):\n%s", diff)
	}
	if !pools[1].Params.AllowDynamicBootp {
		t.Error("dynamic-bootp pool refuses BOOTP")
	}
	// The pool written in the shared-network belongs to the subnet of its range.
	if p := c.Subnets[1].Pools; len(p) != 1 || p[0].Ranges[0].Start != addr("198.18.1.10") || p[0].Pos.Line != 9 {
		t.Errorf("shared-network pool not placed in 198.18.1.0/25: %+v", p)
	}
	wantOpts := []Option{{Code: 3, Name: "routers", Data: []byte{198, 18, 1, 1}}, {Code: 15, Name: "domain-name", Data: []byte("p.test")}}
	if diff := cmpDiff(wantOpts, c.Subnets[1].Pools[0].Params.Options); diff != "" {
		t.Errorf("shared-network pool options (-want +got):\n%s", diff)
	}
}

func TestHosts(t *testing.T) {
	c := mustParse(t, `
option domain-name "x.test";
subnet 198.18.0.0 netmask 255.255.255.0 {
  option routers 198.18.0.1;
  host pc1.example.test {
    hardware ethernet 02:00:5E:10:00:01;
    fixed-address 198.18.0.5, 198.18.0.6;
    option host-name "pc1";
    default-lease-time 60;
  }
}
host "with space" {
  hardware token-ring 1:2:3:4:5:6;
  option dhcp-client-identifier 1:2:0:5e:10:0:2;
}
host by-id { option dhcp-client-identifier "client-7"; deny booting; }
host by-uid { uid 01:02:03; }
`)
	mac, _ := net.ParseMAC("02:00:5e:10:00:01")
	h := c.Hosts[0]
	if h.Name != "pc1.example.test" || h.HardwareType != 1 || !equalBytes(h.HardwareAddr, mac) || h.Pos.Line != 5 {
		t.Errorf("host 0: %+v", h)
	}
	if diff := cmpDiff([]string{"198.18.0.5", "198.18.0.6"}, addrStrings(h.FixedAddresses)); diff != "" {
		t.Errorf("fixed addresses (-want +got):\n%s", diff)
	}
	wantOpts := []Option{
		{Code: 15, Name: "domain-name", Data: []byte("x.test")},
		{Code: 3, Name: "routers", Data: []byte{198, 18, 0, 1}},
		{Code: 12, Name: "host-name", Data: []byte("pc1")},
	}
	if diff := cmpDiff(wantOpts, h.Params.Options); diff != "" {
		t.Errorf("host picks up its scope (-want +got):\n%s", diff)
	}
	if h.Params.DefaultLeaseTime != 60 || c.Subnets[0].Params.DefaultLeaseTime != 43200 {
		t.Error("host parameter leaked or missing")
	}
	if h := c.Hosts[1]; h.Name != "with space" || h.HardwareType != 6 || !equalBytes(h.ClientID, []byte{1, 2, 0, 0x5e, 0x10, 0, 2}) || len(h.Params.Options) != 1 {
		t.Errorf("host 1: %+v", h)
	}
	if h := c.Hosts[2]; string(h.ClientID) != "client-7" || h.HardwareAddr != nil || h.Params.AllowBooting {
		t.Errorf("host 2: %+v", h)
	}
	if h := c.Hosts[3]; !equalBytes(h.ClientID, []byte{1, 2, 3}) {
		t.Errorf("host 3: %+v", h)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}

	c = mustParse(t, subnetHead+"range 198.18.0.10 198.18.0.20; }\nhost a { hardware ethernet 0:1:2:3:4:5; fixed-address 198.18.0.15; }\nhost b { fixed-address 198.99.0.1; }")
	want := []string{
		"test.conf:3: fixed-address: 198.18.0.15 of host a lies inside the dynamic range 198.18.0.10-198.18.0.20 at test.conf:2",
		"test.conf:4: host: host b has neither a hardware address nor a client identifier, so it matches no client",
		"test.conf:4: fixed-address: 198.99.0.1 of host b is on no declared subnet, so it will never be given out",
	}
	if diff := cmpDiff(want, c.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) && (a == nil) == (b == nil) }

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func TestKeysAndOMAPI(t *testing.T) {
	c := mustParse(t, `
key omapi_key {
  algorithm hmac-md5;
  secret pRP5FapFoJ95JEL06sv4PQ==;
};
key "ddns.key" { algorithm HMAC-MD5.SIG-ALG.REG.INT; secret "c2VjcmV0"; }
key k3 { secret YWJj+/8=; algorithm hmac-sha256.; }
omapi-port 7911;
omapi-key omapi_key;
`)
	want := []*Key{
		{Name: "omapi_key", Algorithm: "hmac-md5.SIG-ALG.REG.INT.", Secret: []byte{0xa5, 0x13, 0xf9, 0x15, 0xaa, 0x45, 0xa0, 0x9f, 0x79, 0x24, 0x42, 0xf4, 0xea, 0xcb, 0xf8, 0x3d}, Pos: Pos{"test.conf", 2}},
		{Name: "ddns.key", Algorithm: "HMAC-MD5.SIG-ALG.REG.INT.", Secret: []byte("secret"), Pos: Pos{"test.conf", 6}},
		{Name: "k3", Algorithm: "hmac-sha256.", Secret: []byte{'a', 'b', 'c', 0xfb, 0xff}, Pos: Pos{"test.conf", 7}},
	}
	if diff := cmpDiff(want, c.Keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if c.OMAPIPort != 7911 || c.OMAPIKey != "omapi_key" {
		t.Errorf("omapi %d %q", c.OMAPIPort, c.OMAPIKey)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown statement", "\n\nfrobnicate 1;", "test.conf:3: frobnicate: unknown statement"},
		{"class", "class \"voip\" { match if substring(option vendor-class-identifier, 0, 4) = \"voip\"; }", "test.conf:1: class: client classes are not supported by Tandem"},
		{"subclass", "subclass \"voip\" 1:2:3;", "test.conf:1: subclass: client classes are not supported by Tandem"},
		{"if", "if exists user-class { }", "test.conf:1: if: conditional statements are not supported by Tandem"},
		{"on commit", subnetHead + "on commit { set x = 1; } }", "test.conf:2: on: event statements (on commit/release/expiry) are not supported by Tandem"},
		{"zone", "zone example.test. { primary 198.18.0.53; }", "test.conf:1: zone: Tandem does no DNS updates"},
		{"subnet6", "subnet6 2001:db8::/64 { }", "test.conf:1: subnet6: DHCPv6 is not supported by Tandem"},
		{"ddns interim", "ddns-update-style interim;", "test.conf:1: ddns-update-style: Tandem does no DNS updates; only ddns-update-style none is accepted"},
		{"ddns updates on", "ddns-updates on;", "test.conf:1: ddns-updates: Tandem does no DNS updates; only ddns-updates off is accepted"},
		{"bad facility", "log-facility local9;", "test.conf:1: log-facility: expected a syslog facility (daemon, local0 … local7, …) but found \"local9\""},
		{"global-only in subnet", subnetHead + "omapi-port 7911; }", "test.conf:2: omapi-port: allowed only at global scope, not in a subnet"},
		{"omapi key unknown", "omapi-key nokey;", "test.conf:1: omapi-key: no key named nokey is declared"},
		{"key without secret", "key k { algorithm hmac-md5; }", "test.conf:1: key: key k has no secret"},
		{"key bad secret", "key k { algorithm hmac-md5; secret \"!!\"; }", "test.conf:1: key secret: secret is not valid base64"},
		{"empty statement", "authoritative;;", "test.conf:1: unexpected ; (empty statement)"},
		{"semicolon after subnet", subnetHead + "};", "test.conf:2: unexpected ; (empty statement)"},
		{"unclosed block", "\n" + subnetHead + "range 198.18.0.10 198.18.0.20;\n", "test.conf:2: subnet: block is not closed: missing } before end of test.conf"},
		{"nesting bound", strings.Repeat("group {", 65), "test.conf:1: group: blocks nested more than 64 deep"},
		{"stray brace", "}", "test.conf:1: unexpected }: no block is open in this file"},
		{"missing semicolon", "default-lease-time 600\nmax-lease-time 700;", "test.conf:2: default-lease-time: expected ; but found \"max-lease-time\""},
		{"bad netmask", "subnet 198.18.0.0 netmask 255.0.255.0 { }", "test.conf:1: subnet: netmask 255.0.255.0 is not contiguous"},
		{"host bits set", "subnet 198.18.0.1 netmask 255.255.255.0 { }", "test.conf:1: subnet: subnet 198.18.0.1 netmask 255.255.255.0: bad subnet number/mask combination (host bits set)"},
		{"duplicate subnet", subnetHead + "}\n" + subnetHead + "}", "test.conf:3: subnet: subnet 198.18.0.0/24 is already declared at test.conf:1"},
		{"range outside subnet", subnetHead + "range 198.18.1.10 198.18.1.20; }", "test.conf:2: range: range 198.18.1.10-198.18.1.20 is not inside subnet 198.18.0.0/24"},
		{"range crosses subnet", subnetHead + "range 198.18.0.10 198.18.1.20; }", "test.conf:2: range: range 198.18.0.10-198.18.1.20 is not inside subnet 198.18.0.0/24"},
		{"overlapping ranges", subnetHead + "range 198.18.0.10 198.18.0.20;\npool { range 198.18.0.20 198.18.0.30; } }", "test.conf:3: range: range 198.18.0.20-198.18.0.30 overlaps range 198.18.0.10-198.18.0.20 at test.conf:2"},
		{"overlap across subnets reported later", "subnet 198.18.0.0 netmask 255.255.0.0 {\nrange 198.18.5.1 198.18.5.9; }\nsubnet 198.18.4.0 netmask 255.255.252.0 { range 198.18.4.0 198.18.5.1; }", "test.conf:3: range: range 198.18.4.0-198.18.5.1 overlaps range 198.18.5.1-198.18.5.9 at test.conf:2"},
		{"range at global scope", "range 198.18.0.10 198.18.0.20;", "test.conf:1: range: a range must be declared inside a subnet or pool, not in a global scope"},
		{"range in host", "host h { range 198.18.0.10 198.18.0.20; }", "test.conf:1: range: a range must be declared inside a subnet or pool, not in a host"},
		{"pool at global scope", "pool { range 198.18.0.1; }", "test.conf:1: pool: a pool must be declared directly inside a subnet or shared-network, not in a global scope"},
		{"empty pool", subnetHead + "pool { } }", "test.conf:2: pool: pool declaration with no address range"},
		{"empty shared-network", "shared-network x { }", "test.conf:1: shared-network: empty shared-network x: it declares no subnet"},
		{"subnet in subnet", subnetHead + "subnet 198.18.0.0 netmask 255.255.255.128 { } }", "test.conf:2: subnet: not allowed inside a subnet"},
		{"shared pool off its subnets", "shared-network n {\n" + subnetHead + "}\npool { range 198.19.0.1 198.19.0.2; } }", "test.conf:4: range: address range 198.19.0.1-198.19.0.2 is not on any subnet of shared-network n"},
		{"shared pool across subnets", "shared-network n {\n" + subnetHead + "}\nsubnet 198.18.1.0 netmask 255.255.255.0 { }\npool { range 198.18.0.1 198.18.0.2;\nrange 198.18.1.1 198.18.1.2; } }", "test.conf:6: range: the ranges of this pool lie in different subnets (198.18.0.0/24 and 198.18.1.1); Tandem needs one pool per subnet"},
		{"host hostname address", "host h { fixed-address pc.example.test; }", "test.conf:1: fixed-address: expected an IPv4 address but found \"pc.example.test\" (Tandem does not resolve host names; write the IPv4 address)"},
		{"hardware outside host", "hardware ethernet 0:1:2:3:4:5;", "test.conf:1: hardware: allowed only in a host declaration"},
		{"hardware twice", "host h { hardware ethernet 0:1:2:3:4:5; hardware ethernet 0:1:2:3:4:6; }", "test.conf:1: hardware: host h already has a hardware address"},
		{"hardware type", "host h { hardware wifi 0:1:2:3:4:5; }", "test.conf:1: hardware: expected ethernet, token-ring, fddi or infiniband but found \"wifi\""},
		{"bad mac", "host h { hardware ethernet 0:1:2:3:4:zz; }", "test.conf:1: hardware: \"zz\" is not a hex byte"},
		{"duplicate host", "host h { }\nhost H { }\nhost h { }", "test.conf:3: host: host h already declared at test.conf:1"},
		{"host in host", "host h { host i { } }", "test.conf:1: host: host declarations cannot be nested"},
		{"two client ids", "host h { uid 1:2; option dhcp-client-identifier \"x\"; }", "test.conf:1: option dhcp-client-identifier: host h already has a client identifier"},
		{"authoritative in host", "host h { authoritative; }", "test.conf:1: authoritative: authority makes no sense in a host declaration"},
		{"not what", "not ready;", "test.conf:1: not authoritative: expected \"authoritative\" but found \"ready\""},
		{"permit syntax outside pool", subnetHead + "deny dynamic bootp clients; }", "test.conf:2: deny dynamic: this form of deny is allowed only inside a pool"},
		{"allow what", "allow everything;", "test.conf:1: allow: expected unknown-clients, bootp, booting, dynamic-bootp, duplicates, declines, client-updates or leasequery but found \"everything\""},
		{"failover state", "failover peer \"x\" state { my state normal; }", "test.conf:1: failover peer state: failover peer state declarations belong in dhcpd.leases, not in dhcpd.conf"},
		{"lease", "lease 198.18.0.5 { }", "test.conf:1: lease: lease declarations belong in dhcpd.leases, not dhcpd.conf"},
		{"ignore-client-uids", "ignore-client-uids true;", "test.conf:1: ignore-client-uids: not supported by Tandem: leases are always identified by client identifier when a client sends one"},
		{"flag value", "ping-check yes;", "test.conf:1: ping-check: expected true, false, on or off but found \"yes\""},
		{"lease time value", "default-lease-time forever;", "test.conf:1: default-lease-time: \"forever\" is not a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := parseError(t, tc.src)
			if e.Error() != tc.want {
				t.Errorf("\n got: %s\nwant: %s", e, tc.want)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	e := parseError(t, "# comment\n\nsubnet 198.18.0.0 netmask 255.255.255.0 {\n  class \"x\" { }\n}")
	want := &Error{Pos: Pos{"test.conf", 4}, Statement: "class", Msg: "client classes are not supported by Tandem"}
	if diff := cmpDiff(want, e); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(e.Error(), "test.conf:4: class: ") {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestISCStatementsAcceptedWithWarning(t *testing.T) {
	src := "lease-id-format hex;\nsite-option-space \"site\";\nvendor-option-space \"vendor\";\nping-check true;\n"
	cfg, err := Parse("test.conf", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"test.conf:1: lease-id-format", "test.conf:2: site-option-space", "test.conf:3: vendor-option-space", "test.conf:4: ping-check"}
	if len(cfg.Warnings) != len(want) {
		t.Fatalf("warnings %q, want one each for %q", cfg.Warnings, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(cfg.Warnings[i], w) {
			t.Errorf("warning %d = %q, want it to start with %q", i, cfg.Warnings[i], w)
		}
	}
}
