package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/lease"
	"github.com/tandemdhcp/tandem/internal/leasefile"
)

func TestMain(m *testing.M) {
	code := m.Run()
	lab.RemoveTandemBuild()
	os.Exit(code)
}

// needsLab skips unless the test can build namespaces and run progs.
func needsLab(t *testing.T, progs ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network namespaces need root")
	}
	for _, p := range append([]string{"ip"}, progs...) {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: %s not installed (scripts/setup.sh installs it)", p)
		}
	}
}

// tandemBinary builds (once) or finds the binary, or fails the test.
func tandemBinary(t *testing.T) string {
	t.Helper()
	if os.Getenv(lab.TandemBinaryEnv) == "" {
		if _, err := exec.LookPath("go"); err != nil {
			t.Skip("skipping: go not in PATH to build tandem")
		}
	}
	bin, err := lab.TandemBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func inRange(a, first, last netip.Addr) bool {
	return a.IsValid() && first.Compare(a) <= 0 && a.Compare(last) <= 0
}

// leaseIndex maps each address to its lease record.
func leaseIndex(c *leasefile.Contents) map[netip.Addr]*lease.Lease {
	m := make(map[netip.Addr]*lease.Lease, len(c.Leases))
	for i := range c.Leases {
		m[c.Leases[i].Addr()] = &c.Leases[i]
	}
	return m
}

// waitLease polls the lease file until the record of addr satisfies ok.
func waitLease(t *testing.T, tdm *lab.Tandem, addr netip.Addr, timeout time.Duration, what string, ok func(*lease.Lease) bool) *lease.Lease {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := tdm.Leases()
		if err != nil {
			t.Fatalf("lease file: %v", err)
		}
		l := leaseIndex(c)[addr]
		if l != nil && ok(l) {
			return l
		}
		if time.Now().After(deadline) {
			text, _ := tdm.LeaseText()
			t.Fatalf("lease of %s: %s, want %s within %v; lease file:\n%s", addr, describeLease(l), what, timeout, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describeLease(l *lease.Lease) string {
	if l == nil {
		return "no record"
	}
	return fmt.Sprintf("%s to %v (client id %q) ends %s", l.State, l.HardwareAddr(), l.ClientID,
		time.Unix(l.Ends, 0).Format(time.TimeOnly))
}

// confWith appends declarations to a base configuration.
func confWith(base string, extra ...string) string {
	return base + strings.Join(extra, "")
}
