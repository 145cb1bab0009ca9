package lab

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tandemdhcp/tandem/internal/lease"
	"github.com/tandemdhcp/tandem/internal/leasefile"
)

// Ack is one DHCPACK a server sent: an address granted to a client.
type Ack struct {
	Addr netip.Addr
	// MAC is the client's hardware address as net.HardwareAddr prints it
	// (lower-case hex, colons).
	MAC string
	// Server names who sent it, for messages.
	Server string
	// At and Lease, when both are known (a packet capture knows them, a
	// server's log does not), bound the lease the ACK granted. An ACK
	// without them counts as valid over the whole stretch of the run the
	// Acks were gathered from.
	At    time.Time
	Lease time.Duration
}

func (a Ack) String() string { return a.Addr.String() + " " + a.grant() }

// grant is the ACK less its address.
func (a Ack) grant() string {
	s := fmt.Sprintf("to %s by %s", a.MAC, a.Server)
	if a.timed() {
		s += fmt.Sprintf(" at %s for %v", a.At.Format("15:04:05.000"), a.Lease)
	}
	return s
}

func (a Ack) timed() bool { return !a.At.IsZero() && a.Lease > 0 }

// overlaps reports whether a and b may both have been valid at one
// instant. An overlap shorter than ackClockSlack does not count.
func (a Ack) overlaps(b Ack) bool {
	if !a.timed() || !b.timed() {
		return true
	}
	aEnd, bEnd := a.At.Add(a.Lease), b.At.Add(b.Lease)
	return a.At.Before(bEnd.Add(-ackClockSlack)) && b.At.Before(aEnd.Add(-ackClockSlack))
}

// ackClockSlack: a capture stamps an ACK when the test reads it, a little
// after the server sent it and computed the lease's end, and ISC stores
// ends in whole seconds; a server that reuses an address right as its
// lease ends may seem to overlap the two leases by that much.
const ackClockSlack = 2 * time.Second

var (
	// ISC dhcpd's line for each DHCPACK (server/dhcp.c, ack_lease), which
	// Tandem writes too when run with -v (internal/server/logexchange.go):
	// "DHCPACK on 198.18.0.10 to 02:00:00:00:00:01 (host) via eth0".
	iscAckLine = regexp.MustCompile(`DHCPACK on (\S+) to (\S+)`)
	// Kea's (INFO): "DHCP4_LEASE_ALLOC [hwtype=1 02:00:00:00:00:01], cid=[…],
	// tid=0x…: lease 198.18.0.10 has been allocated for 600 seconds".
	keaAllocLine = regexp.MustCompile(`DHCP4_LEASE_ALLOC \[hwtype=\d+ ([0-9a-f:]+)\].*: lease (\S+) has been allocated for (\d+) seconds`)
)

// ParseAckLog returns the DHCPACKs in the text of a server's log, in log
// order: ISC dhcpd's "DHCPACK on …" lines, which Tandem writes only when run
// with -v (Tandem.Verbose), and Kea's DHCP4_LEASE_ALLOC lines. A last line
// without its newline is left out: the server may be writing it. A line
// that names a DHCPACK but does not parse is an error, so that a change of
// format cannot silently empty the check.
func ParseAckLog(server, log string) ([]Ack, error) {
	if i := strings.LastIndexByte(log, '\n'); i >= 0 {
		log = log[:i+1]
	} else {
		log = ""
	}
	var out []Ack
	for line := range strings.Lines(log) {
		var addr, mac, secs string
		switch {
		case strings.Contains(line, "DHCPACK on "):
			m := iscAckLine.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("%s: DHCPACK line not understood: %q", server, line)
			}
			addr, mac = m[1], m[2]
		case strings.Contains(line, "DHCP4_LEASE_ALLOC "):
			m := keaAllocLine.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("%s: DHCP4_LEASE_ALLOC line not understood: %q", server, line)
			}
			mac, addr, secs = m[1], m[2], m[3]
		default:
			continue
		}
		a := Ack{Server: server}
		var err error
		if a.Addr, err = netip.ParseAddr(addr); err != nil || !a.Addr.Is4() {
			return nil, fmt.Errorf("%s: DHCPACK of %q: not an IPv4 address: %q", server, addr, line)
		}
		hw, err := net.ParseMAC(mac)
		if err != nil {
			return nil, fmt.Errorf("%s: DHCPACK to %q: %v: %q", server, mac, err, line)
		}
		a.MAC = hw.String()
		if secs != "" {
			n, err := strconv.Atoi(secs)
			if err != nil {
				return nil, fmt.Errorf("%s: lease time %q: %v", server, secs, err)
			}
			a.Lease = time.Duration(n) * time.Second
		}
		out = append(out, a)
	}
	return out, nil
}

// Acks gathers the DHCPACKs servers sent over one stretch of a test run,
// from their logs or from captured replies, to check the first safety
// rule of DHCP: an address is leased to one client at a time (RFC 2131
// §4.3.1–§4.3.2; the failover draft's §5 makes it the pair's to keep too).
type Acks struct {
	list     []Ack
	servers  []string // in the order first seen
	byServer map[string]int
}

// Add records acks, e.g. ones built from captured DHCP replies.
func (s *Acks) Add(acks ...Ack) {
	if s.byServer == nil {
		s.byServer = map[string]int{}
	}
	for _, a := range acks {
		if _, ok := s.byServer[a.Server]; !ok {
			s.servers = append(s.servers, a.Server)
		}
		s.byServer[a.Server]++
		s.list = append(s.list, a)
	}
}

// AddLog records the DHCPACKs of a server's log (see ParseAckLog). Give
// it the part of the log the check is about: Proc.Log()[mark:].
func (s *Acks) AddLog(server, log string) error {
	acks, err := ParseAckLog(server, log)
	if err != nil {
		return err
	}
	if s.byServer == nil {
		s.byServer = map[string]int{}
	}
	if _, ok := s.byServer[server]; !ok {
		s.servers = append(s.servers, server)
		s.byServer[server] = 0
	}
	s.Add(acks...)
	return nil
}

// Len is the number of DHCPACKs recorded.
func (s *Acks) Len() int { return len(s.list) }

// All returns the recorded DHCPACKs in the order they were added.
func (s *Acks) All() []Ack { return slices.Clone(s.list) }

func (s *Acks) byAddr() map[netip.Addr][]Ack {
	m := map[netip.Addr][]Ack{}
	for _, a := range s.list {
		m[a.Addr] = append(m[a.Addr], a)
	}
	return m
}

// Summary says how many DHCPACKs each server sent, of how many addresses
// to how many clients, and how many changed hands (at once or not).
func (s *Acks) Summary() string {
	var per []string
	for _, srv := range s.servers {
		per = append(per, fmt.Sprintf("%s %d", srv, s.byServer[srv]))
	}
	addrs := map[netip.Addr]map[string]bool{}
	macs := map[string]map[netip.Addr]bool{}
	for _, a := range s.list {
		if addrs[a.Addr] == nil {
			addrs[a.Addr] = map[string]bool{}
		}
		addrs[a.Addr][a.MAC] = true
		if macs[a.MAC] == nil {
			macs[a.MAC] = map[netip.Addr]bool{}
		}
		macs[a.MAC][a.Addr] = true
	}
	shared, several := 0, 0
	for _, ms := range addrs {
		if len(ms) > 1 {
			shared++
		}
	}
	for _, as := range macs {
		if len(as) > 1 {
			several++
		}
	}
	return fmt.Sprintf("%d DHCPACKs (%s) of %d addresses to %d clients; %d clients given more than one address, %d addresses given to more than one client",
		len(s.list), strings.Join(per, ", "), len(addrs), len(macs), several, shared)
}

// DoubleLease is an address acknowledged to two clients whose leases may
// have been valid at the same time.
type DoubleLease struct {
	First, Second Ack
}

func (d DoubleLease) String() string {
	return fmt.Sprintf("%s %s and %s", d.First.Addr, d.First.grant(), d.Second.grant())
}

// DoubleLeases returns, for each address acknowledged to two different
// clients whose leases may have overlapped, one such pair (in the order
// they were added), sorted by address. ACKs without times (from logs)
// overlap any other, so only gather them over a stretch in which no lease
// ends or is released.
func (s *Acks) DoubleLeases() []DoubleLease {
	var out []DoubleLease
	for _, as := range s.byAddr() {
	pairs:
		for i := range as {
			for j := i + 1; j < len(as); j++ {
				if as[i].MAC != as[j].MAC && as[i].overlaps(as[j]) {
					out = append(out, DoubleLease{as[i], as[j]})
					break pairs
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].First.Addr.Less(out[j].First.Addr) })
	return out
}

// CheckUnique returns an error naming the addresses (the first ten) that
// were acknowledged to two clients at once, or nil if there is none.
func (s *Acks) CheckUnique() error {
	dl := s.DoubleLeases()
	if len(dl) == 0 {
		return nil
	}
	lines := make([]string, 0, min(len(dl), 10)+1)
	for _, d := range dl[:min(len(dl), 10)] {
		lines = append(lines, d.String())
	}
	if len(dl) > 10 {
		lines = append(lines, fmt.Sprintf("… and %d more", len(dl)-10))
	}
	return fmt.Errorf("%d addresses acknowledged to two clients at once:\n  %s", len(dl), strings.Join(lines, "\n  "))
}

// CheckHeld returns an error unless the lease database db (active: the
// hardware address of every active lease, see ActiveLeases) holds each
// acknowledged address active for the client it was acknowledged to last,
// or to every client if the ACKs carry no times. A timed ACK whose lease
// has ended by now (or ends within the clock slack of it) is not checked;
// untimed ones always are, so call it while the leases granted over the
// stretch are all still valid.
func (s *Acks) CheckHeld(db string, active map[netip.Addr]string, now time.Time) error {
	var bad []string
	for addr, as := range s.byAddr() {
		current := as
		if !slices.ContainsFunc(as, func(a Ack) bool { return !a.timed() }) {
			last := slices.MaxFunc(as, func(a, b Ack) int { return a.At.Compare(b.At) })
			if last.At.Add(last.Lease).Before(now.Add(ackClockSlack)) {
				continue
			}
			current = []Ack{last}
		}
		seen := map[string]bool{}
		for _, a := range current {
			if seen[a.MAC] {
				continue
			}
			seen[a.MAC] = true
			switch got, ok := active[addr]; {
			case !ok:
				bad = append(bad, fmt.Sprintf("%s: %s has no active lease", a, db))
			case got != a.MAC:
				bad = append(bad, fmt.Sprintf("%s: %s has it active for %s", a, db, got))
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	n := len(bad)
	if n > 10 {
		bad = append(bad[:10], fmt.Sprintf("… and %d more", n-10))
	}
	return fmt.Errorf("%d acknowledged leases not held as granted:\n  %s", n, strings.Join(bad, "\n  "))
}

// ActiveLeases maps the address of every active lease in a lease file
// (ISC dhcpd's or Tandem's) to its client's hardware address.
func ActiveLeases(c *leasefile.Contents) map[netip.Addr]string {
	m := map[netip.Addr]string{}
	for i := range c.Leases {
		l := &c.Leases[i]
		if l.State != lease.Active {
			continue
		}
		hw := ""
		if h := l.HardwareAddr(); h != nil {
			hw = h.String()
		}
		m[l.Addr()] = hw
	}
	return m
}

// ParseActiveLeases is ActiveLeases of a lease file's text.
func ParseActiveLeases(text string) (map[netip.Addr]string, error) {
	c, err := leasefile.Parse([]byte(text))
	if err != nil {
		return nil, err
	}
	return ActiveLeases(c), nil
}
