package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// Failover pairs: the primary on srv1, the secondary on srv2, serving the
// same pools as the single servers. Tandem and ISC dhcpd read the very
// same files, examples/classic's primary.conf and secondary.conf with a
// shared.conf that declares the benchmark's pools; Kea runs its HA hook in
// load-balancing mode, Kea's counterpart of a failover pair in normal
// state. perfdhcp's requests reach both servers (lab.RelayFanOut), as
// from a relay agent with both servers as helper addresses, and each
// server answers the clients its half of the hash buckets holds.

// pairPeer is the failover relationship's name in examples/classic.
const pairPeer = "dhcp-failover"

// pairConfig is what the three pair kinds share.
type pairConfig struct {
	readyTimeout time.Duration // start to normal with balanced pools
	settle       time.Duration // after the load, for the partners to catch up
	prefix       []string
	keep         bool
}

// pairConfs is examples/classic (each server's own file with its failover
// peer block, both including shared.conf) with the benchmark's pools in
// shared.conf and max-unacked-updates set; everything else (mclt 1800,
// split 128, max-response-delay 30 …) is what the example deploys.
func pairConfs(pools lab.Pools, maxUnacked int) (lab.FailoverConfs, error) {
	c, err := lab.ReadFailoverConfs("examples/classic")
	if err != nil {
		return c, err
	}
	c = c.SetPeerParam("max-unacked-updates", fmt.Sprint(maxUnacked))
	c.Shared = pairSharedConf(pools)
	return c, nil
}

// pairSharedConf is lab.Pools.DhcpdConf with every pool under the failover
// peer, so that the pair splits each pool's free addresses between its
// servers. ISC requires failover pools to deny dynamic BOOTP.
func pairSharedConf(p lab.Pools) string {
	first, last := p.RelayRange()
	secs := int(p.LeaseTime / time.Second)
	if secs <= 0 {
		secs = 600
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Scopes served by both servers of the pair (written by bench).\n")
	fmt.Fprintf(&b, "authoritative;\nddns-update-style none;\nping-check false;\n")
	fmt.Fprintf(&b, "default-lease-time %d;\nmax-lease-time %d;\n", secs, secs)
	pool := func(net, mask string, a, z netip.Addr) {
		fmt.Fprintf(&b, "subnet %s netmask %s {\n  pool {\n    failover peer %q;\n    deny dynamic bootp clients;\n    range %s %s;\n  }\n}\n",
			net, mask, pairPeer, a, z)
	}
	pool("198.18.0.0", "255.255.255.0", lab.LANRangeFirst, lab.LANRangeLast)
	pool("198.19.0.0", "255.255.0.0", first, last)
	return b.String()
}

// settled is how far the partners of a pair agree after the load.
type settled struct {
	// Active counts the active leases each server holds; -1 is unknown.
	Active [2]int
	// Answered says how the load was split: ACKs each server sent
	// (Tandem, ISC) or leases from each server's half of the pools (Kea).
	Answered     [2]int
	AnsweredWhat string
	// BothAnswered counts what both servers answered (BothWhat says
	// what); ISC's secondary may ACK a REQUEST that names the primary.
	BothAnswered int
	BothWhat     string
	// Waited is how long the partners took to agree; Agreed is false if
	// they did not within the bound.
	Waited time.Duration
	Agreed bool
	Err    error
}

// pairServer is a server that is a failover pair.
type pairServer interface {
	server
	// Settle waits, at most the configured bound, until the partners
	// have told each other every lease, and reports what each holds.
	Settle() settled
	// Split describes how the pools were split between the servers when
	// the load began; imbalanced is set when a server holds less than
	// its half by more than max-lease-misbalance (15 % of the pool).
	Split() (desc string, imbalanced bool)
}

// misbalanced says whether a pool whose free addresses are split own and
// peer is off by more than ISC's default max-lease-misbalance, 15 % of
// the pool (dhcpd.conf(5)).
func misbalanced(own, peer int) bool {
	lts := (own - peer) / 2
	if lts < 0 {
		lts = -lts
	}
	return 100*lts > 15*(own+peer)
}

// startBoth starts both members at once; a pair's members look for each
// other from the start.
func startBoth(start func(i int) (*lab.Proc, error)) ([]*lab.Proc, error) {
	procs := make([]*lab.Proc, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], errs[i] = start(i)
		}()
	}
	wg.Wait()
	return procs, errors.Join(errs...)
}

// stopBoth stops the secondary, then the primary. One at a time: a
// Tandem going down gracefully waits for its partner to confirm
// partner-down, which a partner going down at the same moment never
// does; stopped in turn, each exits at once.
func stopBoth(procs []*lab.Proc) {
	for i := len(procs) - 1; i >= 0; i-- {
		if p := procs[i]; p != nil {
			_ = p.Stop(10 * time.Second)
		}
	}
}

func killAll(procs []*lab.Proc) {
	for _, p := range procs {
		if p != nil && !p.Exited() {
			p.Kill9()
		}
	}
}

// poll calls check until it reports done, an error, or timeout passes;
// the last description goes into the timeout error.
func poll(timeout, every time.Duration, what string, check func() (done bool, last string, err error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, last, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v (last: %s)", what, timeout, last)
		}
		time.Sleep(every)
	}
}

// stableFor wraps a check of two counts so that it also ends, with an
// errNotAgreed, once the counts have not moved for d: the partners have
// stopped telling each other anything, and waiting longer shows nothing.
func stableFor(d time.Duration, counts func() ([2]int, error)) func() (bool, string, error) {
	var last [2]int
	var since time.Time
	return func() (bool, string, error) {
		c, err := counts()
		if err != nil {
			return false, "", err
		}
		desc := fmt.Sprintf("primary %d, secondary %d", c[0], c[1])
		if c[0] == c[1] {
			return true, desc, nil
		}
		if since.IsZero() || c != last {
			last, since = c, time.Now()
		} else if time.Since(since) >= d {
			return false, desc, fmt.Errorf("%w: %s for %v", errNotAgreed, desc, d)
		}
		return false, desc, nil
	}
}

var errNotAgreed = errors.New("the servers stopped at different lease counts")

// awaitNormal waits until both members logged their move to normal, in
// ISC's words, which Tandem writes too.
func awaitNormal(procs []*lab.Proc, timeout time.Duration) error {
	for _, p := range procs {
		if _, err := p.AwaitFailoverState(0, pairPeer, "normal", timeout); err != nil {
			return firstLines(err, 3)
		}
	}
	return nil
}

// tandemPair is two Tandems in a failover relationship.
type tandemPair struct {
	cfg         pairConfig
	hosts       [2]*lab.Host
	bin         string
	confs       lab.FailoverConfs
	metricsAddr string
	leaseDir    string

	n      int
	dirs   [2]string
	leases [2]string
	procs  []*lab.Proc
	start  [2]failoverView // when the pools were last seen balanced
}

func (t *tandemPair) Name() string    { return "tandem-pair" }
func (t *tandemPair) Program() string { return "tandem" }

func (t *tandemPair) Start() ([]*lab.Proc, error) {
	started := time.Now()
	t.n++
	procs, err := startBoth(func(i int) (*lab.Proc, error) {
		h := t.hosts[i]
		dir := filepath.Join(h.Lab().Dir, fmt.Sprintf("%s-tandem-pair-%d", h.Name, t.n))
		t.dirs[i] = dir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		conf := []string{t.confs.Primary, t.confs.Secondary}[i]
		confPath := filepath.Join(dir, "dhcpd.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		// Tandem reads an include relative to the including file.
		if err := os.WriteFile(filepath.Join(dir, t.confs.SharedName), []byte(t.confs.Shared), 0o644); err != nil {
			return nil, err
		}
		leasePath, err := leasePathIn(dir, t.leaseDir, h.Lab().Prefix)
		if err != nil {
			return nil, err
		}
		t.leases[i] = leasePath
		p := h.Start("tandem", withPrefix(t.cfg.prefix, t.bin, "serve", "-d",
			"-cf", confPath, "-lf", leasePath, "-pf", filepath.Join(dir, "tandem.pid"),
			"-metrics", t.metricsAddr, h.Iface)...)
		if _, err := p.AwaitLog(0, `server started`, readyTimeout); err != nil {
			return p, err
		}
		return p, nil
	})
	t.procs = procs
	if err != nil {
		killAll(procs)
		return nil, err
	}
	t0 := time.Now()
	if err := awaitNormal(procs, t.cfg.readyTimeout); err != nil {
		killAll(procs)
		return nil, err
	}
	tNormal := time.Now()
	if err := poll(t.cfg.readyTimeout, 250*time.Millisecond, "tandem pair: pools balanced", t.balanced); err != nil {
		killAll(procs)
		return nil, err
	}
	progress("%s: serving %v after the start, normal %v later, balanced %v after that", t.Name(),
		t0.Sub(started).Round(100*time.Millisecond), tNormal.Sub(t0).Round(100*time.Millisecond), time.Since(tNormal).Round(100*time.Millisecond))
	return procs, nil
}

// balanced: both servers count the same free (primary's) and backup
// (secondary's) addresses in every failover pool, the secondary has some,
// and no binding update waits to be sent or acknowledged.
func (t *tandemPair) balanced() (bool, string, error) {
	var snaps [2]failoverView
	for i, h := range t.hosts {
		m, err := scrape(nsHTTP(h, 10*time.Second), t.metricsAddr)
		if err != nil {
			return false, err.Error(), nil
		}
		snaps[i] = viewFailover(m)
	}
	last := fmt.Sprintf("primary %s; secondary %s", snaps[0], snaps[1])
	ok := snaps[0].Backup > 0 && snaps[0].samePools(snaps[1]) && snaps[0].idle() && snaps[1].idle()
	t.start = snaps
	return ok, last, nil
}

func (t *tandemPair) Split() (string, bool) { return describeSplit(t.start[0].Pools) }

// describeSplit describes free/backup counts per pool ("subnet/state").
func describeSplit(pools map[string]int) (string, bool) {
	var subnets []string
	for k := range pools {
		if sn, ok := strings.CutSuffix(k, "/free"); ok {
			subnets = append(subnets, sn)
		}
	}
	slices.Sort(subnets)
	var parts []string
	imbalanced := false
	for _, sn := range subnets {
		f, b := pools[sn+"/free"], pools[sn+"/backup"]
		note := ""
		if misbalanced(f, b) {
			note = " IMBALANCED"
			imbalanced = true
		}
		parts = append(parts, fmt.Sprintf("%s free %d / backup %d%s", sn, f, b, note))
	}
	return strings.Join(parts, ", "), imbalanced
}

func (t *tandemPair) Stop() {
	stopBoth(t.procs)
	t.procs = nil
	if !t.cfg.keep {
		for _, lp := range t.leases {
			if lp != "" {
				removeLeaseFiles(filepath.Dir(lp))
				if t.leaseDir != "" {
					_ = os.Remove(filepath.Dir(lp))
				}
			}
		}
	}
}

// Settle waits until neither server has a binding update queued or
// unacknowledged, then reads how many active leases each holds.
func (t *tandemPair) Settle() settled {
	start := time.Now()
	s := settled{Active: [2]int{-1, -1}, AnsweredWhat: "ACKs sent (tandem_dhcp_replies_total)"}
	var views [2]failoverView
	err := poll(t.cfg.settle, 200*time.Millisecond, "tandem pair: updates acknowledged", func() (bool, string, error) {
		for i, h := range t.hosts {
			m, err := scrape(nsHTTP(h, 10*time.Second), t.metricsAddr)
			if err != nil {
				return false, err.Error(), nil
			}
			views[i] = viewFailover(m)
		}
		return views[0].idle() && views[1].idle(), fmt.Sprintf("primary %s; secondary %s", views[0], views[1]), nil
	})
	s.Waited = time.Since(start)
	if err != nil {
		s.Err = err
	}
	// Pool counts are republished once a second by the server loop.
	time.Sleep(1500 * time.Millisecond)
	for i, h := range t.hosts {
		m, err := scrape(nsHTTP(h, 10*time.Second), t.metricsAddr)
		if err != nil {
			s.Err = errors.Join(s.Err, err)
			continue
		}
		s.Active[i] = int(m.sum("tandem_pool_leases", map[string]string{"state": "active"}))
		s.Answered[i] = int(m.sum("tandem_dhcp_replies_total", map[string]string{"type": "ACK"}))
	}
	s.Agreed = err == nil && s.Active[0] == s.Active[1] && s.Active[0] >= 0
	return s
}

// failoverView is what the balancing and settling checks read from a
// Tandem's failover metrics.
type failoverView struct {
	Free, Backup    int            // over every failover pool
	Pools           map[string]int // "pool/state" -> count
	Queued, Unacked int
}

func viewFailover(m metricSet) failoverView {
	v := failoverView{Pools: map[string]int{}}
	for _, s := range m {
		switch s.name {
		case "tandem_failover_pool_leases":
			v.Pools[s.labels["subnet"]+"/"+s.labels["state"]] = int(s.value)
			switch s.labels["state"] {
			case "free":
				v.Free += int(s.value)
			case "backup":
				v.Backup += int(s.value)
			}
		case "tandem_failover_updates_queued":
			v.Queued += int(s.value)
		case "tandem_failover_updates_unacked":
			v.Unacked += int(s.value)
		}
	}
	return v
}

func (v failoverView) idle() bool { return v.Queued == 0 && v.Unacked == 0 }

func (v failoverView) samePools(o failoverView) bool {
	if len(v.Pools) == 0 || len(v.Pools) != len(o.Pools) {
		return false
	}
	for k, n := range v.Pools {
		if o.Pools[k] != n {
			return false
		}
	}
	return true
}

func (v failoverView) String() string {
	return fmt.Sprintf("free %d backup %d, updates queued %d unacked %d", v.Free, v.Backup, v.Queued, v.Unacked)
}

// iscPair is two ISC dhcpd 4.4 servers in a failover relationship.
type iscPair struct {
	cfg   pairConfig
	hosts [2]*lab.Host
	confs lab.FailoverConfs

	ds    [2]*lab.ISCDhcpd
	procs []*lab.Proc
	start map[string]int // the primary's lease file states when balanced
}

func (s *iscPair) Name() string    { return "isc-pair" }
func (s *iscPair) Program() string { return "isc" }

func (s *iscPair) Start() ([]*lab.Proc, error) {
	started := time.Now()
	for i, h := range s.hosts {
		// A new driver per start: a new directory with an empty lease file.
		s.ds[i] = lab.NewISCDhcpdFailover(h, []string{s.confs.Primary, s.confs.Secondary}[i], s.confs.SharedName, s.confs.Shared)
	}
	procs, err := startBoth(func(i int) (*lab.Proc, error) {
		d := s.ds[i]
		p := d.Host.Start("dhcpd", withPrefix(s.cfg.prefix, d.Argv()...)...)
		if _, err := p.AwaitLog(0, `^Server starting service\.`, readyTimeout); err != nil {
			return p, err
		}
		return p, nil
	})
	s.procs = procs
	if err != nil {
		killAll(procs)
		return nil, err
	}
	t0 := time.Now()
	if err := awaitNormal(procs, s.cfg.readyTimeout); err != nil {
		killAll(procs)
		return nil, err
	}
	tNormal := time.Now()
	if err := poll(s.cfg.readyTimeout, time.Second, "isc pair: pools balanced", s.balanced); err != nil {
		killAll(procs)
		return nil, err
	}
	progress("%s: serving %v after the start, normal %v later, balanced %v after that", s.Name(),
		t0.Sub(started).Round(100*time.Millisecond), tNormal.Sub(t0).Round(100*time.Millisecond), time.Since(tNormal).Round(100*time.Millisecond))
	return procs, nil
}

// balanced: the primary has logged the result of balancing ("balanced
// pool", or "IMBALANCED" when it could not give enough away), and the two
// lease files show the same numbers of free and backup addresses, some
// of them backup. The primary moves all its leases at once and writes
// them to its file together, so equal counts mean the secondary has
// stored every BNDUPD.
func (s *iscPair) balanced() (bool, string, error) {
	if !iscBalanceLine.MatchString(s.procs[0].Log()) {
		return false, "primary has not balanced yet", nil
	}
	var counts [2]map[string]int
	for i, d := range s.ds {
		text, err := d.Leases()
		if err != nil {
			return false, "", err
		}
		counts[i] = leaseFileStates(text)
	}
	last := fmt.Sprintf("primary %v; secondary %v", counts[0], counts[1])
	ok := counts[0]["backup"] > 0 && counts[0]["backup"] == counts[1]["backup"] && counts[0]["free"] == counts[1]["free"]
	s.start = counts[0]
	return ok, last, nil
}

// Split counts both of ISC's pools together: its lease file does not say
// which pool a lease is in, and the small LAN pool hardly moves the sum.
func (s *iscPair) Split() (string, bool) {
	f, b := s.start["free"], s.start["backup"]
	note := ""
	if misbalanced(f, b) {
		note = " IMBALANCED"
	}
	return fmt.Sprintf("all pools free %d / backup %d%s", f, b, note), note != ""
}

var iscBalanceLine = regexp.MustCompile(`(?m)^(balanced pool|IMBALANCED)`)

func (s *iscPair) Stop() {
	stopBoth(s.procs)
	s.procs = nil
	if !s.cfg.keep {
		for _, d := range s.ds {
			if d != nil {
				removeLeaseFiles(d.Dir)
			}
		}
	}
}

// Settle waits until both lease files hold the same number of active
// leases: ISC sends its binding updates after the DHCPACK, lazily.
func (s *iscPair) Settle() settled {
	start := time.Now()
	out := settled{Active: [2]int{-1, -1}, AnsweredWhat: `ACKs sent ("DHCPACK on" lines in its log)`}
	err := poll(s.cfg.settle, time.Second, "isc pair: active leases agree", stableFor(5*time.Second, func() ([2]int, error) {
		for i, d := range s.ds {
			text, err := d.Leases()
			if err != nil {
				return out.Active, err
			}
			out.Active[i] = leaseFileStates(text)["active"]
		}
		return out.Active, nil
	}))
	out.Waited = time.Since(start)
	out.Err = err
	out.Agreed = err == nil
	var acked [2]map[string]bool
	for i, p := range s.procs {
		acked[i] = iscACKs(p.Log())
		out.Answered[i] = strings.Count(p.Log(), "DHCPACK on ")
	}
	for a := range acked[0] {
		if acked[1][a] {
			out.BothAnswered++
		}
	}
	out.BothWhat = "addresses both servers ACKed"
	return out
}

// iscACKs is the set of addresses an ISC dhcpd log has "DHCPACK on"
// lines for.
func iscACKs(log string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(log, "\n") {
		if rest, ok := strings.CutPrefix(line, "DHCPACK on "); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				out[f[0]] = true
			}
		}
	}
	return out
}

// leaseFileStates counts the binding states in an ISC-format lease file
// (dhcpd.leases(5)): for every address the state of its last complete
// record, since the file is a journal in which later records supersede
// earlier ones. A record still being written at the end is ignored.
func leaseFileStates(text string) map[string]int {
	last := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	addr, state := "", ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "lease ") && strings.HasSuffix(line, "{"):
			addr = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "lease "), "{"))
			state = ""
		case addr != "" && strings.HasPrefix(line, "binding state "):
			state = strings.TrimSuffix(strings.TrimPrefix(line, "binding state "), ";")
		case addr != "" && line == "}":
			if state != "" {
				last[addr] = state
			}
			addr = ""
		}
	}
	counts := map[string]int{}
	for _, st := range last {
		counts[st]++
	}
	return counts
}

// keaHA is two kea-dhcp4 with the HA hook in load-balancing mode.
type keaHA struct {
	cfg   pairConfig
	hosts [2]*lab.Host
	name  string
	dhcp4 map[string]any
	ha    lab.KeaHAOptions

	ks    [2]*lab.Kea
	procs []*lab.Proc
	// halves are the split pools: server1's half from first, server2's
	// from split up to last.
	halves []keaHalf
}

type keaHalf struct{ first, split, last netip.Addr }

func (s *keaHA) Name() string    { return s.name }
func (s *keaHA) Program() string { return "kea" }

func (s *keaHA) Start() ([]*lab.Proc, error) {
	peers := [2]netip.Addr{s.hosts[0].IP, s.hosts[1].IP}
	for i, h := range s.hosts {
		cfg, err := lab.KeaHADhcp4(s.dhcp4, peers, i, s.ha)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if s.halves, err = keaHalves(cfg); err != nil {
				return nil, err
			}
		}
		s.ks[i] = lab.NewKea(h, cfg)
		s.ks[i].Prefix = s.cfg.prefix
		s.ks[i].ReadyTimeout = readyTimeout
	}
	procs, err := startBoth(func(i int) (*lab.Proc, error) { return s.ks[i].TryStart() })
	s.procs = procs
	if err != nil {
		killAll(procs)
		return nil, err
	}
	for _, p := range procs {
		if _, err := p.AwaitLog(0, lab.KeaHAStatePattern("load-balancing"), s.cfg.readyTimeout); err != nil {
			killAll(procs)
			return nil, firstLines(err, 3)
		}
	}
	return procs, nil
}

// Split: Kea's load balancing splits the pools by configuration.
func (s *keaHA) Split() (string, bool) {
	var parts []string
	for _, h := range s.halves {
		parts = append(parts, fmt.Sprintf("%s-%s | %s-%s", h.first, h.split.Prev(), h.split, h.last))
	}
	return "pools split by class HA_server1 | HA_server2: " + strings.Join(parts, ", "), false
}

func (s *keaHA) Stop() {
	stopBoth(s.procs)
	s.procs = nil
	if !s.cfg.keep {
		for _, k := range s.ks {
			if k != nil {
				removeLeaseFiles(k.Dir)
			}
		}
	}
}

// Settle reads both lease files until they hold the same active leases
// or stop changing. Kea's HA sends each lease to the partner and waits for
// the answer before it sends the DHCPACK, so only requests still queued
// when perfdhcp stopped can be on their way; a lease that one server
// committed but failed to update on the other stays on one side. A
// lease's half of the pool says which server allocated it.
func (s *keaHA) Settle() settled {
	start := time.Now()
	out := settled{Active: [2]int{-1, -1}, AnsweredWhat: "leases allocated from its half of the pools"}
	var files [2]map[netip.Addr]bool
	err := poll(s.cfg.settle, 500*time.Millisecond, "kea ha: active leases agree", stableFor(3*time.Second, func() ([2]int, error) {
		for i, k := range s.ks {
			text, err := k.Leases()
			if err != nil {
				return out.Active, err
			}
			if files[i], err = keaActiveLeases(text); err != nil {
				return out.Active, fmt.Errorf("%s: %w", k.LeasePath, err)
			}
			out.Active[i] = len(files[i])
		}
		return out.Active, nil
	}))
	out.Waited = time.Since(start)
	out.Err = err
	out.Agreed = err == nil
	for a := range files[0] {
		for _, h := range s.halves {
			if a.Compare(h.first) >= 0 && a.Compare(h.last) <= 0 {
				if a.Less(h.split) {
					out.Answered[0]++
				} else {
					out.Answered[1]++
				}
			}
		}
	}
	return out
}

// keaHalves finds each split pool's halves in a KeaHADhcp4 configuration.
func keaHalves(cfg map[string]any) ([]keaHalf, error) {
	var out []keaHalf
	subnets, _ := cfg["subnet4"].([]any)
	for _, s := range subnets {
		pools, _ := s.(map[string]any)["pools"].([]any)
		var cur keaHalf
		for _, p := range pools {
			pm := p.(map[string]any)
			a, z, err := parseKeaRange(fmt.Sprint(pm["pool"]))
			if err != nil {
				return nil, err
			}
			switch pm["client-class"] {
			case "HA_" + lab.KeaHAServer1:
				cur = keaHalf{first: a}
			case "HA_" + lab.KeaHAServer2:
				cur.split, cur.last = a, z
				out = append(out, cur)
			}
		}
	}
	return out, nil
}

func parseKeaRange(spec string) (netip.Addr, netip.Addr, error) {
	a, z, ok := strings.Cut(spec, "-")
	if !ok {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("pool %q", spec)
	}
	first, err1 := netip.ParseAddr(strings.TrimSpace(a))
	last, err2 := netip.ParseAddr(strings.TrimSpace(z))
	return first, last, errors.Join(err1, err2)
}

// keaActiveLeases reads Kea's memfile CSV (address, hwaddr, …, state …),
// an append-only journal: the last row of an address wins, and a row with
// valid lifetime 0 or a state other than 0 (default) is no lease held.
func keaActiveLeases(text string) (map[netip.Addr]bool, error) {
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	ai, ok1 := col["address"]
	vi, ok2 := col["valid_lifetime"]
	si, ok3 := col["state"]
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("unexpected header %q", header)
	}
	held := map[netip.Addr]bool{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// A line still being written at the end.
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				continue
			}
			return nil, err
		}
		if len(rec) <= max(ai, vi, si) {
			continue
		}
		a, err := netip.ParseAddr(rec[ai])
		if err != nil {
			continue
		}
		held[a] = rec[vi] != "0" && rec[si] == "0"
	}
	for a, ok := range held {
		if !ok {
			delete(held, a)
		}
	}
	return held, nil
}

// scrape reads a Tandem's /metrics.
func scrape(c *http.Client, addr string) (metricSet, error) {
	b, err := httpGet(c, "http://"+addr+"/metrics")
	if err != nil {
		return nil, err
	}
	return parseMetrics(string(b))
}

// leasePathIn is the lease file of a server whose files are in dir, or in
// a directory of its own under leaseDir when that is set.
func leasePathIn(dir, leaseDir, prefix string) (string, error) {
	if leaseDir == "" {
		return filepath.Join(dir, "dhcpd.leases"), nil
	}
	d := filepath.Join(leaseDir, prefix+"-"+filepath.Base(dir))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	return filepath.Join(d, "dhcpd.leases"), nil
}

// firstLines keeps an error's first n lines: the lab appends the log's
// last lines, which the step's error cell cannot hold.
func firstLines(err error, n int) error {
	lines := strings.SplitN(err.Error(), "\n", n+1)
	if len(lines) <= n {
		return err
	}
	return errors.New(strings.Join(lines[:n], "\n"))
}
