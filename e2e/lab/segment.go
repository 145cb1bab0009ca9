package lab

import (
	"fmt"
	"net/netip"
)

// Segment is a second LAN behind a gateway host, with one client on it:
// a veth pair from the gateway's namespace (interface seg<n>) to the
// client's eth0. A relay agent on the gateway (ISC dhcrelay) forwards the
// client's broadcasts to the servers, as on a routed network.
type Segment struct {
	// Gateway is the host the segment hangs off, normally the relay host.
	Gateway *Host
	// Iface is the gateway's interface into the segment.
	Iface string
	// Prefix is the gateway's address on the segment with its length;
	// relayed requests carry Prefix.Addr() as giaddr.
	Prefix netip.Prefix
	// Client is the host on the segment: no address until DHCP gives one.
	Client *Host
}

// AddSegment builds a segment behind gw whose gateway address is prefix
// (e.g. 198.18.16.1/24; keep it in 198.18.0.0/15 and outside the lab's
// other subnets). Every server gets a route to it through gw's LAN
// address, so replies to the relay agent find their way back. Failure is
// fatal to the lab's owner.
func (l *Lab) AddSegment(gw *Host, prefix netip.Prefix) *Segment {
	l.tb.Helper()
	s, err := l.addSegment(gw, prefix)
	if err != nil {
		l.tb.Fatalf("lab: adding a segment behind %s: %v", gw.Name, err)
	}
	return s
}

func (l *Lab) addSegment(gw *Host, prefix netip.Prefix) (*Segment, error) {
	if !prefix.Addr().Is4() || !gw.IP.IsValid() {
		return nil, fmt.Errorf("want an IPv4 prefix and a gateway with a LAN address, got %s and %s", prefix, gw.IP)
	}
	l.mu.Lock()
	l.nextClient++
	n := l.nextClient
	l.mu.Unlock()
	if n > maxClients {
		return nil, fmt.Errorf("more than %d clients", maxClients)
	}
	name := fmt.Sprintf("cli%d", n)
	ns, err := l.addNamespace(name)
	if err != nil {
		return nil, err
	}
	h := &Host{Name: name, NS: ns, Iface: "eth0", MAC: clientMAC(n), lab: l}
	seg := &Segment{Gateway: gw, Iface: fmt.Sprintf("seg%d", n), Prefix: prefix, Client: h}
	steps := [][]string{
		{"-n", gw.NS, "link", "add", seg.Iface, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", ns, "link", "set", "eth0", "address", h.MAC.String()},
		{"-n", gw.NS, "addr", "add", prefix.String(), "dev", seg.Iface},
		{"-n", gw.NS, "link", "set", seg.Iface, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", "eth0", "up"},
	}
	for _, srv := range l.Servers {
		steps = append(steps, []string{"-n", srv.NS, "route", "add", prefix.Masked().String(), "via", gw.IP.String(), "dev", srv.Iface})
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return nil, err
		}
	}
	l.mu.Lock()
	l.Clients = append(l.Clients, h)
	l.mu.Unlock()
	return seg, nil
}
