package leasefile

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemdhcp/tandem/internal/lease"
)

func TestAppendLeaseFormat(t *testing.T) {
	l := withHW(lease.Lease{
		IP:    ip("198.18.0.100"),
		State: lease.Active, Next: lease.Free, Rewind: lease.Free,
		Flags:    lease.FlagReserved | lease.FlagBootp | lease.FlagDynamicRange,
		ClientID: "\x01\x00\x11\x22\x33\x44\x55",
		Hostname: "foo",
		Starts:   at("2026/11/19 10:00:00"),
		Ends:     at("2026/11/19 12:00:00"),
		TSTP:     at("2026/11/19 13:00:00"),
		TSFP:     at("2026/11/19 13:00:01"),
		ATSFP:    at("2026/11/19 13:00:02"),
		CLTT:     at("2026/11/19 10:00:00"),
	}, hw(1, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55))
	want := `lease 198.18.0.100 {
  starts 4 2026/11/19 10:00:00;
  ends 4 2026/11/19 12:00:00;
  tstp 4 2026/11/19 13:00:00;
  tsfp 4 2026/11/19 13:00:01;
  atsfp 4 2026/11/19 13:00:02;
  cltt 4 2026/11/19 10:00:00;
  binding state active;
  next binding state free;
  rewind binding state free;
  reserved;
  dynamic-bootp;
  hardware ethernet 00:11:22:33:44:55;
  uid "\001\000\021\"3DU";
  client-hostname "foo";
}
`
	if diff := cmp.Diff(want, string(AppendLease(nil, &l))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// What ISC leaves out: zero times, next/rewind equal to the state.
	bare := lease.Lease{IP: ip("198.18.0.1"), State: lease.Free, Next: lease.Free, Rewind: lease.Free, Ends: Never}
	want = "lease 198.18.0.1 {\n  ends never;\n  binding state free;\n}\n"
	if got := string(AppendLease(nil, &bare)); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendFailoverStateFormat(t *testing.T) {
	r := lease.FailoverStateRecord{
		Peer:    "dhcp-failover",
		MyState: "normal", MyStateAt: at("2026/11/19 10:00:00"),
		PartnerState: "communications-interrupted", PartnerAt: at("2026/11/19 10:00:05"),
		MCLT: 3600,
	}
	want := `
failover peer "dhcp-failover" state {
  my state normal at 4 2026/11/19 10:00:00;
  partner state communications-interrupted at 4 2026/11/19 10:00:05;
  mclt 3600;
}
`
	if diff := cmp.Diff(want, string(AppendFailoverState(nil, &r))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestEncodeMatchesISC re-encodes every record of the ISC-written files
// that has nothing Tandem skips, and expects ISC's bytes exactly.
func TestEncodeMatchesISC(t *testing.T) {
	recordRE := regexp.MustCompile(`(?ms)^(lease [^\n]*|\nfailover peer [^\n]*)\{\n.*?^\}\n`)
	compared := 0
	for _, name := range []string{"isc-4.4.leases", "isc-4.4-failover-primary.leases", "isc-4.4-failover-secondary.leases"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recordRE.FindAllString(string(data), -1) {
			if strings.Contains(rec, "\n  set ") || strings.Contains(rec, "\n  on ") || strings.Contains(rec, "mclt 0;") {
				continue // holds what Tandem does not keep
			}
			c, err := Parse([]byte(rec))
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, rec)
			}
			var got []byte
			for i := range c.Failover {
				got = AppendFailoverState(got, &c.Failover[i])
			}
			for i := range c.Leases {
				got = AppendLease(got, &c.Leases[i])
			}
			if diff := cmp.Diff(rec, string(got)); diff != "" {
				t.Errorf("%s: (-isc +tandem):\n%s", name, diff)
			}
			compared++
		}
	}
	if compared < 5 {
		t.Errorf("compared only %d records", compared)
	}
}

func TestAppendTime(t *testing.T) {
	check := func(ts int64) {
		t.Helper()
		u := time.Unix(ts, 0).UTC()
		want := fmt.Sprintf("%d %s;", u.Weekday(), u.Format("2006/01/02 15:04:05"))
		if got := string(appendTime(nil, ts)); got != want {
			t.Fatalf("appendTime(%d) = %q, want %q", ts, got, want)
		}
	}
	for _, ts := range []int64{0, 1, 86399, 86400, 951782400 /* 2000-02-29 */, 4107542400 /* 2100-03-01 */, lastDateTime} {
		check(ts)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		check(r.Int64N(lastDateTime + 1))
	}
	for ts, want := range map[int64]string{
		Never:            "never;",
		-1:               "epoch -1;",
		lastDateTime + 1: "epoch 253402300800;",
		math.MinInt64:    "epoch -9223372036854775808;",
	} {
		if got := string(appendTime(nil, ts)); got != want {
			t.Errorf("appendTime(%d) = %q, want %q", ts, got, want)
		}
	}
}

func TestCivilDays(t *testing.T) {
	for days := int64(-800000); days <= 3000000; days += 37 {
		y, m, d := civilFromDays(days)
		if back := daysFromCivil(int64(y), m, d); back != days {
			t.Fatalf("days %d -> %d-%d-%d -> %d", days, y, m, d, back)
		}
	}
}

func TestAppendQuoted(t *testing.T) {
	for in, want := range map[string]string{
		"":                 `""`,
		"plain name":       `"plain name"`,
		"\x01\x00\x11\"3D": `"\001\000\021\"3D"`,
		`back\slash`:       `"back\\slash"`,
		"\x7f\xff\n~":      `"\177\377\012~"`,
	} {
		if got := string(appendQuoted(nil, in)); got != want {
			t.Errorf("appendQuoted(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAppendHardwareType(t *testing.T) {
	for htype, want := range map[uint8]string{
		0: "unknown-0", 1: "ethernet", 6: "token-ring", 8: "fddi", 32: "infiniband", 255: "unknown-255",
	} {
		if got := string(appendHardwareType(nil, htype)); got != want {
			t.Errorf("type %d = %q, want %q", htype, got, want)
		}
	}
}

// roundTripLeases covers every binding state, flag and hardware type and
// client identifiers with quotes, backslashes and unprintable bytes.
func roundTripLeases() []lease.Lease {
	var out []lease.Lease
	states := []lease.BindingState{lease.Free, lease.Active, lease.Expired, lease.Released,
		lease.Abandoned, lease.Reset, lease.Backup}
	ids := []string{"", "\x01\x00\x11\x22\x33\x44\x55", `quote " and backslash \ `, "\x00", "\xff\xfe\x80",
		"tab\tnewline\n", strings.Repeat("\x7f", 300), "#not a comment;{}"}
	names := []string{"", "foo", "with space", "ünïcødé", `"quoted"`, "semi;colon{brace}"}
	htypes := []uint8{0, 1, 6, 8, 32, 37, 255}
	times := []int64{0, 1, at("2026/11/19 10:00:00"), Never, -5, lastDateTime, lastDateTime + 1}
	n := uint32(0)
	for si, s := range states {
		for _, next := range states {
			for fi, flags := range []lease.Flags{0, lease.FlagReserved, lease.FlagBootp, lease.FlagReserved | lease.FlagBootp} {
				n++
				l := lease.Lease{
					IP:    0xc6120000 + n,
					State: s, Next: next, Rewind: states[(si+fi)%len(states)],
					Flags:    flags,
					ClientID: ids[int(n)%len(ids)],
					Hostname: names[int(n)%len(names)],
					Starts:   times[int(n)%len(times)],
					Ends:     times[int(n+1)%len(times)],
					TSTP:     times[int(n+2)%len(times)],
					TSFP:     times[int(n+3)%len(times)],
					ATSFP:    times[int(n+4)%len(times)],
					CLTT:     times[int(n+5)%len(times)],
				}
				addr := make([]byte, int(n)%(lease.MaxHardwareLen+1))
				for i := range addr {
					addr[i] = byte(int(n) * (i + 7))
				}
				l.SetHardware(htypes[int(n)%len(htypes)], addr)
				out = append(out, l)
			}
		}
	}
	// Edges: the lowest and highest address, no hardware type but an address.
	out = append(out,
		lease.Lease{IP: 0, State: lease.Free, Next: lease.Free, Rewind: lease.Free},
		lease.Lease{IP: math.MaxUint32, State: lease.Active, Next: lease.Expired, Rewind: lease.Free},
		withHW(lease.Lease{IP: 1, State: lease.Backup, Next: lease.Backup, Rewind: lease.Backup}, hw(0, 1, 2, 3)),
		withHW(lease.Lease{IP: 2, State: lease.Backup, Next: lease.Backup, Rewind: lease.Backup}, hw(1)),
	)
	return out
}

func TestRoundTrip(t *testing.T) {
	leases := roundTripLeases()
	states := []lease.FailoverStateRecord{
		{Peer: "dhcp-failover", MyState: "normal", MyStateAt: 1, PartnerState: "normal", PartnerAt: 2, MCLT: 3600},
		{Peer: `odd "peer" \ name`, MyState: "partner-down", MyStateAt: Never, PartnerState: "recover-wait", PartnerAt: -3},
		{Peer: "third", MyState: "startup", PartnerState: "unknown-state"},
		{Peer: "no states"}, {Peer: "only mine", MyState: "normal"}, {Peer: "only the partner's", PartnerState: "paused", PartnerAt: 7},
	}
	for _, name := range failoverStates {
		states = append(states, lease.FailoverStateRecord{Peer: "p-" + name, MyState: name, PartnerState: name, MyStateAt: 5})
	}
	var buf []byte
	buf = append(buf, Header...)
	for i := range states {
		buf = AppendFailoverState(buf, &states[i])
	}
	for i := range leases {
		buf = AppendLease(buf, &leases[i])
	}
	c, err := Parse(buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(leases, c.Leases); diff != "" {
		t.Errorf("leases (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(states, c.Failover); diff != "" {
		t.Errorf("failover (-want +got):\n%s", diff)
	}
	if c.Skipped != nil {
		t.Errorf("skipped %v", c.Skipped)
	}
}

// TestRoundTripNormalizes documents the values the format cannot tell
// apart from others.
func TestRoundTripNormalizes(t *testing.T) {
	tests := []struct {
		name    string
		in, out lease.Lease
	}{
		{"next and rewind unset read back as the state",
			lease.Lease{IP: 1, State: lease.Active},
			lease.Lease{IP: 1, State: lease.Active, Next: lease.Active, Rewind: lease.Active}},
		{"no state at all stays unset",
			lease.Lease{IP: 1, Next: lease.Free},
			lease.Lease{IP: 1, Next: lease.Free}},
		{"an unknown state is written as abandoned, as ISC does",
			lease.Lease{IP: 1, State: 42, Next: 43, Rewind: 44},
			lease.Lease{IP: 1, State: lease.Abandoned, Next: lease.Abandoned, Rewind: lease.Abandoned}},
		{"the dynamic-range flag comes from the configuration",
			lease.Lease{IP: 1, State: lease.Free, Next: lease.Free, Rewind: lease.Free, Flags: lease.FlagDynamicRange | lease.FlagBootp},
			lease.Lease{IP: 1, State: lease.Free, Next: lease.Free, Rewind: lease.Free, Flags: lease.FlagBootp}},
	}
	for _, tt := range tests {
		c, err := Parse(AppendLease(nil, &tt.in))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff([]lease.Lease{tt.out}, c.Leases); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	randTime := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return r.Int64() - r.Int64()
		default:
			return r.Int64N(lastDateTime)
		}
	}
	leases := make([]lease.Lease, 2000)
	for i := range leases {
		id := make([]byte, r.IntN(40))
		for j := range id {
			id[j] = byte(r.Uint32())
		}
		hwaddr := make([]byte, r.IntN(17))
		for j := range hwaddr {
			hwaddr[j] = byte(r.Uint32())
		}
		s := lease.BindingState(1 + r.IntN(7))
		leases[i] = lease.Lease{
			IP:    uint32(i)<<8 | uint32(r.IntN(256)),
			State: s, Next: lease.BindingState(1 + r.IntN(7)), Rewind: lease.BindingState(1 + r.IntN(7)),
			Flags:    lease.Flags(r.IntN(4)),
			ClientID: string(id),
			Hostname: string(id[:len(id)/2]),
			Starts:   randTime(), Ends: randTime(), TSTP: randTime(), TSFP: randTime(), ATSFP: randTime(), CLTT: randTime(),
		}
		leases[i].SetHardware(byte(r.Uint32()), hwaddr)
	}
	var buf []byte
	for i := range leases {
		buf = AppendLease(buf, &leases[i])
	}
	c, err := Parse(buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(leases, c.Leases); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func BenchmarkAppendLease(b *testing.B) {
	l := withHW(lease.Lease{
		IP:    ip("198.18.0.100"),
		State: lease.Active, Next: lease.Expired, Rewind: lease.Free,
		ClientID: "\x01\x00\x11\x22\x33\x44\x55",
		Hostname: "client-hostname",
		Starts:   at("2026/11/19 10:00:00"),
		Ends:     at("2026/11/19 12:00:00"),
		TSTP:     at("2026/11/19 13:00:00"),
		TSFP:     at("2026/11/19 13:00:00"),
		CLTT:     at("2026/11/19 10:00:00"),
	}, hw(1, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55))
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendLease(buf[:0], &l)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkParse(b *testing.B) {
	leases := roundTripLeases()
	var buf []byte
	for len(buf) < 4<<20 {
		for i := range leases {
			buf = AppendLease(buf, &leases[i])
		}
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(buf); err != nil {
			b.Fatal(err)
		}
	}
}
