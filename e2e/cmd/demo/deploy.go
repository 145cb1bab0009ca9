package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// deployment is how the demo runs Tandem: the servers and the
// configuration they share. Everything after start — clients, the relay
// burst, the report — only sees this, so a failover pair is one more
// constructor beside single.
type deployment struct {
	// Servers in order; each runs on its own lab server host.
	Servers []*lab.Tandem
	// ConfNotes say where the configuration came from and what the demo
	// changed in it, for the operator.
	ConfNotes []string
	// Reserved maps a client MAC to the name and address of its host
	// declaration (hardware ethernet + fixed-address).
	Reserved map[string]reservation
	// Subnets are the dynamic ranges served, for the pool table.
	Subnets []subnetRange
	// RelayFanOut makes the relay agent send every request to all servers,
	// as a failover pair needs (lab.RelayFanOut).
	RelayFanOut bool
	// FailoverPeer names the relationship when the servers are a failover
	// pair (primary first); "" for a lone server.
	FailoverPeer string
	// HBA is the primary's hash bucket assignment: which server a client
	// goes to in normal state (fw §8).
	HBA [wire.HBALen]byte
}

type reservation struct {
	Name string
	Addr netip.Addr
}

type subnetRange struct {
	Prefix      netip.Prefix
	First, Last netip.Addr
	Label       string
}

// Size is the number of addresses in the range.
func (s subnetRange) Size() int {
	a, b := s.First.As4(), s.Last.As4()
	u := func(x [4]byte) int { return int(x[0])<<24 | int(x[1])<<16 | int(x[2])<<8 | int(x[3]) }
	return u(b) - u(a) + 1
}

func (s subnetRange) Contains(a netip.Addr) bool {
	return s.First.Compare(a) <= 0 && a.Compare(s.Last) <= 0
}

// relayPools is the lab's relayed range, the same one the benchmarks use.
var relayPools = lab.Pools{RelaySize: 4096}

// single is one Tandem on srv1 serving examples/single.conf, adapted to
// the lab: its host reservation is moved to reservedMAC (a demo client's
// MAC) and the subnet behind the relay agent is added.
func single(l *lab.Lab, reservedMAC net.HardwareAddr) (*deployment, error) {
	conf, notes, res, err := singleConf(reservedMAC)
	if err != nil {
		return nil, err
	}
	first, last := relayPools.RelayRange()
	d := &deployment{
		ConfNotes: notes,
		Reserved:  res,
		Subnets: []subnetRange{
			{Prefix: lab.LANPrefix, First: netip.MustParseAddr("198.18.0.100"), Last: netip.MustParseAddr("198.18.0.199"), Label: "LAN"},
			{Prefix: lab.RelayPrefix, First: first, Last: last, Label: "behind relay"},
		},
	}
	d.Servers = append(d.Servers, lab.NewTandem(l.Servers[0], conf))
	return d, nil
}

var (
	hostHW   = regexp.MustCompile(`(?s)host\s+(\S+)\s*\{[^}]*?hardware ethernet\s+([0-9A-Fa-f:]+);[^}]*?fixed-address\s+([0-9.]+);`)
	lanRange = regexp.MustCompile(`range 198\.18\.0\.100 198\.18\.0\.199;`)
)

// singleConf reads examples/single.conf and adapts it to the lab.
func singleConf(reservedMAC net.HardwareAddr) (string, []string, map[string]reservation, error) {
	root, err := lab.ModuleRoot()
	if err != nil {
		return "", nil, nil, err
	}
	path := filepath.Join(root, "examples", "single.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, nil, err
	}
	conf := string(b)
	// The demo's table compares against the example's LAN range; a changed
	// example deserves a loud failure, not a confusing table.
	if !lanRange.MatchString(conf) {
		return "", nil, nil, fmt.Errorf("%s: no longer has range 198.18.0.100 198.18.0.199; update the demo", path)
	}
	notes := []string{fmt.Sprintf("config: %s", relPath(root, path))}
	conf, resNotes, res, err := moveReservation(conf, path, reservedMAC)
	if err != nil {
		return "", nil, nil, err
	}
	notes = append(notes, resNotes...)
	first, last := relayPools.RelayRange()
	conf += fmt.Sprintf("\n# Added by the demo: the subnet behind the lab's relay agent.\n"+
		"subnet %s netmask 255.255.0.0 {\n  range %s %s;\n}\n", lab.RelayPrefix.Addr(), first, last)
	notes = append(notes, fmt.Sprintf("        + subnet %s with range %s – %s for relayed clients", lab.RelayPrefix, first, last))
	return conf, notes, res, nil
}

// moveReservation gives the first host declaration with hardware
// ethernet and fixed-address to reservedMAC, a demo client, so that the
// demo shows a reservation at work.
func moveReservation(conf, path string, reservedMAC net.HardwareAddr) (string, []string, map[string]reservation, error) {
	res := map[string]reservation{}
	m := hostHW.FindStringSubmatchIndex(conf)
	if m == nil || reservedMAC == nil {
		return conf, nil, res, nil
	}
	name := conf[m[2]:m[3]]
	old := conf[m[4]:m[5]]
	addr, err := netip.ParseAddr(conf[m[6]:m[7]])
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s: host %s: %v", path, name, err)
	}
	conf = conf[:m[4]] + reservedMAC.String() + conf[m[5]:]
	res[reservedMAC.String()] = reservation{Name: name, Addr: addr}
	note := fmt.Sprintf("        host %s: hardware ethernet %s → %s (a demo client), fixed-address %s", name, old, reservedMAC, addr)
	return conf, []string{note}, res, nil
}

// classicDir holds the failover pair's example configuration.
const classicDir = "examples/classic"

// pair is the failover pair of examples/classic: the primary on srv1 and
// the secondary on srv2, whose addresses the example already names, each
// reading its own file and the shared one beside it. Only the host
// reservation moves to a demo client; everything else, timers included,
// is the example as an operator would deploy it.
func pair(l *lab.Lab, reservedMAC net.HardwareAddr) (*deployment, error) {
	root, err := lab.ModuleRoot()
	if err != nil {
		return nil, err
	}
	c, err := lab.ReadFailoverConfs(classicDir)
	if err != nil {
		return nil, err
	}
	sharedPath := filepath.Join(root, classicDir, c.SharedName)
	shared, resNotes, res, err := moveReservation(c.Shared, sharedPath, reservedMAC)
	if err != nil {
		return nil, err
	}
	c.Shared = shared
	notes := []string{fmt.Sprintf("config: %s/primary.conf on srv1, %s/secondary.conf on srv2, both including %s",
		classicDir, classicDir, c.SharedName)}
	notes = append(notes, resNotes...)

	tp := lab.NewTandemPair(l, c)
	cfg, err := config.ParseFile(tp.Primary.ConfPath)
	if err != nil {
		return nil, err
	}
	if len(cfg.FailoverPeers) != 1 {
		return nil, fmt.Errorf("%s: %d failover peers, the demo shows one", classicDir, len(cfg.FailoverPeers))
	}
	fp := cfg.FailoverPeers[0]
	d := &deployment{
		Servers:      tp.Servers(),
		ConfNotes:    notes,
		Reserved:     res,
		RelayFanOut:  true,
		FailoverPeer: fp.Name,
	}
	copy(d.HBA[:], fp.HBA)
	notes = append(notes, fmt.Sprintf("        failover peer %q: mclt %ds, split %d, load balance max seconds %d, max-response-delay %ds",
		fp.Name, fp.MCLT, fp.Split, fp.LoadBalanceMaxSeconds, fp.MaxResponseDelay))
	d.ConfNotes = notes
	for _, s := range cfg.Subnets {
		for _, p := range s.Pools {
			for _, r := range p.Ranges {
				label := "LAN"
				if lab.RelayPrefix.Contains(r.Start) {
					label = "behind relay"
				}
				d.Subnets = append(d.Subnets, subnetRange{Prefix: s.Prefix, First: r.Start, Last: r.End, Label: label})
			}
		}
	}
	return d, nil
}

// designated names the server the hash bucket assignment gives a client
// to in normal state (RFC 3074; ISC: a set bit is the primary's, fw §8).
// dhclient sends no client identifier here, so the key is chaddr.
func (d *deployment) designated(mac net.HardwareAddr) *lab.Tandem {
	if d.FailoverPeer == "" || len(d.Servers) < 2 {
		return d.Servers[0]
	}
	if wire.PrimaryServes(&d.HBA, wire.LoadBalanceBucket(mac)) {
		return d.Servers[0]
	}
	return d.Servers[1]
}

func relPath(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// leases merges the servers' lease files: for each address the record
// with the latest client transaction, which is the one both servers of a
// pair converge to.
func (d *deployment) leases() (map[netip.Addr]lease.Lease, error) {
	out := map[netip.Addr]lease.Lease{}
	for _, s := range d.Servers {
		c, err := s.Leases()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Host.Name, err)
		}
		for _, l := range c.Leases {
			if cur, ok := out[l.Addr()]; !ok || l.CLTT > cur.CLTT || (l.CLTT == cur.CLTT && l.Starts > cur.Starts) {
				out[l.Addr()] = l
			}
		}
	}
	return out, nil
}

// serverName names the server that owns an address, for the tables.
func (d *deployment) serverName(ip netip.Addr) string {
	for _, s := range d.Servers {
		if s.Host.IP == ip {
			return s.Host.Name
		}
	}
	return ip.String()
}
