// Command demo shows Tandem at work in throw-away network namespaces: by
// default a failover pair of Tandems reading examples/classic (a primary
// and a secondary file including one shared file), a few hosts running
// ISC dhclient on the LAN, and a burst of perfdhcp clients behind a relay
// agent that sends every request to both servers. It waits for the pair
// to reach normal, then prints who got which address from which server —
// as each client saw it and as both lease files record it — each server's
// failover state and pool split, its counters and its failover log lines.
// With -failover it then takes the primary away and shows the secondary
// serving alone. It removes everything it created, also when interrupted
// with Ctrl-C. -mode single runs one server on examples/single.conf.
//
//	sudo go run ./e2e/cmd/demo [-mode pair|single] [-failover kill|stop] [-clients 4] [-perf 200] [-keep] [-dir DIR]
//
// scripts/demo.sh installs the programs it needs, builds tandem and runs
// it. It needs root (network namespaces), ISC dhclient and Kea's perfdhcp.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/lease"
)

type options struct {
	mode     string
	failover string
	clients  int
	perf     int
	keep     bool
	dir      string
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "pair", "how Tandem is deployed: pair (a failover pair, examples/classic) or single (one server, examples/single.conf)")
	flag.StringVar(&o.failover, "failover", "", "pair only: after the report take the primary away and show the secondary serving alone: kill (kill -9, then restart it) or stop (SIGTERM)")
	flag.IntVar(&o.clients, "clients", 4, "client hosts, each running ISC dhclient (1-50); the last one has a host reservation")
	flag.IntVar(&o.perf, "perf", 200, "perfdhcp clients in the burst through the relay agent (0 skips it)")
	flag.BoolVar(&o.keep, "keep", false, "keep the lab running after the report, until Ctrl-C")
	flag.StringVar(&o.dir, "dir", "", "directory for configs, lease files and logs, kept afterwards (default: a new one in $TMPDIR)")
	flag.Parse()
	if o.clients < 1 || o.clients > 50 || o.perf < 0 || o.perf > 10000 {
		fmt.Fprintln(os.Stderr, "demo: -clients must be 1-50 and -perf 0-10000")
		os.Exit(2)
	}
	m, ok := lookupMode(o.mode)
	if !ok {
		fmt.Fprintf(os.Stderr, "demo: unknown -mode %q\n", o.mode)
		os.Exit(2)
	}
	switch {
	case o.failover != "" && o.failover != "kill" && o.failover != "stop":
		fmt.Fprintf(os.Stderr, "demo: -failover must be kill or stop, not %q\n", o.failover)
		os.Exit(2)
	case o.failover != "" && m.Servers < 2:
		fmt.Fprintf(os.Stderr, "demo: -failover needs -mode pair\n")
		os.Exit(2)
	}
	os.Exit(run(o))
}

func run(o options) int {
	p := newPrinter(os.Stdout)
	if err := preflight(o); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 1
	}
	s, err := lab.NewSession("demo", o.dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 1
	}
	// Registered first, so it runs last: the binary outlives every server.
	s.Cleanup(lab.RemoveTandemBuild)
	tb := &demoTB{Session: s, cleanup: sync.OnceFunc(s.Close)}

	// Ctrl-C during the run tears everything down and exits; with -keep,
	// Ctrl-C at the end is the normal way out.
	var waiting atomic.Bool
	release := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		if waiting.Load() {
			close(release)
			return
		}
		tb.interrupted.Store(true)
		p.mute()
		p.say("\n%s\n", p.paint(yellow, "interrupted: stopping every process and deleting the namespaces…"))
		tb.cleanup()
		p.say("%s files kept in %s\n", p.paint(green, "✓ cleaned up;"), s.Dir())
		os.Exit(130)
	}()

	d := demo{o: o, p: p, tb: tb}
	d.run()

	if o.keep {
		d.printKeep()
		waiting.Store(true)
		<-release
		p.printf("\n")
	}
	t0 := p.step("cleaning up: stopping every process, deleting the namespaces")
	tb.cleanup()
	p.done(t0, "")
	p.printf("  %s %s\n\n", p.paint(dim, "configs, lease files and logs kept in"), s.Dir())
	return 0
}

// demoTB is the lab's owner. Teardown runs once, and everyone who asks
// for it waits until it has finished: the signal handler, the end of the
// run, and a lab step that fails (often because an interrupt is tearing
// the lab down under it) — so the program never exits half-way through
// deleting namespaces.
type demoTB struct {
	*lab.Session
	cleanup     func()
	interrupted atomic.Bool
}

// Fatalf reports the failure, tears everything down and exits; while an
// interrupt is being handled it waits for the handler to finish instead.
func (t *demoTB) Fatalf(format string, args ...any) {
	if t.interrupted.Load() {
		t.cleanup()
		select {} // the signal handler exits
	}
	fmt.Fprintf(os.Stderr, "\ndemo: %s\n", fmt.Sprintf(format, args...))
	t.cleanup()
	fmt.Fprintf(os.Stderr, "demo: cleaned up; configs, lease files and logs are in %s\n", t.Dir())
	os.Exit(1)
}

// mode is a way to deploy Tandem in the lab.
type mode struct {
	Title   string // for the heading: "one server"
	Servers int    // server hosts the lab needs
	Build   func(l *lab.Lab, reservedMAC net.HardwareAddr) (*deployment, error)
}

// lookupMode knows the deployments the demo can show.
func lookupMode(name string) (mode, bool) {
	switch name {
	case "pair":
		return mode{Title: "a failover pair", Servers: 2, Build: pair}, true
	case "single":
		return mode{Title: "one server", Servers: 1, Build: single}, true
	}
	return mode{}, false
}

// preflight explains what is missing before anything is built.
func preflight(o options) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root to create network namespaces (sudo scripts/demo.sh)")
	}
	progs := []string{"ip", "dhclient"}
	if o.perf > 0 {
		progs = append(progs, "perfdhcp")
	}
	if os.Getenv(lab.TandemBinaryEnv) == "" {
		progs = append(progs, "go")
	}
	for _, prog := range progs {
		if _, err := exec.LookPath(prog); err != nil {
			return fmt.Errorf("%s not found (scripts/setup.sh installs the DHCP programs)", prog)
		}
	}
	return nil
}

// demo is one run: the lab, the deployment and what the clients got.
type demo struct {
	o   options
	p   *printer
	tb  *demoTB
	lab *lab.Lab
	dep *deployment

	clients []clientResult
	perf    *lab.PerfdhcpResult
	perfErr error
	started time.Time
}

type clientResult struct {
	host *lab.Host
	name string // host-name the client sent
	ev   lab.ClientEvent
	took time.Duration
	err  error
}

func (d *demo) run() {
	p, o := d.p, d.o
	m, _ := lookupMode(o.mode)
	title := fmt.Sprintf("Tandem demo: %s, real clients, a relay agent", m.Title)
	p.title(title, fmt.Sprintf("Everything runs in throw-away network namespaces on 198.18.0.0/15; files go to %s", d.tb.Dir()))

	t0 := p.step("building the lab: a bridge, %d server host%s, a relay host, %d client host%s",
		m.Servers, plural(m.Servers), o.clients, plural(o.clients))
	d.lab = lab.New(d.tb, lab.Options{Servers: m.Servers, Clients: o.clients})
	p.done(t0, "")
	var srvs []string
	for _, h := range d.lab.Servers {
		srvs = append(srvs, fmt.Sprintf("%s %s", h.Name, h.IP))
	}
	p.note("%s · relay %s and %s (relay agent for %s) · cli1…cli%d (no address yet)",
		strings.Join(srvs, " · "), lab.RelayHostIP, lab.RelayIP, lab.RelayPrefix, o.clients)

	var reservedMAC net.HardwareAddr
	if o.clients >= 2 {
		reservedMAC = d.lab.Clients[o.clients-1].MAC
	}
	t0 = p.step("writing Tandem's configuration")
	dep, err := m.Build(d.lab, reservedMAC)
	if err != nil {
		p.fail("%v", err)
		d.tb.Fatalf("demo: %v", err)
	}
	d.dep = dep
	p.done(t0, "")
	for _, n := range dep.ConfNotes {
		p.note("%s", n)
	}

	for _, srv := range dep.Servers {
		t0 = p.step("starting tandem serve on %s (%s)", srv.Host.Name, srv.Host.IP)
		if _, err := srv.TryStart(); err != nil {
			p.fail("%v", err)
			d.tb.Fatalf("demo: %v", err)
		}
		p.done(t0, "serving, pid %d", srv.Proc().PID)
	}
	if dep.FailoverPeer != "" {
		d.awaitNormal()
	}

	d.started = time.Now()
	t0 = p.step("%d dhclient%s asking for addresses at once", o.clients, plural(o.clients))
	d.acquire()
	bound := 0
	for _, r := range d.clients {
		if r.err == nil {
			bound++
		}
	}
	if bound == len(d.clients) {
		p.done(t0, "all %d bound", bound)
	} else {
		p.fail("%d of %d bound", bound, len(d.clients))
	}

	if o.perf > 0 {
		rate := min(max(o.perf, 50), 500)
		if dep.RelayFanOut {
			d.lab.RelayFanOut(true)
		}
		t0 = p.step("perfdhcp burst through the relay agent: %d clients, %d new exchanges/s", o.perf, rate)
		d.perf, d.perfErr = lab.RunPerfdhcp(d.lab.Relay, lab.PerfdhcpOptions{
			Server:    dep.Servers[0].Host.IP,
			Rate:      rate,
			Clients:   o.perf,
			Exchanges: o.perf,
			Seed:      1,
			ExitWait:  time.Second,
		})
		switch {
		case d.perfErr != nil:
			p.fail("%v", d.perfErr)
		case d.perf.RequestAck.Received == 0:
			p.fail("no exchange completed")
		default:
			p.done(t0, "%d of %d exchanges complete", d.perf.RequestAck.Received, d.perf.DiscoverOffer.Sent)
		}
	}

	d.report()
	if o.failover != "" {
		d.failoverDemo(o.failover)
	}
}

// acquire starts every client at once and waits for all of them.
func (d *demo) acquire() {
	d.clients = make([]clientResult, len(d.lab.Clients))
	var wg sync.WaitGroup
	for i, h := range d.lab.Clients {
		name := "demo-" + h.Name
		c := lab.NewDHClient(h, lab.DHClientOptions{Hostname: name})
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, err := c.Acquire(30 * time.Second)
			d.clients[i] = clientResult{host: h, name: name, ev: ev, took: ev.At.Sub(d.started), err: err}
		}()
	}
	wg.Wait()
}

func (d *demo) report() {
	p := d.p
	leases, err := d.dep.leases()
	if err != nil {
		p.fail("reading the lease file: %v", err)
		leases = map[netip.Addr]lease.Lease{}
	}

	pair := d.dep.FailoverPeer != ""
	if pair {
		d.reportPairClients()
	} else {
		d.reportSingleClients(leases)
	}

	if d.o.perf > 0 {
		d.reportRelayed(leases)
	}
	if pair {
		d.reportFailover()
		d.reportCounters()
		d.reportFailoverLogs(nil)
		return
	}
	d.reportPools(leases)
	d.reportCounters()
	d.reportLogs()
}

// reportPairClients shows, for a failover pair, which server answered
// each client, which one the hash names, and whether both lease files
// hold the binding.
func (d *demo) reportPairClients() {
	p := d.p
	p.section("LAN clients: what each dhclient was given, by which server, and what both lease files say")
	files := d.leaseFiles()
	var rows [][]cell
	for _, r := range d.clients {
		want := d.dep.designated(r.host.MAC).Host.Name
		if _, reserved := d.dep.Reserved[r.host.MAC.String()]; reserved {
			want = "— (host)" // host declarations are outside the failover pools: either server answers
		}
		if r.err != nil {
			rows = append(rows, []cell{c(r.host.Name), c(r.host.MAC.String()), cs(red, "no lease"), c(""), c(""), c(want), c(""), cs(red, firstLine(r.err.Error()))})
			continue
		}
		from := d.dep.serverName(r.ev.ServerID)
		fromCell := cs(bold, from)
		if _, reserved := d.dep.Reserved[r.host.MAC.String()]; !reserved && from != want {
			fromCell = cs(yellow, from)
		}
		rows = append(rows, []cell{
			c(r.host.Name), c(r.host.MAC.String()), cs(bold, r.ev.IP.String()), c(r.ev.LeaseTime.String()),
			fromCell, c(want), cf("%s", roundDur(r.took)), d.fileCell(files, r),
		})
	}
	p.table([]string{"HOST", "MAC", "ADDRESS", "LEASE", "FROM", "HASH SAYS", "BOUND AFTER", "LEASE FILES"}, rows)
	p.note("In normal state each DISCOVER is answered by the server the RFC 3074 hash of the client's MAC names (split 128: half the buckets each).")
	p.note("The first lease a new client gets is capped at the MCLT; renewals after the partner acknowledged get the full time (lazy update).")
}

func (d *demo) reportSingleClients(leases map[netip.Addr]lease.Lease) {
	p := d.p
	p.section("LAN clients: what each dhclient was given, and what the lease file says")
	var rows [][]cell
	for _, r := range d.clients {
		if r.err != nil {
			rows = append(rows, []cell{c(r.host.Name), c(r.host.MAC.String()), c(r.name), cs(red, "no lease"), c(""), c(""), c(""), cs(red, firstLine(r.err.Error()))})
			continue
		}
		file := cs(red, "no record!")
		if res, ok := d.dep.Reserved[r.host.MAC.String()]; ok && r.ev.IP == res.Addr {
			file = cs(cyan, "host "+res.Name+" (fixed-address)")
		}
		if l, ok := leases[r.ev.IP]; ok {
			switch {
			case l.State == lease.Active && bytes.Equal(l.HardwareAddr(), r.host.MAC):
				file = cs(green, "active until "+time.Unix(l.Ends, 0).Format(time.TimeOnly))
			default:
				file = cs(red, fmt.Sprintf("%s for %v!", l.State, l.HardwareAddr()))
			}
		}
		rows = append(rows, []cell{
			c(r.host.Name), c(r.host.MAC.String()), c(r.name), cs(bold, r.ev.IP.String()),
			c(r.ev.LeaseTime.String()), c(d.dep.serverName(r.ev.ServerID)), cf("%s", roundDur(r.took)), file,
		})
	}
	p.table([]string{"HOST", "MAC", "HOST-NAME", "ADDRESS", "LEASE", "FROM", "BOUND AFTER", "LEASE FILE"}, rows)
}

func (d *demo) reportRelayed(leases map[netip.Addr]lease.Lease) {
	p := d.p
	p.section(fmt.Sprintf("Relayed clients: perfdhcp as a relay agent (giaddr %s)", lab.RelayIP))
	if d.perfErr != nil {
		p.printf("  %s\n", p.paint(red, d.perfErr.Error()))
		return
	}
	r := d.perf
	do, ra := r.DiscoverOffer, r.RequestAck
	okStyle := func(bad bool) style {
		if bad {
			return red
		}
		return green
	}
	p.printf("  DISCOVER → OFFER   %s   avg %v, max %v\n",
		p.paint(okStyle(do.Received < do.Sent), fmt.Sprintf("%d/%d", do.Received, do.Sent)), do.AvgDelay, do.MaxDelay)
	p.printf("  REQUEST  → ACK     %s   avg %v, max %v\n",
		p.paint(okStyle(ra.Received < ra.Sent), fmt.Sprintf("%d/%d", ra.Received, ra.Sent)), ra.AvgDelay, ra.MaxDelay)

	var relayed []lease.Lease
	for a, l := range leases {
		if lab.RelayPrefix.Contains(a) && l.State == lease.Active {
			relayed = append(relayed, l)
		}
	}
	sort.Slice(relayed, func(i, j int) bool { return relayed[i].IP < relayed[j].IP })
	if len(relayed) == 0 {
		p.printf("  %s\n", p.paint(red, "no active lease behind the relay in the lease file"))
		return
	}
	p.printf("  lease file: %s active leases in %s, %s – %s\n", p.paint(bold, fmt.Sprint(len(relayed))),
		lab.RelayPrefix, relayed[0].Addr(), relayed[len(relayed)-1].Addr())
	if d.dep.FailoverPeer != "" {
		byServer := map[string]int{}
		for _, l := range relayed {
			byServer[d.dep.designated(l.HardwareAddr()).Host.Name]++
		}
		var parts []string
		for _, srv := range d.dep.Servers {
			parts = append(parts, fmt.Sprintf("%s %d", srv.Host.Name, byServer[srv.Host.Name]))
		}
		p.printf("  the relay agent sent every request to both servers; by the hash of the clients' MACs: %s\n", strings.Join(parts, " · "))
	}
	var sample []string
	for _, l := range relayed[:min(3, len(relayed))] {
		sample = append(sample, fmt.Sprintf("%s → %s", l.Addr(), l.HardwareAddr()))
	}
	p.printf("  %s\n", p.paint(dim, "e.g. "+strings.Join(sample, ", ")+", …"))
}

func (d *demo) reportPools(leases map[netip.Addr]lease.Lease) {
	p := d.p
	p.section("Pools, counted from the lease file")
	var rows [][]cell
	for _, sr := range d.dep.Subnets {
		counts := map[lease.BindingState]int{}
		for a, l := range leases {
			if sr.Contains(a) {
				counts[l.State]++
			}
		}
		used := counts[lease.Active]
		other := 0
		for st, n := range counts {
			if st != lease.Active && st != lease.Free {
				other += n
			}
		}
		size := sr.Size()
		rows = append(rows, []cell{
			c(sr.Prefix.String()), c(sr.Label), cf("%s – %s", sr.First, sr.Last), cf("%d", size),
			cs(bold, fmt.Sprint(used)), cf("%d", other), c(bar(used, size, 20)),
		})
	}
	p.table([]string{"SUBNET", "", "RANGE", "SIZE", "ACTIVE", "OTHER", "USED"}, rows)
}

func bar(n, of, width int) string {
	if of <= 0 {
		return ""
	}
	full := n * width / of
	if n > 0 && full == 0 {
		full = 1
	}
	return strings.Repeat("█", full) + strings.Repeat("·", width-full) + fmt.Sprintf(" %.1f%%", 100*float64(n)/float64(of))
}

var labelValue = regexp.MustCompile(`\{type="([^"]+)"\}$`)

func (d *demo) reportCounters() {
	p := d.p
	for _, srv := range d.dep.Servers {
		p.section(fmt.Sprintf("Tandem's counters on %s (/metrics)", srv.Host.Name))
		m, err := srv.Metrics()
		if err != nil {
			p.printf("  %s\n", p.paint(red, err.Error()))
			continue
		}
		byType := func(metric string) string {
			var parts []string
			for k, v := range m {
				if strings.HasPrefix(k, metric+"{") {
					if sm := labelValue.FindStringSubmatch(k); sm != nil {
						parts = append(parts, fmt.Sprintf("%s %.0f", sm[1], v))
					}
				}
			}
			sort.Strings(parts)
			if len(parts) == 0 {
				return "none"
			}
			return strings.Join(parts, " · ")
		}
		p.printf("  received  %s\n", byType("tandem_dhcp_requests_total"))
		p.printf("  sent      %s\n", byType("tandem_dhcp_replies_total"))
		p.printf("  dropped %.0f · malformed %.0f · lease-file fsyncs %.0f\n",
			m.Sum("tandem_dhcp_dropped_total"), m.Sum("tandem_dhcp_malformed_total"), m.Sum("tandem_lease_commit_seconds_count"))
	}
}

func (d *demo) reportLogs() {
	p := d.p
	const maxLines = 30
	for _, srv := range d.dep.Servers {
		p.section(fmt.Sprintf("Tandem's log on %s (%s)", srv.Host.Name, srv.Proc().LogPath))
		lines := strings.Split(strings.TrimRight(srv.Proc().Log(), "\n"), "\n")
		if len(lines) > maxLines {
			p.printf("  %s\n", p.paint(dim, fmt.Sprintf("… %d earlier lines", len(lines)-maxLines)))
			lines = lines[len(lines)-maxLines:]
		}
		for _, l := range lines {
			ts, rest := splitTimestamp(l)
			p.printf("  %s %s\n", p.paint(dim, "│ "+ts), colorLevel(p, rest))
		}
	}
}

// splitTimestamp shortens the RFC 3339 timestamp tandem -d starts lines
// with to the time of day.
func splitTimestamp(line string) (string, string) {
	first, rest, ok := strings.Cut(line, " ")
	if !ok {
		return "", line
	}
	t, err := time.Parse(time.RFC3339Nano, first)
	if err != nil {
		return "", line
	}
	return t.Local().Format("15:04:05.000"), rest
}

func colorLevel(p *printer, s string) string {
	switch {
	case strings.HasPrefix(s, "ERROR"):
		return p.paint(red, s)
	case strings.HasPrefix(s, "WARN"):
		return p.paint(yellow, s)
	}
	return s
}

func (d *demo) printKeep() {
	p := d.p
	p.section("The lab is still up")
	var rows [][]cell
	for _, h := range d.lab.Hosts() {
		rows = append(rows, []cell{c(h.Name), c(h.NS)})
	}
	p.table([]string{"HOST", "NAMESPACE"}, rows)
	srv := d.dep.Servers[0]
	p.printf("\n  Try, in another terminal:\n")
	for _, s := range d.dep.Servers {
		if d.dep.FailoverPeer != "" && s.Proc() != nil && !s.Proc().Exited() {
			p.printf("    %s\n", p.paint(cyan, fmt.Sprintf("%s status -s %s", s.Bin, s.ControlSocket)))
		}
	}
	p.printf("    %s\n", p.paint(cyan, fmt.Sprintf("%s leases -s %s", srv.Bin, srv.ControlSocket)))
	p.printf("    %s\n", p.paint(cyan, fmt.Sprintf("cat %s", srv.LeasePath)))
	p.printf("    %s\n", p.paint(cyan, fmt.Sprintf("ip netns exec %s curl -s http://%s/metrics | grep ^tandem_", srv.Host.NS, srv.MetricsAddr)))
	p.printf("    %s\n", p.paint(cyan, fmt.Sprintf("ip netns exec %s ip -4 addr show eth0", d.lab.Clients[0].NS)))
	p.printf("\n  %s\n", p.paint(bold, "Press Ctrl-C to tear it down."))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	if sc.Scan() {
		return sc.Text()
	}
	return s
}
