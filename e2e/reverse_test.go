package e2e

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// The way back and the way in, one server at a time: ISC dhcpd 4.4 reads
// the lease file Tandem wrote, and Tandem reads the one ISC wrote, and in
// both directions the clients keep their addresses across the switch.

// iscLeaseFileComplaint matches what ISC dhcpd says about a lease file it
// cannot fully read: "FILE line N: …", "possibly corrupt lease file",
// "Corrupt lease file - possible data loss!", and the parser's
// "expecting …" / "unexpected …". `dhcpd -T` exits 0 even then, so its
// output is what tells.
var iscLeaseFileComplaint = regexp.MustCompile(`(?mi)^.*(line \d+:|corrupt|expecting|unexpected|unknown|not a|invalid|bad ).*$`)

// iscWroteLeases matches ISC's count of the leases it rewrote at start.
var iscWroteLeases = regexp.MustCompile(`(?m)^Wrote (\d+) leases to leases file\.`)

// iscTestLeaseFile runs `dhcpd -T` (test the lease file) on a copy of
// leasePath, so that nothing touches the original, and fails on any
// complaint. It returns how many leases ISC read and rewrote.
func iscTestLeaseFile(t *testing.T, h *lab.Host, confPath, leasePath string) int {
	t.Helper()
	dir := t.TempDir()
	cp := filepath.Join(dir, "dhcpd.leases")
	data, err := os.ReadFile(leasePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := h.Run("dhcpd", "-4", "-T", "-cf", confPath, "-lf", cp, "-pf", filepath.Join(dir, "dhcpd.pid"))
	if err != nil {
		t.Fatalf("dhcpd -T on %s: %v", leasePath, err)
	}
	complaints := iscLeaseFileComplaint.FindAllString(out, -1)
	for _, m := range complaints {
		t.Errorf("dhcpd -T on %s complains: %s", leasePath, m)
	}
	if len(complaints) > 0 {
		t.Logf("lease file %s:\n%s", leasePath, data)
	}
	if !strings.Contains(out, "Lease file test successful") {
		t.Errorf("dhcpd -T on %s did not report success:\n%s", leasePath, out)
	}
	m := iscWroteLeases.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dhcpd -T on %s wrote no lease count:\n%s", leasePath, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// handoverClients are the clients of a handover test: one known by its
// MAC, one by its client identifier with a host name (so the file carries
// uid and client-hostname), and one that releases its lease before the
// switch (so the file carries a non-active record too).
type handoverClients struct {
	byMAC, byID, released *lab.DHClient
	macEv, idEv           lab.ClientEvent
}

const handoverClientID = "handover-client"

func newHandoverClients(l *lab.Lab) *handoverClients {
	return &handoverClients{
		byMAC:    lab.NewDHClient(l.Clients[0], lab.DHClientOptions{}),
		byID:     lab.NewDHClient(l.Clients[1], lab.DHClientOptions{ClientID: handoverClientID, Hostname: "handover-two"}),
		released: lab.NewDHClient(l.Clients[2], lab.DHClientOptions{}),
	}
}

// acquire gets all three leases from the first server, releases the
// third and stops the other two without releasing (a client stays bound
// while its server is swapped).
func (hc *handoverClients) acquire(t *testing.T, server *lab.Host) {
	t.Helper()
	var err error
	if hc.macEv, err = hc.byMAC.Acquire(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if hc.idEv, err = hc.byID.Acquire(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err = hc.released.Acquire(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []lab.ClientEvent{hc.macEv, hc.idEv} {
		if ev.ServerID != server.IP {
			t.Fatalf("lease %s from %s, want from %s", ev.IP, ev.ServerID, server.IP)
		}
	}
	if err := hc.released.Release(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	hc.byMAC.Stop()
	hc.byID.Stop()
}

// keep restarts the two bound clients against the second server: each
// asks for its address in INIT-REBOOT (RFC 2131 §3.2) and must get it
// (REBOOT). The first then renews by unicast at T1 (§4.4.5) and is ACKed.
// serverLog is the new server's log; both ACKs must show in it.
func (hc *handoverClients) keep(t *testing.T, server *lab.Host, serverLog *lab.Proc) {
	t.Helper()
	mark := serverLog.LogSize()
	for _, c := range []struct {
		dc   *lab.DHClient
		want lab.ClientEvent
	}{{hc.byMAC, hc.macEv}, {hc.byID, hc.idEv}} {
		ev, err := c.dc.Acquire(30 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Reason != "REBOOT" || ev.IP != c.want.IP || ev.ServerID != server.IP {
			t.Errorf("%s after the switch: %s %s from %s, want REBOOT of %s from %s",
				c.dc.Host.Name, ev.Reason, ev.IP, ev.ServerID, c.want.IP, server.IP)
		}
		ack := regexp.QuoteMeta(fmt.Sprintf("DHCPACK on %s to %s", c.want.IP, c.dc.Host.MAC))
		if _, err := serverLog.AwaitLog(mark, ack, 5*time.Second); err != nil {
			t.Errorf("the new server did not log the ACK: %v", err)
		}
	}
	// A renewal: the running client unicasts a REQUEST at T1. dhclient's
	// T1 is half the lease; supersede it by restarting with a short one.
	hc.byMAC.Stop()
	renewing := lab.NewDHClient(hc.byMAC.Host, lab.DHClientOptions{RenewalTime: 2 * time.Second})
	// The new DHClient has an empty lease file: copy the old one so that it
	// reboots into the same lease rather than starting over.
	copyFile(t, hc.byMAC.LeasePath, renewing.LeasePath)
	ev, err := renewing.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev.IP != hc.macEv.IP {
		t.Errorf("%s rebooted into %s, want %s", renewing.Host.Name, ev.IP, hc.macEv.IP)
	}
	rn, err := renewing.WaitRenew(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rn.Reason != "RENEW" || rn.IP != hc.macEv.IP || rn.ServerID != server.IP {
		t.Errorf("renewal with the new server: %+v, want RENEW of %s from %s", rn, hc.macEv.IP, server.IP)
	}
	renewing.Stop()
	hc.byID.Stop()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkFileHasClients asserts the lease file at path holds both bound
// clients' leases, active, with their identities.
func (hc *handoverClients) checkFileHasClients(t *testing.T, path string) {
	t.Helper()
	c, err := parseLeaseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	idx := leaseIndex(c)
	if l := idx[hc.macEv.IP]; l == nil || l.State != lease.Active || !bytes.Equal(l.HardwareAddr(), hc.byMAC.Host.MAC) {
		t.Errorf("%s: lease of %s is %s, want active to %s", path, hc.macEv.IP, describeLease(l), hc.byMAC.Host.MAC)
	}
	if l := idx[hc.idEv.IP]; l == nil || l.State != lease.Active || l.ClientID != handoverClientID {
		t.Errorf("%s: lease of %s is %s, want active to client id %q", path, hc.idEv.IP, describeLease(l), handoverClientID)
	}
}

// TestISCTakesOverTandemLeaseFile is the way back: Tandem served alone,
// then ISC dhcpd 4.4 starts with the same dhcpd.conf and Tandem's lease
// file. `dhcpd -T` reads the file without a complaint, dhcpd starts on
// it, and the clients keep their addresses.
func TestISCTakesOverTandemLeaseFile(t *testing.T) {
	needsLab(t, "dhcpd", "dhclient")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 1, Clients: 3})
	srv := l.Servers[0]
	tdm := lab.NewTandem(srv, lab.Pools{LeaseTime: 10 * time.Minute}.DhcpdConf())
	tdm.Start()

	hc := newHandoverClients(l)
	hc.acquire(t, srv)
	if err := tdm.Stop(10 * time.Second); err != nil {
		t.Errorf("tandem after SIGTERM: %v", err)
	}
	hc.checkFileHasClients(t, tdm.LeasePath)

	if n := iscTestLeaseFile(t, srv, tdm.ConfPath, tdm.LeasePath); n < 3 {
		t.Errorf("dhcpd -T read %d leases from Tandem's file, want at least the 3 clients'", n)
	}

	isc := lab.NewISCDhcpd(srv, "")
	isc.ConfPath, isc.LeasePath = tdm.ConfPath, tdm.LeasePath
	p := isc.Start()
	startLog := p.Log()
	for _, m := range iscLeaseFileComplaint.FindAllString(startLog, -1) {
		t.Errorf("dhcpd starting on Tandem's lease file: %s", m)
	}
	hc.keep(t, srv, p)
	// ISC's own record of them, appended to the same file.
	hc.checkFileHasClients(t, isc.LeasePath)
}

// TestTandemTakesOverISCLeaseFile is the way in: ISC dhcpd 4.4 served
// alone, then Tandem starts with the same dhcpd.conf and ISC's lease file,
// reads every record, and the clients keep their addresses.
func TestTandemTakesOverISCLeaseFile(t *testing.T) {
	needsLab(t, "dhcpd", "dhclient")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 1, Clients: 3})
	srv := l.Servers[0]
	isc := lab.NewISCDhcpd(srv, lab.Pools{LeaseTime: 10 * time.Minute}.DhcpdConf())
	isc.Start()

	hc := newHandoverClients(l)
	hc.acquire(t, srv)
	if err := isc.Proc().Stop(10 * time.Second); err != nil {
		t.Logf("dhcpd after SIGTERM: %v", err)
	}
	hc.checkFileHasClients(t, isc.LeasePath)

	tdm := lab.NewTandem(srv, "")
	tdm.ConfPath, tdm.LeasePath = isc.ConfPath, isc.LeasePath
	tdm.Verbose = true // ISC's per-request lines, DHCPACK among them
	p := tdm.Start()
	// Tandem reports what it read and skipped; nothing may be dropped.
	if _, err := p.AwaitLog(0, `lease file read .*dropped=0`, time.Second); err != nil {
		t.Errorf("Tandem reading ISC's lease file: %v", err)
	}
	for _, line := range strings.Split(p.Log(), "\n") {
		if strings.Contains(line, "WARN") || strings.Contains(line, "ERROR") {
			t.Errorf("Tandem starting on ISC's lease file: %s", line)
		}
	}
	ls, err := (&pairServer{t: t, host: srv, tdm: tdm}).leases()
	if err != nil {
		t.Fatal(err)
	}
	if got := ls[hc.idEv.IP]; got.State != "active" || got.ClientID != hex.EncodeToString([]byte(handoverClientID)) {
		t.Errorf("tandem leases: %s is %s, want active to client id %q", hc.idEv.IP, got, handoverClientID)
	}
	if got := ls[hc.macEv.IP]; got.State != "active" || got.Hardware != hc.byMAC.Host.MAC.String() {
		t.Errorf("tandem leases: %s is %s, want active to %s", hc.macEv.IP, got, hc.byMAC.Host.MAC)
	}
	hc.keep(t, srv, p)
	hc.checkFileHasClients(t, tdm.LeasePath)
}
