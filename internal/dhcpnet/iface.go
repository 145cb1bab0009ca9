package dhcpnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Interface is what the server needs to know about a network interface.
type Interface struct {
	Index        int
	Name         string
	HardwareAddr net.HardwareAddr
	Flags        net.Flags
	MTU          int
	// Ethernet reports an Ethernet link layer (ARPHRD_ETHER), the only one
	// over which layer-2 unicast replies are built.
	Ethernet bool
	// Prefixes are the interface's IPv4 addresses with their prefix
	// lengths, primary addresses first as the kernel lists them.
	Prefixes []netip.Prefix
}

// Addr is the interface's first (primary) IPv4 address, or the zero Addr.
func (i *Interface) Addr() netip.Addr {
	if len(i.Prefixes) == 0 {
		return netip.Addr{}
	}
	return i.Prefixes[0].Addr()
}

// AddrFor is the interface address on the same subnet as peer, else the
// primary address: the natural source for a packet to peer.
func (i *Interface) AddrFor(peer netip.Addr) netip.Addr {
	for _, p := range i.Prefixes {
		if p.Contains(peer) {
			return p.Addr()
		}
	}
	return i.Addr()
}

// ifaceTable is an immutable snapshot of the interfaces, replaced whole on
// refresh so readers need no lock.
type ifaceTable struct {
	byIndex map[int]*Interface
	// serve holds the indexes whose packets we accept.
	serve map[int]bool
	// local holds every IPv4 address of the namespace.
	local map[netip.Addr]bool
}

// selector decides which interfaces are served. With names, exactly those
// (loopback included if named), as ISC dhcpd's interface arguments; without,
// every broadcast-capable non-loopback interface with an IPv4 address.
type selector struct {
	names map[string]bool
}

func (s selector) auto() bool { return len(s.names) == 0 }

func (s selector) serves(i *Interface) bool {
	if !s.auto() {
		return s.names[i.Name]
	}
	return i.Flags&net.FlagBroadcast != 0 && i.Flags&net.FlagLoopback == 0 && len(i.Prefixes) > 0
}

// loadInterfaces reads links and IPv4 addresses with one netlink dump each.
// h's sockets belong to the network namespace it was created in, so the
// table describes the namespace the Conn was opened in.
func loadInterfaces(h *netlink.Handle, sel selector) (*ifaceTable, error) {
	var links []netlink.Link
	var addrs []netlink.Addr
	var err error
	// A dump that raced with a change is marked interrupted; retry a
	// few times before taking the possibly inconsistent result.
	for range 3 {
		links, err = h.LinkList()
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("dhcpnet: list links: %w", err)
	}
	for range 3 {
		addrs, err = h.AddrList(nil, unix.AF_INET)
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("dhcpnet: list addresses: %w", err)
	}

	t := &ifaceTable{byIndex: make(map[int]*Interface, len(links)), serve: make(map[int]bool), local: make(map[netip.Addr]bool)}
	for _, l := range links {
		a := l.Attrs()
		t.byIndex[a.Index] = &Interface{
			Index:        a.Index,
			Name:         a.Name,
			HardwareAddr: slices.Clone(a.HardwareAddr),
			Flags:        a.Flags,
			MTU:          a.MTU,
			Ethernet:     a.EncapType == "ether",
		}
	}
	for _, a := range addrs {
		i := t.byIndex[a.LinkIndex]
		if i == nil || a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		i.Prefixes = append(i.Prefixes, netip.PrefixFrom(ip, ones))
		t.local[ip] = true
	}
	for idx, i := range t.byIndex {
		if sel.serves(i) {
			t.serve[idx] = true
		}
	}
	return t, nil
}
