package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options shape a lab.
type Options struct {
	// Servers is the number of server hosts (srv1, srv2, …); 0 means 2.
	Servers int
	// Clients is the number of client hosts (cli1, cli2, …) created up
	// front; AddClient adds more later.
	Clients int
	// Dir holds configs and process logs. Empty means $TANDEM_LAB_DIR/<test>
	// when that variable is set (kept after the run, for CI artifacts), else
	// the owner's TempDir.
	Dir string
}

// Lab is one topology: a bridge in its own namespace and one namespace per
// host, each joined to the bridge by a veth pair.
type Lab struct {
	// Prefix starts every namespace name of this lab: "tdm<pid>-<n>".
	Prefix string
	// Dir holds configs and logs.
	Dir string

	// Bridge is the namespace of the bridge "br0"; it runs nothing by
	// default but can host a capture (tshark -i br0).
	Bridge *Host
	// Servers are srv1…srvN with ServerIP(i) on their eth0 and a route to
	// RelayPrefix through the relay host.
	Servers []*Host
	// Relay is the relay/load host: RelayHostIP/24 and RelayIP/16 on eth0.
	// perfdhcp runs here and acts as a relay agent.
	Relay *Host
	// Clients have no address until DHCP gives them one.
	Clients []*Host

	tb TB

	mu         sync.Mutex
	procs      []*Proc
	namespaces []string
	nextClient int
	cut        map[[2]netip.Addr]bool
	files      map[string]int
	closed     bool
}

// Namespace names look like "tdm<pid>-<n>-<host>". The pid lets a later
// run recognise namespaces left by a run that died without cleaning up.
var (
	labSeq       atomic.Int64
	liveMu       sync.Mutex
	livePrefixes = map[string]bool{}
	staleNSName  = regexp.MustCompile(`^tdm(\d+)-(\d+)-`)
)

// New builds a lab and registers its teardown with tb.Cleanup. Any failure
// is fatal to tb, after whatever was already built has been removed.
func New(tb TB, o Options) *Lab {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatalf("lab: needs root (network namespaces)")
	}
	if o.Servers == 0 {
		o.Servers = 2
	}
	if o.Servers < 0 || o.Servers > maxServers {
		tb.Fatalf("lab: %d servers, want 1..%d", o.Servers, maxServers)
	}
	if o.Clients < 0 || o.Clients > maxClients {
		tb.Fatalf("lab: %d clients, want 0..%d", o.Clients, maxClients)
	}
	dir := o.Dir
	if dir == "" {
		if base := os.Getenv("TANDEM_LAB_DIR"); base != "" {
			dir = filepath.Join(base, sanitize(tb.Name()))
		} else {
			dir = tb.TempDir()
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("lab: %v", err)
	}
	sweepStale(tb)

	l := &Lab{
		Prefix: fmt.Sprintf("tdm%d-%d", os.Getpid(), labSeq.Add(1)),
		Dir:    dir,
		tb:     tb,
		cut:    map[[2]netip.Addr]bool{},
		files:  map[string]int{},
	}
	liveMu.Lock()
	livePrefixes[l.Prefix] = true
	liveMu.Unlock()
	tb.Cleanup(l.Close)

	if err := l.build(o); err != nil {
		l.Close()
		tb.Fatalf("lab: building topology: %v", err)
	}
	return l
}

func (l *Lab) build(o Options) error {
	br, err := l.addNamespace("br")
	if err != nil {
		return err
	}
	l.Bridge = &Host{Name: "br", NS: br, Iface: "br0", lab: l}
	if err := ipCmd("-n", br, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
		return err
	}
	if err := ipCmd("-n", br, "link", "set", "br0", "up"); err != nil {
		return err
	}

	for i := 1; i <= o.Servers; i++ {
		ip := ServerIP(i)
		h, err := l.addHost(fmt.Sprintf("srv%d", i), serverMAC(i), []netip.Prefix{netip.PrefixFrom(ip, LANPrefix.Bits())})
		if err != nil {
			return err
		}
		if err := ipCmd("-n", h.NS, "route", "add", RelayPrefix.String(), "via", RelayHostIP.String(), "dev", h.Iface); err != nil {
			return err
		}
		l.Servers = append(l.Servers, h)
	}

	relay, err := l.addHost("relay", relayMAC(), []netip.Prefix{
		netip.PrefixFrom(RelayHostIP, LANPrefix.Bits()),
		netip.PrefixFrom(RelayIP, RelayPrefix.Bits()),
	})
	if err != nil {
		return err
	}
	l.Relay = relay

	for i := 0; i < o.Clients; i++ {
		if _, err := l.addClient(); err != nil {
			return err
		}
	}
	return nil
}

// AddClient adds one more client host, cli<n>, with no address.
func (l *Lab) AddClient() *Host {
	l.tb.Helper()
	h, err := l.addClient()
	if err != nil {
		l.tb.Fatalf("lab: adding client: %v", err)
	}
	return h
}

func (l *Lab) addClient() (*Host, error) {
	l.mu.Lock()
	l.nextClient++
	n := l.nextClient
	l.mu.Unlock()
	if n > maxClients {
		return nil, fmt.Errorf("more than %d clients", maxClients)
	}
	h, err := l.addHost(fmt.Sprintf("cli%d", n), clientMAC(n), nil)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.Clients = append(l.Clients, h)
	l.mu.Unlock()
	return h, nil
}

// Hosts lists the servers, the relay host and the clients.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	hs := append([]*Host{}, l.Servers...)
	if l.Relay != nil {
		hs = append(hs, l.Relay)
	}
	return append(hs, l.Clients...)
}

// addHost creates a namespace with lo up and eth0 plugged into the bridge.
// The bridge side of the veth pair is named after the host.
func (l *Lab) addHost(name string, mac net.HardwareAddr, addrs []netip.Prefix) (*Host, error) {
	ns, err := l.addNamespace(name)
	if err != nil {
		return nil, err
	}
	h := &Host{Name: name, NS: ns, Iface: "eth0", MAC: mac, Addrs: addrs, lab: l}
	if len(addrs) > 0 {
		h.IP = addrs[0].Addr()
	}
	br := l.Bridge.NS
	steps := [][]string{
		{"-n", br, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", ns, "link", "set", "eth0", "address", mac.String()},
		{"-n", br, "link", "set", name, "master", "br0"},
		{"-n", br, "link", "set", name, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", "eth0", "up"},
	}
	for _, a := range addrs {
		steps = append(steps, []string{"-n", ns, "addr", "add", a.String(), "dev", "eth0"})
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (l *Lab) addNamespace(name string) (string, error) {
	ns := l.Prefix + "-" + name
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return "", errors.New("lab is closed")
	}
	l.namespaces = append(l.namespaces, ns)
	l.mu.Unlock()
	if err := ipCmd("netns", "add", ns); err != nil {
		return "", err
	}
	// IPv6 would only add router solicitations and MLD noise to captures;
	// best effort, since it changes nothing the tests look at.
	_ = exec.Command("ip", "netns", "exec", ns, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1").Run()
	return ns, nil
}

// Close stops every process the lab started and deletes its namespaces.
// It is safe to call more than once and is registered with tb.Cleanup, so
// it also runs when a test fails.
func (l *Lab) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	procs := append([]*Proc{}, l.procs...)
	nss := append([]string{}, l.namespaces...)
	l.mu.Unlock()

	for _, p := range procs {
		p.kill(syscall.SIGKILL)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			l.tb.Logf("lab: %s (pid %d) did not exit after SIGKILL", p.Name, p.PID)
		}
	}
	if l.tb.Failed() {
		for _, p := range procs {
			l.tb.Logf("lab: last lines of %s on %s (%s):\n%s", p.Name, p.Host.Name, p.LogPath, tail(p.Log(), 40))
		}
	}
	// Anything still inside a namespace was started by us indirectly (a
	// hook script, a daemon that forked); it must go before the namespace.
	for i := len(nss) - 1; i >= 0; i-- {
		killNamespacePIDs(nss[i])
	}
	for i := len(nss) - 1; i >= 0; i-- {
		if err := deleteNamespace(nss[i]); err != nil {
			l.tb.Logf("lab: %v", err)
		}
	}
	liveMu.Lock()
	delete(livePrefixes, l.Prefix)
	liveMu.Unlock()
}

// Namespaces lists the namespace names the lab created, bridge first.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string{}, l.namespaces...)
}

// WriteFile writes content to name inside the lab directory and returns the
// path. Configs written this way sit beside the logs.
func (l *Lab) WriteFile(name, content string) string {
	l.tb.Helper()
	p := filepath.Join(l.Dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		l.tb.Fatalf("lab: %v", err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		l.tb.Fatalf("lab: %v", err)
	}
	return p
}

// uniqueName returns base the first time, base-2, base-3 … afterwards, so
// that a restarted process gets a fresh log beside the old one. Kinds
// ("log", "dir") count separately.
func (l *Lab) uniqueName(kind, base string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := kind + "/" + base
	l.files[key]++
	if n := l.files[key]; n > 1 {
		return fmt.Sprintf("%s-%d", base, n)
	}
	return base
}

func (l *Lab) track(p *Proc) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("lab is closed")
	}
	l.procs = append(l.procs, p)
	return nil
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ListNamespaces returns the names of all named network namespaces.
func ListNamespaces() ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %v", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// namespacePIDs lists the processes whose network namespace is ns.
func namespacePIDs(ns string) []int {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killNamespacePIDs(ns string) {
	for _, pid := range namespacePIDs(ns) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func deleteNamespace(ns string) error {
	// The kernel frees a namespace once its last process is gone; give
	// SIGKILLed processes a moment so the veth disappears with it.
	deadline := time.Now().Add(5 * time.Second)
	for len(namespacePIDs(ns)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such file") {
		return fmt.Errorf("ip netns del %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sweepStale removes namespaces left by lab runs that died without
// cleaning up (a test binary killed on timeout): those whose pid is gone,
// or whose pid is ours but that no live lab in this process owns (the pid
// was reused).
func sweepStale(tb TB) {
	names, err := ListNamespaces()
	if err != nil {
		return
	}
	for _, ns := range names {
		m := staleNSName.FindStringSubmatch(ns)
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		prefix := fmt.Sprintf("tdm%s-%s", m[1], m[2])
		if pid == os.Getpid() {
			liveMu.Lock()
			live := livePrefixes[prefix]
			liveMu.Unlock()
			if live {
				continue
			}
		} else if syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		tb.Logf("lab: removing stale namespace %s", ns)
		killNamespacePIDs(ns)
		if err := deleteNamespace(ns); err != nil {
			tb.Logf("lab: %v", err)
		}
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
