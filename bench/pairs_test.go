package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/config"
)

// The pair's files are examples/classic with the benchmark's pools: both
// servers' files parse, name the same relationship, carry the chosen
// max-unacked-updates, and every pool is shared with the partner.
func TestPairConfs(t *testing.T) {
	pools := lab.Pools{LeaseTime: 12 * time.Hour, RelaySize: 65278}
	c, err := pairConfs(pools, 37)
	if err != nil {
		t.Fatal(err)
	}
	readShared := func(path string) ([]byte, error) {
		if filepath.Base(path) != c.SharedName {
			return nil, fmt.Errorf("unexpected include %q", path)
		}
		return []byte(c.Shared), nil
	}
	for i, text := range []string{c.Primary, c.Secondary} {
		cfg, err := config.Parse([]string{"primary.conf", "secondary.conf"}[i], []byte(text), readShared)
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		if len(cfg.FailoverPeers) != 1 {
			t.Fatalf("server %d: %d failover peers", i, len(cfg.FailoverPeers))
		}
		fp := cfg.FailoverPeers[0]
		if fp.Name != pairPeer || fp.MaxUnackedUpdates != 37 {
			t.Errorf("server %d: peer %q with max-unacked-updates %d, want %q and 37", i, fp.Name, fp.MaxUnackedUpdates, pairPeer)
		}
		if i == 0 && (fp.MCLT != 1800 || fp.Split != 128) {
			t.Errorf("primary: mclt %d split %d, want examples/classic's 1800 and 128", fp.MCLT, fp.Split)
		}
		var got []string
		for _, sn := range cfg.Subnets {
			for _, p := range sn.Pools {
				for _, r := range p.Ranges {
					got = append(got, fmt.Sprintf("%s %s-%s %s", sn.Prefix, r.Start, r.End, p.FailoverPeer))
				}
			}
		}
		want := []string{
			"198.18.0.0/24 198.18.0.100-198.18.0.250 " + pairPeer,
			"198.19.0.0/16 198.19.1.0-198.19.255.253 " + pairPeer,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("server %d pools (-want +got):\n%s", i, diff)
		}
		if lt := cfg.Global.DefaultLeaseTime; lt != uint32(12*time.Hour/time.Second) {
			t.Errorf("server %d: default-lease-time %d, want 12 h", i, lt)
		}
	}
}

// ISC dhcpd itself accepts the files (dhcpd -t), when it is installed.
func TestPairConfsISC(t *testing.T) {
	if _, err := exec.LookPath("dhcpd"); err != nil {
		t.Skip("dhcpd not installed")
	}
	c, err := pairConfs(lab.Pools{RelaySize: 1000}, 10)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	shared := filepath.Join(dir, c.SharedName)
	if err := os.WriteFile(shared, []byte(c.Shared), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, text := range []string{c.Primary, c.Secondary} {
		// dhcpd opens a relative include from its working directory.
		text = strings.ReplaceAll(text, fmt.Sprintf("include %q;", c.SharedName), fmt.Sprintf("include %q;", shared))
		path := filepath.Join(dir, fmt.Sprintf("server%d.conf", i))
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("dhcpd", "-4", "-t", "-cf", path).CombinedOutput()
		if err != nil {
			t.Errorf("dhcpd -t on server %d's file: %v\n%s", i, err, out)
		}
	}
}

func TestLeaseFileStates(t *testing.T) {
	text := `# The format of this file is documented in the dhcpd.leases(5) manual page.
lease 198.19.1.0 {
  starts 0 2026/11/22 06:00:00;
  binding state free;
}
lease 198.19.1.1 {
  binding state free;
}
lease 198.19.1.0 {
  binding state backup;
  next binding state free;
}
lease 198.19.1.2 {
  binding state active;
  next binding state expired;
  rewind binding state free;
  hardware ethernet 02:00:00:00:00:01;
}
failover peer "dhcp-failover" state {
  my state normal at 0 2026/11/22 06:00:00;
}
lease 198.19.1.1 {
  binding state active;
`
	got := leaseFileStates(text)
	want := map[string]int{"backup": 1, "free": 1, "active": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestISCACKs(t *testing.T) {
	log := `DHCPREQUEST for 198.19.10.107 (198.18.0.1) from 00:0c:01:02:09:0e via 198.19.0.1
DHCPACK on 198.19.10.107 to 00:0c:01:02:09:0e via 198.19.0.1
DHCPOFFER on 198.19.10.108 to 00:0c:01:02:09:0f via 198.19.0.1
DHCPACK on 198.19.10.109 to 00:0c:01:02:09:10 via 198.19.0.1
DHCPACK on 198.19.10.107 to 00:0c:01:02:09:0e via 198.19.0.1
`
	want := map[string]bool{"198.19.10.107": true, "198.19.10.109": true}
	if diff := cmp.Diff(want, iscACKs(log)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestKeaActiveLeases(t *testing.T) {
	text := `address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
198.19.1.0,02:00:00:00:00:01,,43200,1763800000,2,0,0,,0,
198.19.1.1,02:00:00:00:00:02,,43200,1763800000,2,0,0,,0,
198.19.1.1,02:00:00:00:00:02,,0,1763800000,2,0,0,,0,
198.19.1.2,02:00:00:00:00:03,,43200,1763800000,2,0,0,,1,
198.19.1.3,02:00:00:00:00:04,,43200,1763800000,2,0,0,,2,
198.19.1.2,02:00:00:00:00:03,,43200,1763800000,2,0,0,,0,
198.19.1.4,02:00:00:00:00:0`
	got, err := keaActiveLeases(text)
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]bool{netip.MustParseAddr("198.19.1.0"): true, netip.MustParseAddr("198.19.1.2"): true}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := keaActiveLeases("lease,something\n"); err == nil {
		t.Error("a file without Kea's columns: no error")
	}
}

func TestKeaHalves(t *testing.T) {
	base := lab.Pools{RelaySize: 100}.KeaDhcp4()
	base["multi-threading"] = map[string]any{"enable-multi-threading": true}
	cfg, err := lab.KeaHADhcp4(base, [2]netip.Addr{lab.ServerIP(1), lab.ServerIP(2)}, 0, lab.KeaHAOptions{HooksDir: "/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := keaHalves(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, h := range got {
		s = append(s, fmt.Sprintf("%s %s %s", h.first, h.split, h.last))
	}
	want := []string{"198.18.0.100 198.18.0.176 198.18.0.250", "198.19.1.0 198.19.1.50 198.19.1.99"}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMisbalanced(t *testing.T) {
	for _, c := range []struct {
		own, peer int
		want      bool
	}{
		{32639, 32639, false},
		{32640, 32638, false},
		{61182, 4096, true},   // one pass of at most 4096 moves
		{4096, 61182, true},   // seen from the other side
		{40000, 25278, false}, // lts 7361 < 15 % of 65278
		{45000, 20278, true},
		{0, 0, false},
	} {
		if got := misbalanced(c.own, c.peer); got != c.want {
			t.Errorf("misbalanced(%d, %d) = %v, want %v", c.own, c.peer, got, c.want)
		}
	}
}

func TestViewFailoverAndSplit(t *testing.T) {
	text := `tandem_failover_pool_leases{peer="dhcp-failover",pool="0",state="backup",subnet="198.18.0.0/24"} 75
tandem_failover_pool_leases{peer="dhcp-failover",pool="0",state="free",subnet="198.18.0.0/24"} 76
tandem_failover_pool_leases{peer="dhcp-failover",pool="1",state="backup",subnet="198.19.0.0/16"} 4096
tandem_failover_pool_leases{peer="dhcp-failover",pool="1",state="free",subnet="198.19.0.0/16"} 61182
tandem_failover_updates_queued{peer="dhcp-failover"} 3
tandem_failover_updates_unacked{peer="dhcp-failover"} 10
tandem_failover_messages_sent_total{peer="dhcp-failover",type="BNDUPD"} 36735
`
	m, err := parseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	v := viewFailover(m)
	if v.Free != 61258 || v.Backup != 4171 || v.Queued != 3 || v.Unacked != 10 || v.idle() {
		t.Errorf("view %+v", v)
	}
	other := viewFailover(m)
	if !v.samePools(other) {
		t.Error("a view differs from itself")
	}
	other.Pools["198.19.0.0/16/backup"]++
	if v.samePools(other) {
		t.Error("different backup counts: same pools")
	}
	if (failoverView{}).samePools(failoverView{}) {
		t.Error("no pools at all count as the same pools")
	}
	desc, imbalanced := describeSplit(v.Pools)
	if want := "198.18.0.0/24 free 76 / backup 75, 198.19.0.0/16 free 61182 / backup 4096 IMBALANCED"; desc != want || !imbalanced {
		t.Errorf("describeSplit = %q, %v; want %q, true", desc, imbalanced, want)
	}
}

func TestStableFor(t *testing.T) {
	counts := [][2]int{{5, 3}, {6, 4}, {6, 4}, {6, 4}}
	i := 0
	check := stableFor(30*time.Millisecond, func() ([2]int, error) {
		c := counts[min(i, len(counts)-1)]
		i++
		return c, nil
	})
	var err error
	for n := 0; n < 100 && err == nil; n++ {
		var done bool
		done, _, err = check()
		if done {
			t.Fatal("differing counts reported as agreed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, errNotAgreed) {
		t.Errorf("counts stuck apart: err %v, want errNotAgreed", err)
	}
	agree := stableFor(time.Second, func() ([2]int, error) { return [2]int{7, 7}, nil })
	if done, _, err := agree(); !done || err != nil {
		t.Errorf("equal counts: done %v, err %v", done, err)
	}
}

func TestMergeRates(t *testing.T) {
	got := mergeRates([]int{1000, 5000, 0}, []int{500, 5000, 10000, 0})
	if diff := cmp.Diff([]int{500, 1000, 5000, 10000, 0}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseFlagsPairs(t *testing.T) {
	o, err := parseFlags([]string{"-quick"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(serverKinds, o.servers); diff != "" {
		t.Errorf("default servers (-want +got):\n%s", diff)
	}
	// 0 is unlimited.
	if diff := cmp.Diff([]int{500, 10000, 0}, o.pairRates); diff != "" {
		t.Errorf("quick pair rates (-want +got):\n%s", diff)
	}
	if o.pairFsyncCheck || !o.fsyncCheck {
		t.Errorf("quick: fsync check %v, pairs' %v; want true, false", o.fsyncCheck, o.pairFsyncCheck)
	}
	o, err = parseFlags([]string{"-quick", "-fsync-check=true", "-servers", "tandem-pair,kea-ha,tandem-pair"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.pairFsyncCheck || len(o.servers) != 2 {
		t.Errorf("servers %v, pairs' fsync check %v", o.servers, o.pairFsyncCheck)
	}
	for _, bad := range [][]string{
		{"-servers", "tandem,dnsmasq"},
		{"-servers", "kea-ha", "-kea-threads", "0"},
		{"-pair-max-unacked", "0"},
		{"-pair-rates", "fast"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
}

// A pair's row shows both servers' CPU, its fsyncs summed over both, and
// the ratios against the other pairs; the pair section shows the
// durability evidence.
func TestPairReport(t *testing.T) {
	tp := step("tandem-pair", 10000, 10000, 0, 0.5)
	snap := func(acks, syncs, upd, ack float64) *tandemSnapshot {
		return &tandemSnapshot{ACKs: acks, Syncs: syncs, BndUpdSent: upd, BndAckRecv: ack, BndUpdRecv: ack, BndAckSent: upd}
	}
	tp.Members = []memberResult{
		{Host: "srv1", CPU: 61, Before: snap(0, 10, 100, 100), After: snap(10000, 1010, 10100, 10100)},
		{Host: "srv2", CPU: 58, Before: snap(0, 10, 0, 0), After: snap(10000, 1010, 10000, 10000)},
	}
	tp.Members[1].After.NoFree = 42
	tp.ServerCPU = 119
	tp.StartTime = 12 * time.Second
	tp.Split = "198.19.0.0/16 free 32639 / backup 32639"
	tp.Settled = &settled{Active: [2]int{20000, 20000}, Agreed: true, AnsweredWhat: "ACKs"}
	isc := step("isc-pair", 10000, 400, 90, 30)
	isc.Members = []memberResult{{Host: "srv1", CPU: 20}, {Host: "srv2", CPU: 22}}
	isc.Settled = &settled{Active: [2]int{2000, 1990}, Answered: [2]int{1000, 1000}, AnsweredWhat: "ACKs sent", Err: errNotAgreed,
		BothAnswered: 17, BothWhat: "addresses both servers ACKed"}
	kea := step("kea-ha", 10000, 2000, 50, 40)
	rows := []*stepResult{tp, isc, kea}

	var b strings.Builder
	specs := tableSpecs(options{rates: []int{1000}, pairRates: []int{10000}, maxDrop: 1},
		map[string]string{"tandem-pair": "tandem-pair", "isc-pair": "isc-pair", "kea-ha": "kea-ha"}, nil)
	if len(specs) != 1 {
		t.Fatalf("%d tables, want only the pairs'", len(specs))
	}
	printTable(&b, rows, specs[0])
	printPairs(&b, rows)
	out := b.String()
	for _, want := range []string{
		"tandem-pair/isc-pair", "tandem-pair/kea-ha",
		"61+58",         // both servers' CPU
		"2000 (10.0)",   // fsyncs of both, ACKs per fsync
		"25.00", "5.00", // ratios at 10000
		"ACKs p 10000 + s 10000; fsyncs p 1000 + s 1000 (10.0 ACKs per fsync); DISCOVERs dropped for want of a free address p 0 + s 42",
		"BNDUPDs sent p 10000 + s 10000 (1.000 per ACK), BNDACKs received p 10000 + s 10000",
		"active leases p 20000 / s 20000 (agree",
		"active leases p 2000 / s 1990 (DIFFER",
		"ACKs sent p 1000 + s 1000 (17 addresses both servers ACKed)",
		"both normal 12s after the start; 198.19.0.0/16 free 32639 / backup 32639",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
