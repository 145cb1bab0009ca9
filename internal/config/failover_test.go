package config

import (
	"bytes"
	"strings"
	"testing"
)

func TestHBAFromSplit(t *testing.T) {
	rep := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	for _, tc := range []struct {
		split int
		want  []byte
	}{
		// failover-wire.md §15 test vectors.
		{128, append(rep(0xff, 16), rep(0, 16)...)},
		{1, append([]byte{0x01}, rep(0, 31)...)},
		{9, append([]byte{0xff, 0x01}, rep(0, 30)...)},
		{0, rep(0, 32)},
		{256, rep(0xff, 32)},
		{12, append([]byte{0xff, 0x0f}, rep(0, 30)...)},
	} {
		if got := HBAFromSplit(tc.split); !bytes.Equal(got, tc.want) {
			t.Errorf("split %d: % x, want % x", tc.split, got, tc.want)
		}
	}
}

const poolRef = "subnet 198.18.0.0 netmask 255.255.255.0 { pool { failover peer \"fo\"; range 198.18.0.10 198.18.0.20; } }\n"

func TestFailoverPeer(t *testing.T) {
	c := mustParse(t, `
failover peer "fo" {
  primary;
  address 198.18.0.1;
  port 519;
  peer address dhcp2.example.test;
  peer port 520;
  max-response-delay 60;
  max-unacked-updates 10;
  mclt 3600;
  split 128;
  load balance max seconds 3;
  max-lease-misbalance 20;
  max-lease-ownership 5;
  min-balance 30;
  max-balance 1800;
  auto-partner-down 600;
}
`+poolRef)
	want := []*FailoverPeer{{
		Name: "fo", Role: Primary,
		Address: "198.18.0.1", Port: 519, PeerAddress: "dhcp2.example.test", PeerPort: 520,
		MaxResponseDelay: 60, MaxUnackedUpdates: 10, MCLT: 3600,
		HBA: HBAFromSplit(128), Split: 128, LoadBalanceMaxSeconds: 3,
		MaxLeaseMisbalance: 20, MaxLeaseOwnership: 5, MinBalance: 30, MaxBalance: 1800, AutoPartnerDown: 600,
		Pos: Pos{"test.conf", 2},
	}}
	if diff := cmpDiff(want, c.FailoverPeers); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
}

func TestFailoverDefaults(t *testing.T) {
	hba := "00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:\n    10:11:12:13:14:15:16:17:18:19:1a:1b:1c:1d:1e:ff"
	c := mustParse(t, "failover peer fo { primary; peer address 198.18.0.2; mclt 600; hba "+hba+"; max-response-delay 0; }\n"+poolRef)
	var wantHBA []byte
	for i := 0; i < 31; i++ {
		wantHBA = append(wantHBA, byte(i))
	}
	wantHBA = append(wantHBA, 0xff)
	want := []*FailoverPeer{{
		Name: "fo", Role: Primary, Port: 647, PeerAddress: "198.18.0.2", PeerPort: 647,
		MaxResponseDelay: 20, MaxUnackedUpdates: 100, MCLT: 600, HBA: wantHBA, Split: -1,
		MaxLeaseMisbalance: 15, MaxLeaseOwnership: 10, MinBalance: 60, MaxBalance: 3600,
		Pos: Pos{"test.conf", 1},
	}}
	if diff := cmpDiff(want, c.FailoverPeers); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	wantWarn := []string{`test.conf:1: failover peer: load balancing is disabled for failover peer "fo" because load balance max seconds is 0 (ISC dhcpd warns the same; 3 to 5 is usual)`}
	if diff := cmpDiff(wantWarn, c.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}

	c = mustParse(t, "failover peer \"fo\" { secondary; address 198.18.0.2; peer address 198.18.0.1; }\n"+poolRef)
	want = []*FailoverPeer{{
		Name: "fo", Role: Secondary, Address: "198.18.0.2", Port: 647, PeerAddress: "198.18.0.1", PeerPort: 647,
		MaxResponseDelay: 20, MaxUnackedUpdates: 100, Split: -1,
		MaxLeaseMisbalance: 15, MaxLeaseOwnership: 10, MinBalance: 60, MaxBalance: 3600,
		Pos: Pos{"test.conf", 1},
	}}
	if diff := cmpDiff(want, c.FailoverPeers); diff != "" {
		t.Errorf("secondary (-want +got):\n%s", diff)
	}
}

func TestFailoverReferences(t *testing.T) {
	const peer = "failover peer \"fo\" { primary; peer address 198.18.0.2; mclt 600; split 128; load balance max seconds 3; }\n"
	// A reference may come before the declaration.
	c := mustParse(t, poolRef+peer)
	if got := c.Subnets[0].Pools[0].FailoverPeer; got != "fo" {
		t.Errorf("pool peer %q", got)
	}

	// A shared-network's reference is inherited by its explicit pools,
	// except those that say "no failover peer"; ranges outside pools
	// never take part in failover (as in ISC) and draw a warning.
	c = mustParse(t, peer+`shared-network n {
  failover peer "fo";
  subnet 198.18.0.0 netmask 255.255.255.0 {
    pool { range 198.18.0.10 198.18.0.20; }
    pool { no failover peer; range 198.18.0.30 198.18.0.40; }
    range 198.18.0.50 198.18.0.60;
  }
}
`)
	var got []string
	for _, p := range c.Subnets[0].Pools {
		got = append(got, p.Ranges[0].Start.String()+"="+p.FailoverPeer)
	}
	if diff := cmpDiff([]string{"198.18.0.50=", "198.18.0.10=fo", "198.18.0.30="}, got); diff != "" {
		t.Errorf("pool peers (-want +got):\n%s", diff)
	}
	// "no failover peer" is deliberate: no warning for that pool.
	wantWarn := []string{"test.conf:7: range: this range is outside any pool, so it is not shared with the failover peer (as in ISC dhcpd); if the partner serves it too, both will hand out the same addresses. Put it in a pool with a failover peer statement"}
	if diff := cmpDiff(wantWarn, c.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}

	// A peer declared inside a shared-network applies to its pools.
	c = mustParse(t, "shared-network n {\n"+strings.TrimSuffix(peer, "\n")+"\nsubnet 198.18.0.0 netmask 255.255.255.0 { pool { range 198.18.0.10 198.18.0.20; } } }")
	if got := c.Subnets[0].Pools[0].FailoverPeer; got != "fo" {
		t.Errorf("pool peer %q", got)
	}

	// A pool without any peer in a failover configuration is probably a
	// mistake; the partner would serve the same addresses.
	c = mustParse(t, peer+poolRef[:len(poolRef)-1]+"\nsubnet 198.19.0.0 netmask 255.255.0.0 {\npool { range 198.19.0.10 198.19.0.20; } }")
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "test.conf:4: pool: this pool names no failover peer") {
		t.Errorf("warnings: %v", c.Warnings)
	}

	// "peer max-response-delay" is accepted and ignored, as the partner
	// announces its own value.
	c = mustParse(t, "failover peer \"fo\" { secondary; peer address 198.18.0.1;\npeer max-response-delay 9; }\n"+poolRef)
	if want := []string{"test.conf:2: peer max-response-delay: ignored: the partner announces its own value when it connects"}; cmpDiff(want, c.Warnings) != "" {
		t.Errorf("warnings: %v", c.Warnings)
	}

	// Tandem also takes a reference in a subnet, with a warning since
	// ISC dhcpd refuses it there.
	c = mustParse(t, peer+"subnet 198.18.0.0 netmask 255.255.255.0 {\nfailover peer \"fo\";\npool { range 198.18.0.10 198.18.0.20; } }")
	if got := c.Subnets[0].Pools[0].FailoverPeer; got != "fo" {
		t.Errorf("pool peer %q", got)
	}
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "test.conf:3: failover peer: ISC dhcpd rejects") {
		t.Errorf("warnings: %v", c.Warnings)
	}
}

func TestFailoverErrors(t *testing.T) {
	const ref = "\n" + poolRef
	for _, tc := range []struct{ name, src, want string }{
		{"secondary mclt", "failover peer \"fo\" { secondary;\npeer address 198.18.0.1;\nmclt 3600; }" + ref,
			"test.conf:3: mclt: a secondary may not set mclt: it learns it from the primary; remove this line"},
		{"secondary split", "failover peer \"fo\" { split 128; secondary; peer address 198.18.0.1; }" + ref,
			"test.conf:1: split: a secondary may not set split: it learns it from the primary; remove this line"},
		{"secondary hba", "failover peer \"fo\" { secondary; peer address 198.18.0.1; hba " + strings.Repeat("0:", 31) + "0; }" + ref,
			"test.conf:1: hba: a secondary may not set hba: it learns it from the primary; remove this line"},
		{"primary without split", "failover peer \"fo\" { primary; peer address 198.18.0.2; mclt 60; }" + ref,
			`test.conf:1: failover peer: primary failover server "fo" must have hba or split`},
		{"primary without mclt", "failover peer \"fo\" { primary; peer address 198.18.0.2; split 128; }" + ref,
			`test.conf:1: failover peer: primary failover server "fo" must have mclt`},
		{"split and hba", "failover peer \"fo\" { primary; peer address 198.18.0.2; mclt 60; split 128;\nhba " + strings.Repeat("ff:", 31) + "ff; }" + ref,
			`test.conf:2: hba: failover peer "fo" has both split and hba; give only one`},
		{"split too big", "failover peer \"fo\" { primary; split 257; }",
			"test.conf:1: split: split must be between 0 and 256, inclusive"},
		{"hba short", "failover peer \"fo\" { primary; hba ff:ff; }",
			"test.conf:1: hba: HBA must be exactly 32 bytes, not 2"},
		{"no role", "failover peer \"fo\" { peer address 198.18.0.2; }" + ref,
			`test.conf:1: failover peer: failover peer "fo" must say primary or secondary`},
		{"no peer address", "failover peer \"fo\" { secondary; address 198.18.0.2; }" + ref,
			`test.conf:1: failover peer: failover peer "fo": peer address may not be omitted`},
		{"unknown parameter", "failover peer \"fo\" { secondary;\nmax-transmit-idle 5; }",
			"test.conf:2: failover peer: invalid statement in peer declaration: max-transmit-idle"},
		{"twice", "failover peer \"fo\" { secondary; port 1;\nport 2; }",
			"test.conf:2: failover peer: port given twice in failover peer \"fo\" (first at line 1)"},
		{"bad port", "failover peer \"fo\" { secondary; port 70000; }",
			"test.conf:1: port: 70000 is too large for a port number (at most 65535)"},
		{"load balance", "failover peer \"fo\" { secondary; load balance max secs 3; }",
			`test.conf:1: load balance max seconds: expected "seconds" but found "secs"`},
		{"redeclared", "failover peer \"fo\" { secondary; peer address 198.18.0.1; }\nfailover peer \"fo\" { secondary; }",
			`test.conf:2: failover peer: failover peer "fo" is already declared at test.conf:1`},
		{"unknown reference", "subnet 198.18.0.0 netmask 255.255.255.0 { pool {\nfailover peer \"nope\"; range 198.18.0.10 198.18.0.20; } }",
			`test.conf:2: failover peer: reference to unknown failover peer "nope"`},
		{"unused peer", "failover peer \"fo\" { secondary; peer address 198.18.0.1; }",
			`test.conf:1: failover peer: failover peer "fo" is not referred to by any pool; write failover peer "fo"; in each pool it shares`},
		{"reference at global scope", "failover peer \"fo\";",
			"test.conf:1: failover peer: a failover peer reference belongs in a pool or shared-network, not at global scope"},
		{"declared in subnet", "subnet 198.18.0.0 netmask 255.255.255.0 { failover peer \"fo\" { secondary; } }",
			"test.conf:1: failover peer: failover peers may be declared only at global scope or in a shared-network, not in a subnet"},
		{"dynamic-bootp in failover pool", "failover peer \"fo\" { secondary; peer address 198.18.0.1; }\nsubnet 198.18.0.0 netmask 255.255.255.0 { pool { failover peer \"fo\";\nrange dynamic-bootp 198.18.0.10 198.18.0.20; } }",
			"test.conf:3: range: dynamic-bootp is not permitted in a range of a failover pool (the failover protocol cannot share BOOTP leases)"},
		{"no failover outside pool", "subnet 198.18.0.0 netmask 255.255.255.0 { no failover peer; }",
			"test.conf:1: no failover peer: allowed only in a pool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := parseError(t, tc.src)
			if e.Error() != tc.want {
				t.Errorf("\n got: %s\nwant: %s", e, tc.want)
			}
		})
	}
}
