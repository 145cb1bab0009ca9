package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// Host is one network namespace with one interface (eth0) into the bridge.
type Host struct {
	// Name is the short name: "srv1", "relay", "cli3", "br".
	Name string
	// NS is the namespace name, unique on the machine.
	NS string
	// Iface is the interface into the bridge: "eth0" ("br0" for the bridge).
	Iface string
	// MAC is eth0's address, deterministic per host.
	MAC net.HardwareAddr
	// IP is the first static address; invalid on clients.
	IP netip.Addr
	// Addrs are all static addresses with their prefix lengths.
	Addrs []netip.Prefix

	lab *Lab

	blockMu sync.Mutex
	blocked map[netip.Addr]bool
}

// Lab returns the lab the host belongs to.
func (h *Host) Lab() *Lab { return h.lab }

// Command returns an exec.Cmd that runs argv inside the host's namespace.
// `ip netns exec` execs argv in place, so the command's PID is argv's.
func (h *Host) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS}, argv...)...)
}

// Run runs a short command to completion inside the namespace (at most 60 s)
// and returns its combined output.
func (h *Host) Run(argv ...string) (string, error) {
	return h.RunInput("", argv...)
}

// RunInput is Run with stdin.
func (h *Host) RunInput(stdin string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := h.Command(ctx, argv...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s on %s: %w: %s", strings.Join(argv, " "), h.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Do runs fn on an OS thread that is inside the host's namespace. Sockets
// fn opens stay in that namespace after Do returns, which is how a test
// talks to a server over the lab network from its own process.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(h.NS)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("namespace %s: %w", h.NS, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// The thread stays locked and dies with this goroutine rather
			// than serve other goroutines from the wrong namespace.
			errc <- errors.Join(ferr, fmt.Errorf("restoring namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Listen opens a listener inside the namespace (see net.Listen).
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket inside the namespace (see net.ListenPacket).
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, address)
		return err
	})
	return pc, err
}

// Dial connects from inside the namespace (see net.DialTimeout). Use IP
// literals: name resolution may run on another thread.
func (h *Host) Dial(network, address string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = net.DialTimeout(network, address, timeout)
		return err
	})
	return c, err
}

// nftables table used by Block; one per host namespace.
const blockTable = `table inet tandemlab {
	set blocked { type ipv4_addr; }
	chain input { type filter hook input priority 0; policy accept; ip saddr @blocked drop; }
	chain output { type filter hook output priority 0; policy accept; ip daddr @blocked drop; }
}
`

// Block drops every IP packet between this host and peer, in both
// directions, with nftables in this host's namespace. TCP on either side
// sees silence (connects and writes time out); a UDP send from this host
// to peer fails at once with EPERM, since the output hook drops it
// locally. Packet sockets bypass the filter: a DHCP server reading raw
// frames still hears the peer's broadcasts, so Block cuts IP conversations
// such as failover TCP, not broadcast DHCP. Lab.Partition cuts on the
// bridge instead, silently for both sides and any IP protocol.
func (h *Host) Block(peer netip.Addr) {
	h.lab.tb.Helper()
	if err := h.setBlocked(peer, true); err != nil {
		h.lab.tb.Fatalf("lab: block %s on %s: %v", peer, h.Name, err)
	}
}

// Unblock undoes Block; unblocking an address that is not blocked does nothing.
func (h *Host) Unblock(peer netip.Addr) {
	h.lab.tb.Helper()
	if err := h.setBlocked(peer, false); err != nil {
		h.lab.tb.Fatalf("lab: unblock %s on %s: %v", peer, h.Name, err)
	}
}

func (h *Host) setBlocked(peer netip.Addr, on bool) error {
	if !peer.Is4() {
		return fmt.Errorf("%s is not IPv4", peer)
	}
	h.blockMu.Lock()
	defer h.blockMu.Unlock()
	if h.blocked == nil {
		if _, err := h.RunInput(blockTable, "nft", "-f", "-"); err != nil {
			return err
		}
		h.blocked = map[netip.Addr]bool{}
	}
	if h.blocked[peer] == on {
		return nil
	}
	verb := "add"
	if !on {
		verb = "delete"
	}
	if _, err := h.Run("nft", verb, "element", "inet", "tandemlab", "blocked", "{", peer.String(), "}"); err != nil {
		return err
	}
	h.blocked[peer] = on
	return nil
}

// Blocked lists the addresses Block currently drops on this host.
func (h *Host) Blocked() []netip.Addr {
	h.blockMu.Lock()
	defer h.blockMu.Unlock()
	var out []netip.Addr
	for a, on := range h.blocked {
		if on {
			out = append(out, a)
		}
	}
	return out
}

// nftables table in the bridge namespace used by Partition: the bridge
// silently drops frames carrying IP packets between a cut pair, like a
// broken path between two sites.
const cutTable = `table bridge tandemlab {
	set cut { type ipv4_addr . ipv4_addr; }
	chain forward { type filter hook forward priority 0; policy accept; ip saddr . ip daddr @cut drop; }
}
`

// Partition makes the bridge drop IP packets between a and b in both
// directions. Neither host notices anything but silence; traffic with
// everyone else flows on. Like Block it does not stop broadcast DHCP from
// clients, whose source address is 0.0.0.0.
func (l *Lab) Partition(a, b netip.Addr) {
	l.tb.Helper()
	if err := l.setCut(a, b, true); err != nil {
		l.tb.Fatalf("lab: partition %s from %s: %v", a, b, err)
	}
}

// Heal undoes Partition; healing a pair that is not cut does nothing.
func (l *Lab) Heal(a, b netip.Addr) {
	l.tb.Helper()
	if err := l.setCut(a, b, false); err != nil {
		l.tb.Fatalf("lab: heal %s and %s: %v", a, b, err)
	}
}

func (l *Lab) setCut(a, b netip.Addr, on bool) error {
	if !a.Is4() || !b.Is4() {
		return fmt.Errorf("%s, %s: want IPv4", a, b)
	}
	if b.Less(a) {
		a, b = b, a
	}
	key := [2]netip.Addr{a, b}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.cut) == 0 && on {
		if _, err := l.Bridge.RunInput(cutTable, "nft", "-f", "-"); err != nil {
			return err
		}
	}
	if l.cut[key] == on {
		return nil
	}
	verb := "add"
	if !on {
		verb = "delete"
	}
	elems := fmt.Sprintf("{ %s . %s, %s . %s }", a, b, b, a)
	if _, err := l.Bridge.Run("nft", verb, "element", "bridge", "tandemlab", "cut", elems); err != nil {
		return err
	}
	if on {
		l.cut[key] = true
	} else {
		// Keep the key so the table is known to exist.
		l.cut[key] = false
	}
	return nil
}

// fanOutTable rewrites, on the relay host, DHCP requests addressed to a
// server into limited broadcasts. A "route" chain makes the kernel route
// the rewritten packet again, so it leaves as an Ethernet broadcast.
const fanOutTable = `table ip tandemfanout {
	set servers { type ipv4_addr; }
	chain output { type route hook output priority 0; policy accept; ip daddr @servers udp dport 67 ip daddr set 255.255.255.255; }
}
`

// RelayFanOut makes every DHCP request the relay host sends to one of the
// lab's servers reach all of them, like a relay agent configured with
// every server as a helper address: what a failover pair needs, since both
// partners must see each request. perfdhcp keeps targeting one server's
// address (it cannot send broadcasts itself) and nftables turns each
// packet into a broadcast on its way out. Replies still come back unicast
// to giaddr. RelayFanOut(false) removes the rewrite.
func (l *Lab) RelayFanOut(on bool) {
	l.tb.Helper()
	h := l.Relay
	if !on {
		if _, err := h.Run("nft", "delete", "table", "ip", "tandemfanout"); err != nil && !strings.Contains(err.Error(), "No such file") {
			l.tb.Fatalf("lab: fan-out off: %v", err)
		}
		return
	}
	var elems []string
	for _, s := range l.Servers {
		elems = append(elems, s.IP.String())
	}
	script := fanOutTable + fmt.Sprintf("flush set ip tandemfanout servers\nadd element ip tandemfanout servers { %s }\n", strings.Join(elems, ", "))
	if _, err := h.RunInput(script, "nft", "-f", "-"); err != nil {
		l.tb.Fatalf("lab: fan-out on: %v", err)
	}
}
