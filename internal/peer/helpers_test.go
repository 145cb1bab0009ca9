package peer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// The two servers of the loopback tests. Linux routes all of 127/8 to lo.
var (
	addrA = netip.MustParseAddr("127.0.0.1")
	addrB = netip.MustParseAddr("127.0.0.2")
)

// freePort returns a TCP port that was free on ip a moment ago.
func freePort(t *testing.T, ip netip.Addr) int {
	t.Helper()
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// logBuffer collects a Link's log lines; the test prints them if it fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(substr string) int { return strings.Count(b.String(), substr) }

// recorder keeps every event of a Link, for tests to wait on.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced at every event
	closed  bool          // Events was closed
}

func record(l *Link) *recorder {
	r := &recorder{changed: make(chan struct{})}
	go func() {
		for ev := range l.Events() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
		r.mu.Lock()
		r.closed = true
		close(r.changed)
		r.mu.Unlock()
	}()
	return r
}

func (r *recorder) snapshot() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// wait returns the first event at index from or later that pred accepts,
// and the index after it.
func (r *recorder) wait(t *testing.T, from int, timeout time.Duration, what string, pred func(Event) bool) (Event, int) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i := from; i < len(r.events); i++ {
			if pred(r.events[i]) {
				ev := r.events[i]
				r.mu.Unlock()
				return ev, i + 1
			}
		}
		from = len(r.events)
		changed, closed := r.changed, r.closed
		r.mu.Unlock()
		if closed {
			t.Fatalf("waiting for %s: the event channel was closed", what)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s within %v; events: %s", what, timeout, describe(r.snapshot()))
		}
	}
}

// up returns the connection that is up: the last Up with no Down after it.
func (r *recorder) up() (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cur Event
	ok := false
	for _, ev := range r.events {
		switch ev.Kind {
		case EventUp:
			cur, ok = ev, true
		case EventDown:
			if ok && ev.Conn == cur.Conn {
				ok = false
			}
		}
	}
	return cur, ok
}

func describe(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString("\n  ")
		b.WriteString(ev.Kind.String())
		b.WriteString(" conn=")
		b.WriteString(ev.Remote.String())
		switch ev.Kind {
		case EventUp:
			if ev.Inbound {
				b.WriteString(" inbound")
			}
		case EventDown:
			b.WriteString(" cause=" + string(ev.Cause))
			if ev.Err != nil {
				b.WriteString(" err=" + ev.Err.Error())
			}
		case EventMessage:
			b.WriteString(" " + ev.Message.Type.String())
		}
	}
	return b.String()
}

func isKind(k EventKind) func(Event) bool { return func(ev Event) bool { return ev.Kind == k } }

// downOf matches the Down of connection conn.
func downOf(conn ConnID) func(Event) bool {
	return func(ev Event) bool { return ev.Kind == EventDown && ev.Conn == conn }
}

// started is a running Link with its recorder and logs.
type started struct {
	*Link
	rec  *recorder
	logs *logBuffer
	stop func() // cancels Run and waits for it
}

// start runs a Link for cfg until the test ends (or stop is called). The
// logger and Metrics are filled in when cfg leaves them nil.
func start(t *testing.T, cfg Config) *started {
	t.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	l := New(cfg)
	rec := record(l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run of %s did not return after its context ended", cfg.Name)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("log of link %s:\n%s", cfg.Name, logs.String())
		}
	})
	return &started{Link: l, rec: rec, logs: logs, stop: stop}
}

// testConfig is server A's side: 127.0.0.1 listening on a free port,
// dialling peerPort on 127.0.0.2, with short timers.
func testConfig(t *testing.T, port, peerPort int) Config {
	return Config{
		Name:             "tandem-test",
		LocalAddr:        addrA.String(),
		Port:             port,
		PeerAddr:         addrB.String(),
		PeerPort:         peerPort,
		MaxResponseDelay: 10 * time.Second,
		RedialInterval:   50 * time.Millisecond,
		RedialMax:        200 * time.Millisecond,
		DialTimeout:      2 * time.Second,
	}
}

// rawPeer plays server B by hand: it listens on 127.0.0.2 for A's dials.
type rawPeer struct {
	ln   net.Listener
	port int
}

func newRawPeer(t *testing.T) *rawPeer {
	t.Helper()
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(addrB, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &rawPeer{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
}

func (p *rawPeer) accept(t *testing.T, timeout time.Duration) net.Conn {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := p.ln.Accept()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(timeout):
		p.ln.Close() // ends the Accept
		t.Fatalf("the link did not dial the peer within %v", timeout)
		return nil
	}
}

// readMessage reads one message from a raw connection.
func readMessage(t *testing.T, c net.Conn, timeout time.Duration) *wire.Message {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	m, err := wire.NewReader(c).ReadMessage()
	if err != nil {
		t.Fatalf("reading a message from the link: %v", err)
	}
	return m
}

// expectClosed checks that the other end closed c: a read ends with EOF
// (or a reset) rather than data or a timeout.
func expectClosed(t *testing.T, c net.Conn, timeout time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	var buf [4096]byte
	for {
		n, err := c.Read(buf[:])
		if err == nil {
			continue // what the link sent before closing
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v (%d more bytes)", timeout, n)
		}
		return
	}
}

func writeRaw(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func encode(t *testing.T, m *wire.Message) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// value sums the counters and gauges that c collects.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		}
	}
	return sum
}

// eventually polls cond until it holds, failing after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
