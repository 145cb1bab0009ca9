package e2e

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/control"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
	"github.com/tandemdhcp/tandem/internal/leasefile"
)

// Mixed pairs: one ISC dhcpd 4.4 and one Tandem in one failover
// relationship, the state a pair is in half-way through a migration. The
// configs have the layout of examples/classic (one file per server with the
// failover peer block, one shared include with the scopes), written with a
// short MCLT so that the MCLT waits fit in a test.

// mixedPeer is the relationship name, the one examples/classic uses.
const mixedPeer = "dhcp-failover"

// mixedSplit is the split of the configs: the primary serves buckets
// 0..mixedSplit-1 (ISC semantics, failover-wire.md §8).
const mixedSplit = 128

// pairConf shapes the two-file configuration of a pair.
type pairConf struct {
	// MCLT in seconds; it bounds recover-wait and partner-down takeover.
	MCLT int
	// LeaseTime in seconds, the default and maximum lease time.
	LeaseTime int
	// LANSize is the number of dynamic addresses on the servers' LAN,
	// from lab.LANRangeFirst.
	LANSize int
	// RelaySize is the number of dynamic addresses behind the relay
	// (perfdhcp's subnet); 0 declares no relayed subnet.
	RelaySize int
	// MaxResponseDelay in seconds; 0 means 15.
	MaxResponseDelay int
}

func (c pairConf) shared() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Scopes served by both servers of the pair.\n")
	fmt.Fprintf(&b, "authoritative;\nddns-update-style none;\nping-check false;\n")
	fmt.Fprintf(&b, "default-lease-time %d;\nmax-lease-time %d;\n", c.LeaseTime, c.LeaseTime)
	lanLast := addrPlus(lab.LANRangeFirst, c.LANSize-1)
	fmt.Fprintf(&b, "subnet 198.18.0.0 netmask 255.255.255.0 {\n  option routers 198.18.0.254;\n  pool {\n    failover peer %q;\n    deny dynamic bootp clients;\n    range %s %s;\n  }\n}\n",
		mixedPeer, lab.LANRangeFirst, lanLast)
	if c.RelaySize > 0 {
		first, last := lab.Pools{RelaySize: c.RelaySize}.RelayRange()
		fmt.Fprintf(&b, "subnet 198.19.0.0 netmask 255.255.0.0 {\n  option routers 198.19.0.1;\n  pool {\n    failover peer %q;\n    deny dynamic bootp clients;\n    range %s %s;\n  }\n}\n",
			mixedPeer, first, last)
	}
	return b.String()
}

// server is the per-server file: the failover peer block, OMAPI (which
// Tandem accepts and ISC needs for omshell), and the shared include.
func (c pairConf) server(primary bool, sharedPath string) string {
	me, peer := lab.ServerIP(1), lab.ServerIP(2)
	role := "primary"
	if !primary {
		me, peer = peer, me
		role = "secondary"
	}
	mrd := c.MaxResponseDelay
	if mrd == 0 {
		mrd = 15
	}
	var b strings.Builder
	fmt.Fprintf(&b, "failover peer %q {\n  %s;\n  address %s;\n  port 647;\n  peer address %s;\n  peer port 647;\n", mixedPeer, role, me, peer)
	fmt.Fprintf(&b, "  max-response-delay %d;\n  max-unacked-updates 10;\n  load balance max seconds 3;\n", mrd)
	if primary {
		fmt.Fprintf(&b, "  mclt %d;\n  split %d;\n", c.MCLT, mixedSplit)
	}
	b.WriteString("}\n")
	b.WriteString(lab.LabOMAPIKey.DhcpdConf(lab.DefaultOMAPIPort))
	fmt.Fprintf(&b, "include %q;\n", sharedPath)
	return b.String()
}

// pairFiles are the three config files, written into the lab directory.
type pairFiles struct {
	Shared, Primary, Secondary string
}

func writePairConf(l *lab.Lab, c pairConf) pairFiles {
	var f pairFiles
	f.Shared = l.WriteFile("pair/shared.conf", c.shared())
	f.Primary = l.WriteFile("pair/primary.conf", c.server(true, f.Shared))
	f.Secondary = l.WriteFile("pair/secondary.conf", c.server(false, f.Shared))
	return f
}

func addrPlus(a netip.Addr, n int) netip.Addr {
	v := lease.AddrToU32(a) + uint32(n)
	return lease.U32ToAddr(v)
}

// pairServer is one member of a pair, ISC dhcpd or Tandem, behind the few
// operations the tests need from either.
type pairServer struct {
	t       *testing.T
	primary bool
	host    *lab.Host
	isc     *lab.ISCDhcpd // exactly one of isc and tdm is set
	tdm     *lab.Tandem
}

// newISCMember prepares ISC dhcpd on h with the config file at confPath.
func newISCMember(t *testing.T, h *lab.Host, primary bool, confPath string) *pairServer {
	t.Helper()
	d := lab.NewISCDhcpd(h, "")
	d.ConfPath = confPath
	return &pairServer{t: t, primary: primary, host: h, isc: d}
}

// newTandemMember prepares Tandem on h with the config file at confPath.
func newTandemMember(t *testing.T, h *lab.Host, primary bool, confPath string) *pairServer {
	t.Helper()
	tdm := lab.NewTandem(h, "")
	tdm.ConfPath = confPath
	return &pairServer{t: t, primary: primary, host: h, tdm: tdm}
}

func (s *pairServer) String() string {
	role := "secondary"
	if s.primary {
		role = "primary"
	}
	prog := "Tandem"
	if s.isc != nil {
		prog = "ISC dhcpd"
	}
	return fmt.Sprintf("%s (%s, %s)", prog, role, s.host.Name)
}

func (s *pairServer) start() *lab.Proc {
	s.t.Helper()
	if s.isc != nil {
		return s.isc.Start()
	}
	return s.tdm.Start()
}

func (s *pairServer) proc() *lab.Proc {
	if s.isc != nil {
		return s.isc.Proc()
	}
	return s.tdm.Proc()
}

func (s *pairServer) leasePath() string {
	if s.isc != nil {
		return s.isc.LeasePath
	}
	return s.tdm.LeasePath
}

func (s *pairServer) kill9() {
	s.t.Helper()
	s.proc().Kill9()
}

// stableStates are the states a server stays in until something happens;
// Tandem's status API must show them once its log says so.
var stableStates = map[string]bool{
	"normal": true, "communications-interrupted": true, "partner-down": true,
}

// awaitState waits until the current process logged its move into state
// (after log offset from, or as its last move before it). For Tandem, a
// stable state must also show in `tandem status`.
func (s *pairServer) awaitState(from int64, state string, timeout time.Duration) lab.FailoverMove {
	s.t.Helper()
	start := time.Now()
	mv, err := s.proc().AwaitFailoverState(from, mixedPeer, state, timeout)
	if err != nil {
		s.t.Fatalf("%s: %v", s, err)
	}
	if s.tdm != nil && stableStates[state] {
		rest := timeout - time.Since(start)
		if rest < 5*time.Second {
			rest = 5 * time.Second
		}
		s.awaitStatus(state, rest)
	}
	return mv
}

// awaitStatus polls `tandem status -json` until the relationship's local
// state is state.
func (s *pairServer) awaitStatus(state string, timeout time.Duration) control.PeerStatus {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last control.PeerStatus
	var lastErr error
	for {
		st, err := tandemStatus(s.tdm)
		if err == nil {
			for _, p := range st.Failover {
				if p.Name == mixedPeer {
					last = p
				}
			}
			if last.LocalState == state {
				return last
			}
		}
		lastErr = err
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: tandem status shows %q (partner %q, err %v), want %s within %v",
				s, last.LocalState, last.PartnerState, lastErr, state, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tandemStatus(t *lab.Tandem) (control.Status, error) {
	var st control.Status
	out, err := t.Ctl("status", "-json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("status -json: %v: %s", err, out)
	}
	return st, nil
}

// pairLease is what both kinds of server say about one address.
type pairLease struct {
	State    string
	Hardware string
	ClientID string // hex
	Starts   int64
	Ends     int64
}

func (l pairLease) String() string {
	return fmt.Sprintf("%s hw %s id %q starts %s ends %s", l.State, l.Hardware, l.ClientID,
		time.Unix(l.Starts, 0).UTC().Format(time.TimeOnly), time.Unix(l.Ends, 0).UTC().Format(time.TimeOnly))
}

// leases reads the server's lease database: ISC's lease file through
// Tandem's own parser (ISC has no other export), Tandem's through
// `tandem leases -json`. Never-used addresses may be missing from either.
func (s *pairServer) leases() (map[netip.Addr]pairLease, error) {
	out := map[netip.Addr]pairLease{}
	if s.isc != nil {
		c, err := parseLeaseFile(s.isc.LeasePath)
		if err != nil {
			return nil, err
		}
		for i := range c.Leases {
			l := &c.Leases[i]
			pl := pairLease{State: l.State.String(), ClientID: hex.EncodeToString([]byte(l.ClientID)), Starts: l.Starts, Ends: l.Ends}
			if hw := l.HardwareAddr(); hw != nil {
				pl.Hardware = hw.String()
			}
			out[l.Addr()] = pl
		}
		return out, nil
	}
	text, err := s.tdm.Ctl("leases", "-json")
	if err != nil {
		return nil, err
	}
	var ls []control.Lease
	if err := json.Unmarshal([]byte(text), &ls); err != nil {
		return nil, fmt.Errorf("leases -json: %v", err)
	}
	for _, l := range ls {
		a, err := netip.ParseAddr(l.Address)
		if err != nil {
			return nil, err
		}
		pl := pairLease{State: l.State, Hardware: l.Hardware, ClientID: l.ClientID}
		if !l.Starts.IsZero() {
			pl.Starts = l.Starts.Unix()
		}
		if !l.Ends.IsZero() {
			pl.Ends = l.Ends.Unix()
		}
		out[a] = pl
	}
	return out, nil
}

func parseLeaseFile(path string) (*leasefile.Contents, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := leasefile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// poolCounts counts free (primary's) and backup (secondary's) addresses
// of the failover pools: Tandem's from its status, ISC's from its lease
// file. ISC leaves never-used free addresses out of the file it rewrites
// at start, so its free count is the pools' size less every other record.
func (s *pairServer) poolCounts(poolSize int) (free, backup int, err error) {
	if s.isc != nil {
		c, err := parseLeaseFile(s.isc.LeasePath)
		if err != nil {
			return 0, 0, err
		}
		other := 0
		for i := range c.Leases {
			switch c.Leases[i].State {
			case lease.Free:
			case lease.Backup:
				backup++
			default:
				other++
			}
		}
		return poolSize - backup - other, backup, nil
	}
	st, err := tandemStatus(s.tdm)
	if err != nil {
		return 0, 0, err
	}
	for _, p := range st.Pools {
		if p.FailoverPeer == mixedPeer {
			free += p.States["free"]
			backup += p.States["backup"]
		}
	}
	return free, backup, nil
}

// mixedPair is a running pair on srv1 (primary) and srv2 (secondary).
type mixedPair struct {
	lab                *lab.Lab
	conf               pairConf
	files              pairFiles
	primary, secondary *pairServer
}

// startMixedPair builds a lab with clients and starts the pair, ISC as
// the primary when iscPrimary, else as the secondary; the other is Tandem.
func startMixedPair(t *testing.T, c pairConf, iscPrimary bool, clients int) *mixedPair {
	t.Helper()
	p := newMixedPair(t, c, iscPrimary, clients)
	p.primary.start()
	p.secondary.start()
	return p
}

// newMixedPair is startMixedPair without the start.
func newMixedPair(t *testing.T, c pairConf, iscPrimary bool, clients int) *mixedPair {
	t.Helper()
	l := lab.New(t, lab.Options{Servers: 2, Clients: clients})
	p := &mixedPair{lab: l, conf: c, files: writePairConf(l, c)}
	if iscPrimary {
		p.primary = newISCMember(t, l.Servers[0], true, p.files.Primary)
		p.secondary = newTandemMember(t, l.Servers[1], false, p.files.Secondary)
	} else {
		p.primary = newTandemMember(t, l.Servers[0], true, p.files.Primary)
		p.secondary = newISCMember(t, l.Servers[1], false, p.files.Secondary)
	}
	return p
}

func (p *mixedPair) members() []*pairServer { return []*pairServer{p.primary, p.secondary} }

func (p *mixedPair) isc() *pairServer {
	if p.primary.isc != nil {
		return p.primary
	}
	return p.secondary
}

func (p *mixedPair) tandem() *pairServer {
	if p.primary.tdm != nil {
		return p.primary
	}
	return p.secondary
}

func (p *mixedPair) other(s *pairServer) *pairServer {
	if s == p.primary {
		return p.secondary
	}
	return p.primary
}

// awaitNormal waits until both servers say they are in normal.
func (p *mixedPair) awaitNormal(t *testing.T, timeout time.Duration) {
	t.Helper()
	for _, s := range p.members() {
		s.awaitState(0, "normal", timeout)
	}
}

// awaitBalanced waits until pool balancing has given the secondary backup
// addresses and left the primary free ones, and both servers count the
// same: the FREE/BACKUP split of failover-wire.md §9 agreed on the wire.
func (p *mixedPair) awaitBalanced(t *testing.T, timeout time.Duration) (free, backup int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		size := p.conf.LANSize + p.conf.RelaySize
		pf, pb, perr := p.primary.poolCounts(size)
		sf, sb, serr := p.secondary.poolCounts(size)
		if perr == nil && serr == nil && pf > 0 && pb > 0 && pf == sf && pb == sb {
			return pf, pb
		}
		if time.Now().After(deadline) {
			t.Fatalf("pools not balanced within %v: %s free %d backup %d (%v); %s free %d backup %d (%v)",
				timeout, p.primary, pf, pb, perr, p.secondary, sf, sb, serr)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// mixedClient is a dhclient whose client identifier puts it in a known
// hash bucket, so the test knows which server must answer its DISCOVER.
type mixedClient struct {
	*lab.DHClient
	id             string
	primaryServes  bool
	ev             lab.ClientEvent
	acquireErr     error
	expectedServer netip.Addr
}

// pickClientIDs returns n client identifiers, alternating between the
// primary's and the secondary's hash buckets under split mixedSplit
// (RFC 3074 hash as ISC computes it, failover-wire.md §8).
func pickClientIDs(prefix string, n int) []string {
	var ids []string
	want := true
	for i := 0; len(ids) < n && i < 10000; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		primary := int(wire.LoadBalanceBucket([]byte(id))) < mixedSplit
		if primary == want {
			ids = append(ids, id)
			want = !want
		}
	}
	return ids
}

// acquireAll starts one dhclient per client host at once, each with a
// client identifier from pickClientIDs, and waits for every lease.
func (p *mixedPair) acquireAll(t *testing.T, hosts []*lab.Host, prefix string) []*mixedClient {
	t.Helper()
	ids := pickClientIDs(prefix, len(hosts))
	cs := make([]*mixedClient, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		primary := int(wire.LoadBalanceBucket([]byte(ids[i]))) < mixedSplit
		c := &mixedClient{DHClient: lab.NewDHClient(h, lab.DHClientOptions{ClientID: ids[i]}), id: ids[i], primaryServes: primary}
		c.expectedServer = lab.ServerIP(2)
		if primary {
			c.expectedServer = lab.ServerIP(1)
		}
		cs[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.ev, c.acquireErr = c.Acquire(30 * time.Second)
		}()
	}
	wg.Wait()
	for _, c := range cs {
		if c.acquireErr != nil {
			t.Fatalf("client %q: %v", c.id, c.acquireErr)
		}
	}
	return cs
}

// awaitLeaseAgreement waits until both servers hold each client's lease
// active, for the same client, with the same start and end: what the
// granting server sent in its BNDUPD (failover-wire.md §4).
func (p *mixedPair) awaitLeaseAgreement(t *testing.T, cs []*mixedClient, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var problems []string
		views := map[*pairServer]map[netip.Addr]pairLease{}
		for _, s := range p.members() {
			ls, err := s.leases()
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", s, err))
				continue
			}
			views[s] = ls
		}
		if len(problems) == 0 {
			for _, c := range cs {
				// The client's current lease, renewed since its first.
				last := latestGrant(c)
				ip := last.IP
				a, b := views[p.primary][ip], views[p.secondary][ip]
				wantID := hex.EncodeToString([]byte(c.id))
				switch {
				case a.State != "active" || a.ClientID != wantID:
					problems = append(problems, fmt.Sprintf("%s on %s: %s, want active to client id %s", ip, p.primary, a, wantID))
				case b.State != "active" || b.ClientID != wantID:
					problems = append(problems, fmt.Sprintf("%s on %s: %s, want active to client id %s", ip, p.secondary, b, wantID))
				case a.Hardware != b.Hardware || a.Starts != b.Starts || a.Ends != b.Ends:
					problems = append(problems, fmt.Sprintf("%s differs: %s has %s, %s has %s", ip, p.primary, a, p.secondary, b))
				case a.Hardware != c.Host.MAC.String():
					problems = append(problems, fmt.Sprintf("%s: hardware %s, want %s", ip, a.Hardware, c.Host.MAC))
				default:
					// Neither server may think the lease ends before the
					// client does. The client counts from when its hook
					// ran, a moment after the grant.
					if got, want := a.Ends, last.At.Add(last.LeaseTime).Unix(); got < want-5 {
						problems = append(problems, fmt.Sprintf("%s ends %s on both servers, but the client was given %v at %s",
							ip, time.Unix(got, 0).UTC().Format(time.TimeOnly), last.LeaseTime, last.At.UTC().Format(time.TimeOnly)))
					}
				}
			}
		}
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two lease databases disagree after %v:\n  %s", timeout, strings.Join(problems, "\n  "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// latestGrant is the client's most recent lease event: dhclient keeps
// running after Acquire and renews at T1, or, if its lease ran out while
// its server was away, starts over and may get another address.
func latestGrant(c *mixedClient) lab.ClientEvent {
	last := c.ev
	evs, err := c.Events()
	if err != nil {
		return last
	}
	for _, ev := range evs {
		switch ev.Reason {
		case "BOUND", "RENEW", "REBIND", "REBOOT":
			if ev.At.After(last.At) {
				last = ev
			}
		}
	}
	return last
}

// checkServedBySplit asserts each client got its lease from the server
// its hash bucket names: both servers answer, each its own half.
func checkServedBySplit(t *testing.T, cs []*mixedClient) {
	t.Helper()
	served := map[netip.Addr]int{}
	for _, c := range cs {
		served[c.ev.ServerID]++
		if c.ev.ServerID != c.expectedServer {
			t.Errorf("client %q (bucket %d) was served by %s, want %s by split %d",
				c.id, wire.LoadBalanceBucket([]byte(c.id)), c.ev.ServerID, c.expectedServer, mixedSplit)
		}
	}
	if served[lab.ServerIP(1)] == 0 || served[lab.ServerIP(2)] == 0 {
		t.Errorf("leases by server: %v, want both servers to serve", served)
	}
}

// testMixedPair is the body of the two mixed-pair tests: the pair reaches
// normal, balances its pools, serves clients each by its split with both
// databases agreeing, and survives kill -9 of either member.
func testMixedPair(t *testing.T, iscPrimary bool) {
	needsLab(t, "dhcpd", "dhclient")
	tandemBinary(t)
	c := pairConf{MCLT: 30, LeaseTime: 600, LANSize: 64}
	p := startMixedPair(t, c, iscPrimary, 5)
	isc, tdm := p.isc(), p.tandem()

	p.awaitNormal(t, 60*time.Second)
	free, backup := p.awaitBalanced(t, 45*time.Second)
	t.Logf("balanced: free %d backup %d", free, backup)
	// What the operator sees.
	if out, err := tdm.tdm.Ctl("status"); err != nil {
		t.Errorf("tandem status: %v", err)
	} else {
		t.Logf("tandem status on %s:\n%s", tdm.host.Name, out)
	}

	cs := p.acquireAll(t, p.lab.Clients[:4], "mixed")
	checkServedBySplit(t, cs)
	p.awaitLeaseAgreement(t, cs, 20*time.Second)

	// kill -9 of either member: the survivor notices the dropped link and
	// moves to communications-interrupted (failover-wire.md §12.1), and the
	// pair gets back to normal when the dead one restarts on its files.
	for _, victim := range []*pairServer{isc, tdm} {
		survivor := p.other(victim)
		mark := survivor.proc().LogSize()
		victim.kill9()
		survivor.awaitState(mark, "communications-interrupted", 40*time.Second)

		// The survivor still serves a newcomer from its own free pool.
		lone := p.lab.Clients[4]
		if victim == isc {
			nc := lab.NewDHClient(lone, lab.DHClientOptions{ClientID: "mixed-lone"})
			ev, err := nc.Acquire(30 * time.Second)
			if err != nil {
				t.Fatalf("with %s down: %v", victim, err)
			}
			if ev.ServerID != survivor.host.IP {
				t.Errorf("with %s down the newcomer was served by %s", victim, ev.ServerID)
			}
			nc.Stop()
		}

		markSurvivor := survivor.proc().LogSize()
		victim.start()
		victim.awaitState(0, "normal", 60*time.Second)
		survivor.awaitState(markSurvivor, "normal", 60*time.Second)
	}
	// The clients kept their addresses through the crashes, and both
	// servers know their leases alike.
	for _, c := range cs {
		if last := latestGrant(c); last.IP != c.ev.IP {
			t.Errorf("client %q moved from %s to %s (%s)", c.id, c.ev.IP, last.IP, last.Reason)
		}
	}
	p.awaitLeaseAgreement(t, cs, 20*time.Second)
	checkNoProtocolErrors(t, p.members()...)
}

// TestMixedPairISCPrimary: ISC dhcpd 4.4 primary, Tandem secondary.
func TestMixedPairISCPrimary(t *testing.T) { testMixedPair(t, true) }

// TestMixedPairTandemPrimary: Tandem primary, ISC dhcpd 4.4 secondary.
func TestMixedPairTandemPrimary(t *testing.T) { testMixedPair(t, false) }

// protocolTrouble are log lines that mean the two servers did not
// understand each other: ISC's decoder errors ("option size", then a
// disconnect for a protocol error) and the rejects that mean a broken
// binding update. Two rejects are normal and left out: "less critical"
// settles dueling updates during a full update, and "xid mismatch" is the
// ack of an update that was sent again (failover-wire.md §4.2, §4.5).
var protocolTrouble = []string{
	"protocol error", "PROTOCOLERROR", "option size", "invalid state transition",
	"illegal ip address", "unknown ip address", "missing binding", "without chaddr",
	"fatal conflict", "invalid hba", "time mismatch", "malformed", "duplicate option",
}

// expiryRace is the one refused transition that is part of the protocol,
// not a misunderstanding: a server expires a lease while the partner has
// just renewed it and its update is still on the way. The holder of the
// newer binding refuses the expiry (ISC's normal_binding_state_transition_check
// does the same, failover-wire.md §4.2) and sends its binding, which the
// other accepts; awaitActiveAgreement checks that they converge.
const expiryRace = "invalid state transition: active to expired"

// checkNoProtocolErrors fails on any line of any process log of the
// servers (every start so far) that reports a failover protocol problem.
func checkNoProtocolErrors(t *testing.T, ss ...*pairServer) {
	t.Helper()
	for _, s := range ss {
		logs, _ := filepath.Glob(filepath.Join(s.host.Lab().Dir, s.host.Name+"-*.log"))
		for _, path := range logs {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Error(err)
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				lower := strings.ToLower(line)
				if strings.Contains(lower, expiryRace) {
					continue
				}
				for _, bad := range protocolTrouble {
					if strings.Contains(lower, strings.ToLower(bad)) {
						t.Errorf("%s: %s", filepath.Base(path), line)
						break
					}
				}
			}
		}
	}
}

// forcePartnerDown puts s into partner-down the way its operator would:
// omshell against ISC's OMAPI failover-state object (local-state 4 in ISC
// 4.4, dhcpd(8)), `tandem state set partner-down` against Tandem.
func (s *pairServer) forcePartnerDown() {
	s.t.Helper()
	if s.isc != nil {
		got, err := s.isc.SetFailoverState(lab.DefaultOMAPIPort, lab.LabOMAPIKey, mixedPeer, "partner-down")
		if err != nil {
			s.t.Fatalf("%s: %v", s, err)
		}
		if got != lab.ISCFailoverState["partner-down"] {
			s.t.Fatalf("%s: omshell read back local-state %d after setting partner-down", s, got)
		}
		return
	}
	if out, err := s.tdm.Command("state", "set", "partner-down", "-s", s.tdm.ControlSocket); err != nil {
		s.t.Fatalf("%s: tandem state set partner-down: %v: %s", s, err, out)
	}
}

// awaitMoves waits until the process's log, from offset from, shows the
// local moves into each of states in that order, and returns when it saw
// the last one.
func (s *pairServer) awaitMoves(from int64, timeout time.Duration, states ...string) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, st := range states {
		mv, err := s.proc().AwaitFailoverState(from, mixedPeer, st, time.Until(deadline))
		if err != nil {
			s.t.Fatalf("%s: after %v: %v", s, states, err)
		}
		from = mv.End
	}
}

// testMixedPartnerDown: with the partner dead, the operator forces the
// survivor into partner-down (each program its own way); the survivor
// keeps serving, and the partner's return goes the way ISC's own pairs
// go (failover-wire.md §12.2, §12.5): the returning server sees
// partner-down, moves to recover and asks for everything (UPDREQALL),
// waits in recover-wait until MCLT has passed since it entered recover,
// then recover-done; the survivor then goes partner-down → normal.
// emptyDisk makes the partner come back with no lease file, as a rebuilt
// machine would.
func testMixedPartnerDown(t *testing.T, iscSurvives, emptyDisk bool) {
	needsLab(t, "dhcpd", "dhclient", "omshell")
	tandemBinary(t)
	const mclt = 15
	const relaySize = 16
	c := pairConf{MCLT: mclt, LeaseTime: 600, LANSize: 64, RelaySize: relaySize}
	// The survivor is the primary: the usual case of a lost secondary.
	p := newMixedPair(t, c, iscSurvives, 3)
	survivor, victim := p.primary, p.secondary
	if survivor.tdm != nil {
		// ISC's per-request lines ("DHCPDISCOVER from …: no free leases").
		survivor.tdm.Verbose = true
	}
	p.primary.start()
	p.secondary.start()
	p.awaitNormal(t, 60*time.Second)
	p.awaitBalanced(t, 45*time.Second)
	before := p.acquireAll(t, p.lab.Clients[:2], "pd-before")
	p.awaitLeaseAgreement(t, before, 20*time.Second)

	mark := survivor.proc().LogSize()
	victim.kill9()
	survivor.awaitState(mark, "communications-interrupted", 40*time.Second)
	forcedAt := time.Now()
	survivor.forcePartnerDown()
	survivor.awaitState(mark, "partner-down", 10*time.Second)
	if survivor.tdm != nil {
		// Tandem's log says who asked.
		if _, err := survivor.proc().AwaitLog(mark, `operator sets failover state.*partner-down`, time.Second); err != nil {
			t.Error(err)
		}
	} else {
		st, err := survivor.isc.FailoverState(lab.DefaultOMAPIPort, lab.LabOMAPIKey, mixedPeer)
		if err != nil || st != lab.ISCFailoverState["partner-down"] {
			t.Errorf("%s: OMAPI local-state %d (%v), want partner-down", survivor, st, err)
		}
	}

	// Alone in partner-down, the survivor serves a newcomer whatever its
	// hash bucket: this one belongs to the dead secondary's half.
	ids := pickClientIDs("pd-during", 2)
	during := &mixedClient{DHClient: lab.NewDHClient(p.lab.Clients[2], lab.DHClientOptions{ClientID: ids[1]}), id: ids[1]}
	ev, err := during.Acquire(30 * time.Second)
	if err != nil {
		t.Fatalf("in partner-down: %v", err)
	}
	during.ev = ev
	if ev.ServerID != survivor.host.IP {
		t.Errorf("in partner-down the newcomer was served by %s, want %s", ev.ServerID, survivor.host.IP)
	}

	// MCLT after partner-down began, the survivor may use the dead
	// partner's free addresses too (draft §9.4.2, failover-wire.md §11):
	// as many clients as the relayed pool has addresses all get one,
	// although pool balancing gave the survivor only about half of them.
	time.Sleep(time.Until(forcedAt.Add((mclt + 2) * time.Second)))
	perfMark, perfBegan := survivor.proc().LogSize(), time.Now()
	res, err := lab.RunPerfdhcp(p.lab.Relay, lab.PerfdhcpOptions{
		Server: survivor.host.IP, Local: lab.RelayIP, Rate: 50, Clients: relaySize, Exchanges: 200, Seed: 5,
		DropTime: 2 * time.Second, ExitWait: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	// No lease the survivor grants is shorter than MCLT (failover-wire.md
	// §11), so while less than MCLT has passed since the run began, an
	// address it acknowledged to two clients was leased twice, and every
	// one it acknowledged must still be held.
	var acks lab.Acks
	if err := acks.AddLog(survivor.String(), survivor.proc().Log()[perfMark:]); err != nil {
		t.Fatal(err)
	}
	ls, err := survivor.leases()
	if err != nil {
		t.Fatal(err)
	}
	if since := time.Since(perfBegan); since >= mclt*time.Second {
		t.Fatalf("perfdhcp and reading the survivor's log and leases took %v, not less than MCLT (%d s): the lease checks would not hold", since, mclt)
	}
	t.Logf("perfdhcp in partner-down: %s", acks.Summary())
	if err := acks.CheckUnique(); err != nil {
		t.Error(err)
	}
	if err := acks.CheckHeld(survivor.String(), activeLeases(ls), time.Now()); err != nil {
		t.Error(err)
	}
	relayFirst, relayLast := lab.Pools{RelaySize: relaySize}.RelayRange()
	active := 0
	for ip, l := range ls {
		if inRange(ip, relayFirst, relayLast) && l.State == "active" {
			active++
		}
	}
	t.Run("takeover after MCLT", func(t *testing.T) {
		if active == relaySize {
			return
		}
		msg := fmt.Sprintf("%s in partner-down after MCLT: %d of the %d relayed addresses active, want all (perfdhcp: DISCOVER-OFFER %d/%d)",
			survivor, active, relaySize, res.DiscoverOffer.Received, res.DiscoverOffer.Sent)
		t.Error(msg)
	})

	if emptyDisk {
		if err := os.WriteFile(victim.leasePath(), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	survivorMark := survivor.proc().LogSize()
	restarted := time.Now()
	victim.start()
	// recover-wait only if MCLT has not yet passed since the STOS of
	// recover when the full update is done (failover-wire.md §12.4).
	victim.awaitMoves(0, 30*time.Second, "recover")
	victim.awaitMoves(0, time.Duration(mclt+30)*time.Second, "recover-done", "normal")
	recovered := time.Since(restarted)
	survivor.awaitState(survivorMark, "normal", 30*time.Second)
	// Safety, not speed: recover-done may not come before MCLT has passed
	// since the start time of the recover state (failover-wire.md §12.3,
	// §12.4). As in ISC, that STOS is the one the server had before its
	// restart when it comes out of startup (§12.1: stos is not reset into
	// or out of startup), so read both times from its lease file.
	stos, done := recoverTimes(t, victim.leasePath())
	if done.Before(stos.Add(mclt * time.Second)) {
		t.Errorf("%s: recover at %s, recover-done at %s: sooner than MCLT (%ds)", victim,
			stos.Format(time.TimeOnly), done.Format(time.TimeOnly), mclt)
	}
	t.Logf("%s back to normal %v after its restart (recover STOS %s, recover-done %s, MCLT %ds); its moves: %v", victim,
		recovered.Round(time.Second), stos.Format(time.TimeOnly), done.Format(time.TimeOnly), mclt,
		movesTo(lab.FailoverMoves(victim.proc().Log(), mixedPeer)))

	// The returning server learned every lease, the ones granted while it
	// was away included. A client whose first (MCLT-long) lease came from
	// the dead partner may have had to start over meanwhile: its lease
	// ran out before it could rebind to the survivor; the current lease
	// is the one that must agree.
	p.awaitLeaseAgreement(t, append(before, during), 20*time.Second)
	awaitActiveAgreement(t, p, 20*time.Second)
	checkNoProtocolErrors(t, p.members()...)
}

// TestMixedPartnerDownISC: the Tandem secondary dies, the ISC primary is
// forced into partner-down with omshell, Tandem comes back on its files.
func TestMixedPartnerDownISC(t *testing.T) { testMixedPartnerDown(t, true, false) }

// TestMixedPartnerDownTandem: the ISC secondary dies, the Tandem primary is
// forced into partner-down with `tandem state set`, and ISC comes back with
// an empty lease file.
func TestMixedPartnerDownTandem(t *testing.T) { testMixedPartnerDown(t, false, true) }

var (
	recoverRecord     = regexp.MustCompile(`my state recover at \d+ (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d);`)
	recoverDoneRecord = regexp.MustCompile(`my state recover-done at \d+ (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d);`)
)

// recoverTimes reads from a lease file (ISC's or Tandem's: the failover
// state records are the same) the start time of the last recover state
// and of the recover-done state after it.
func recoverTimes(t *testing.T, path string) (stos, done time.Time) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	rs := recoverRecord.FindAllStringSubmatchIndex(text, -1)
	if len(rs) == 0 {
		t.Fatalf("%s has no \"my state recover\" record", path)
	}
	last := rs[len(rs)-1]
	d := recoverDoneRecord.FindStringSubmatch(text[last[1]:])
	if d == nil {
		t.Fatalf("%s has no \"my state recover-done\" record after the last recover", path)
	}
	parse := func(s string) time.Time {
		tm, err := time.Parse("2006/01/02 15:04:05", s)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return tm
	}
	return parse(text[last[2]:last[3]]), parse(d[1])
}

// TestMixedPartitionHeal: the link between a Tandem primary and an ISC
// secondary breaks while clients still reach both. Both serve on their
// own in communications-interrupted; the operator forces the primary into
// partner-down, as many do in a real outage without knowing the partner
// still serves. The heal must go through potential-conflict (draft §9.8,
// failover-wire.md §12.5): each side learns what the other granted, and
// no address ends up with two clients. MCLT is longer than the partition,
// so partner-down never lends the secondary's free addresses meanwhile.
func TestMixedPartitionHeal(t *testing.T) {
	needsLab(t, "dhcpd", "dhclient", "nft")
	tandemBinary(t)
	c := pairConf{MCLT: 120, LeaseTime: 600, LANSize: 64, MaxResponseDelay: 6}
	p := startMixedPair(t, c, false, 4)
	tdm, isc := p.primary, p.secondary
	p.awaitNormal(t, 60*time.Second)
	p.awaitBalanced(t, 45*time.Second)

	tmark, imark := tdm.proc().LogSize(), isc.proc().LogSize()
	p.lab.Partition(tdm.host.IP, isc.host.IP)
	// Silence, not a reset: each side gives up after max-response-delay.
	tdm.awaitState(tmark, "communications-interrupted", 30*time.Second)
	isc.awaitState(imark, "communications-interrupted", 30*time.Second)
	tdm.forcePartnerDown()
	tdm.awaitState(tmark, "partner-down", 10*time.Second)

	// Two clients for each server: dhclient's "reject" makes each take
	// only its server's offers, so both really serve.
	var cs []*mixedClient
	for i, h := range p.lab.Clients {
		want, other := tdm.host.IP, isc.host.IP
		if i%2 == 1 {
			want, other = other, want
		}
		id := fmt.Sprintf("partition-%d", i)
		mc := &mixedClient{DHClient: lab.NewDHClient(h, lab.DHClientOptions{ClientID: id, ExtraConf: fmt.Sprintf("reject %s;\n", other)}),
			id: id, expectedServer: want}
		ev, err := mc.Acquire(30 * time.Second)
		if err != nil {
			t.Fatalf("during the partition: %v", err)
		}
		mc.ev = ev
		if ev.ServerID != want {
			t.Errorf("client %q was served by %s, want %s", id, ev.ServerID, want)
		}
		cs = append(cs, mc)
	}
	seen := map[netip.Addr]string{}
	for _, mc := range cs {
		if prev, ok := seen[mc.ev.IP]; ok {
			t.Errorf("during the partition %s was given to %q and %q", mc.ev.IP, prev, mc.id)
		}
		seen[mc.ev.IP] = mc.id
	}

	tmark, imark = tdm.proc().LogSize(), isc.proc().LogSize()
	p.lab.Heal(tdm.host.IP, isc.host.IP)
	// The primary resolves first (UPDREQ, then conflict-done); the
	// secondary asks in turn and goes to normal; then the primary.
	tdm.awaitMoves(tmark, 90*time.Second, "potential-conflict", "conflict-done", "normal")
	isc.awaitMoves(imark, 30*time.Second, "potential-conflict", "normal")
	tdm.awaitState(tmark, "normal", 10*time.Second)

	p.awaitLeaseAgreement(t, cs, 20*time.Second)
	awaitActiveAgreement(t, p, 20*time.Second)
	checkNoProtocolErrors(t, p.members()...)
}

// TestMixedPairSoak: an ISC primary and a Tandem secondary (the state of a
// pair half-way through a migration) under three minutes of relayed
// perfdhcp load, bounded in rate, time and clients, every request seen by
// both servers (RelayFanOut). The link must hold (no state change, no
// disconnect, nothing either side calls a protocol error) and no address
// may go to two clients: every lease granted during the soak outlives it
// (MCLT and lease time above its length, no releases), so an address that
// either server acknowledged to two MACs was leased twice. Afterwards both
// databases must hold the same active leases, among them every lease
// either server acknowledged, to the MAC it acknowledged it to.
//
// ISC also acknowledges a DHCPREQUEST for an active lease that names its
// partner's server identifier (server/dhcp.c, dhcprequest: it does not
// compare them unless server-id-check is on), so most of Tandem's clients
// get a second DHCPACK from ISC, for the same address, and the two servers
// send each other dueling BNDUPDs for it: a load on the link the soak
// keeps, and no double lease, since the client is the same.
func TestMixedPairSoak(t *testing.T) {
	needsLab(t, "dhcpd", "perfdhcp", "nft")
	tandemBinary(t)
	const (
		seconds = 180
		rate    = 300 // DORA/s
		clients = 2000
	)
	// First grants last MCLT (300 s) until the partner has acknowledged
	// the binding (failover-wire.md §4), later ones up to the lease time:
	// longer than the soak either way.
	c := pairConf{MCLT: 300, LeaseTime: 900, LANSize: 16, RelaySize: 4096}
	p := newMixedPair(t, c, true, 0)
	p.secondary.tdm.Verbose = true // ISC's per-request lines, "DHCPACK on …"
	p.primary.start()
	p.secondary.start()
	p.awaitNormal(t, 60*time.Second)
	p.awaitBalanced(t, 60*time.Second)
	marks := map[*pairServer]int64{}
	for _, s := range p.members() {
		marks[s] = s.proc().LogSize()
	}
	p.lab.RelayFanOut(true)

	began := time.Now()
	res, err := lab.RunPerfdhcp(p.lab.Relay, lab.PerfdhcpOptions{
		Server: lab.ServerIP(1), Local: lab.RelayIP, Rate: rate, Clients: clients,
		Duration: seconds * time.Second, Seed: 11, DropTime: 2 * time.Second, ExitWait: 3 * time.Second,
		Timeout: (seconds + 60) * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var cpu []string
	for _, s := range p.members() {
		d, err := s.proc().CPUTime()
		if err == nil {
			cpu = append(cpu, fmt.Sprintf("%s %.1fs", s, d.Seconds()))
		}
	}
	t.Logf("perfdhcp %ds at %d/s: %.1f exchanges/s, DISCOVER-OFFER %d/%d, REQUEST-ACK %d/%d, missing %d; CPU (whole run): %s",
		seconds, rate, res.Rate, res.DiscoverOffer.Received, res.DiscoverOffer.Sent, res.RequestAck.Received, res.RequestAck.Sent,
		missing(res), strings.Join(cpu, ", "))
	if res.RequestAck.Received == 0 {
		t.Fatalf("no exchange completed:\n%s", res.Output)
	}

	logs := map[*pairServer]string{}
	for _, s := range p.members() {
		log := s.proc().Log()[marks[s]:]
		logs[s] = log
		for _, mv := range lab.FailoverMoves(log, mixedPeer) {
			t.Errorf("%s changed state under load: %+v", s, mv)
		}
		if strings.Contains(log, "disconnected") || strings.Contains(log, "timeout waiting for failover peer") {
			t.Errorf("%s lost the failover link under load:\n%s", s, grepLines(log, "disconnected|timeout waiting"))
		}
	}
	var acks lab.Acks
	for _, s := range p.members() {
		if err := acks.AddLog(s.String(), logs[s]); err != nil {
			t.Error(err)
		}
	}
	t.Logf("during the soak: %s", acks.Summary())
	if acks.Len() == 0 {
		t.Fatal("neither server logged a DHCPACK")
	}
	if err := acks.CheckUnique(); err != nil {
		t.Error(err)
	}
	awaitActiveAgreement(t, p, 60*time.Second)
	if since := time.Since(began); since >= time.Duration(c.MCLT)*time.Second {
		t.Fatalf("the soak and its checks took %v, longer than the shortest lease (MCLT %d s): the lease check below would not hold", since, c.MCLT)
	}
	checkAckedLeasesHeld(t, &acks, p.members()...)
	checkNoProtocolErrors(t, p.members()...)
}

// checkAckedLeasesHeld: every lease acknowledged is still active in the
// databases of ss, for the client it went to.
func checkAckedLeasesHeld(t *testing.T, acks *lab.Acks, ss ...*pairServer) {
	t.Helper()
	for _, s := range ss {
		db, err := s.leases()
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if err := acks.CheckHeld(s.String(), activeLeases(db), time.Now()); err != nil {
			t.Error(err)
		}
	}
}

// activeLeases maps each active lease's address to its hardware address.
func activeLeases(db map[netip.Addr]pairLease) map[netip.Addr]string {
	m := map[netip.Addr]string{}
	for ip, l := range db {
		if l.State == "active" {
			m[ip] = l.Hardware
		}
	}
	return m
}

// grepLines returns the lines of s that match pattern.
func grepLines(s, pattern string) string {
	re := regexp.MustCompile(pattern)
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if re.MatchString(line) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestMixedTandemGracefulShutdown: SIGTERM makes Tandem leave the way ISC
// dhcpd's OMAPI shutdown does (failover-wire.md §12.1): it moves to
// shutdown, the ISC partner answers by moving to partner-down on its own
// (§12.5, "graceful peer shutdown"), and Tandem exits. Started again, it
// comes back to normal with the partner.
func TestMixedTandemGracefulShutdown(t *testing.T) {
	needsLab(t, "dhcpd")
	tandemBinary(t)
	c := pairConf{MCLT: 15, LeaseTime: 600, LANSize: 32}
	p := startMixedPair(t, c, true, 0)
	isc, tdm := p.primary, p.secondary
	p.awaitNormal(t, 60*time.Second)
	p.awaitBalanced(t, 45*time.Second)

	imark, tmark := isc.proc().LogSize(), tdm.proc().LogSize()
	if err := tdm.tdm.Stop(20 * time.Second); err != nil {
		t.Errorf("%s after SIGTERM: %v, want exit status 0", tdm, err)
	}
	if _, err := tdm.proc().AwaitFailoverState(tmark, mixedPeer, "shutdown", time.Second); err != nil {
		t.Errorf("%s did not move to shutdown before exiting: %v", tdm, err)
	}
	if _, err := isc.proc().AwaitLog(imark, `peer moves from normal to shutdown`, 5*time.Second); err != nil {
		t.Error(err)
	}
	isc.awaitState(imark, "partner-down", 10*time.Second)

	imark = isc.proc().LogSize()
	restarted := time.Now()
	tdm.start()
	tdm.awaitState(0, "normal", 60*time.Second)
	isc.awaitState(imark, "normal", 30*time.Second)
	t.Logf("%s back to normal %v after its restart; its moves: %v", tdm, time.Since(restarted).Round(time.Second),
		movesTo(lab.FailoverMoves(tdm.proc().Log(), mixedPeer)))
	checkNoProtocolErrors(t, p.members()...)
}

func movesTo(ms []lab.FailoverMove) []string {
	var out []string
	for _, m := range ms {
		if m.Local {
			out = append(out, m.To)
		}
	}
	return out
}
