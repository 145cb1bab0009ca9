package config

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse("test.conf", []byte(src), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func parseError(t *testing.T, src string) *Error {
	t.Helper()
	_, err := Parse("test.conf", []byte(src), nil)
	if err == nil {
		t.Fatalf("Parse succeeded, want an error for:\n%s", src)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is %T, want *config.Error", err, err)
	}
	return ce
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestOptionEncoding(t *testing.T) {
	for _, tc := range []struct {
		stmt string
		code uint8
		name string
		want []byte
	}{
		{`option subnet-mask 255.255.255.0;`, 1, "subnet-mask", []byte{255, 255, 255, 0}},
		{`option time-offset -18000;`, 2, "time-offset", []byte{0xff, 0xff, 0xb9, 0xb0}},
		{`option time-offset 3600;`, 2, "time-offset", []byte{0, 0, 0x0e, 0x10}},
		{`option routers 198.18.0.1;`, 3, "routers", []byte{198, 18, 0, 1}},
		{`option routers 198.18.0.1, 198.18.0.2;`, 3, "routers", []byte{198, 18, 0, 1, 198, 18, 0, 2}},
		{`option routers 198.18.0.1,198.18.0.2;`, 3, "routers", []byte{198, 18, 0, 1, 198, 18, 0, 2}},
		{`option time-servers 198.18.0.3;`, 4, "time-servers", []byte{198, 18, 0, 3}},
		{`option domain-name-servers 198.18.0.53, 198.19.0.53;`, 6, "domain-name-servers", []byte{198, 18, 0, 53, 198, 19, 0, 53}},
		{`option log-servers 198.18.0.7;`, 7, "log-servers", []byte{198, 18, 0, 7}},
		{`option host-name "pc-1";`, 12, "host-name", []byte("pc-1")},
		{`option host-name pc1;`, 12, "host-name", []byte("pc1")},
		{`option domain-name "example.test";`, 15, "domain-name", []byte("example.test")},
		{`option interface-mtu 1500;`, 26, "interface-mtu", []byte{0x05, 0xdc}},
		{`option interface-mtu -1;`, 26, "interface-mtu", []byte{0xff, 0xff}}, // as ISC's convert_num
		{`option broadcast-address 198.18.0.255;`, 28, "broadcast-address", []byte{198, 18, 0, 255}},
		{`option static-routes 198.19.0.0 198.18.0.1, 198.19.1.0 198.18.0.2;`, 33, "static-routes",
			[]byte{198, 19, 0, 0, 198, 18, 0, 1, 198, 19, 1, 0, 198, 18, 0, 2}},
		{`option ntp-servers 198.18.0.123;`, 42, "ntp-servers", []byte{198, 18, 0, 123}},
		{`option netbios-name-servers 198.18.0.139, 198.18.0.140;`, 44, "netbios-name-servers", []byte{198, 18, 0, 139, 198, 18, 0, 140}},
		{`option netbios-node-type 8;`, 46, "netbios-node-type", []byte{8}},
		{`option tftp-server-name "tftp.example.test";`, 66, "tftp-server-name", []byte("tftp.example.test")},
		{`option bootfile-name "pxelinux.0";`, 67, "bootfile-name", []byte("pxelinux.0")},
		{`option ip-forwarding off;`, 19, "ip-forwarding", []byte{0}},
		{`option ip-forwarding true;`, 19, "ip-forwarding", []byte{1}},
		{`option default-ip-ttl 64;`, 23, "default-ip-ttl", []byte{64}},
		{`option dhcp-renewal-time 0x10;`, 58, "dhcp-renewal-time", []byte{0, 0, 0, 0x10}},
		{`option dhcp-rebinding-time 010;`, 59, "dhcp-rebinding-time", []byte{0, 0, 0, 8}},
		{`option vendor-encapsulated-options 01:04:c6:12:00:01;`, 43, "vendor-encapsulated-options", []byte{1, 4, 0xc6, 0x12, 0, 1}},
		{`option vendor-class-identifier "PXEClient";`, 60, "vendor-class-identifier", []byte("PXEClient")},
		{`option dhcp.routers 198.18.0.1;`, 3, "routers", []byte{198, 18, 0, 1}},
		{`supersede domain-name "s.test";`, 15, "domain-name", []byte("s.test")},
		{`option DOMAIN-NAME "case.test";`, 15, "domain-name", []byte("case.test")},
		// RFC 3397: plain labels, with RFC 1035 compression pointers for
		// suffixes already in the option (offsets from its first byte).
		{`option domain-search "example.test";`, 119, "domain-search",
			cat([]byte{7}, []byte("example"), []byte{4}, []byte("test"), []byte{0})},
		{`option domain-search "example.test", "lab.example.test", "example.test.", "other.org";`, 119, "domain-search",
			cat([]byte{7}, []byte("example"), []byte{4}, []byte("test"), []byte{0},
				[]byte{3}, []byte("lab"), []byte{0xc0, 0x00},
				[]byte{0xc0, 0x00},
				[]byte{5}, []byte("other"), []byte{3}, []byte("org"), []byte{0})},
		{`option domain-search "a.test", "b.a.test", "c.b.a.test";`, 119, "domain-search",
			cat([]byte{1, 'a', 4}, []byte("test"), []byte{0},
				[]byte{1, 'b', 0xc0, 0x00},
				[]byte{1, 'c', 0xc0, 0x08})},
	} {
		cfg, err := Parse("test.conf", []byte(tc.stmt), nil)
		if err != nil {
			t.Errorf("%s: %v", tc.stmt, err)
			continue
		}
		want := []Option{{Code: tc.code, Name: tc.name, Data: tc.want}}
		if diff := cmpDiff(want, cfg.Global.Options); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.stmt, diff)
		}
	}
}

func TestOptionDefinitions(t *testing.T) {
	cfg := mustParse(t, `
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
option ms-classless-static-routes code 249 = array of integer 8;
option site-flag code 224 = boolean;
option site-pair code 225 = { ip-address, unsigned integer 16, text };
option site-list code 226 = array of { ip-address, signed integer 32 };
option site-names code 227 = domain-list;
option site-blob code 228 = string;
option rfc3442-classless-static-routes 24, 198, 19, 0, 198, 18, 0, 1, 0, 198, 18, 0, 1;
option ms-classless-static-routes 0, 198, 18, 0, 255, -1;
option site-flag on;
option site-pair 198.18.0.9 80 "path";
option site-list 198.18.0.1 -2, 198.18.0.2 3;
option site-names "a.test", "b.a.test";
option site-blob 0a:0b;
`)
	want := []Option{
		{Code: 121, Name: "rfc3442-classless-static-routes", Data: []byte{24, 198, 19, 0, 198, 18, 0, 1, 0, 198, 18, 0, 1}},
		{Code: 249, Name: "ms-classless-static-routes", Data: []byte{0, 198, 18, 0, 0xff, 0xff}},
		{Code: 224, Name: "site-flag", Data: []byte{1}},
		{Code: 225, Name: "site-pair", Data: cat([]byte{198, 18, 0, 9, 0, 80}, []byte("path"))},
		{Code: 226, Name: "site-list", Data: []byte{198, 18, 0, 1, 0xff, 0xff, 0xff, 0xfe, 198, 18, 0, 2, 0, 0, 0, 3}},
		// Uncompressed, unlike the built-in domain-search.
		{Code: 227, Name: "site-names", Data: cat([]byte{1, 'a', 4}, []byte("test"), []byte{0, 1, 'b', 1, 'a', 4}, []byte("test"), []byte{0})},
		{Code: 228, Name: "site-blob", Data: []byte{0x0a, 0x0b}},
	}
	if diff := cmpDiff(want, cfg.Global.Options); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}

	// Redefining a standard code replaces the standard name.
	cfg = mustParse(t, "option my-mtu code 26 = unsigned integer 32;\noption my-mtu 9000;")
	if diff := cmpDiff([]Option{{Code: 26, Name: "my-mtu", Data: []byte{0, 0, 0x23, 0x28}}}, cfg.Global.Options); diff != "" {
		t.Errorf("redefined option (-want +got):\n%s", diff)
	}
	e := parseError(t, "option my-mtu code 26 = unsigned integer 32;\noption interface-mtu 1500;")
	if e.Pos.Line != 2 || !strings.Contains(e.Msg, "unknown option interface-mtu") {
		t.Errorf("got %v", e)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"option frobnicate 1;", "test.conf:1: option frobnicate: unknown option frobnicate"},
		{"\noption routers 198.18.0.300;", `test.conf:2: option routers: "198.18.0.300" is not a valid IPv4 address`},
		{"option routers gw.example.test;", `test.conf:1: option routers: expected an IPv4 address but found "gw.example.test" (Tandem does not resolve host names; write the IPv4 address)`},
		{"option routers 198.18.0.1 198.18.0.2;", `test.conf:1: option routers: expected ; but found "198"`},
		{"option interface-mtu 70000;", "test.conf:1: option interface-mtu: 70000 does not fit in 16 bits"},
		{"option interface-mtu -32769;", "test.conf:1: option interface-mtu: -32769 does not fit in 16 bits"},
		{"option netbios-node-type x;", `test.conf:1: option netbios-node-type: "x" is not a number`},
		{"option space foo;", "test.conf:1: option space: option spaces are not supported by Tandem"},
		{"option foo.bar 1;", "test.conf:1: option foo.bar: option space foo is not supported by Tandem"},
		{"option routers = 198.18.0.1;", "test.conf:1: option routers: option expressions are not supported by Tandem; write the value itself"},
		{"option dhcp-message-type 5;", "test.conf:1: option dhcp-message-type: cannot be set in the configuration: the server sets it"},
		{"option domain-search example.test;", `test.conf:1: option domain-search: expected a quoted domain name but found "example"`},
		{`option domain-search "a..b";`, `test.conf:1: option domain-search: domain name "a..b" has an empty label`},
		{"option domain-name example.test;", `test.conf:1: option domain-name: expected ; but found "."`},
		{"option ip-forwarding maybe;", `test.conf:1: option ip-forwarding: expected true, false, on or off but found "maybe"`},
		{"option dhcp-client-identifier 1:2;", "test.conf:1: option dhcp-client-identifier: allowed only in a host declaration"},
		{"subnet 198.18.0.0 netmask 255.255.255.0 { option x code 200 = text; }", "test.conf:1: option x: option definitions are allowed only at global scope"},
		{"option x code 255 = text;", "test.conf:1: option x: option code 255 is outside 1..254"},
		{"option x code 200 = ip6-address;", "test.conf:1: option x: option data type ip6-address is not supported by Tandem"},
		{"option x code 200 = array of text;", "test.conf:1: option x: text, string and domain types must be the last field and cannot be in an array"},
		{"option routers;", `test.conf:1: option routers: expected an IPv4 address but found ";"`},
	} {
		_, err := Parse("test.conf", []byte(tc.src), nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s\n got: %v\nwant: %s", tc.src, err, tc.want)
		}
	}
}

func TestDHCPLeaseTimeOptionIgnored(t *testing.T) {
	cfg := mustParse(t, "option dhcp-lease-time 600;")
	if len(cfg.Global.Options) != 0 {
		t.Errorf("options = %v, want none", cfg.Global.Options)
	}
	want := []string{"test.conf:1: option dhcp-lease-time: ignored, as in ISC dhcpd: the lease time comes from default-lease-time, max-lease-time and min-lease-time"}
	if diff := cmpDiff(want, cfg.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestOptionInheritance(t *testing.T) {
	cfg := mustParse(t, `
option domain-name "global.test";
option routers 198.18.0.1;
shared-network lan {
  option ntp-servers 198.18.0.123;
  subnet 198.18.0.0 netmask 255.255.255.0 {
    option routers 198.18.0.254;       # replaces the global value in place
    pool {
      option domain-name "pool.test";
      range 198.18.0.10 198.18.0.20;
    }
  }
}
option domain-name-servers 198.18.0.53;  # written last, applies everywhere
`)
	dn := func(s string) Option { return Option{Code: 15, Name: "domain-name", Data: []byte(s)} }
	rt := func(a ...byte) Option { return Option{Code: 3, Name: "routers", Data: a} }
	dns := Option{Code: 6, Name: "domain-name-servers", Data: []byte{198, 18, 0, 53}}
	ntp := Option{Code: 42, Name: "ntp-servers", Data: []byte{198, 18, 0, 123}}
	if diff := cmpDiff([]Option{dn("global.test"), rt(198, 18, 0, 1), dns}, cfg.Global.Options); diff != "" {
		t.Errorf("global (-want +got):\n%s", diff)
	}
	sn := cfg.Subnets[0]
	if diff := cmpDiff([]Option{dn("global.test"), rt(198, 18, 0, 254), dns, ntp}, sn.Params.Options); diff != "" {
		t.Errorf("subnet (-want +got):\n%s", diff)
	}
	if diff := cmpDiff([]Option{dn("pool.test"), rt(198, 18, 0, 254), dns, ntp}, sn.Pools[0].Params.Options); diff != "" {
		t.Errorf("pool (-want +got):\n%s", diff)
	}
}

// cmpDiff compares with netip values treated as plain comparable values.
func cmpDiff(want, got any) string {
	return cmp.Diff(want, got,
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }))
}
