// Command tandem is a DHCPv4 server that runs as a failover pair and reads
// ISC dhcpd's configuration and lease files.
//
//	tandem serve [-cf dhcpd.conf] [-lf dhcpd.leases] [-pf pidfile] [-f] [-d] [-p port] [-t] [interface ...]
//	tandem check-config [-cf dhcpd.conf]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"log/syslog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/control"
	"github.com/tandemdhcp/tandem/internal/server"
)

const usage = `usage: tandem <command> [flags]

commands:
  serve          run the DHCP server (ISC dhcpd-like flags: -cf -lf -pf -f -d -p -t)
  check-config   parse and validate a configuration file, then exit
  status         show failover states and pool counts of a running server
  leases         list the leases of a running server
  state set S    force the failover state (e.g. partner-down) of a running server
  wait S         wait until every failover relationship is in state S
  version        print the version

Run "tandem <command> -h" for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "check-config":
		err = checkConfig(os.Args[2:])
	case "status":
		err = status(os.Args[2:])
	case "leases":
		err = leases(os.Args[2:])
	case "state":
		err = stateCmd(os.Args[2:])
	case "wait":
		err = wait(os.Args[2:])
	case "version", "-version", "--version":
		fmt.Println("tandem", version)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "tandem: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tandem:", err)
		os.Exit(1)
	}
}

func checkConfig(args []string) error {
	fs := flag.NewFlagSet("check-config", flag.ExitOnError)
	cf := fs.String("cf", "/etc/dhcp/dhcpd.conf", "configuration file")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		*cf = fs.Arg(0)
	}
	cfg, err := config.ParseFile(*cf)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	pools, addrs := 0, 0
	for _, s := range cfg.Subnets {
		for _, p := range s.Pools {
			pools++
			for _, r := range p.Ranges {
				addrs += int(ipDiff(r.End.As4(), r.Start.As4())) + 1
			}
		}
	}
	fmt.Printf("%s: OK: %d subnets, %d pools, %d addresses, %d hosts, %d failover peers\n",
		*cf, len(cfg.Subnets), pools, addrs, len(cfg.Hosts), len(cfg.FailoverPeers))
	return nil
}

func ipDiff(a, b [4]byte) uint32 {
	u := func(x [4]byte) uint32 { return uint32(x[0])<<24 | uint32(x[1])<<16 | uint32(x[2])<<8 | uint32(x[3]) }
	return u(a) - u(b)
}

type serveFlags struct {
	cf, lf, pf  string
	foreground  bool
	debug       bool
	port        int
	testOnly    bool
	quiet       bool
	metrics     string
	control     string
	verbose     bool
	interfaces  []string
	daemonChild bool
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var f serveFlags
	fs.StringVar(&f.cf, "cf", "/etc/dhcp/dhcpd.conf", "configuration file (ISC dhcpd.conf syntax)")
	fs.StringVar(&f.lf, "lf", "/var/lib/dhcp/dhcpd.leases", "lease file (ISC dhcpd.leases format)")
	fs.StringVar(&f.pf, "pf", "/run/tandem.pid", "PID file")
	fs.BoolVar(&f.foreground, "f", false, "run in the foreground")
	fs.BoolVar(&f.debug, "d", false, "log to standard error (implies -f)")
	fs.IntVar(&f.port, "p", 67, "UDP port to listen on; replies to clients go to port+1")
	fs.BoolVar(&f.testOnly, "t", false, "test the configuration file and exit")
	fs.BoolVar(&f.quiet, "q", false, "accepted for ISC compatibility")
	fs.BoolVar(&f.verbose, "v", false, "debug logging")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics (/metrics) and profiles (/debug/pprof/) on this TCP address, e.g. 127.0.0.1:9967")
	fs.StringVar(&f.control, "control", control.DefaultSocket, "unix socket of the operator API (tandem status, state, leases); empty = none")
	fs.BoolVar(&f.daemonChild, "daemon-child", false, "internal: set when tandem re-executes itself to detach")
	_ = fs.Bool("4", true, "DHCPv4 (the only protocol Tandem serves; accepted for ISC compatibility)")
	_ = fs.Parse(args)
	f.interfaces = fs.Args()

	cfg, err := config.ParseFile(f.cf)
	if err != nil {
		return err
	}
	if f.testOnly {
		for _, w := range cfg.Warnings {
			fmt.Fprintln(os.Stderr, "warning:", w)
		}
		fmt.Fprintf(os.Stderr, "%s: configuration OK\n", f.cf)
		return nil
	}
	if !f.foreground && !f.debug && !f.daemonChild {
		return detach(args)
	}
	log, err := newLogger(f, cfg)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	srv, err := server.New(server.Options{
		Config: cfg, LeaseFile: f.lf, Port: f.port, Interfaces: f.interfaces,
		Logger: log, Registerer: reg, ControlSocket: f.control, Version: version,
	})
	if err != nil {
		return err
	}
	if f.pf != "" {
		if err := os.WriteFile(f.pf, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing PID file: %w", err)
		}
		defer os.Remove(f.pf)
	}
	if f.metrics != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go func() {
			if err := http.ListenAndServe(f.metrics, mux); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener failed", "addr", f.metrics, "err", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Run(ctx)
}

// detach starts tandem again in its own session with -daemon-child and
// returns, as ISC dhcpd does without -f.
func detach(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(exe, append([]string{"serve", "-daemon-child"}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

func newLogger(f serveFlags, cfg *config.Config) (*slog.Logger, error) {
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	if !f.debug {
		if sw, err := syslog.New(facility(cfg.LogFacility)|syslog.LOG_INFO, "tandem"); err == nil {
			return slog.New(newLineHandler(sw, level, false)), nil
		}
	}
	return slog.New(newLineHandler(os.Stderr, level, true)), nil
}

func facility(name string) syslog.Priority {
	switch strings.ToLower(name) {
	case "local0":
		return syslog.LOG_LOCAL0
	case "local1":
		return syslog.LOG_LOCAL1
	case "local2":
		return syslog.LOG_LOCAL2
	case "local3":
		return syslog.LOG_LOCAL3
	case "local4":
		return syslog.LOG_LOCAL4
	case "local5":
		return syslog.LOG_LOCAL5
	case "local6":
		return syslog.LOG_LOCAL6
	case "local7":
		return syslog.LOG_LOCAL7
	case "user":
		return syslog.LOG_USER
	}
	return syslog.LOG_DAEMON
}
