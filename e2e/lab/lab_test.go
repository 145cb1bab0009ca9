package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// needs skips the test unless it runs as root with every program in progs.
func needs(t *testing.T, progs ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network namespaces need root")
	}
	for _, p := range append([]string{"ip"}, progs...) {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: %s not installed (scripts/setup.sh installs it)", p)
		}
	}
}

func TestTopology(t *testing.T) {
	needs(t)
	l := New(t, Options{Clients: 2})

	if got, want := len(l.Servers), 2; got != want {
		t.Fatalf("servers: got %d, want %d", got, want)
	}
	wantAddrs := map[*Host][]string{
		l.Servers[0]: {"198.18.0.1/24"},
		l.Servers[1]: {"198.18.0.2/24"},
		l.Relay:      {"198.18.0.3/24", "198.19.0.1/16"},
		l.Clients[0]: nil,
		l.Clients[1]: nil,
	}
	for h, want := range wantAddrs {
		out, err := h.Run("ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range strings.Fields(out) {
			if _, err := netip.ParsePrefix(f); err == nil {
				got = append(got, f)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s addresses: got %v, want %v", h.Name, got, want)
		}
		link, err := h.Run("ip", "-o", "link", "show", "dev", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(link, h.MAC.String()) {
			t.Errorf("%s: eth0 is not %s: %s", h.Name, h.MAC, link)
		}
	}

	// A server answers the relay's second address through the route via
	// the relay host: what relayed DHCP replies depend on.
	srv := l.Servers[1]
	ln, err := srv.Listen("tcp4", srv.IP.String()+":7001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echoOnce(ln)
	var conn net.Conn
	err = l.Relay.Do(func() error {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: RelayIP.AsSlice()}}
		var err error
		conn, err = d.Dial("tcp4", srv.IP.String()+":7001")
		return err
	})
	if err != nil {
		t.Fatalf("relay (from %s) to %s: %v", RelayIP, srv.IP, err)
	}
	defer conn.Close()
	if got := conn.LocalAddr().(*net.TCPAddr).IP.String(); got != RelayIP.String() {
		t.Errorf("connection from %s, want %s", got, RelayIP)
	}
	if err := roundTrip(conn); err != nil {
		t.Fatal(err)
	}

	// Labs are independent: a second one gets its own names.
	l2 := New(t, Options{Servers: 1})
	for _, ns := range l2.Namespaces() {
		if slices.Contains(l.Namespaces(), ns) {
			t.Errorf("namespace %s shared by two labs", ns)
		}
	}
}

func echoOnce(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(c, c)
}

func roundTrip(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping\n" {
		return fmt.Errorf("echo returned %q", buf)
	}
	return nil
}

// tcpReach reports whether from can open a TCP connection to to's listener
// on port within timeout, and the dial error if not.
func tcpReach(t *testing.T, from, to *Host, port int, timeout time.Duration) error {
	t.Helper()
	ln, err := to.Listen("tcp4", net.JoinHostPort(to.IP.String(), strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echoOnce(ln)
	c, err := from.Dial("tcp4", net.JoinHostPort(to.IP.String(), strconv.Itoa(port)), timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	return roundTrip(c)
}

func TestBlock(t *testing.T) {
	needs(t, "nft")
	l := New(t, Options{})
	a, b := l.Servers[0], l.Servers[1]

	if err := tcpReach(t, a, b, 7002, 3*time.Second); err != nil {
		t.Fatalf("before Block: %v", err)
	}
	a.Block(b.IP)
	// a's TCP packets are dropped on output …
	var ne net.Error
	if err := tcpReach(t, a, b, 7003, time.Second); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("a to b while blocked: got %v, want a timeout", err)
	}
	// … and b's on a's input.
	if err := tcpReach(t, b, a, 7004, time.Second); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("b to a while blocked: got %v, want a timeout", err)
	}
	// A datagram send from a is refused locally.
	pc, err := a.ListenPacket("udp4", a.IP.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: b.IP.AsSlice(), Port: 9}); !errors.Is(err, syscall.EPERM) {
		t.Errorf("UDP from a to b while blocked: got %v, want EPERM", err)
	}
	// Others still reach a.
	if err := tcpReach(t, l.Relay, a, 7005, 3*time.Second); err != nil {
		t.Errorf("relay to a while a blocks b: %v", err)
	}
	if got := a.Blocked(); !slices.Equal(got, []netip.Addr{b.IP}) {
		t.Errorf("Blocked() = %v, want [%s]", got, b.IP)
	}
	a.Unblock(b.IP)
	a.Unblock(b.IP) // a no-op
	if err := tcpReach(t, a, b, 7006, 3*time.Second); err != nil {
		t.Errorf("after Unblock: %v", err)
	}
	if err := tcpReach(t, b, a, 7007, 3*time.Second); err != nil {
		t.Errorf("after Unblock, b to a: %v", err)
	}
}

func TestPartition(t *testing.T) {
	needs(t, "nft")
	l := New(t, Options{})
	a, b := l.Servers[0], l.Servers[1]

	l.Partition(a.IP, b.IP)
	var ne net.Error
	if err := tcpReach(t, a, b, 7010, time.Second); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("a to b while partitioned: got %v, want a timeout", err)
	}
	if err := tcpReach(t, b, a, 7011, time.Second); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("b to a while partitioned: got %v, want a timeout", err)
	}
	if err := tcpReach(t, l.Relay, b, 7012, 3*time.Second); err != nil {
		t.Errorf("relay to b while a and b are partitioned: %v", err)
	}
	l.Heal(b.IP, a.IP) // either order
	if err := tcpReach(t, a, b, 7013, 3*time.Second); err != nil {
		t.Errorf("after Heal: %v", err)
	}
}

func TestProcLifecycle(t *testing.T) {
	needs(t, "sh")
	l := New(t, Options{Servers: 1})
	h := l.Servers[0]

	p := h.Start("echo", "sh", "-c", `echo "ready $(ip -4 -o addr show dev eth0 | wc -l)"; exec sleep 600`)
	m := p.WaitForLog(`^ready (\d+)$`, 5*time.Second)
	if m[1] != "1" {
		t.Errorf("process does not see its namespace's address: %q", m[0])
	}
	if err := p.Wait(100 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Wait on a running process: %v, want ErrTimeout", err)
	}
	p.Kill9()
	if !p.Exited() || p.ExitCode() != -1 {
		t.Errorf("after Kill9: exited %v code %d", p.Exited(), p.ExitCode())
	}

	q := h.Start("term", "sh", "-c", `trap 'echo got TERM; exit 7' TERM; echo up; while :; do sleep 0.1; done`)
	q.WaitForLog(`^up$`, 5*time.Second)
	mark := q.LogSize()
	q.Term()
	if err := q.Wait(5 * time.Second); err == nil || q.ExitCode() != 7 {
		t.Errorf("after Term: err %v code %d, want exit status 7", err, q.ExitCode())
	}
	if _, err := q.AwaitLog(mark, `got TERM`, time.Second); err != nil {
		t.Error(err)
	}

	r := h.Start("quiet", "sh", "-c", "echo nothing; exit 3")
	if _, err := r.AwaitLog(0, `never printed`, 5*time.Second); err == nil || errors.Is(err, ErrTimeout) {
		t.Errorf("AwaitLog on an exited process: %v, want an early failure", err)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	needs(t, "sh", "setsid")
	s, err := NewSession("close-test", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l := New(s, Options{Clients: 1})
	p := l.Servers[0].Start("sleeper", "sleep", "600")
	// A process that leaves the lab's process group, as a daemon would.
	q := l.Clients[0].Start("escaper", "sh", "-c", `setsid sleep 600 & echo "child $!"; wait`)
	child, err := strconv.Atoi(q.WaitForLog(`child (\d+)`, 5*time.Second)[1])
	if err != nil {
		t.Fatal(err)
	}
	nss := l.Namespaces()
	if len(nss) != 5 {
		t.Fatalf("namespaces %v, want bridge + 2 servers + relay + 1 client", nss)
	}

	s.Close()
	s.Close()
	l.Close()

	left, err := ListNamespaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if slices.Contains(left, ns) {
			t.Errorf("namespace %s still exists", ns)
		}
	}
	for _, pid := range []int{p.PID, q.PID, child} {
		if alive(pid) {
			t.Errorf("process %d still alive after Close", pid)
		}
	}
}

// alive reports whether pid exists and is not a zombie waiting for its
// parent (an orphan's reaping by init is not ours to wait for).
func alive(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && strings.HasPrefix(s[i+1:], " Z") {
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSweepStale(t *testing.T) {
	needs(t)
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// No process can have a PID above pid_max: this namespace's owner is dead.
	stale := fmt.Sprintf("tdm%d-1-srv1", pidMax+1)
	if err := ipCmd("netns", "add", stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deleteNamespace(stale) })
	// A namespace of a live process (ours, but not a lab) must survive.
	ours := fmt.Sprintf("tdm%d-999999-x", os.Getppid())
	if err := ipCmd("netns", "add", ours); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deleteNamespace(ours) })

	New(t, Options{Servers: 1})

	left, err := ListNamespaces()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(left, stale) {
		t.Errorf("stale namespace %s survived New", stale)
	}
	if !slices.Contains(left, ours) {
		t.Errorf("namespace %s of a live process was removed", ours)
	}
}

func TestRunInNamespace(t *testing.T) {
	needs(t)
	l := New(t, Options{Servers: 1})
	out, err := l.Servers[0].Command(context.Background(), "ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	// Only lo and eth0: the command ran in the host's namespace.
	if n := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; n != 2 {
		t.Errorf("%d links in the server namespace, want 2:\n%s", n, out)
	}
}

// failingTB is a TB whose owner fails: Fatalf ends the calling goroutine
// like testing.T's does, and cleanups run afterwards, as testing runs them.
type failingTB struct {
	dir      string
	mu       sync.Mutex
	logs     []string
	cleanups []func()
	failed   bool
}

func (f *failingTB) Helper()      {}
func (f *failingTB) Name() string { return "failing" }
func (f *failingTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *failingTB) Fatalf(format string, args ...any) {
	f.Logf(format, args...)
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *failingTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}
func (f *failingTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *failingTB) TempDir() string   { return f.dir }

func TestCleanupAfterFailure(t *testing.T) {
	needs(t)
	tb := &failingTB{dir: t.TempDir()}
	var l *Lab
	var p *Proc
	done := make(chan struct{})
	go func() {
		defer close(done)
		l = New(tb, Options{Servers: 1})
		p = l.Servers[0].Start("talker", "sh", "-c", "echo last words; exec sleep 600")
		p.WaitForLog("last words", 5*time.Second)
		tb.Fatalf("the test fails here")
	}()
	<-done
	if l == nil || p == nil {
		t.Fatalf("lab setup failed: %v", tb.logs)
	}
	nss := l.Namespaces()
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
	if !p.Exited() {
		t.Error("process still running after cleanup")
	}
	left, err := ListNamespaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if slices.Contains(left, ns) {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	// The failed owner gets the processes' last lines.
	if !slices.ContainsFunc(tb.logs, func(s string) bool { return strings.Contains(s, "last words") }) {
		t.Errorf("no log dump after failure; logs: %q", tb.logs)
	}
}
