package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Kea's High Availability (the HA hook, libdhcp_ha.so with
// libdhcp_lease_cmds.so) is Kea's answer to ISC failover: two kea-dhcp4
// servers that send each other every lease they grant as a lease4-update
// command over HTTP. This file runs such a pair in the lab.

// KeaHAOptions shape a Kea HA pair.
type KeaHAOptions struct {
	// Mode is "load-balancing" (empty means it) or "hot-standby".
	Mode string
	// Port is each server's HA listener port; 0 means 8000.
	Port int
	// ListenerThreads and ClientThreads are the HA+MT thread counts
	// (http-listener-threads, http-client-threads); 0 lets Kea choose
	// (the number of cores).
	ListenerThreads, ClientThreads int
	// HeartbeatDelay is how often each server asks the other for its
	// state; 0 keeps Kea's 10 s.
	HeartbeatDelay time.Duration
	// HooksDir holds the hook libraries; empty asks kea-dhcp4 -W.
	HooksDir string
}

// The client classes Kea's load balancing puts a client in: HA_<name of
// the server that serves it> (Kea ARM, "Load-Balancing Configuration").
const (
	KeaHAServer1 = "server1"
	KeaHAServer2 = "server2"
)

func (o KeaHAOptions) mode() string {
	if o.Mode == "" {
		return "load-balancing"
	}
	return o.Mode
}

func (o KeaHAOptions) port() int {
	if o.Port == 0 {
		return 8000
	}
	return o.Port
}

// KeaHADhcp4 turns the Dhcp4 object of a single server (for example
// Pools.KeaDhcp4()) into that of server this (0 or 1) of an HA pair whose
// servers listen on peers[0] and peers[1]:
//
//   - the HA and lease commands hooks, in HA+MT mode: each server serves
//     its partner on a dedicated HTTP listener inside kea-dhcp4 (Kea 2.2
//     has it; without it the HA commands go through kea-ctrl-agent). HA+MT
//     needs Kea's own multi-threading, so dhcp4 must turn it on;
//   - in load-balancing mode every pool cut in two halves, the first for
//     clients of class HA_server1, the second for HA_server2. Kea's ARM
//     requires this split for load balancing: with shared pools both
//     servers would hand the same address to different clients. A server
//     whose partner is down serves both classes, so both halves.
//
// Both servers get the same configuration except this-server-name.
func KeaHADhcp4(dhcp4 map[string]any, peers [2]netip.Addr, this int, o KeaHAOptions) (map[string]any, error) {
	if this != 0 && this != 1 {
		return nil, fmt.Errorf("kea ha: server %d, want 0 or 1", this)
	}
	mt, _ := dhcp4["multi-threading"].(map[string]any)
	if on, _ := mt["enable-multi-threading"].(bool); !on {
		return nil, errors.New("kea ha: HA+MT needs Dhcp4 multi-threading on (enable-multi-threading true)")
	}
	dir := o.HooksDir
	if dir == "" {
		var err error
		if dir, err = KeaHooksDir(); err != nil {
			return nil, err
		}
	}
	cfg := map[string]any{}
	for k, v := range dhcp4 {
		cfg[k] = v
	}
	if o.mode() == "load-balancing" {
		subnets, err := splitSubnetPools(dhcp4["subnet4"])
		if err != nil {
			return nil, err
		}
		cfg["subnet4"] = subnets
	}
	names := [2]string{KeaHAServer1, KeaHAServer2}
	roles := [2]string{"primary", "secondary"}
	if o.mode() == "hot-standby" {
		roles[1] = "standby"
	}
	var peerList []any
	for i, a := range peers {
		if !a.Is4() {
			return nil, fmt.Errorf("kea ha: peer address %v is not IPv4", a)
		}
		peerList = append(peerList, map[string]any{
			"name":          names[i],
			"url":           fmt.Sprintf("http://%s:%d/", a, o.port()),
			"role":          roles[i],
			"auto-failover": true,
		})
	}
	ha := map[string]any{
		"this-server-name": names[this],
		"mode":             o.mode(),
		"multi-threading": map[string]any{
			"enable-multi-threading":  true,
			"http-dedicated-listener": true,
			"http-listener-threads":   o.ListenerThreads,
			"http-client-threads":     o.ClientThreads,
		},
		"peers": peerList,
	}
	if o.HeartbeatDelay > 0 {
		ha["heartbeat-delay"] = o.HeartbeatDelay.Milliseconds()
	}
	var hooks []any
	if old, ok := dhcp4["hooks-libraries"].([]any); ok {
		hooks = append(hooks, old...)
	}
	hooks = append(hooks,
		map[string]any{"library": dir + "/libdhcp_lease_cmds.so"},
		map[string]any{"library": dir + "/libdhcp_ha.so", "parameters": map[string]any{
			"high-availability": []any{ha},
		}},
	)
	cfg["hooks-libraries"] = hooks
	return cfg, nil
}

// splitSubnetPools copies a subnet4 list with every "first - last" pool
// cut into a half for HA_server1 and a half for HA_server2.
func splitSubnetPools(v any) ([]any, error) {
	subnets, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("kea ha: subnet4 is %T, want a list", v)
	}
	var out []any
	for _, s := range subnets {
		sm, ok := s.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("kea ha: subnet is %T, want an object", s)
		}
		c := map[string]any{}
		for k, v := range sm {
			c[k] = v
		}
		pools, _ := sm["pools"].([]any)
		var split []any
		for _, p := range pools {
			pm, ok := p.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("kea ha: pool is %T, want an object", p)
			}
			spec, _ := pm["pool"].(string)
			halves, err := SplitKeaPool(spec)
			if err != nil {
				return nil, err
			}
			for i, h := range halves {
				q := map[string]any{}
				for k, v := range pm {
					q[k] = v
				}
				q["pool"] = h
				q["client-class"] = "HA_" + [2]string{KeaHAServer1, KeaHAServer2}[i]
				split = append(split, q)
			}
		}
		c["pools"] = split
		out = append(out, c)
	}
	return out, nil
}

// SplitKeaPool cuts a Kea pool "first - last" into two halves, the first
// one the larger when the size is odd. A one-address pool cannot be cut.
func SplitKeaPool(spec string) ([2]string, error) {
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return [2]string{}, fmt.Errorf("kea ha: pool %q is not first - last", spec)
	}
	first, err1 := netip.ParseAddr(strings.TrimSpace(a))
	last, err2 := netip.ParseAddr(strings.TrimSpace(b))
	if err := errors.Join(err1, err2); err != nil {
		return [2]string{}, fmt.Errorf("kea ha: pool %q: %v", spec, err)
	}
	if !first.Is4() || !last.Is4() || last.Less(first) || first == last {
		return [2]string{}, fmt.Errorf("kea ha: pool %q cannot be split in two", spec)
	}
	n := addrDiff(first, last) + 1
	mid := addrAdd(first, int((n+1)/2-1))
	return [2]string{
		fmt.Sprintf("%s - %s", first, mid),
		fmt.Sprintf("%s - %s", mid.Next(), last),
	}, nil
}

func addrDiff(a, b netip.Addr) uint32 {
	u := func(x netip.Addr) uint32 {
		v := x.As4()
		return uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
	}
	return u(b) - u(a)
}

// KeaHooksDir asks kea-dhcp4 where its hook libraries are ("Hooks
// directory:" in kea-dhcp4 -W).
func KeaHooksDir() (string, error) {
	out, err := exec.Command("kea-dhcp4", "-W").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kea-dhcp4 -W: %v", err)
	}
	return ParseKeaHooksDir(string(out))
}

var keaHooksDirLine = regexp.MustCompile(`(?m)^\s*Hooks directory:\s*(\S+)\s*$`)

// ParseKeaHooksDir reads the hooks directory from kea-dhcp4 -W's report.
func ParseKeaHooksDir(report string) (string, error) {
	m := keaHooksDirLine.FindStringSubmatch(report)
	if m == nil {
		return "", errors.New(`kea-dhcp4 -W names no "Hooks directory"`)
	}
	return m[1], nil
}

// KeaHAStatePattern is a regexp for Kea's log line of an HA state change
// into state ("load-balancing", "hot-standby", "partner-down" …):
// "HA_STATE_TRANSITION … server transitions from X to Y state, partner
// state is Z", where Kea writes the states in capitals.
func KeaHAStatePattern(state string) string {
	return `HA_STATE_TRANSITION .*server transitions from \S+ to ` + regexp.QuoteMeta(strings.ToUpper(state)) + ` state`
}

// KeaHAPair is two kea-dhcp4 servers with the HA hook on the lab's first
// two server hosts: server1 (primary) on srv1, server2 on srv2.
type KeaHAPair struct {
	Servers [2]*Kea
	Options KeaHAOptions
}

// NewKeaHAPair writes both servers' configurations (KeaHADhcp4 of dhcp4)
// with fresh lease files and starts nothing. Errors are fatal to the
// lab's owner.
func NewKeaHAPair(l *Lab, dhcp4 map[string]any, o KeaHAOptions) *KeaHAPair {
	l.tb.Helper()
	if len(l.Servers) < 2 {
		l.tb.Fatalf("lab: a Kea HA pair needs two server hosts, the lab has %d", len(l.Servers))
	}
	peers := [2]netip.Addr{l.Servers[0].IP, l.Servers[1].IP}
	p := &KeaHAPair{Options: o}
	for i := range p.Servers {
		cfg, err := KeaHADhcp4(dhcp4, peers, i, o)
		if err != nil {
			l.tb.Fatalf("lab: %v", err)
		}
		p.Servers[i] = NewKea(l.Servers[i], cfg)
	}
	return p
}

// AwaitHAState waits until the server's log, from offset from, says it
// entered the HA state.
func (k *Kea) AwaitHAState(from int64, state string, timeout time.Duration) (LogMatch, error) {
	p := k.Proc()
	if p == nil {
		return LogMatch{}, fmt.Errorf("kea-dhcp4 on %s is not running", k.Host.Name)
	}
	return p.AwaitLog(from, KeaHAStatePattern(state), timeout)
}
