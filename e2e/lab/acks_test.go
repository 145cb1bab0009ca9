package lab

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// iscLog is a dhcpd -d log, as the lab's ISCDhcpd writes it.
const iscLog = `Internet Systems Consortium DHCP Server 4.4.3-P1
DHCPDISCOVER from 02:74:64:00:00:01 via 198.19.0.1
DHCPOFFER on 198.19.1.0 to 02:74:64:00:00:01 via 198.19.0.1
DHCPREQUEST for 198.19.1.0 (198.18.0.1) from 02:74:64:00:00:01 via 198.19.0.1
DHCPACK on 198.19.1.0 to 02:74:64:00:00:01 via 198.19.0.1
DHCPACK on 198.18.0.100 to 02:74:64:01:00:01 (cli1) via eth0
DHCPACK to 198.18.0.100 (02:74:64:01:00:01) via eth0
`

// tandemLog is tandem serve -v's slog text.
const tandemLog = `time=2026-11-22T06:33:34.873Z level=INFO msg="server started"
time=2026-11-22T06:33:35.001Z level=DEBUG msg="DHCPREQUEST for 198.19.1.1 (198.18.0.2) from 02:74:64:00:00:02 via 198.19.0.1"
time=2026-11-22T06:33:35.002Z level=DEBUG msg="DHCPACK on 198.19.1.1 to 02:74:64:00:00:02 via 198.19.0.1"
`

const keaLog = `2026-11-22 06:33:34.873 INFO  [kea-dhcp4.leases/487.1401] DHCP4_LEASE_ADVERT [hwtype=1 02:74:64:01:00:01], cid=[6b:65], tid=0x5cae7b35: lease 198.18.0.100 will be advertised
2026-11-22 06:33:34.876 INFO  [kea-dhcp4.leases/487.1401] DHCP4_LEASE_ALLOC [hwtype=1 02:74:64:01:00:01], cid=[6b:65], tid=0x5cae7b35: lease 198.18.0.100 has been allocated for 600 seconds
`

func TestParseAckLog(t *testing.T) {
	for _, tc := range []struct {
		name, log string
		want      []Ack
	}{
		{"ISC", iscLog, []Ack{
			{Addr: netip.MustParseAddr("198.19.1.0"), MAC: "02:74:64:00:00:01", Server: "s"},
			{Addr: netip.MustParseAddr("198.18.0.100"), MAC: "02:74:64:01:00:01", Server: "s"},
		}},
		{"Tandem", tandemLog, []Ack{
			{Addr: netip.MustParseAddr("198.19.1.1"), MAC: "02:74:64:00:00:02", Server: "s"},
		}},
		{"Kea", keaLog, []Ack{
			{Addr: netip.MustParseAddr("198.18.0.100"), MAC: "02:74:64:01:00:01", Server: "s", Lease: 10 * time.Minute},
		}},
		// The server may be writing the last line still.
		{"torn last line", "DHCPACK on 198.19.1.0 to 02:74:64:00:00:01 via eth0\nDHCPACK on 198.19.1.", []Ack{
			{Addr: netip.MustParseAddr("198.19.1.0"), MAC: "02:74:64:00:00:01", Server: "s"},
		}},
		{"no line", "DHCPACK on 198.19.1.0 to 02:74:64:00:00:01 via eth0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAckLog("s", tc.log)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmpopts.EquateComparable(netip.Addr{})); d != "" {
				t.Errorf("ParseAckLog (-want +got):\n%s", d)
			}
		})
	}
}

// A line that names a DHCPACK but cannot be read must not vanish from the
// check.
func TestParseAckLogRejectsGarbledLines(t *testing.T) {
	for _, line := range []string{
		"DHCPACK on 198.19.1.0\n",
		"DHCPACK on 2001:db8::1 to 02:74:64:00:00:01 via eth0\n",
		"DHCPACK on 198.19.1.0 to  via eth0\n",
		"DHCP4_LEASE_ALLOC [hwtype=1 02:74:64:01:00:01], tid=0x1: lease 198.18.0.100 was allocated\n",
	} {
		if acks, err := ParseAckLog("s", line); err == nil {
			t.Errorf("ParseAckLog(%q) = %v, nil; want an error", line, acks)
		}
	}
}

func TestAcksCheckUnique(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	addr := netip.MustParseAddr("198.19.1.7")
	timed := func(mac string, after, lease time.Duration) Ack {
		return Ack{Addr: addr, MAC: mac, Server: "capture", At: t0.Add(after), Lease: lease}
	}
	for _, tc := range []struct {
		name   string
		logs   [2]string // primary's, secondary's
		acks   []Ack
		double bool
	}{
		{name: "each address to one client; one client acknowledged by both servers",
			logs: [2]string{
				"DHCPACK on 198.19.1.0 to 02:00:00:00:00:01 via eth0\nDHCPACK on 198.19.1.1 to 02:00:00:00:00:02 via eth0\n",
				`msg="DHCPACK on 198.19.1.1 to 02:00:00:00:00:02 via eth0"` + "\n" + `msg="DHCPACK on 198.19.1.2 to 02:00:00:00:00:01 via eth0"` + "\n",
			}},
		{name: "one address to two clients, one by each server", double: true,
			logs: [2]string{
				"DHCPACK on 198.19.1.0 to 02:00:00:00:00:01 via eth0\n",
				`msg="DHCPACK on 198.19.1.0 to 02:00:00:00:00:03 via eth0"` + "\n",
			}},
		{name: "one address to two clients by one server", double: true,
			logs: [2]string{"DHCPACK on 198.19.1.0 to 02:00:00:00:00:01 via eth0\nDHCPACK on 198.19.1.0 to 02:00:00:00:00:03 via eth0\n"}},
		{name: "an address moves after its lease ended",
			acks: []Ack{timed("02:00:00:00:00:01", 0, 10*time.Second), timed("02:00:00:00:00:03", 20*time.Second, time.Minute)}},
		{name: "an address moves while its lease lasts", double: true,
			acks: []Ack{timed("02:00:00:00:00:01", 0, 10*time.Second), timed("02:00:00:00:00:03", 5*time.Second, time.Minute)}},
		{name: "an address moves as its lease ends, within the clock slack",
			acks: []Ack{timed("02:00:00:00:00:01", 0, 10*time.Second), timed("02:00:00:00:00:03", 9*time.Second, time.Minute)}},
		{name: "a renewed lease still lasts", double: true,
			acks: []Ack{timed("02:00:00:00:00:01", 0, 10*time.Second), timed("02:00:00:00:00:01", 8*time.Second, 10*time.Second),
				timed("02:00:00:00:00:03", 15*time.Second, time.Minute)}},
		{name: "an ACK without times lasts the whole stretch", double: true,
			acks: []Ack{timed("02:00:00:00:00:01", 0, 10*time.Second), {Addr: addr, MAC: "02:00:00:00:00:03", Server: "log"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var acks Acks
			for i, log := range tc.logs {
				if err := acks.AddLog([]string{"primary", "secondary"}[i], log); err != nil {
					t.Fatal(err)
				}
			}
			acks.Add(tc.acks...)
			err := acks.CheckUnique()
			if (err != nil) != tc.double {
				t.Fatalf("CheckUnique() = %v, want a double lease: %v\n%s", err, tc.double, acks.Summary())
			}
			if err != nil {
				t.Logf("CheckUnique: %v", err)
				dl := acks.DoubleLeases()
				if len(dl) != 1 || dl[0].First.MAC == dl[0].Second.MAC || dl[0].First.Addr != dl[0].Second.Addr {
					t.Errorf("DoubleLeases() = %v, want one pair of two clients", dl)
				}
			}
		})
	}
}

func TestAcksSummary(t *testing.T) {
	var acks Acks
	if err := acks.AddLog("isc", iscLog); err != nil {
		t.Fatal(err)
	}
	if err := acks.AddLog("tandem", tandemLog); err != nil {
		t.Fatal(err)
	}
	if err := acks.AddLog("idle", "nothing\n"); err != nil {
		t.Fatal(err)
	}
	want := "3 DHCPACKs (isc 2, tandem 1, idle 0) of 3 addresses to 3 clients; 0 clients given more than one address, 0 addresses given to more than one client"
	if got := acks.Summary(); got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	acks.Add(Ack{Addr: netip.MustParseAddr("198.19.1.1"), MAC: "02:74:64:00:00:01", Server: "isc"})
	want = "4 DHCPACKs (isc 3, tandem 1, idle 0) of 3 addresses to 3 clients; 1 clients given more than one address, 1 addresses given to more than one client"
	if got := acks.Summary(); got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if acks.Len() != 4 {
		t.Errorf("Len() = %d, want 4", acks.Len())
	}
}

func TestAcksCheckHeld(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.19.1.1"), netip.MustParseAddr("198.19.1.2")
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		acks   []Ack
		active map[netip.Addr]string
		bad    []string // substrings of the error; nil: no error
	}{
		{name: "held",
			acks:   []Ack{{Addr: a1, MAC: "02:00:00:00:00:01"}, {Addr: a2, MAC: "02:00:00:00:00:02"}, {Addr: a1, MAC: "02:00:00:00:00:01"}},
			active: map[netip.Addr]string{a1: "02:00:00:00:00:01", a2: "02:00:00:00:00:02", netip.MustParseAddr("198.19.1.3"): "02:00:00:00:00:09"}},
		{name: "missing and held for another client",
			acks:   []Ack{{Addr: a1, MAC: "02:00:00:00:00:01"}, {Addr: a2, MAC: "02:00:00:00:00:02"}},
			active: map[netip.Addr]string{a2: "02:00:00:00:00:09"},
			bad:    []string{"2 acknowledged leases", "198.19.1.1 to 02:00:00:00:00:01 by : db has no active lease", "db has it active for 02:00:00:00:00:09"}},
		{name: "the last timed ACK counts; an ended lease is not checked",
			acks: []Ack{
				{Addr: a1, MAC: "02:00:00:00:00:01", At: now.Add(-time.Minute), Lease: 30 * time.Second},
				{Addr: a1, MAC: "02:00:00:00:00:03", At: now.Add(-10 * time.Second), Lease: time.Minute},
				{Addr: a2, MAC: "02:00:00:00:00:02", At: now.Add(-time.Minute), Lease: 30 * time.Second},
			},
			active: map[netip.Addr]string{a1: "02:00:00:00:00:03"}},
		{name: "the last timed ACK is not held",
			acks: []Ack{
				{Addr: a1, MAC: "02:00:00:00:00:03", At: now.Add(-10 * time.Second), Lease: time.Minute},
				{Addr: a1, MAC: "02:00:00:00:00:01", At: now.Add(-time.Minute), Lease: 30 * time.Second},
			},
			active: map[netip.Addr]string{a1: "02:00:00:00:00:01"},
			bad:    []string{"1 acknowledged leases", "to 02:00:00:00:00:03", "active for 02:00:00:00:00:01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var acks Acks
			acks.Add(tc.acks...)
			err := acks.CheckHeld("db", tc.active, now)
			if tc.bad == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckHeld() = nil, want an error")
			}
			for _, s := range tc.bad {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("CheckHeld() = %v, want it to say %q", err, s)
				}
			}
		})
	}
}

func TestParseActiveLeases(t *testing.T) {
	text := `lease 198.19.1.1 {
  starts 0 2026/11/22 06:00:00;
  ends 0 2026/11/22 06:10:00;
  binding state active;
  hardware ethernet 02:00:00:00:00:01;
}
lease 198.19.1.2 {
  starts 0 2026/11/22 06:00:00;
  ends 0 2026/11/22 06:10:00;
  binding state free;
  hardware ethernet 02:00:00:00:00:02;
}
lease 198.19.1.1 {
  starts 0 2026/11/22 06:01:00;
  ends 0 2026/11/22 06:11:00;
  binding state active;
  hardware ethernet 02:00:00:00:00:03;
}
`
	got, err := ParseActiveLeases(text)
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]string{netip.MustParseAddr("198.19.1.1"): "02:00:00:00:00:03"}
	if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); d != "" {
		t.Errorf("ParseActiveLeases (-want +got):\n%s", d)
	}
}
