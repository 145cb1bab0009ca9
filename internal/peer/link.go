package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// Defaults of Config (fw §5, §6).
const (
	DefaultMaxResponseDelay = 20 * time.Second
	DefaultRedialInterval   = 5 * time.Second
	DefaultRedialMax        = 30 * time.Second
	DefaultDialTimeout      = 10 * time.Second
	DefaultSendQueue        = 1024

	// MinReceiveTimeout is the least default ReceiveTimeout: past the
	// state machine's own limits on a silent link (max-response-delay,
	// and 15 s for the CONNECT handshake), with room for its once-a-second
	// ticks and for the lease-file write that precedes its close.
	MinReceiveTimeout = time.Minute
)

// eventBuffer lets the server loop take a burst of messages in one drain.
// When it is full the reader stops reading, and TCP pushes back on the peer.
const eventBuffer = 64

// Errors of Send.
var (
	// ErrNotConnected: the connection named is not (or no longer) the link.
	ErrNotConnected = errors.New("peer: no such link")
	// ErrQueueFull: the send queue overflowed; the link has been closed.
	ErrQueueFull = errors.New("peer: send queue full; link closed")
)

// Config describes one failover relationship's link. Addresses are IPv4
// literals or host names (resolved once, when Run starts, as ISC resolves
// them when it reads its configuration).
type Config struct {
	// Name is the relationship name (failover peer "NAME"), used in logs.
	Name string
	// LocalAddr is the "address" statement: the address to listen on and to
	// dial from. Empty means any address.
	LocalAddr string
	// Port is the listening port; 0 means 647 (fw §0 rule 1).
	Port int
	// PeerAddr is the "peer address": where to dial, and the only source
	// accepted connections may come from. Every address it resolves to is
	// accepted; the first is dialled.
	PeerAddr string
	// PeerPort is the port to dial; 0 means 647.
	PeerPort int
	// MaxResponseDelay is our own max-response-delay; a write that stalls
	// this long closes the link. 0 means 20 s (fw §6).
	MaxResponseDelay time.Duration
	// ReceiveTimeout is how long the link waits for anything from the
	// peer before it closes the link itself. The state machine closes a
	// silent link after max-response-delay (fw §6) and sends the CONTACTs
	// that keep the peer's timer from firing; this is only a backstop for
	// a caller that does not, so that a dead connection is not kept for
	// ever. 0 means twice MaxResponseDelay, and at least
	// MinReceiveTimeout.
	ReceiveTimeout time.Duration
	// RedialInterval is the wait after a link ends, and after a first failed
	// dial; 0 means 5 s. RedialMax caps the doubling after further failures;
	// 0 means 30 s (see the package comment).
	RedialInterval time.Duration
	RedialMax      time.Duration
	// DialTimeout bounds one connection attempt; 0 means 10 s.
	DialTimeout time.Duration
	// SendQueue is how many messages may wait to be written; a Send that
	// finds the queue full closes the link. 0 means 1024.
	SendQueue int

	// Listen and Dial open the sockets. nil means the standard library's,
	// with Dial bounded by DialTimeout through ctx. Tests use them to open
	// sockets inside a network namespace.
	Listen func(ctx context.Context, local netip.AddrPort) (net.Listener, error)
	Dial   func(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error)

	Logger  *slog.Logger // nil means slog.Default()
	Metrics *Metrics     // nil means private, unregistered collectors
}

// ConnID names one connection: each link that comes up gets the next
// number, starting at 1.
type ConnID uint64

// EventKind tells what an Event reports.
type EventKind uint8

// Event kinds. For one ConnID, Up comes first, then its Messages in the
// order they arrived, then Down; a connection's Down comes before the next
// connection's Up.
const (
	EventUp      EventKind = iota + 1 // a link is established
	EventDown                         // the link ended
	EventMessage                      // a message arrived on the link
)

func (k EventKind) String() string {
	switch k {
	case EventUp:
		return "up"
	case EventDown:
		return "down"
	case EventMessage:
		return "message"
	}
	return fmt.Sprintf("event-kind-%d", uint8(k))
}

// Cause says why a link ended. The values are the label values of
// tandem_peer_disconnects_total.
type Cause string

const (
	CauseClosed     Cause = "closed"        // Link.Close
	CausePeerClosed Cause = "peer_closed"   // the peer closed the connection
	CauseTimeout    Cause = "timeout"       // nothing received for ReceiveTimeout
	CauseMalformed  Cause = "malformed"     // a bad length or an undecodable message
	CauseReadError  Cause = "read_error"    // the connection failed while reading
	CauseWriteError Cause = "write_error"   // the connection failed (or stalled) while writing
	CauseOverflow   Cause = "send_overflow" // the send queue was full
	CauseShutdown   Cause = "shutdown"      // Run's context ended
	CauseReplaced   Cause = "replaced"      // a newer connection became the link (see Link.keeps)
)

var allCauses = []Cause{CauseClosed, CausePeerClosed, CauseTimeout, CauseMalformed,
	CauseReadError, CauseWriteError, CauseOverflow, CauseShutdown, CauseReplaced}

// Event is what the Link tells the server loop.
type Event struct {
	Kind EventKind
	Conn ConnID
	// Local and Remote are our end and the peer's end of the connection.
	Local, Remote netip.AddrPort
	// Inbound: the peer dialled us (Up only).
	Inbound bool
	// Cause and Err say why the link ended (Down only). Err has the details
	// (the caller's reason for CauseClosed); it may be nil.
	Cause Cause
	Err   error
	// Message is the decoded message (Message only).
	Message *wire.Message
}

// Link keeps one TCP link to the failover peer. Create it with New, start
// it with Run, read Events and Send messages. Send and Close may be called
// from any goroutine.
type Link struct {
	cfg    Config
	log    *slog.Logger
	m      *Metrics
	events chan Event

	running atomic.Bool
	runCtx  context.Context
	wg      sync.WaitGroup

	// From the configuration, resolved by Run.
	local   netip.Addr
	peerIPs []netip.Addr
	remote  netip.AddrPort

	mu       sync.Mutex
	cur      *conn
	lastID   ConnID
	stopping bool
}

// New returns a Link for cfg, with defaults applied. It opens nothing
// until Run.
func New(cfg Config) *Link {
	if cfg.Port == 0 {
		cfg.Port = wire.Port
	}
	if cfg.PeerPort == 0 {
		cfg.PeerPort = wire.Port
	}
	if cfg.MaxResponseDelay <= 0 {
		cfg.MaxResponseDelay = DefaultMaxResponseDelay
	}
	if cfg.ReceiveTimeout <= 0 {
		cfg.ReceiveTimeout = max(2*cfg.MaxResponseDelay, MinReceiveTimeout)
	}
	if cfg.RedialInterval <= 0 {
		cfg.RedialInterval = DefaultRedialInterval
	}
	if cfg.RedialMax <= 0 {
		cfg.RedialMax = DefaultRedialMax
	}
	cfg.RedialMax = max(cfg.RedialMax, cfg.RedialInterval)
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = DefaultSendQueue
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Link{
		cfg:    cfg,
		log:    log.With("failover_peer", cfg.Name),
		m:      cfg.Metrics,
		events: make(chan Event, eventBuffer),
	}
}

// Events delivers the link's events. It is closed when Run returns. After
// Run's context ends, events that nobody takes are dropped.
func (l *Link) Events() <-chan Event { return l.events }

// Metrics returns the link's collectors (Config.Metrics, or the private
// ones New made).
func (l *Link) Metrics() *Metrics { return l.m }

// Run listens for the peer and dials it, and keeps a link up, until ctx
// ends; then it closes the link, waits for every goroutine it started and
// returns nil. It fails at once if the addresses do not resolve, or if Run
// was called before.
func (l *Link) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("peer: Run called twice")
	}
	defer close(l.events)
	if err := l.resolve(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.runCtx = ctx
	l.wg.Add(2)
	go l.listenLoop(ctx)
	go l.dialLoop(ctx)
	<-ctx.Done()

	l.mu.Lock()
	l.stopping = true
	c := l.cur
	l.mu.Unlock()
	if c != nil {
		c.closeWith(CauseShutdown, nil)
	}
	l.wg.Wait()
	return nil
}

func (l *Link) resolve(ctx context.Context) error {
	if l.cfg.PeerAddr == "" {
		return errors.New("peer: no peer address")
	}
	peers, err := resolveIPv4(ctx, l.cfg.PeerAddr)
	if err != nil {
		return fmt.Errorf("peer: failover peer %s: peer address: %w", l.cfg.Name, err)
	}
	l.peerIPs = peers
	l.remote = netip.AddrPortFrom(peers[0], uint16(l.cfg.PeerPort))
	l.local = netip.IPv4Unspecified()
	if l.cfg.LocalAddr != "" {
		locals, err := resolveIPv4(ctx, l.cfg.LocalAddr)
		if err != nil {
			return fmt.Errorf("peer: failover peer %s: address: %w", l.cfg.Name, err)
		}
		l.local = locals[0]
	}
	return nil
}

// resolveIPv4 accepts an IPv4 literal or a host name; the failover protocol
// is IPv4 only.
func resolveIPv4(ctx context.Context, s string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a = a.Unmap(); !a.Is4() {
			return nil, fmt.Errorf("%s is not an IPv4 address", s)
		}
		return []netip.Addr{a}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", s)
	if err != nil {
		return nil, err
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s has no IPv4 address", s)
	}
	return addrs, nil
}

// Send queues m for the connection conn and returns at once. The message
// is encoded here, so an unencodable message is an error and the link is
// untouched. It fails with ErrNotConnected if conn is not the current link,
// and with ErrQueueFull, after closing the link, if the writer is too far
// behind: a peer that does not read is no better than a dead one, and the
// caller's loop must never block on it. A nil error means queued, not
// delivered. The header's time is stamped when the message is written,
// unless m.Time is non-zero; the xid is the caller's.
func (l *Link) Send(conn ConnID, m *wire.Message) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	c := l.conn(conn)
	if c == nil || c.closed() {
		return fmt.Errorf("%w: connection %d", ErrNotConnected, conn)
	}
	select {
	case c.queue <- b:
		return nil
	default:
	}
	err = fmt.Errorf("send queue full (%d messages)", cap(c.queue))
	if c.closeWith(CauseOverflow, err) {
		l.log.Warn("failover peer "+l.cfg.Name+": the link cannot keep up; closing it",
			"conn", c.id, "remote", c.remote, "err", err)
	}
	return fmt.Errorf("%w: connection %d", ErrQueueFull, conn)
}

// Close closes connection conn, if it is the current link, for reason
// (logged, and carried by the Down event): the state machine calls it when
// the peer broke the protocol. The link is redialled as after any drop.
func (l *Link) Close(conn ConnID, reason string) {
	c := l.conn(conn)
	if c == nil {
		return
	}
	if c.closed() {
		return
	}
	select {
	case c.closeReq <- errors.New(reason):
		l.log.Info("failover peer "+l.cfg.Name+": closing the link", "conn", c.id,
			"remote", c.remote, "reason", reason)
	default: // already asked
	}
}

// conn returns the current connection if its id is id.
func (l *Link) conn(id ConnID) *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || l.cur.id != id {
		return nil
	}
	return l.cur
}

func (l *Link) current() *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// emit delivers ev, giving up when Run's context ends; it reports whether
// the event was delivered.
func (l *Link) emit(ev Event) bool {
	select {
	case l.events <- ev:
		return true
	default:
	}
	select {
	case l.events <- ev:
		return true
	case <-l.runCtx.Done():
		return false
	}
}

// adopt makes nc the link, or closes it if the link in place is to stay
// (see keeps), or if Run is stopping. When nc is to replace the link, the
// old connection is closed and reported Down before nc comes Up. It
// returns the link now in place, nc's or the one that stayed; nil when
// stopping.
func (l *Link) adopt(nc net.Conn, remote netip.AddrPort, inbound bool) *conn {
	local := addrPortOf(nc.LocalAddr())
	for {
		l.mu.Lock()
		if l.stopping {
			l.mu.Unlock()
			nc.Close()
			return nil
		}
		cur := l.cur
		if cur == nil {
			l.lastID++
			c := newConn(l.lastID, nc, local, remote, inbound, l.cfg)
			l.cur = c
			l.wg.Add(1)
			l.mu.Unlock()
			go l.serve(c)
			return c
		}
		l.mu.Unlock()
		if l.keeps(cur, inbound, local.Addr(), remote.Addr()) {
			l.m.refused.WithLabelValues(RefusedDuplicate).Inc()
			l.log.Info("failover peer "+l.cfg.Name+": closing a second connection; the link stays",
				"remote", remote, "inbound", inbound, "dialled_by", l.dialler(inbound), "link_conn", cur.id,
				"link_remote", cur.remote, "link_dialled_by", l.dialler(cur.inbound))
			nc.Close()
			return cur
		}
		err := fmt.Errorf("replaced by a connection dialled by %s", l.dialler(inbound))
		if cur.closeWith(CauseReplaced, err) {
			l.log.Info("failover peer "+l.cfg.Name+": a new connection replaces the link",
				"remote", remote, "inbound", inbound, "dialled_by", l.dialler(inbound), "link_conn", cur.id,
				"link_remote", cur.remote, "link_dialled_by", l.dialler(cur.inbound))
		}
		// The old link's Down must precede the new one's Up.
		select {
		case <-cur.gone:
		case <-l.runCtx.Done():
			nc.Close()
			return nil
		}
	}
}

// keeps reports whether the link cur stays when another connection to the
// peer is established (inbound: the peer dialled it), local and remote
// being that connection's addresses.
//
// Each server dials only while it has no link, so a connection dialled by
// the side that dialled cur means that side has given cur up (it crashed
// and came back, or timed cur out): the new one replaces cur. (ISC refuses
// the new CONNECT instead, until its receive timer ends the old link.)
//
// When the two connections were dialled by different sides, both servers
// dialled at about the same time and each holds both connections, in
// either order. Both must keep the same one, so the connection dialled by
// the server with the greater listening address (IP, then port) wins on
// both sides. Before this rule each side kept the first it saw; when those
// differed both links ended and both redialled.
//
// Both addresses are taken from the connection, so both sides agree when
// each server dials from the address it listens on, which the "address"
// statement of the failover peer block ensures. Without it, on a host
// with several addresses, the sides may judge differently; then both links
// end and the redial jitter settles it, as it did before this rule.
func (l *Link) keeps(cur *conn, inbound bool, local, remote netip.Addr) bool {
	if cur.inbound == inbound {
		return false
	}
	ours := netip.AddrPortFrom(local, uint16(l.cfg.Port))
	theirs := netip.AddrPortFrom(remote, uint16(l.cfg.PeerPort))
	order := ours.Compare(theirs)
	if order == 0 { // both sides configured alike: the first link stays
		return true
	}
	dialledByUs := !cur.inbound
	return dialledByUs == (order > 0)
}

// dialler names the side that dialled a connection, for the logs.
func (l *Link) dialler(inbound bool) string {
	if inbound {
		return "the peer"
	}
	return "us"
}

// dialLoop dials the peer whenever there is no link (fw §5).
func (l *Link) dialLoop(ctx context.Context) {
	defer l.wg.Done()
	local := netip.AddrPortFrom(l.local, 0)
	var (
		delay    time.Duration // ISC dials at once on startup
		failures int
		lastErr  string
	)
	for {
		if delay > 0 && !sleep(ctx, jitter(delay)) {
			return
		}
		// ISC does not redial while a link exists (fw §5); the wait
		// after a drop counts from the drop.
		if c := l.current(); c != nil {
			if !waitGone(ctx, c) {
				return
			}
			delay, failures, lastErr = l.cfg.RedialInterval, 0, ""
			continue
		}
		nc, err := l.dial(ctx, local, l.remote)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			l.m.dialFailures.Inc()
			delay = backoff(l.cfg.RedialInterval, l.cfg.RedialMax, failures)
			// A peer that stays down would fill the log; report each new
			// kind of failure once.
			level := slog.LevelDebug
			if err.Error() != lastErr {
				level, lastErr = slog.LevelWarn, err.Error()
			}
			l.log.Log(ctx, level, "failover peer "+l.cfg.Name+": cannot connect",
				"remote", l.remote, "err", err, "attempt", failures, "retry_in", delay)
			continue
		}
		if c := l.adopt(nc, addrPortOf(nc.RemoteAddr()), false); c != nil && !waitGone(ctx, c) {
			return
		}
		delay, failures, lastErr = l.cfg.RedialInterval, 0, ""
	}
}

// waitGone waits until c is no longer the link; false if ctx ended first.
func waitGone(ctx context.Context, c *conn) bool {
	select {
	case <-c.gone:
		return true
	case <-ctx.Done():
		return false
	}
}

func (l *Link) dial(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.DialTimeout)
	defer cancel()
	if l.cfg.Dial != nil {
		return l.cfg.Dial(ctx, local, remote)
	}
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}
	return d.DialContext(ctx, "tcp4", remote.String())
}

// listenLoop listens on address:port and takes the peer's connections
// (fw §5). A listen that fails is retried like a dial.
func (l *Link) listenLoop(ctx context.Context) {
	defer l.wg.Done()
	addr := netip.AddrPortFrom(l.local, uint16(l.cfg.Port))
	var (
		failures int
		lastErr  string
	)
	for ctx.Err() == nil {
		ln, err := l.listen(ctx, addr)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			delay := backoff(l.cfg.RedialInterval, l.cfg.RedialMax, failures)
			level := slog.LevelDebug
			if err.Error() != lastErr {
				level, lastErr = slog.LevelError, err.Error()
			}
			l.log.Log(ctx, level, "failover peer "+l.cfg.Name+": cannot listen",
				"address", addr, "err", err, "retry_in", delay)
			sleep(ctx, jitter(delay))
			continue
		}
		failures, lastErr = 0, ""
		l.log.Info("failover peer "+l.cfg.Name+": listening", "address", ln.Addr().String())
		stop := context.AfterFunc(ctx, func() { ln.Close() })
		l.acceptLoop(ctx, ln)
		stop()
		ln.Close()
		if ctx.Err() == nil {
			sleep(ctx, jitter(l.cfg.RedialInterval))
		}
	}
}

func (l *Link) listen(ctx context.Context, addr netip.AddrPort) (net.Listener, error) {
	if l.cfg.Listen != nil {
		return l.cfg.Listen(ctx, addr)
	}
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp4", addr.String())
}

// acceptLoop accepts until the listener fails or closes.
func (l *Link) acceptLoop(ctx context.Context, ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and go on.
			l.log.Warn("failover peer "+l.cfg.Name+": accept failed", "err", err)
			if !sleep(ctx, min(time.Second, l.cfg.RedialInterval)) {
				return
			}
			continue
		}
		remote := addrPortOf(nc.RemoteAddr())
		// ISC maps an accepted connection to its relationship by the
		// source address alone and closes unknown ones (fw §5).
		if !slices.Contains(l.peerIPs, remote.Addr()) {
			l.m.refused.WithLabelValues(RefusedWrongSource).Inc()
			l.log.Warn("failover peer "+l.cfg.Name+": refused a connection from an address that is not the peer's",
				"remote", remote, "peer_address", l.cfg.PeerAddr)
			nc.Close()
			continue
		}
		l.adopt(nc, remote, true)
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// backoff is the wait after the n-th consecutive failure: base, doubled
// for each further failure, at most limit.
func backoff(base, limit time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// jitter stretches d by up to a fifth, so that two servers that lost their
// link together do not redial in lockstep.
func jitter(d time.Duration) time.Duration {
	if d/5 <= 0 {
		return d
	}
	return d + rand.N(d/5)
}

// sleep waits d or until ctx ends; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
