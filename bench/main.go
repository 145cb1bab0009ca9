// Command bench drives Tandem, ISC dhcpd 4.4 and kea-dhcp4 with perfdhcp
// at rising rates on one network-namespace topology, in one run, and
// prints one table of what each achieved. It is a benchmark, not a test:
// it never passes or fails anything. See bench/README.md.
//
//	go run ./bench [-quick] [-rates 500,1000,…,unlimited] [-period 10s] [-profile unlimited]
//
// It needs root (network namespaces) and the programs scripts/setup.sh
// installs; bench/run.sh runs that first.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

type options struct {
	quick      bool
	rates      []int
	pairRates  []int
	period     time.Duration
	servers    []string
	clients    int
	poolSize   int
	leaseTime  time.Duration
	keaThreads int
	keaQueue   int
	maxDrop    float64
	skipDrop   float64
	exitWait   time.Duration
	tandemBin  string
	dir        string
	keep       bool
	profile    []int
	fsyncCheck bool
	// pairFsyncCheck runs the strace check on the pairs too; -quick
	// leaves it out (every pair start costs seconds to a minute) unless
	// -fsync-check is given.
	pairFsyncCheck bool
	perfExtra      []string
	nice           int
	skipAfter      int
	leaseDir       string
	repeat         int
	perfRcvbuf     int
	keaSocket      string

	pairMaxUnacked int
	pairReady      time.Duration
	pairSettle     time.Duration
}

// serverKinds are the -servers names, singles first.
var serverKinds = []string{"tandem", "isc", "kea", "tandem-pair", "isc-pair", "kea-ha"}

func pairKind(s string) bool { return strings.HasSuffix(s, "-pair") || s == "kea-ha" }

const metricsAddr = "127.0.0.1:9967"

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	rates := fs.String("rates", "500,1000,2000,3000,5000,7500,10000,15000,20000,unlimited",
		"target rates in DORA exchanges/s, in order; \"unlimited\" lets perfdhcp send as fast as it can")
	servers := fs.String("servers", strings.Join(serverKinds, ","), "servers to measure, from "+strings.Join(serverKinds, ", ")+" (a -pair or -ha is a failover pair)")
	pairRates := fs.String("pair-rates", "500,1000,2000,5000,10000,15000,20000,unlimited",
		"target rates of the failover pairs, whose every step first brings a fresh pair to normal (seconds to a minute)")
	profile := fs.String("profile", "", "rates at which to take a CPU profile of Tandem (e.g. unlimited); printed with go tool pprof -top")
	fs.BoolVar(&o.quick, "quick", false, "a subset, 5 s a step: single servers at 1000,5000,unlimited, pairs at 500,10000,unlimited, no strace check of the pairs; about 5-6 minutes")
	fs.DurationVar(&o.period, "period", 10*time.Second, "length of each step (perfdhcp -p)")
	fs.IntVar(&o.clients, "clients", 60000, "distinct client MACs perfdhcp uses (-R); keep below -pool")
	fs.IntVar(&o.poolSize, "pool", 65278, "addresses in the relayed pool 198.19.1.0 and up (at most 65278)")
	fs.DurationVar(&o.leaseTime, "lease-time", 12*time.Hour, "lease time granted; long enough that nothing expires during the run")
	fs.IntVar(&o.keaThreads, "kea-threads", runtime.NumCPU(), "kea-dhcp4 thread-pool-size (default: the number of cores); 0 runs Kea single-threaded")
	fs.StringVar(&o.keaSocket, "kea-socket", "udp", "kea-dhcp4 dhcp-socket-type: udp (enough for relayed traffic, what Kea advises for it) or raw")
	fs.IntVar(&o.keaQueue, "kea-queue", 64, "kea-dhcp4 packet-queue-size (64 is Kea's default)")
	fs.Float64Var(&o.maxDrop, "max-drop", 1, "drop percentage under which a step counts for a server's best rate")
	fs.Float64Var(&o.skipDrop, "skip-drop", 10, "drop percentage above which a step counts as failed (also: under 80% of the target)")
	fs.IntVar(&o.perfRcvbuf, "perfdhcp-rcvbuf", 8<<20, "receive buffer for perfdhcp's socket in bytes, set through a small LD_PRELOAD library built with cc; 0 keeps the kernel default")
	fs.IntVar(&o.repeat, "repeat", 1, "run each step this many times (fresh server each time) and keep the best; helps on a busy machine")
	fs.IntVar(&o.skipAfter, "skip-after", 2, "a server skips its higher fixed rates after this many failed steps in a row")
	fs.StringVar(&o.leaseDir, "tandem-lease-dir", "", "put Tandem's lease files here instead of the run directory (an experiment: /dev/shm shows what fsync costs)")
	fs.DurationVar(&o.exitWait, "exit-wait", time.Second, "perfdhcp keeps receiving this long after the period (-W)")
	fs.StringVar(&o.tandemBin, "tandem", "", "tandem binary to use; empty builds ./cmd/tandem")
	fs.StringVar(&o.dir, "dir", "", "directory for configs, logs and profiles; empty makes one under $TMPDIR")
	fs.BoolVar(&o.keep, "keep", false, "keep every step's lease file (they reach tens of MB)")
	perfExtra := fs.String("perfdhcp-args", "", "extra perfdhcp arguments, space-separated (e.g. \"-g single\")")
	fs.IntVar(&o.nice, "nice", 0, "run perfdhcp and the servers under nice -n N (e.g. -10 on a shared machine, so that other work disturbs the measurement less)")
	fs.BoolVar(&o.fsyncCheck, "fsync-check", true, "count each server's fsync calls with strace at 100 DORA/s")
	fs.IntVar(&o.pairMaxUnacked, "pair-max-unacked", 10, "max-unacked-updates of both servers of the Tandem and ISC pairs (examples/classic says 10, ISC's default is 100)")
	fs.DurationVar(&o.pairReady, "pair-ready-timeout", 3*time.Minute, "how long a pair may take to reach normal with balanced pools")
	fs.DurationVar(&o.pairSettle, "pair-settle", 30*time.Second, "how long a pair may take after the load until both servers hold every lease")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["rates"] {
			*rates = "1000,5000,unlimited"
		}
		if !set["pair-rates"] {
			// Every pair step starts a fresh pair, which takes ISC's
			// half a minute to a minute: one step the ISC and Kea pairs
			// may hold, and the target of issue 3.
			*pairRates = "500,10000,unlimited"
		}
		if !set["period"] {
			o.period = 5 * time.Second
		}
	}
	o.pairFsyncCheck = o.fsyncCheck && (!o.quick || set["fsync-check"])
	o.perfExtra = strings.Fields(*perfExtra)
	if o.nice < -20 || o.nice > 19 {
		return o, fmt.Errorf("-nice %d out of -20..19", o.nice)
	}
	var err error
	if o.rates, err = parseRates(*rates); err != nil {
		return o, err
	}
	if o.pairRates, err = parseRates(*pairRates); err != nil {
		return o, fmt.Errorf("-pair-rates: %w", err)
	}
	if *profile != "" {
		if o.profile, err = parseRates(*profile); err != nil {
			return o, err
		}
	}
	for _, s := range strings.Split(*servers, ",") {
		s = strings.TrimSpace(s)
		switch {
		case slices.Contains(serverKinds, s):
			if !slices.Contains(o.servers, s) {
				o.servers = append(o.servers, s)
			}
		case s == "":
		default:
			return o, fmt.Errorf("unknown server %q (want %s)", s, strings.Join(serverKinds, ", "))
		}
	}
	if len(o.servers) == 0 {
		return o, errors.New("no servers")
	}
	if o.period < time.Second || o.period > 5*time.Minute {
		return o, fmt.Errorf("-period %v out of 1s..5m", o.period)
	}
	if o.clients < 1 || o.clients > o.poolSize {
		return o, fmt.Errorf("-clients %d must be in 1..-pool (%d): the pool must never run out", o.clients, o.poolSize)
	}
	if o.poolSize < 1 || o.poolSize > 65278 {
		return o, fmt.Errorf("-pool %d out of 1..65278", o.poolSize)
	}
	if o.repeat < 1 || o.repeat > 5 {
		return o, fmt.Errorf("-repeat %d out of 1..5", o.repeat)
	}
	if o.skipAfter < 1 {
		return o, fmt.Errorf("-skip-after %d: want at least 1", o.skipAfter)
	}
	if o.keaSocket != "udp" && o.keaSocket != "raw" {
		return o, fmt.Errorf("-kea-socket %q: want udp or raw", o.keaSocket)
	}
	if o.keaQueue < 1 {
		return o, fmt.Errorf("-kea-queue %d: want at least 1", o.keaQueue)
	}
	if slices.Contains(o.servers, "kea-ha") && o.keaThreads < 1 {
		// Without multi-threading Kea's HA talks to the partner through
		// kea-ctrl-agent, which the benchmark does not run.
		return o, errors.New("kea-ha needs -kea-threads of at least 1 (HA+MT, the dedicated listener)")
	}
	if o.pairMaxUnacked < 1 || o.pairMaxUnacked > 1000 {
		return o, fmt.Errorf("-pair-max-unacked %d out of 1..1000", o.pairMaxUnacked)
	}
	return o, nil
}

// ratesOf is the list of target rates a server runs.
func (o options) ratesOf(srv server) []int {
	if _, ok := srv.(pairServer); ok {
		return o.pairRates
	}
	return o.rates
}

// mergeRates is every rate of a and b once: fixed rates in rising order,
// then unlimited, so that each server meets its rates in order and slow
// drifts in machine load hit every server alike.
func mergeRates(a, b []int) []int {
	var out []int
	unlimited := false
	for _, r := range append(append([]int{}, a...), b...) {
		if r == 0 {
			unlimited = true
		} else if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	if unlimited {
		out = append(out, 0)
	}
	return out
}

// parseRates reads "500,1000,unlimited"; unlimited is 0.
func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case "":
			continue
		case "unlimited", "max", "0":
			out = append(out, 0)
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 1_000_000 {
			return nil, fmt.Errorf("rate %q: want 1..1000000 or unlimited", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no rates")
	}
	return out, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(o options, out io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces); run bench/run.sh as root")
	}
	need := []string{"perfdhcp", "ip"}
	pairs := false
	for _, s := range o.servers {
		switch s {
		case "isc", "isc-pair":
			need = append(need, "dhcpd")
		case "kea", "kea-ha":
			need = append(need, "kea-dhcp4")
		}
		pairs = pairs || pairKind(s)
	}
	if pairs {
		need = append(need, "nft") // lab.RelayFanOut
	}
	if o.fsyncCheck {
		need = append(need, "strace")
	}
	for _, c := range need {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s not found (scripts/setup.sh installs the DHCP programs): %v", c, err)
		}
	}

	sess, err := lab.NewSession("bench", o.dir)
	if err != nil {
		return err
	}
	defer sess.Close()
	sess.CloseOnSignal()
	progress("files in %s", sess.Dir())

	root, err := moduleRoot()
	if err != nil && o.tandemBin == "" {
		return err
	}
	bin := o.tandemBin
	if bin == "" && (slices.Contains(o.servers, "tandem") || slices.Contains(o.servers, "tandem-pair")) {
		bin = filepath.Join(sess.Dir(), "tandem")
		progress("building %s", bin)
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/tandem")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/tandem: %v\n%s", err, b)
		}
	}

	start := time.Now()
	load0 := loadAvg1()
	nServers := 1
	if pairs {
		nServers = 2
	}
	l := lab.New(sess, lab.Options{Servers: nServers, Dir: filepath.Join(sess.Dir(), "lab")})
	host := l.Servers[0]
	pools := lab.Pools{LeaseTime: o.leaseTime, RelaySize: o.poolSize}
	first, last := pools.RelayRange()

	var prefix []string
	if o.nice != 0 {
		prefix = []string{"nice", "-n", strconv.Itoa(o.nice)}
	}
	pc := pairConfig{readyTimeout: o.pairReady, settle: o.pairSettle, prefix: prefix, keep: o.keep}
	var confs lab.FailoverConfs
	if pairs {
		if confs, err = pairConfs(pools, o.pairMaxUnacked); err != nil {
			return err
		}
	}
	var srvs []server
	names := map[string]string{} // kind -> row name
	for _, s := range o.servers {
		var srv server
		switch s {
		case "tandem":
			srv = &tandemServer{host: host, bin: bin, conf: pools.DhcpdConf(), metricsAddr: metricsAddr, keep: o.keep, prefix: prefix, leaseDir: o.leaseDir}
		case "isc":
			srv = &iscServer{host: host, conf: pools.DhcpdConf(), keep: o.keep, prefix: prefix}
		case "kea":
			srv = &keaServer{host: host, name: keaName(o.keaThreads), dhcp4: keaDhcp4(pools, o.keaThreads, o.keaQueue, o.keaSocket, host.Iface), keep: o.keep, prefix: prefix}
		case "tandem-pair":
			srv = &tandemPair{cfg: pc, hosts: [2]*lab.Host{l.Servers[0], l.Servers[1]}, bin: bin, confs: confs, metricsAddr: metricsAddr, leaseDir: o.leaseDir}
		case "isc-pair":
			srv = &iscPair{cfg: pc, hosts: [2]*lab.Host{l.Servers[0], l.Servers[1]}, confs: confs}
		case "kea-ha":
			srv = &keaHA{cfg: pc, hosts: [2]*lab.Host{l.Servers[0], l.Servers[1]}, name: "kea-ha",
				dhcp4: keaDhcp4(pools, o.keaThreads, o.keaQueue, keaHASocket, host.Iface), ha: keaHAOptions}
		}
		names[s] = srv.Name()
		srvs = append(srvs, srv)
	}

	rcvbufNote := "kernel default (net.core.rmem_default)"
	var perfEnv []string
	if o.perfRcvbuf > 0 {
		if perfEnv, err = buildRcvbufPreload(sess.Dir(), o.perfRcvbuf); err != nil {
			progress("perfdhcp keeps the kernel's receive buffer: %v", err)
		} else {
			rcvbufNote = fmt.Sprintf("%d KiB (SO_RCVBUFFORCE through LD_PRELOAD)", o.perfRcvbuf>>10)
		}
	}
	sc := stepConfig{lab: l, period: o.period, clients: o.clients, exitWait: o.exitWait,
		metricsAddr: metricsAddr, profileDir: sess.Dir(), perfExtra: o.perfExtra, prefix: prefix, perfEnv: perfEnv}
	var rows []*stepResult
	skipped := map[string]int{} // server -> the rate at which it gave up
	failedInRow := map[string]int{}
	for _, rate := range mergeRates(o.rates, o.pairRates) {
		for _, srv := range srvs {
			if !slices.Contains(o.ratesOf(srv), rate) {
				continue
			}
			if at, ok := skipped[srv.Name()]; ok && rate != 0 {
				progress("%s @ %s: skipped (failed at %s)", srv.Name(), rateLabel(rate), rateLabel(at))
				continue
			}
			var r *stepResult
			var profiles []string
			for i := 0; i < o.repeat; i++ {
				// A profile of the first run is enough; it is reported
				// whichever run turns out best.
				ri := runStep(sc, srv, rate, i == 0 && slices.Contains(o.profile, rate))
				logStep(ri)
				profiles = append(profiles, ri.Profiles...)
				if r == nil || better(ri, r) {
					r = ri
				}
			}
			r.Profiles = profiles
			rows = append(rows, r)
			if rate == 0 {
				continue
			}
			// One bad step on a busy machine may be noise; a run of them
			// is the server's limit.
			if !r.failedBadly(o.skipDrop) {
				failedInRow[srv.Name()] = 0
			} else if failedInRow[srv.Name()]++; failedInRow[srv.Name()] >= o.skipAfter {
				skipped[srv.Name()] = rate
			}
		}
	}

	var fsyncs []fsyncResult
	if o.fsyncCheck {
		period := 3 * time.Second
		if o.quick {
			period = 2 * time.Second
		}
		for _, srv := range srvs {
			if _, pair := srv.(pairServer); pair && !o.pairFsyncCheck {
				continue
			}
			progress("%s: counting fsync calls with strace at 100 DORA/s for %v", srv.Name(), period)
			fsyncs = append(fsyncs, checkFsync(sc, srv, 100, period))
		}
	}
	load1 := loadAvg1()

	fmt.Fprintf(out, "\nTandem vs ISC dhcpd vs Kea: perfdhcp DORA through a relay, %s, %d distinct clients, pool of %d (%s-%s), lease time %v, %v per step\n",
		describeMachine(), o.clients, o.poolSize, first, last, o.leaseTime, o.period)
	fmt.Fprintf(out, "versions: %s\n", versions(root))
	if names["kea"] != "" || names["kea-ha"] != "" {
		fmt.Fprintf(out, "kea config: %s\n", describeKea(o))
	}
	if pairs {
		fmt.Fprintf(out, "pairs: %s\n", describePairs(o))
	}
	fmt.Fprintf(out, "perfdhcp socket receive buffer: %s\n", rcvbufNote)
	if o.nice != 0 || len(o.perfExtra) > 0 || o.leaseDir != "" || o.repeat > 1 {
		fmt.Fprintf(out, "nice: %d, extra perfdhcp arguments: %q, Tandem's lease files in: %q, best of %d per step\n",
			o.nice, o.perfExtra, o.leaseDir, o.repeat)
	}
	fmt.Fprintf(out, "load average (1 min): %.2f at start, %.2f at end; run took %v\n", load0, load1, time.Since(start).Round(time.Second))
	for _, spec := range tableSpecs(o, names, skipped) {
		fmt.Fprintf(out, "\n%s:\n", spec.title)
		printTable(out, rows, spec)
	}
	printFootnotes(out, o, rows, names)
	printGroupCommit(out, rows)
	printPairs(out, rows)
	printMemory(out, rows, o.poolSize)
	printFsyncCheck(out, fsyncs)
	if pairs && o.fsyncCheck && !o.pairFsyncCheck {
		fmt.Fprintf(out, "\nThe strace durability check of the pairs is left out with -quick (-fsync-check=true runs it); their fsyncs are above.\n")
	}
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(out, "\nerror, %s @ %s: %v\n", r.Server, rateLabel(r.Target), r.Err)
		}
	}
	printProfiles(out, rows, bin)
	fmt.Fprintf(out, "\nconfigs, logs and profiles: %s\n", sess.Dir())
	return nil
}

func logStep(r *stepResult) {
	if r.Err != nil {
		progress("%s @ %s: error: %v", r.Server, rateLabel(r.Target), firstLine(r.Err.Error()))
		return
	}
	progress("%s @ %s: %.0f DORA/s, drops %.2f/%.2f %%, server CPU %s %%, perfdhcp CPU %.0f %%, load %.1f",
		r.Server, rateLabel(r.Target), r.achieved(), r.Res.DiscoverOffer.DropsRatio, r.Res.RequestAck.DropsRatio,
		cpuCell(r), r.PerfCPU, r.Load1)
	if st := r.Settled; st != nil {
		progress("%s @ %s: active leases %d / %d after %v, %s %d / %d%s",
			r.Server, rateLabel(r.Target), st.Active[0], st.Active[1], st.Waited.Round(100*time.Millisecond),
			st.AnsweredWhat, st.Answered[0], st.Answered[1], errSuffix(st.Err))
	}
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + firstLine(err.Error()) + ")"
}

func printFootnotes(w io.Writer, o options, rows []*stepResult, names map[string]string) {
	fmt.Fprintf(w, "\nachieved/s: DORA exchanges completed (ACKs perfdhcp received) per second of the test period (perfdhcp's own\n")
	fmt.Fprintf(w, "  Rate line divides by the period plus its %v exit wait). drops: requests perfdhcp never matched a reply to,\n", o.exitWait)
	fmt.Fprintf(w, "  DISCOVER-OFFER / REQUEST-ACK (it gives up on a request after 1 s, but lazily, so a reply that waited longer in\n")
	fmt.Fprintf(w, "  its socket can still count: see avg/max ms). CPU%%: CPU time over the test period / its wall time; 100 = one core of %d;\n", runtime.NumCPU())
	fmt.Fprintf(w, "  a pair shows primary+secondary.\n")
	fmt.Fprintf(w, "  ratios: Tandem's (pair's) achieved rate / the other's at the same target; on the best rows, best / best (< %g%% drops).\n", o.maxDrop)
	fmt.Fprintf(w, "  perfdhcp rcvbuf lost: replies the kernel discarded because perfdhcp's socket buffer was full (Udp RcvbufErrors\n")
	fmt.Fprintf(w, "  in the relay namespace): drops the load generator caused, not the server. srv rcvbuf lost: the same in the\n")
	fmt.Fprintf(w, "  servers' namespaces, requests lost before the server read them (Tandem and Kea with udp sockets read there;\n")
	fmt.Fprintf(w, "  ISC and Kea with raw sockets read through a packet socket, so their figure counts only the UDP socket beside it).\n")
	fmt.Fprintf(w, "  skipped: after %d failed steps in a row (> %g%% drops or < 80%% of the target), higher fixed rates are not run.\n", o.skipAfter, o.skipDrop)
	fmt.Fprintf(w, "  Every step starts the server (both servers of a pair) afresh on an empty lease file (fresh lease file per step);\n")
	fmt.Fprintf(w, "  a pair is measured once both servers are normal (Kea: load-balancing) with their pools balanced, and every request\n")
	fmt.Fprintf(w, "  reaches both servers (lab.RelayFanOut, like a relay agent with both servers as helper addresses).\n")
	if names["isc"] != "" || names["isc-pair"] != "" {
		fmt.Fprintf(w, "[a] ISC dhcpd 4.4 writes and fsyncs the lease file once per DHCPACK (commit_leases); see the strace count below.\n")
		if names["isc-pair"] != "" {
			fmt.Fprintf(w, "    In a pair it sends the BNDUPD after the DHCPACK, lazily; the partner writes it before its BNDACK.\n")
		}
	}
	if names["kea"] != "" || names["kea-ha"] != "" {
		fmt.Fprintf(w, "[b] Kea's memfile backend (persist true) appends CSV lines and never fsyncs: an ACKed lease may be lost in a\n")
		fmt.Fprintf(w, "    power cut or kernel crash. Tandem is the only one of the three that is durable per ACK with group commit.\n")
		if names["kea-ha"] != "" {
			fmt.Fprintf(w, "    Kea HA sends each lease to the partner (lease4-update over HTTP) and waits for its answer before the DHCPACK.\n")
		}
	}
	for _, r := range rows {
		if r.PerfCPU >= perfSaturated {
			fmt.Fprintf(w, "!   perfdhcp used >= %.0f%% of a core: on this %d-core machine the load generator itself is near its limit,\n", perfSaturated, runtime.NumCPU())
			fmt.Fprintf(w, "    so the server's figure on that row is a lower bound, not its capacity.\n")
			break
		}
	}
}

func printGroupCommit(w io.Writer, rows []*stepResult) {
	header := false
	for _, r := range rows {
		if r.Server != "tandem" || len(r.Members) != 1 || r.Members[0].Before == nil || r.Members[0].After == nil {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\nTandem group commit (from -metrics: tandem_leasefile_syncs_total, tandem_lease_commit_batches, tandem_dhcp_replies_total):\n")
			header = true
		}
		b, a := r.Members[0].Before, r.Members[0].After
		syncs := a.Syncs - b.Syncs
		acks := a.ACKs - b.ACKs
		commits := a.Commits - b.Commits
		jobs := a.CommitJobs - b.CommitJobs
		var perSync, meanSync, jobsPer float64
		if syncs > 0 {
			perSync = acks / syncs
			meanSync = 1000 * (a.SyncSeconds - b.SyncSeconds) / syncs
		}
		if commits > 0 {
			jobsPer = jobs / commits
		}
		fmt.Fprintf(w, "  @ %-9s %7.0f ACKs, %6.0f fsyncs: %6.1f ACKs per fsync, %5.1f read batches per commit, mean fsync %.2f ms\n",
			rateLabel(r.Target), acks, syncs, perSync, jobsPer, meanSync)
		reqs := a.Requests - b.Requests
		offers := a.Offers - b.Offers
		secs := r.Period.Seconds()
		fmt.Fprintf(w, "  %-11s answered %.0f of %.0f requests (%.0f OFFERs + %.0f ACKs = %.0f replies/s, %.0f%% of a core); lost in Tandem's socket buffer: %d\n",
			"", offers+acks, reqs, offers, acks, (offers+acks)/secs, r.ServerCPU, r.SrvRcvbufLost)
	}
}

func printMemory(w io.Writer, rows []*stepResult, pool int) {
	var best *stepResult
	active := func(r *stepResult) float64 { return r.Members[0].After.Active }
	for _, r := range rows {
		if r.Server == "tandem" && len(r.Members) == 1 && r.Members[0].Before != nil && r.Members[0].After != nil &&
			active(r) > 0 && (best == nil || active(r) > active(best)) {
			best = r
		}
	}
	if best == nil {
		return
	}
	b, a := best.Members[0].Before, best.Members[0].After
	n := a.Active
	heap := (a.HeapInuse - b.HeapInuse) / n
	rss := (a.RSS - b.RSS) / n
	fmt.Fprintf(w, "\nTandem memory per lease held (after the %s step, %.0f active leases; baseline = the same server just started, empty pool of %d):\n",
		rateLabel(best.Target), n, pool)
	fmt.Fprintf(w, "  Go heap in use (after a forced GC): %.1f MiB -> %.1f MiB = %.0f bytes per lease\n",
		b.HeapInuse/(1<<20), a.HeapInuse/(1<<20), heap)
	fmt.Fprintf(w, "  VmRSS:                              %.1f MiB -> %.1f MiB = %.0f bytes per lease (includes garbage not yet returned to the OS)\n",
		b.RSS/(1<<20), a.RSS/(1<<20), rss)
	fmt.Fprintf(w, "  the empty pool itself (with the Go runtime, config and metrics): %.1f MiB heap = %.0f bytes per address\n",
		b.HeapInuse/(1<<20), b.HeapInuse/float64(pool))
}

func printFsyncCheck(w io.Writer, fs []fsyncResult) {
	if len(fs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nDurability check: sync system calls (%s) counted by strace -f -c at 100 DORA/s (a pair: both servers):\n", strings.Join(syncCalls, ", "))
	for _, f := range fs {
		if f.Err != nil {
			fmt.Fprintf(w, "  %-11s error: %v\n", f.Server, f.Err)
			continue
		}
		per := "-"
		if f.ACKs > 0 {
			per = fmt.Sprintf("%.2f", float64(f.total())/float64(f.ACKs))
		}
		var calls []string
		for _, name := range syncCalls {
			if n := f.Calls[name]; n > 0 {
				calls = append(calls, fmt.Sprintf("%s %d", name, n))
			}
		}
		if len(calls) == 0 {
			calls = []string{"none"}
		}
		split := ""
		if len(f.Members) > 1 {
			var parts []string
			for _, m := range f.Members {
				parts = append(parts, fmt.Sprintf("%s %d", m.Host, m.Calls))
			}
			split = " [" + strings.Join(parts, ", ") + "]"
		}
		fmt.Fprintf(w, "  %-11s %4d ACKs, %4d sync calls (%s)%s: %s per ACK\n", f.Server, f.ACKs, f.total(), strings.Join(calls, ", "), split, per)
	}
}

func printProfiles(w io.Writer, rows []*stepResult, bin string) {
	for _, r := range rows {
		for _, prof := range r.Profiles {
			fmt.Fprintf(w, "\n%s CPU profile @ %s (%s): go tool pprof -top\n", r.Server, rateLabel(r.Target), prof)
			cmd := exec.Command("go", "tool", "pprof", "-top", "-nodecount=30", bin, prof)
			b, err := cmd.CombinedOutput()
			if err != nil {
				fmt.Fprintf(w, "  go tool pprof: %v\n", err)
			}
			w.Write(b)
		}
	}
}

// moduleRoot finds the Tandem repository, where ./cmd/tandem is built.
func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run from inside the Tandem repository (or pass -tandem BIN)")
	}
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if sc.Scan() && strings.TrimSpace(sc.Text()) == "module github.com/tandemdhcp/tandem" {
		return filepath.Dir(gomod), nil
	}
	return "", fmt.Errorf("%s is not Tandem's go.mod (or pass -tandem BIN)", gomod)
}

func describeMachine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d cores (%s), Linux %s", runtime.NumCPU(), model, kernel)
}

func versions(root string) string {
	cmdOut := func(name string, args ...string) string {
		b, _ := exec.Command(name, args...).CombinedOutput()
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				return line
			}
		}
		return "?"
	}
	tandem := "?"
	if root != "" {
		tandem = cmdOut("git", "-C", root, "rev-parse", "--short", "HEAD")
	}
	return fmt.Sprintf("tandem %s (%s), %s, kea-dhcp4 %s, perfdhcp %s",
		tandem, runtime.Version(), cmdOut("dhcpd", "--version"), cmdOut("kea-dhcp4", "-v"),
		strings.TrimPrefix(cmdOut("perfdhcp", "-v"), "VERSION: "))
}

func describeKea(o options) string {
	mt := "single-threaded"
	if o.keaThreads > 0 {
		mt = fmt.Sprintf("multi-threading on: thread-pool-size %d, packet-queue-size %d", o.keaThreads, o.keaQueue)
	}
	return fmt.Sprintf("memfile (persist true, lfc off), %s, dhcp-socket-type %s, per-lease INFO log off", mt, o.keaSocket)
}
