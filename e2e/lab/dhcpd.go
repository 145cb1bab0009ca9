package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ISCDhcpd runs ISC dhcpd 4.4 in a host namespace with its own config,
// lease and PID files, so that it can be killed and started again on the
// same lease file.
type ISCDhcpd struct {
	Host      *Host
	Dir       string
	ConfPath  string
	LeasePath string
	PIDPath   string
	// ReadyTimeout bounds Start's wait for "Server starting service."
	ReadyTimeout time.Duration
	// Env holds extra environment variables ("K=V") for dhcpd, such as
	// FakeClockEnv's, taking effect at the next Start.
	Env []string

	proc *Proc
}

// NewISCDhcpd writes conf and an empty lease file (dhcpd refuses to start
// without one) into a directory of its own. It does not start dhcpd.
func NewISCDhcpd(h *Host, conf string) *ISCDhcpd {
	tb := h.lab.tb
	tb.Helper()
	dir := filepath.Join(h.lab.Dir, h.lab.uniqueName("dir", h.Name+"-dhcpd"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("lab: %v", err)
	}
	d := &ISCDhcpd{
		Host:         h,
		Dir:          dir,
		ConfPath:     filepath.Join(dir, "dhcpd.conf"),
		LeasePath:    filepath.Join(dir, "dhcpd.leases"),
		PIDPath:      filepath.Join(dir, "dhcpd.pid"),
		ReadyTimeout: 20 * time.Second,
	}
	d.SetConf(conf)
	f, err := os.OpenFile(d.LeasePath, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	f.Close()
	return d
}

// SetConf replaces the configuration; it takes effect at the next Start.
func (d *ISCDhcpd) SetConf(conf string) {
	d.Host.lab.tb.Helper()
	if err := os.WriteFile(d.ConfPath, []byte(conf), 0o644); err != nil {
		d.Host.lab.tb.Fatalf("lab: %v", err)
	}
}

// Argv is the command line Start runs.
func (d *ISCDhcpd) Argv() []string {
	return []string{"dhcpd", "-4", "-f", "-d", "-cf", d.ConfPath, "-lf", d.LeasePath, "-pf", d.PIDPath, d.Host.Iface}
}

// Start starts dhcpd and waits until it serves. Starting while a previous
// instance still runs, or dhcpd failing to come up, is fatal.
func (d *ISCDhcpd) Start() *Proc {
	tb := d.Host.lab.tb
	tb.Helper()
	if d.proc != nil && !d.proc.Exited() {
		tb.Fatalf("lab: dhcpd on %s is already running (pid %d)", d.Host.Name, d.proc.PID)
	}
	// dhcpd refuses to start if the PID file names a live process; after a
	// kill -9 the PID may already belong to someone else.
	_ = os.Remove(d.PIDPath)
	p := d.Host.StartEnv("dhcpd", d.Env, d.Argv()...)
	d.proc = p
	if _, err := p.AwaitLog(0, `^Server starting service\.`, d.ReadyTimeout); err != nil {
		tb.Fatalf("lab: dhcpd on %s did not start: %v", d.Host.Name, err)
	}
	return p
}

// Proc is the current (or last) dhcpd process; nil before Start.
func (d *ISCDhcpd) Proc() *Proc { return d.proc }

// Leases returns the lease file's contents.
func (d *ISCDhcpd) Leases() (string, error) {
	b, err := os.ReadFile(d.LeasePath)
	return string(b), err
}

// libfaketimeGlobs are where Debian's libfaketime package (in the
// multiarch directory) and a build from source put the preload library.
var libfaketimeGlobs = []string{
	"/usr/lib/*/faketime/libfaketime.so.1",
	"/usr/lib/faketime/libfaketime.so.1",
	"/usr/local/lib/faketime/libfaketime.so.1",
}

// FakeClockEnv is the environment that makes a C program such as dhcpd
// see a wall clock offset from the real one (positive: ahead), through
// libfaketime's LD_PRELOAD. Network namespaces share the one real clock,
// so this is how a test gives the partners of a pair different clocks.
// The monotonic clock is left alone, so timers still run at the real
// pace. It fails when libfaketime is not installed (scripts/setup.sh
// installs it).
func FakeClockEnv(offset time.Duration) ([]string, error) {
	if offset%time.Second != 0 {
		return nil, fmt.Errorf("lab: clock offset %v is not whole seconds", offset)
	}
	for _, g := range libfaketimeGlobs {
		if ps, _ := filepath.Glob(g); len(ps) > 0 {
			return []string{
				"LD_PRELOAD=" + ps[0],
				fmt.Sprintf("FAKETIME=%+d", int64(offset/time.Second)),
				"FAKETIME_DONT_FAKE_MONOTONIC=1",
			}, nil
		}
	}
	return nil, errors.New("lab: libfaketime not found (scripts/setup.sh installs it)")
}
