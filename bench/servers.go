package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// server is one DHCP server program under test, or a failover pair of
// them. Each Start begins from empty lease files in directories of their
// own, so every step measures the same situation: a pool with nothing
// allocated yet.
type server interface {
	// Name labels the server's rows in the table.
	Name() string
	// Program is "tandem", "isc" or "kea": what the server runs.
	Program() string
	// Start starts a fresh instance (a pair: both servers) and returns
	// once it answers requests (a pair: once both are in their normal
	// state with balanced pools). The processes come in host order; the
	// first one's host is where perfdhcp sends its requests.
	Start() ([]*lab.Proc, error)
	// Stop stops the running instance and removes its lease files unless
	// they are to be kept.
	Stop()
}

// isPair says whether a started server is a failover pair, whose
// members both need to see every request.
func isPair(procs []*lab.Proc) bool { return len(procs) > 1 }

const readyTimeout = 60 * time.Second

// tandemServer runs the tandem binary as `tandem serve -d` with the same
// dhcpd.conf that ISC dhcpd gets.
type tandemServer struct {
	host        *lab.Host
	bin         string
	conf        string
	metricsAddr string
	keep        bool
	prefix      []string // e.g. nice -n -10
	leaseDir    string   // "" = beside the config

	n         int
	dir       string
	proc      *lab.Proc
	leasePath string
}

func (t *tandemServer) Name() string    { return "tandem" }
func (t *tandemServer) Program() string { return "tandem" }

func (t *tandemServer) Start() ([]*lab.Proc, error) {
	t.n++
	t.dir = filepath.Join(t.host.Lab().Dir, fmt.Sprintf("%s-tandem-%d", t.host.Name, t.n))
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return nil, err
	}
	confPath := filepath.Join(t.dir, "dhcpd.conf")
	if err := os.WriteFile(confPath, []byte(t.conf), 0o644); err != nil {
		return nil, err
	}
	leaseDir := t.dir
	if t.leaseDir != "" {
		leaseDir = filepath.Join(t.leaseDir, t.host.Lab().Prefix+"-"+filepath.Base(t.dir))
		if err := os.MkdirAll(leaseDir, 0o755); err != nil {
			return nil, err
		}
	}
	t.leasePath = filepath.Join(leaseDir, "dhcpd.leases")
	p := t.host.Start("tandem", withPrefix(t.prefix, t.bin, "serve", "-d",
		"-cf", confPath, "-lf", t.leasePath, "-pf", filepath.Join(t.dir, "tandem.pid"),
		"-metrics", t.metricsAddr, t.host.Iface)...)
	t.proc = p
	if _, err := p.AwaitLog(0, `server started`, readyTimeout); err != nil {
		p.Kill9()
		return nil, err
	}
	return []*lab.Proc{p}, nil
}

func (t *tandemServer) Stop() {
	if t.proc == nil {
		return
	}
	_ = t.proc.Stop(10 * time.Second)
	t.proc = nil
	if !t.keep {
		removeLeaseFiles(filepath.Dir(t.leasePath))
		if t.leaseDir != "" {
			_ = os.Remove(filepath.Dir(t.leasePath))
		}
	}
}

// iscServer runs ISC dhcpd 4.4 through the lab's driver (ping-check off).
type iscServer struct {
	host   *lab.Host
	conf   string
	keep   bool
	prefix []string

	d    *lab.ISCDhcpd
	proc *lab.Proc
}

func (s *iscServer) Name() string    { return "isc-dhcpd" }
func (s *iscServer) Program() string { return "isc" }

func (s *iscServer) Start() ([]*lab.Proc, error) {
	// A new driver per start: a new directory with an empty lease file.
	s.d = lab.NewISCDhcpd(s.host, s.conf)
	p := s.host.Start("dhcpd", withPrefix(s.prefix, s.d.Argv()...)...)
	s.proc = p
	if _, err := p.AwaitLog(0, `^Server starting service\.`, readyTimeout); err != nil {
		p.Kill9()
		return nil, err
	}
	return []*lab.Proc{p}, nil
}

func (s *iscServer) Stop() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Stop(10 * time.Second)
	s.proc = nil
	if !s.keep {
		removeLeaseFiles(s.d.Dir)
	}
}

// keaServer runs kea-dhcp4 with a memfile lease database (persist true)
// through the lab's driver.
type keaServer struct {
	host   *lab.Host
	name   string
	dhcp4  map[string]any
	keep   bool
	prefix []string

	k    *lab.Kea
	proc *lab.Proc
}

// keaDhcp4 is the benchmark's Kea configuration: the lab's pools, and
// multi-threading with the given thread pool and queue sizes (threads 0 =
// single-threaded). The per-lease INFO lines (DHCP4_LEASE_ALLOC, logger
// kea-dhcp4.leases; an HA partner's COMMAND_RECEIVED, kea-dhcp4.commands)
// are turned down to WARN: Kea's own performance advice is to log less,
// and neither Tandem nor the table needs them.
func keaDhcp4(pools lab.Pools, threads, queue int, socketType, iface string) map[string]any {
	cfg := pools.KeaDhcp4()
	cfg["interfaces-config"] = map[string]any{"interfaces": []any{iface}, "dhcp-socket-type": socketType}
	mt := map[string]any{"enable-multi-threading": threads > 0}
	if threads > 0 {
		mt["thread-pool-size"] = threads
		mt["packet-queue-size"] = queue
	}
	cfg["multi-threading"] = mt
	stdout := []any{map[string]any{"output": "stdout", "flush": true}}
	cfg["loggers"] = []any{
		map[string]any{"name": "kea-dhcp4", "output_options": stdout, "severity": "INFO"},
		map[string]any{"name": "kea-dhcp4.leases", "output_options": stdout, "severity": "WARN"},
		// An HA partner receives every lease as a lease4-update command,
		// which this logger notes at INFO: one line per lease again.
		map[string]any{"name": "kea-dhcp4.commands", "output_options": stdout, "severity": "WARN"},
	}
	return cfg
}

func keaName(threads int) string {
	if threads > 0 {
		return fmt.Sprintf("kea-mt%d", threads)
	}
	return "kea-st"
}

func (s *keaServer) Name() string    { return s.name }
func (s *keaServer) Program() string { return "kea" }

func (s *keaServer) Start() ([]*lab.Proc, error) {
	s.k = lab.NewKea(s.host, s.dhcp4)
	s.k.Prefix = s.prefix
	s.k.ReadyTimeout = readyTimeout
	p, err := s.k.TryStart()
	s.proc = p
	if err != nil {
		if p != nil {
			p.Kill9()
		}
		return nil, err
	}
	return []*lab.Proc{p}, nil
}

func (s *keaServer) Stop() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Stop(10 * time.Second)
	s.proc = nil
	if !s.keep {
		removeLeaseFiles(s.k.Dir)
	}
}

// removeLeaseFiles deletes lease files (tens of MB after a fast step) but
// keeps configs and logs for reading.
func removeLeaseFiles(dir string) {
	for _, pat := range []string{"*.leases", "*.leases~", "*.leases.*", "kea-leases4.csv*"} {
		ms, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, m := range ms {
			_ = os.Remove(m)
		}
	}
}

// withPrefix puts a wrapper such as "nice -n -10" before argv. The wrapper
// execs the program in place, so the PID (for CPU time, strace) stays the
// program's.
func withPrefix(prefix []string, argv ...string) []string {
	return append(append([]string{}, prefix...), argv...)
}
