package lab

import (
	"encoding/csv"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSplitKeaPool(t *testing.T) {
	for _, c := range []struct {
		in   string
		want [2]string
	}{
		{"198.19.1.0 - 198.19.1.9", [2]string{"198.19.1.0 - 198.19.1.4", "198.19.1.5 - 198.19.1.9"}},
		{"198.19.1.0-198.19.1.2", [2]string{"198.19.1.0 - 198.19.1.1", "198.19.1.2 - 198.19.1.2"}},
		{"198.18.0.100 - 198.18.0.101", [2]string{"198.18.0.100 - 198.18.0.100", "198.18.0.101 - 198.18.0.101"}},
		{"198.19.1.0 - 198.19.255.253", [2]string{"198.19.1.0 - 198.19.128.126", "198.19.128.127 - 198.19.255.253"}},
	} {
		got, err := SplitKeaPool(c.in)
		if err != nil {
			t.Errorf("SplitKeaPool(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("SplitKeaPool(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"198.19.1.0", "198.19.1.5 - 198.19.1.5", "198.19.1.9 - 198.19.1.0", "x - y", "198.19.1.0/24"} {
		if _, err := SplitKeaPool(bad); err == nil {
			t.Errorf("SplitKeaPool(%q) succeeded", bad)
		}
	}
}

func TestParseKeaHooksDir(t *testing.T) {
	report := "Kea DHCP server version 2.2.0\n   Prefix:            /usr\n   Hooks directory:   /usr/lib/x86_64-linux-gnu/kea/hooks\n   Premium hooks:     no\n"
	got, err := ParseKeaHooksDir(report)
	if err != nil || got != "/usr/lib/x86_64-linux-gnu/kea/hooks" {
		t.Errorf("ParseKeaHooksDir = %q, %v", got, err)
	}
	if _, err := ParseKeaHooksDir("Prefix: /usr\n"); err == nil {
		t.Error("no hooks line: no error")
	}
}

func TestKeaHADhcp4(t *testing.T) {
	base := Pools{RelaySize: 100}.KeaDhcp4()
	base["multi-threading"] = map[string]any{"enable-multi-threading": true, "thread-pool-size": 2}
	peers := [2]netip.Addr{ServerIP(1), ServerIP(2)}
	o := KeaHAOptions{HooksDir: "/hooks", HeartbeatDelay: 2 * time.Second}
	cfgs := [2]map[string]any{}
	for i := range cfgs {
		cfg, err := KeaHADhcp4(base, peers, i, o)
		if err != nil {
			t.Fatal(err)
		}
		cfgs[i] = cfg
	}

	// The pools of both subnets are split by class, the same on both.
	var pools []string
	for _, s := range cfgs[0]["subnet4"].([]any) {
		for _, p := range s.(map[string]any)["pools"].([]any) {
			pm := p.(map[string]any)
			pools = append(pools, pm["pool"].(string)+" "+pm["client-class"].(string))
		}
	}
	want := []string{
		"198.18.0.100 - 198.18.0.175 HA_server1", "198.18.0.176 - 198.18.0.250 HA_server2",
		"198.19.1.0 - 198.19.1.49 HA_server1", "198.19.1.50 - 198.19.1.99 HA_server2",
	}
	if diff := cmp.Diff(want, pools); diff != "" {
		t.Errorf("pools (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(cfgs[0]["subnet4"], cfgs[1]["subnet4"]); diff != "" {
		t.Errorf("the two servers' subnets differ:\n%s", diff)
	}
	// The input is left alone.
	if p := base["subnet4"].([]any)[1].(map[string]any)["pools"].([]any); len(p) != 1 {
		t.Errorf("the base config was changed: %v", p)
	}

	for i, cfg := range cfgs {
		hooks := cfg["hooks-libraries"].([]any)
		if len(hooks) != 2 || hooks[0].(map[string]any)["library"] != "/hooks/libdhcp_lease_cmds.so" ||
			hooks[1].(map[string]any)["library"] != "/hooks/libdhcp_ha.so" {
			t.Fatalf("server %d hooks: %v", i, hooks)
		}
		ha := hooks[1].(map[string]any)["parameters"].(map[string]any)["high-availability"].([]any)[0].(map[string]any)
		if got, want := ha["this-server-name"], []string{"server1", "server2"}[i]; got != want {
			t.Errorf("server %d: this-server-name %v, want %s", i, got, want)
		}
		if ha["mode"] != "load-balancing" || ha["heartbeat-delay"] != int64(2000) {
			t.Errorf("server %d: mode %v, heartbeat-delay %v", i, ha["mode"], ha["heartbeat-delay"])
		}
		mt := ha["multi-threading"].(map[string]any)
		if mt["enable-multi-threading"] != true || mt["http-dedicated-listener"] != true {
			t.Errorf("server %d: HA multi-threading %v, want the dedicated listener", i, mt)
		}
		peerList := ha["peers"].([]any)
		var urls []string
		for _, p := range peerList {
			pm := p.(map[string]any)
			urls = append(urls, pm["name"].(string)+" "+pm["role"].(string)+" "+pm["url"].(string))
		}
		if diff := cmp.Diff([]string{"server1 primary http://198.18.0.1:8000/", "server2 secondary http://198.18.0.2:8000/"}, urls); diff != "" {
			t.Errorf("server %d peers (-want +got):\n%s", i, diff)
		}
	}

	single := Pools{}.KeaDhcp4()
	if _, err := KeaHADhcp4(single, peers, 0, o); err == nil {
		t.Error("no multi-threading: no error (HA+MT needs it)")
	}
	if _, err := KeaHADhcp4(base, peers, 2, o); err == nil {
		t.Error("server index 2: no error")
	}
}

// TestKeaHAPair runs a real load-balancing pair: both reach the
// load-balancing state, relayed requests fanned out to both are answered
// by one server each, and every lease ends up in both lease files.
func TestKeaHAPair(t *testing.T) {
	needs(t, "kea-dhcp4", "perfdhcp", "nft")
	l := New(t, Options{})
	base := Pools{RelaySize: 200}.KeaDhcp4()
	base["multi-threading"] = map[string]any{"enable-multi-threading": true, "thread-pool-size": 2, "packet-queue-size": 16}
	pair := NewKeaHAPair(l, base, KeaHAOptions{HeartbeatDelay: time.Second})
	for _, k := range pair.Servers {
		if _, err := k.TryStart(); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range pair.Servers {
		if _, err := k.AwaitHAState(0, "load-balancing", 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	l.RelayFanOut(true)
	res, err := RunPerfdhcp(l.Relay, PerfdhcpOptions{Server: l.Servers[0].IP, Rate: 50, Clients: 60, Exchanges: 60, Seed: 5, ExitWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.RequestAck.Received < 55 {
		t.Fatalf("perfdhcp against the HA pair: %d of %d ACKs\n%s", res.RequestAck.Received, res.RequestAck.Sent, res.Output)
	}
	// Each server logs its own allocations; no address may go to two
	// clients across the pair.
	var acked Acks
	for _, k := range pair.Servers {
		if err := acked.AddLog(k.Host.Name, k.Proc().Log()); err != nil {
			t.Fatal(err)
		}
	}
	if acked.Len() < res.RequestAck.Received {
		t.Errorf("the servers logged %d allocations for perfdhcp's %d ACKs", acked.Len(), res.RequestAck.Received)
	}
	if err := acked.CheckUnique(); err != nil {
		t.Error(err)
	}

	halves, err := SplitKeaPool(strings.Join([]string{RelayRangeFirst.String(), addrAdd(RelayRangeFirst, 199).String()}, " - "))
	if err != nil {
		t.Fatal(err)
	}
	lastOfFirst := netip.MustParseAddr(strings.TrimSpace(strings.Split(halves[0], "-")[1]))
	var files [2]map[string]string // address -> MAC
	for i, k := range pair.Servers {
		text, err := k.Leases()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
		if err != nil {
			t.Fatalf("%s lease file: %v", k.Host.Name, err)
		}
		files[i] = map[string]string{}
		for _, r := range rows[1:] {
			files[i][r[0]] = r[1]
		}
	}
	lower, upper := 0, 0
	for a, mac := range files[0] {
		if files[1][a] != mac {
			t.Errorf("%s: %s on server1, %q on server2", a, mac, files[1][a])
		}
		if ip := netip.MustParseAddr(a); ip.Compare(lastOfFirst) <= 0 {
			lower++
		} else {
			upper++
		}
	}
	if len(files[1]) != len(files[0]) {
		t.Errorf("server1 holds %d leases, server2 %d", len(files[0]), len(files[1]))
	}
	if lower == 0 || upper == 0 {
		t.Errorf("leases from server1's half %d, from server2's half %d: want both serving", lower, upper)
	}
	t.Logf("%d leases on both: %d from server1's half, %d from server2's", len(files[0]), lower, upper)
}
