package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes the parser panic, that every
// failure is a *Error with a position, and that what it accepts holds the
// invariants the rest of Tandem relies on.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"classic/primary.conf", "classic/secondary.conf", "classic/shared.conf", "single.conf"} {
		src, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		`failover peer "fo" { primary; peer address 198.18.0.2; mclt 600; hba ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00; }` + "\n" + poolRef,
		`option x code 200 = array of { ip-address, integer 8 }; option x 198.18.0.1 -1, 198.18.0.2 255;`,
		`option domain-search "a.test", "b.a.test", "c.b.a.test";`,
		`key k { algorithm hmac-md5; secret pRP5FapFoJ95JEL06sv4PQ==; }; omapi-key k;`,
		`shared-network n { subnet 198.18.0.0 netmask 255.255.255.0 { } pool { deny known-clients; range 198.18.0.1 198.18.0.9; } }`,
		`include "x.conf";`,
		`host h { hardware ethernet 0:1:2:3:4:5; uid "\001\x02"; fixed-address 198.18.0.1, 198.18.0.2; }`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		// Every include reads the input itself: that reaches include
		// cycles and the nesting bound.
		read := func(string) ([]byte, error) { return src, nil }
		cfg, err := Parse("fuzz.conf", src, read)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if e.Pos.File == "" || e.Msg == "" {
				t.Fatalf("error without position or message: %#v", e)
			}
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		peers := map[string]*FailoverPeer{}
		for _, fp := range cfg.FailoverPeers {
			peers[fp.Name] = fp
			if fp.Role == Primary && (len(fp.HBA) != 32 || fp.MCLT == 0) {
				t.Fatalf("primary %q without HBA or MCLT", fp.Name)
			}
			if fp.Role == Secondary && fp.HBA != nil {
				t.Fatalf("secondary %q with HBA", fp.Name)
			}
		}
		for _, sn := range cfg.Subnets {
			for _, p := range sn.Pools {
				if p.FailoverPeer != "" && peers[p.FailoverPeer] == nil {
					t.Fatalf("pool refers to undeclared peer %q", p.FailoverPeer)
				}
				for _, r := range p.Ranges {
					if r.End.Less(r.Start) || !sn.Prefix.Contains(r.Start) || !sn.Prefix.Contains(r.End) {
						t.Fatalf("range %v-%v not ordered inside %v", r.Start, r.End, sn.Prefix)
					}
				}
			}
		}
	})
}
