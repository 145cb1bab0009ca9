package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DHClientOptions shape a DHClient's dhclient.conf.
type DHClientOptions struct {
	// ClientID, when set, is sent as the client identifier (option 61) so
	// the server keys the lease on it instead of the MAC.
	ClientID string
	// Hostname, when set, is sent as option 12.
	Hostname string
	// RenewalTime and RebindingTime, when set, override T1 and T2 on the
	// client side ("supersede"), whatever the server says. A short
	// RenewalTime makes the running client renew soon after binding.
	RenewalTime   time.Duration
	RebindingTime time.Duration
	// LeaseTime, when set, is requested from the server (option 51).
	LeaseTime time.Duration
	// ExtraConf is appended to dhclient.conf.
	ExtraConf string
}

// DHClient drives ISC dhclient on one client host. Give each DHClient a
// host of its own: dhclient configures the leased address on the
// interface (through the lab's hook script), which it needs to renew by
// unicast, and two clients on one interface would fight over it.
type DHClient struct {
	Host       *Host
	Dir        string
	ConfPath   string
	LeasePath  string
	PIDPath    string
	HookPath   string
	EventsPath string

	mu     sync.Mutex
	proc   *Proc
	cursor int // events before cursor have been consumed by a wait
}

// ClientEvent is one run of dhclient's hook script.
type ClientEvent struct {
	At time.Time
	// Reason is dhclient's $reason: PREINIT, BOUND, RENEW, REBIND, REBOOT,
	// EXPIRE, FAIL, RELEASE, STOP, TIMEOUT …
	Reason string
	// IP, LeaseTime and ServerID describe the new lease (zero if none).
	IP        netip.Addr
	LeaseTime time.Duration
	ServerID  netip.Addr
	// OldIP is the address the client held before this event.
	OldIP netip.Addr
}

// The hook configures the address like the stock dhclient-script would
// (without routes or DNS), then records the event. Recording last means
// that when a wait sees BOUND the address is already usable.
const dhclientHook = `#!/bin/sh
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
	if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
		ip -4 addr del "$old_ip_address/$old_subnet_mask" dev "$interface" 2>/dev/null
	fi
	ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
	;;
EXPIRE|FAIL|RELEASE|STOP)
	if [ -n "$old_ip_address" ]; then
		ip -4 addr del "$old_ip_address/$old_subnet_mask" dev "$interface" 2>/dev/null
	fi
	;;
esac
echo "$(date +%%s.%%N) $reason ${new_ip_address:--} ${new_dhcp_lease_time:--} ${new_dhcp_server_identifier:--} ${old_ip_address:--}" >> %s
exit 0
`

// NewDHClient writes the config, hook and an empty lease file for a
// client on h. It does not start dhclient.
func NewDHClient(h *Host, o DHClientOptions) *DHClient {
	tb := h.lab.tb
	tb.Helper()
	dir := filepath.Join(h.lab.Dir, h.lab.uniqueName("dir", h.Name+"-dhclient"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("lab: %v", err)
	}
	c := &DHClient{
		Host:       h,
		Dir:        dir,
		ConfPath:   filepath.Join(dir, "dhclient.conf"),
		LeasePath:  filepath.Join(dir, "dhclient.leases"),
		PIDPath:    filepath.Join(dir, "dhclient.pid"),
		HookPath:   filepath.Join(dir, "hook.sh"),
		EventsPath: filepath.Join(dir, "events"),
	}
	files := []struct {
		path, content string
		mode          os.FileMode
	}{
		{c.ConfPath, dhclientConf(o), 0o644},
		{c.HookPath, fmt.Sprintf(dhclientHook, shellQuote(c.EventsPath)), 0o755},
		{c.LeasePath, "", 0o644},
		{c.EventsPath, "", 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, []byte(f.content), f.mode); err != nil {
			tb.Fatalf("lab: %v", err)
		}
	}
	return c
}

func dhclientConf(o DHClientOptions) string {
	var b strings.Builder
	// Retransmit quickly: tests measure behaviour, not dhclient's patience.
	b.WriteString("initial-interval 1;\nbackoff-cutoff 2;\n")
	if o.ClientID != "" {
		fmt.Fprintf(&b, "send dhcp-client-identifier %q;\n", o.ClientID)
	}
	if o.Hostname != "" {
		fmt.Fprintf(&b, "send host-name %q;\n", o.Hostname)
	}
	if o.LeaseTime > 0 {
		fmt.Fprintf(&b, "send dhcp-lease-time %d;\n", seconds(o.LeaseTime))
	}
	if o.RenewalTime > 0 {
		fmt.Fprintf(&b, "supersede dhcp-renewal-time %d;\n", seconds(o.RenewalTime))
	}
	if o.RebindingTime > 0 {
		fmt.Fprintf(&b, "supersede dhcp-rebinding-time %d;\n", seconds(o.RebindingTime))
	}
	b.WriteString(o.ExtraConf)
	return b.String()
}

func seconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (c *DHClient) argv(extra ...string) []string {
	a := []string{"dhclient", "-4"}
	a = append(a, extra...)
	return append(a, "-cf", c.ConfPath, "-lf", c.LeasePath, "-pf", c.PIDPath, "-sf", c.HookPath, c.Host.Iface)
}

// Proc is the running (or last) dhclient; nil before Acquire.
func (c *DHClient) Proc() *Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc
}

// Acquire starts `dhclient -1 -d` and waits up to timeout for it to bind
// (BOUND, or REBOOT when the lease file already holds a lease). dhclient
// keeps running afterwards and renews at T1 like a real client; Stop or
// Release ends it. If no lease comes in time the client is stopped and the
// error wraps ErrTimeout.
func (c *DHClient) Acquire(timeout time.Duration) (ClientEvent, error) {
	c.Host.lab.tb.Helper()
	c.mu.Lock()
	if c.proc != nil && !c.proc.Exited() {
		c.mu.Unlock()
		return ClientEvent{}, fmt.Errorf("dhclient on %s is already running", c.Host.Name)
	}
	c.mu.Unlock()
	// Only events from this run count.
	evs, err := c.Events()
	if err != nil {
		return ClientEvent{}, err
	}
	_ = os.Remove(c.PIDPath)
	p, err := c.Host.start("dhclient", nil, c.argv("-1", "-d"))
	if err != nil {
		return ClientEvent{}, err
	}
	c.mu.Lock()
	c.proc = p
	c.cursor = len(evs)
	c.mu.Unlock()
	ev, err := c.WaitEvent(timeout, "BOUND", "REBOOT")
	if err != nil {
		p.kill(syscall.SIGKILL)
		<-p.done
		return ClientEvent{}, fmt.Errorf("dhclient on %s got no lease: %w", c.Host.Name, err)
	}
	if err := c.awaitLeaseWritten(ev.IP, 5*time.Second); err != nil {
		return ClientEvent{}, err
	}
	return ev, nil
}

// awaitLeaseWritten waits until dhclient's lease file holds a lease for ip.
// dhclient runs the hook (the event) before it writes its lease file
// (bind_lease in client/dhclient.c), so a client stopped right after the
// event may restart without the lease and DISCOVER instead of INIT-REBOOT.
func (c *DHClient) awaitLeaseWritten(ip netip.Addr, timeout time.Duration) error {
	want := "fixed-address " + ip.String() + ";"
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(c.LeasePath)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dhclient on %s bound %s but its lease file %s does not hold it after %v", c.Host.Name, ip, c.LeasePath, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitEvent waits for the next hook event (after those already consumed
// by a wait) whose reason is one of reasons, or any event if none are
// given; it consumes the events it passes over. It fails early if dhclient
// exits first.
func (c *DHClient) WaitEvent(timeout time.Duration, reasons ...string) (ClientEvent, error) {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		p := c.proc
		c.mu.Unlock()
		exited := p != nil && p.Exited()
		evs, err := c.Events()
		if err != nil {
			return ClientEvent{}, err
		}
		c.mu.Lock()
		for c.cursor < len(evs) {
			ev := evs[c.cursor]
			c.cursor++
			if len(reasons) == 0 || contains(reasons, ev.Reason) {
				c.mu.Unlock()
				return ev, nil
			}
		}
		c.mu.Unlock()
		if exited {
			return ClientEvent{}, fmt.Errorf("dhclient exited (%v) before %v; last lines:\n%s",
				p.waitErr, reasons, tail(p.Log(), 15))
		}
		if time.Now().After(deadline) {
			return ClientEvent{}, fmt.Errorf("no %v event within %v: %w", reasons, timeout, ErrTimeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// WaitRenew waits for the running client's next renewal, reason RENEW
// (unicast to its server at T1) or REBIND (broadcast at T2). Make T1 short
// with DHClientOptions.RenewalTime or a short lease on the server.
func (c *DHClient) WaitRenew(timeout time.Duration) (ClientEvent, error) {
	return c.WaitEvent(timeout, "RENEW", "REBIND")
}

// Reboot stops the running client without releasing and starts it again on
// the same lease file: dhclient then asks to keep its address in
// INIT-REBOOT (RFC 2131 section 3.2), reason REBOOT if the server agrees,
// BOUND if it had to start over.
func (c *DHClient) Reboot(timeout time.Duration) (ClientEvent, error) {
	c.Host.lab.tb.Helper()
	c.Stop()
	return c.Acquire(timeout)
}

// Release runs `dhclient -r`, which stops the running client and sends
// DHCPRELEASE for the lease in the lease file, and waits for the RELEASE
// event.
func (c *DHClient) Release(timeout time.Duration) error {
	c.Host.lab.tb.Helper()
	c.mu.Lock()
	running := c.proc
	c.mu.Unlock()
	p, err := c.Host.start("dhclient-release", nil, c.argv("-r"))
	if err != nil {
		return err
	}
	if err := p.Wait(timeout); err != nil {
		p.kill(syscall.SIGKILL)
		return fmt.Errorf("dhclient -r on %s: %w; log:\n%s", c.Host.Name, err, tail(p.Log(), 15))
	}
	if running != nil {
		// dhclient -r signals the running instance through its PID file.
		if err := running.Wait(timeout); errors.Is(err, ErrTimeout) {
			running.kill(syscall.SIGKILL)
		}
	}
	_, err = c.WaitEvent(time.Second, "RELEASE")
	return err
}

// Stop ends the running client without releasing its lease (SIGTERM, then
// SIGKILL after 5 s). It does nothing if no client runs.
func (c *DHClient) Stop() {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p == nil || p.Exited() {
		return
	}
	p.Term()
	if err := p.Wait(5 * time.Second); errors.Is(err, ErrTimeout) {
		p.kill(syscall.SIGKILL)
		<-p.done
	}
}

// Address is the IPv4 address currently configured on the client's
// interface, if any.
func (c *DHClient) Address() (netip.Addr, error) {
	out, err := c.Host.Run("ip", "-4", "-o", "addr", "show", "dev", c.Host.Iface)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, nil
}

// Events returns every hook event recorded so far, oldest first.
func (c *DHClient) Events() ([]ClientEvent, error) {
	b, err := os.ReadFile(c.EventsPath)
	if err != nil {
		return nil, err
	}
	return parseClientEvents(string(b))
}

func parseClientEvents(s string) ([]ClientEvent, error) {
	lines := strings.Split(s, "\n")
	// Whatever follows the last newline is a line still being written.
	lines = lines[:len(lines)-1]
	evs := make([]ClientEvent, 0, len(lines))
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 6 {
			return nil, fmt.Errorf("event line %q: want 6 fields", line)
		}
		ts, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("event line %q: %v", line, err)
		}
		sec := int64(ts)
		ev := ClientEvent{At: time.Unix(sec, int64((ts-float64(sec))*1e9)), Reason: f[1]}
		var errs [3]error
		ev.IP, errs[0] = parseOptAddr(f[2])
		ev.ServerID, errs[1] = parseOptAddr(f[4])
		ev.OldIP, errs[2] = parseOptAddr(f[5])
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("event line %q: %v", line, err)
		}
		if f[3] != "-" {
			n, err := strconv.Atoi(f[3])
			if err != nil {
				return nil, fmt.Errorf("event line %q: %v", line, err)
			}
			ev.LeaseTime = time.Duration(n) * time.Second
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

func parseOptAddr(s string) (netip.Addr, error) {
	if s == "-" {
		return netip.Addr{}, nil
	}
	return netip.ParseAddr(s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
