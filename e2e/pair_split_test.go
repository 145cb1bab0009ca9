package e2e

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// classicSplit is the split of examples/classic.
const classicSplit = 128

// primaryServes tells which server of a normal pair answers a DISCOVER
// whose load-balancing key is key: the client identifier if the client
// sent one, else chaddr (RFC 3074 §6 hash; ISC: a set HBA bit is the
// primary's, fw §8).
func primaryServes(key []byte) bool {
	hba := wire.HBAFromSplit(classicSplit)
	return wire.PrimaryServes(&hba, wire.LoadBalanceBucket(key))
}

// splitClients adds client hosts to the lab until at least n of them hash
// to each server, and returns them by server: [0] the primary's, [1] the
// secondary's. The lab's client MACs are fixed, so the outcome is too.
func splitClients(t *testing.T, l *lab.Lab, n int) [2][]*lab.Host {
	t.Helper()
	var by [2][]*lab.Host
	for _, h := range l.Clients {
		by[side(h.MAC)] = append(by[side(h.MAC)], h)
	}
	for i := 0; len(by[0]) < n || len(by[1]) < n; i++ {
		if i == 4*n+16 {
			t.Fatalf("after %d clients, %d hash to the primary and %d to the secondary", len(l.Clients), len(by[0]), len(by[1]))
		}
		h := l.AddClient()
		by[side(h.MAC)] = append(by[side(h.MAC)], h)
	}
	return by
}

func side(mac net.HardwareAddr) int {
	if primaryServes(mac) {
		return 0
	}
	return 1
}

// pairClient is a dhclient of a pair test with what it was last given.
type pairClient struct {
	c  *lab.DHClient
	ev lab.ClientEvent
}

// acquireAll starts a dhclient on every host at once and waits until all
// are bound.
func acquireAll(t *testing.T, hosts []*lab.Host, o lab.DHClientOptions) []*pairClient {
	t.Helper()
	out := make([]*pairClient, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		out[i] = &pairClient{c: lab.NewDHClient(h, o)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].ev, errs[i] = out[i].c.Acquire(40 * time.Second)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestPairSplitsClients: in normal state each DISCOVER is answered by the
// one server the hash bucket assignment names (RFC 3074, split 128), the
// first grant is capped at the MCLT (fw §11, lazy update), each binding
// reaches the partner with the same client and end, and a renewal after
// the partner acknowledged gets the full lease time.
func TestPairSplitsClients(t *testing.T) {
	needsLab(t, "dhclient")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 2, Clients: 6})
	byServer := splitClients(t, l, 3)
	// load balance max seconds bounds how long a client may retry before
	// either server answers it (fw §8). Raised here so that a retransmitted
	// DISCOVER on a busy machine is still load balanced: the test checks
	// the hash, not the fallback.
	c := classicConfs(t, 0).SetPeerParam("load balance max seconds", "30")
	pair := startPair(t, l, c)
	servers := [2]*lab.Tandem{pair.Primary, pair.Secondary}

	const desired = time.Hour // default-lease-time of the LAN subnet in shared.conf
	var hosts []*lab.Host
	want := map[string]int{}
	for s, hs := range byServer {
		for _, h := range hs {
			hosts = append(hosts, h)
			want[h.MAC.String()] = s
		}
	}
	clients := acquireAll(t, hosts, lab.DHClientOptions{RenewalTime: 3 * time.Second})
	for _, pc := range clients {
		h, ev := pc.c.Host, pc.ev
		s := want[h.MAC.String()]
		t.Logf("%s %s (bucket %d) got %s from %s for %v", h.Name, h.MAC, wire.LoadBalanceBucket(h.MAC), ev.IP, ev.ServerID, ev.LeaseTime)
		if ev.ServerID != servers[s].Host.IP {
			t.Errorf("%s (%s, bucket %d) was answered by %s, want %s", h.Name, h.MAC, wire.LoadBalanceBucket(h.MAC), ev.ServerID, servers[s].Host.IP)
		}
		if !inRange(ev.IP, lab.LANRangeFirst, lab.LANRangeLast) {
			t.Errorf("%s got %s, outside the LAN pool", h.Name, ev.IP)
		}
		// The partner has acknowledged nothing for a new lease yet, so the
		// first grant is the MCLT, not the hour asked for (fw §11).
		if ev.LeaseTime != testMCLT {
			t.Errorf("%s: first lease time %v, want the MCLT %v", h.Name, ev.LeaseTime, testMCLT)
		}
	}

	// Each binding is in both lease files, for the same client with the
	// same end; in the primary's file an address the secondary leased was
	// backup before (the secondary allocates from backup, draft §5.4).
	prim, sec := compareLeaseFiles(t, pair, 15*time.Second)
	for _, pc := range clients {
		for i, m := range []map[netip.Addr]leaseView{prim, sec} {
			v := m[pc.ev.IP]
			if v.State != lease.Active || v.HW != pc.c.Host.MAC.String() {
				t.Errorf("%s: %s in %s's lease file is %s, want active to %s", pc.c.Host.Name, pc.ev.IP, servers[i].Host.Name, v, pc.c.Host.MAC)
				continue
			}
			// The load-balancing key was chaddr only if the client sent no
			// identifier.
			if v.ClientID != "" {
				t.Errorf("%s sent client identifier %q: the split check assumed chaddr", pc.c.Host.Name, v.ClientID)
			}
			if end := pc.ev.At.Add(pc.ev.LeaseTime).Unix(); v.Ends < end-5 || v.Ends > end+1 {
				t.Errorf("%s: %s ends %s in %s's file, but the client was given %v at %s", pc.c.Host.Name, pc.ev.IP,
					time.Unix(v.Ends, 0).Format(time.TimeOnly), servers[i].Host.Name, pc.ev.LeaseTime, pc.ev.At.Format(time.TimeOnly))
			}
		}
	}
	// The operator's view of the DB says the same.
	for _, s := range servers {
		ls, err := s.LeaseList("active")
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != len(clients) {
			t.Errorf("tandem leases -state active on %s: %d leases, want %d", s.Host.Name, len(ls), len(clients))
		}
	}

	// RENEWING (T1 forced to 3 s): unicast to the server that gave the
	// lease. Its binding update has been acknowledged by now, so the
	// partner may learn a longer potential expiry and the renewal gets the
	// full hour (fw §11: min(D, tsfp - now + MCLT)).
	var wg sync.WaitGroup
	renewErrs := make([]error, len(clients))
	for i, pc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, err := pc.c.WaitRenew(30 * time.Second)
			renewErrs[i] = err
			if err == nil {
				pc.ev = ev
			}
		}()
	}
	wg.Wait()
	for i, pc := range clients {
		h := pc.c.Host
		if renewErrs[i] != nil {
			t.Errorf("%s: %v", h.Name, renewErrs[i])
			continue
		}
		s := want[h.MAC.String()]
		if pc.ev.Reason != "RENEW" || pc.ev.ServerID != servers[s].Host.IP {
			t.Errorf("%s: renewal %s from %s, want RENEW from %s", h.Name, pc.ev.Reason, pc.ev.ServerID, servers[s].Host.IP)
		}
		if pc.ev.LeaseTime <= testMCLT || pc.ev.LeaseTime > desired {
			t.Errorf("%s: renewal granted %v, want more than the MCLT %v and at most %v", h.Name, pc.ev.LeaseTime, testMCLT, desired)
		}
	}
	for _, pc := range clients {
		pc.c.Stop()
	}
	compareLeaseFiles(t, pair, 15*time.Second)
}
