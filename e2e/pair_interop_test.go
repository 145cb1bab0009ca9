package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/lease"
	"github.com/tandemdhcp/tandem/internal/leasefile"
)

// TestPairTandemPrimaryISCSecondary is the first interoperability check:
// a Tandem primary and an ISC dhcpd 4.4 secondary, each reading its file
// of examples/classic with the shared one, reach normal on both sides
// (ISC logs it in its own words, Tandem's status says so), and a
// dhclient of each side of the split gets a lease that both lease files
// then hold for the same client and end.
func TestPairTandemPrimaryISCSecondary(t *testing.T) {
	needsLab(t, "dhcpd", "dhclient")
	tandemBinary(t)
	if out, err := exec.Command("dhcpd", "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "4.4") {
		t.Skipf("skipping: needs ISC dhcpd 4.4 (dhcpd --version: %q, %v)", strings.TrimSpace(string(out)), err)
	}
	l := lab.New(t, lab.Options{Servers: 2})
	byServer := splitClients(t, l, 1)
	c := classicConfs(t, 0).SetPeerParam("load balance max seconds", "30")
	// ISC pings an address before its first offer (about a second each);
	// that is a policy choice this test does not need.
	c.Shared = "ping-check false;\n" + c.Shared

	tdm := lab.NewTandem(l.Servers[0], c.Primary)
	tdm.WriteBeside(c.SharedName, c.Shared)
	isc := lab.NewISCDhcpdFailover(l.Servers[1], c.Secondary, c.SharedName, c.Shared)
	tdm.Start()
	iscProc := isc.Start()

	if _, err := iscProc.AwaitLog(0, lab.StateLinePattern(classicPeer, "", "normal"), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := tdm.AwaitStates("normal", "normal", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Tandem: %s, partner %s; ISC: %s", st.LocalState, st.PartnerState,
		regexp.MustCompile(`(?m)^.*I move from \S+ to normal.*$`).FindString(iscProc.Log()))

	// Wait until the ISC secondary holds backup leases of the LAN pool, so
	// that it has something to allocate from (fw §9).
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, backup := iscPoolCounts(t, isc)
		if backup > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ISC secondary's lease file has no backup lease of the LAN pool after 60 s")
		}
		time.Sleep(500 * time.Millisecond)
	}

	hosts := []*lab.Host{byServer[0][0], byServer[1][0]}
	clients := acquireAll(t, hosts, lab.DHClientOptions{})
	for i, pc := range clients {
		want := l.Servers[i].IP
		t.Logf("%s got %s from %s for %v", pc.c.Host.Name, pc.ev.IP, pc.ev.ServerID, pc.ev.LeaseTime)
		if pc.ev.ServerID != want {
			t.Errorf("%s (bucket of %s) answered by %s, want %s", pc.c.Host.Name, pc.c.Host.MAC, pc.ev.ServerID, want)
		}
	}

	// Both lease files hold both leases, for the same client and end.
	deadline = time.Now().Add(20 * time.Second)
	for {
		var missing []string
		tl, err := tdm.Leases()
		if err != nil {
			t.Fatal(err)
		}
		il := iscLeases(t, isc)
		for _, pc := range clients {
			a, b := leaseIndex(tl)[pc.ev.IP], leaseIndex(il)[pc.ev.IP]
			for name, le := range map[string]*lease.Lease{"Tandem": a, "ISC dhcpd": b} {
				if le == nil || le.State != lease.Active || le.HardwareAddr().String() != pc.c.Host.MAC.String() {
					missing = append(missing, name+": "+pc.ev.IP.String()+" is "+describeLease(le))
				}
			}
			if a != nil && b != nil && a.Ends != b.Ends {
				missing = append(missing, pc.ev.IP.String()+": ends differ: Tandem "+describeLease(a)+", ISC "+describeLease(b))
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s the lease files still disagree:\n%s", strings.Join(missing, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, pc := range clients {
		pc.c.Stop()
	}
	// Neither side complained about the other's messages.
	for name, log := range map[string]string{"ISC dhcpd": iscProc.Log(), "Tandem": tdm.Proc().Log()} {
		for _, bad := range []string{"invalid", "Unknown failover", "protocol error", "disconnect", "malformed"} {
			if i := strings.Index(strings.ToLower(log), strings.ToLower(bad)); i >= 0 {
				line := log[strings.LastIndex(log[:i], "\n")+1:]
				if j := strings.IndexByte(line, '\n'); j >= 0 {
					line = line[:j]
				}
				t.Errorf("%s logged %q", name, line)
			}
		}
	}
}

// iscLeases parses ISC dhcpd's lease file with Tandem's reader (which
// also proves that it reads ISC's files).
func iscLeases(t *testing.T, d *lab.ISCDhcpd) *leasefile.Contents {
	t.Helper()
	text, err := d.Leases()
	if err != nil {
		t.Fatal(err)
	}
	c, err := leasefile.Parse([]byte(text))
	if err != nil {
		t.Fatalf("ISC dhcpd's lease file: %v", err)
	}
	return c
}

// iscPoolCounts counts free and backup leases of the LAN pool in ISC's
// lease file.
func iscPoolCounts(t *testing.T, d *lab.ISCDhcpd) (free, backup int) {
	t.Helper()
	for _, l := range iscLeases(t, d).Leases {
		if !inRange(l.Addr(), lab.LANRangeFirst, lab.LANRangeLast) {
			continue
		}
		switch l.State {
		case lease.Free:
			free++
		case lease.Backup:
			backup++
		}
	}
	return free, backup
}
