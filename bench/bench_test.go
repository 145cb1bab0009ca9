package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP tandem_dhcp_replies_total DHCP replies produced, by message type.
# TYPE tandem_dhcp_replies_total counter
tandem_dhcp_replies_total{type="ACK"} 4996
tandem_dhcp_replies_total{type="OFFER"} 4999
tandem_pool_leases{pool="1",subnet="198.19.0.0/16",state="active"} 3000
tandem_pool_leases{pool="0",subnet="198.18.0.0/24",state="active"} 2
tandem_pool_leases{pool="1",subnet="198.19.0.0/16",state="free"} 62278
go_memstats_heap_inuse_bytes 1.1493376e+07
tandem_lease_commit_batches_sum 2104
weird{a="x\"y, z",b="2"} 7
`
	m, err := parseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		match map[string]string
		want  float64
	}{
		{"tandem_dhcp_replies_total", map[string]string{"type": "ACK"}, 4996},
		{"tandem_dhcp_replies_total", nil, 9995},
		{"tandem_pool_leases", map[string]string{"state": "active"}, 3002},
		{"go_memstats_heap_inuse_bytes", nil, 11493376},
		{"tandem_lease_commit_batches_sum", nil, 2104},
		{"weird", map[string]string{"a": `x"y, z`, "b": "2"}, 7},
		{"absent", nil, 0},
	} {
		if got := m.sum(c.name, c.match); got != c.want {
			t.Errorf("sum(%s, %v) = %v, want %v", c.name, c.match, got, c.want)
		}
	}
}

func TestParseMetricsRejectsGarbage(t *testing.T) {
	for _, text := range []string{"novalue", `x{a="1"`, "x notanumber"} {
		if _, err := parseMetrics(text); err == nil {
			t.Errorf("parseMetrics(%q) succeeded", text)
		}
	}
}

func TestParseSNMPField(t *testing.T) {
	text := `Ip: Forwarding DefaultTTL
Ip: 2 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 73999 0 37197 73999 37197 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 5 0 0 0 0
`
	got, err := parseSNMPField(text, "Udp", "RcvbufErrors")
	if err != nil || got != 37197 {
		t.Errorf("Udp RcvbufErrors = %d, %v; want 37197", got, err)
	}
	if _, err := parseSNMPField(text, "Udp", "Nope"); err == nil {
		t.Error("unknown field: no error")
	}
}

func TestParseStraceCounts(t *testing.T) {
	text := `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 99.10    0.251234         988       254           fsync
  0.90    0.002000          40        50         3 fdatasync
------ ----------- ----------- --------- --------- ----------------
100.00    0.253234         830       304         3 total
`
	want := map[string]int{"fsync": 254, "fdatasync": 50}
	if diff := cmp.Diff(want, parseStraceCounts(text)); diff != "" {
		t.Errorf("parseStraceCounts (-want +got):\n%s", diff)
	}
	empty := "% time     seconds  usecs/call     calls    errors syscall\n------ ----------- ----------- --------- --------- ----------------\n100.00    0.000000           0         0           total\n"
	if got := parseStraceCounts(empty); len(got) != 0 {
		t.Errorf("no calls: got %v", got)
	}
}

func TestParseRates(t *testing.T) {
	got, err := parseRates("500, 1000,unlimited")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{500, 1000, 0}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "fast", "-5", "2000000"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q) succeeded", bad)
		}
	}
}

func step(server string, target int, rate, dropDO, dropRA float64) *stepResult {
	// Over a 2 s period, rate/s means 2*rate completed exchanges.
	return &stepResult{Server: server, Target: target, Period: 2 * time.Second, Res: &lab.PerfdhcpResult{
		Rate:          rate * 2 / 3, // perfdhcp's own figure, diluted by a 1 s exit wait
		DiscoverOffer: lab.ExchangeStats{DropsRatio: dropDO},
		RequestAck:    lab.ExchangeStats{DropsRatio: dropRA, Received: int(2 * rate)},
	}}
}

func TestBestRateAndSkip(t *testing.T) {
	rows := []*stepResult{
		step("tandem", 1000, 1000, 0, 0),
		step("tandem", 5000, 4990, 0.2, 0.9),
		step("tandem", 10000, 7000, 0.5, 1.5), // R-A drops disqualify it
		step("isc-dhcpd", 1000, 650, 30, 20),
		step("isc-dhcpd", 500, 499, 0, 0),
	}
	if b := bestRate(rows, "tandem", 1); b != rows[1] {
		t.Errorf("tandem best = %+v, want the 5000 step", b)
	}
	if b := bestRate(rows, "isc-dhcpd", 1); b != rows[4] {
		t.Errorf("isc best = %+v, want the 500 step", b)
	}
	if b := bestRate(rows, "kea-mt2", 1); b != nil {
		t.Errorf("absent server has a best: %+v", b)
	}
	if got := ratio(rows[1], rows[4]); got != "10.00" {
		t.Errorf("ratio = %s, want 10.00", got)
	}
	if got := ratio(rows[1], nil); got != "-" {
		t.Errorf("ratio with a missing side = %s, want -", got)
	}

	if !rows[3].failedBadly(10) {
		t.Error("30% drops: not failing badly")
	}
	if rows[1].failedBadly(10) {
		t.Error("5000 at 4990 with <1% drops: failing badly")
	}
	if !step("kea", 20000, 9000, 0, 0).failedBadly(10) {
		t.Error("45% of the target without drops: not failing badly")
	}
	if step("kea", 0, 9000, 5, 5).failedBadly(10) {
		t.Error("unlimited has no target to fall short of")
	}
}

func TestPrintTable(t *testing.T) {
	tandem := step("tandem", 1000, 1000, 0, 0)
	tandem.Res.DiscoverOffer.AvgDelay = 300 * time.Microsecond
	tandem.Members = []memberResult{{Host: "srv1", Before: &tandemSnapshot{Syncs: 1, ACKs: 0}, After: &tandemSnapshot{Syncs: 101, ACKs: 2000}}}
	tandem.PerfCPU = 95
	rows := []*stepResult{
		tandem,
		step("isc-dhcpd", 1000, 400, 40, 30),
		step("kea-mt2", 1000, 800, 0, 0),
	}
	var b strings.Builder
	printTable(&b, rows, tableSpec{
		rates: []int{1000, 2000}, servers: []string{"tandem", "isc-dhcpd", "kea-mt2"},
		tandem: "tandem", isc: "isc-dhcpd", kea: "kea-mt2", maxDrop: 1, skipped: map[string]int{"isc-dhcpd": 1000},
	})
	out := b.String()
	for _, want := range []string{
		"100 (20.0)",       // fsyncs and ACKs per fsync
		"2.50",             // tandem / isc at 1000
		"1.25",             // tandem / kea at 1000
		"95 !",             // perfdhcp saturated
		"(failed at 1000)", // isc skipped at 2000
		"(all >= 1%)",      // isc has no step under 1%
		"1 per ACK [a]",
		"none [b]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestBetter(t *testing.T) {
	failed := &stepResult{Server: "tandem", Target: 1000}
	slow := step("tandem", 1000, 700, 5, 5)
	fast := step("tandem", 1000, 990, 0, 0)
	if !better(fast, slow) || better(slow, fast) {
		t.Error("the run with more completed exchanges is not the better one")
	}
	if !better(slow, failed) || better(failed, slow) {
		t.Error("a failed run beats a result")
	}
}
