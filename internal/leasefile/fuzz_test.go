package leasefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzLoad feeds arbitrary bytes to Parse, the parser behind Load. Whatever
// it accepts must survive a round trip through the encoder unchanged, and a
// recovered torn tail must leave a prefix that parses cleanly to the same
// contents.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.leases")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	full, lastStart, _ := sampleFile(false)
	f.Add(full)
	f.Add(full[:lastStart+40])
	f.Add([]byte("lease 198.18.0.1 { starts epoch -5; ends never; hardware unknown-0; uid ; }"))
	f.Add([]byte("failover peer x state { my state normal; peer state startup at 0 1970/1/1 0:0:0 -1; mclt 4294967295; }"))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Offset < 0 || pe.Offset > len(data) {
				t.Fatalf("error %v (%T) without a sane position", err, err)
			}
			return
		}
		if r := c.Recovered; r != nil {
			if r.Offset < 0 || r.Offset+r.Dropped != int64(len(data)) || r.Dropped == 0 {
				t.Fatalf("Recovered = %+v for %d bytes", r, len(data))
			}
			prefix, err := Parse(data[:r.Offset])
			if err != nil || prefix.Recovered != nil {
				t.Fatalf("the kept prefix does not parse cleanly: %v, %+v", err, prefix)
			}
			if diff := cmp.Diff(c.Leases, prefix.Leases); diff != "" {
				t.Fatalf("prefix leases differ (-full +prefix):\n%s", diff)
			}
			if diff := cmp.Diff(c.Failover, prefix.Failover); diff != "" {
				t.Fatalf("prefix failover differs (-full +prefix):\n%s", diff)
			}
		}
		var enc []byte
		enc = append(enc, Header...)
		for i := range c.Failover {
			enc = AppendFailoverState(enc, &c.Failover[i])
		}
		for i := range c.Leases {
			enc = AppendLease(enc, &c.Leases[i])
		}
		again, err := Parse(enc)
		if err != nil || again.Recovered != nil {
			t.Fatalf("re-encoded contents do not parse: %v\n%s", err, enc)
		}
		if diff := cmp.Diff(c.Leases, again.Leases); diff != "" {
			t.Fatalf("leases changed in a round trip (-parsed +reparsed):\n%s", diff)
		}
		if diff := cmp.Diff(c.Failover, again.Failover); diff != "" {
			t.Fatalf("failover changed in a round trip (-parsed +reparsed):\n%s", diff)
		}
	})
}
