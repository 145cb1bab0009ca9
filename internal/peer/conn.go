package peer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// conn is one established link: a reader goroutine (serve) that delivers
// messages and a writer goroutine that drains the send queue.
type conn struct {
	id      ConnID
	nc      net.Conn
	local   netip.AddrPort
	remote  netip.AddrPort
	inbound bool

	queue chan []byte // encoded messages from Send
	// closeReq asks the writer to write what is queued, then close: the
	// CONNECTACK with a reject reason or the DISCONNECT queued just before
	// Link.Close is how the peer learns, and logs, why (fw §5).
	closeReq chan error

	closeOnce sync.Once
	done      chan struct{} // closed by closeWith
	cause     Cause         // set by closeWith, before done is closed
	err       error
	// gone is closed when the connection has been reported Down and is no
	// longer the link.
	gone chan struct{}
}

func newConn(id ConnID, nc net.Conn, local, remote netip.AddrPort, inbound bool, cfg Config) *conn {
	return &conn{
		id:       id,
		nc:       nc,
		local:    local,
		remote:   remote,
		inbound:  inbound,
		queue:    make(chan []byte, cfg.SendQueue),
		closeReq: make(chan error, 1),
		done:     make(chan struct{}),
		gone:     make(chan struct{}),
	}
}

// closeWith ends the connection for cause. Only the first call counts; it
// reports whether this call was it, so that the caller logs the cause once.
func (c *conn) closeWith(cause Cause, err error) bool {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.cause, c.err = cause, err
		close(c.done)
		c.nc.Close()
	})
	return first
}

func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// serve runs the connection from Up to Down.
func (l *Link) serve(c *conn) {
	defer l.wg.Done()
	l.m.up.Set(1)
	if c.inbound {
		l.m.inbound.Inc()
	} else {
		l.m.outbound.Inc()
	}
	l.log.Info("failover peer "+l.cfg.Name+": link up", "conn", c.id, "remote", c.remote, "inbound", c.inbound)

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		l.writeLoop(c)
	}()
	if l.emit(Event{Kind: EventUp, Conn: c.id, Local: c.local, Remote: c.remote, Inbound: c.inbound}) {
		l.readLoop(c)
	} else {
		c.closeWith(CauseShutdown, nil)
	}
	<-writerDone

	l.m.up.Set(0)
	l.m.disconnects.WithLabelValues(string(c.cause)).Inc()
	l.log.Info("failover peer "+l.cfg.Name+": link down", "conn", c.id, "remote", c.remote,
		"cause", string(c.cause), "err", c.err)
	l.emit(Event{Kind: EventDown, Conn: c.id, Local: c.local, Remote: c.remote, Cause: c.cause, Err: c.err})
	// Only now may another connection become the link, so that this Down
	// precedes the next Up.
	l.mu.Lock()
	l.cur = nil
	l.mu.Unlock()
	close(c.gone)
}

// readLoop reads and delivers messages until the connection ends.
func (l *Link) readLoop(c *conn) {
	r := wire.NewReader(bufio.NewReaderSize(c.nc, 4096))
	for {
		// The backstop runs only while we wait for the peer, so that a
		// slow server loop does not make a talking peer look silent.
		if err := c.nc.SetReadDeadline(time.Now().Add(l.cfg.ReceiveTimeout)); err != nil {
			l.readFailed(c, err)
			return
		}
		b, err := r.Next()
		if err != nil {
			l.readFailed(c, err)
			return
		}
		m, err := wire.Unmarshal(b)
		if err != nil {
			l.readFailed(c, err)
			return
		}
		l.m.messageReceived(m.Type, len(b))
		if !l.emit(Event{Kind: EventMessage, Conn: c.id, Local: c.local, Remote: c.remote, Message: m}) {
			c.closeWith(CauseShutdown, nil)
			return
		}
	}
}

// readFailed ends the connection after a read error, logging the cause
// unless the connection was already being closed for another one.
func (l *Link) readFailed(c *conn, err error) {
	var de *wire.DecodeError
	switch {
	case errors.As(err, &de):
		if c.closeWith(CauseMalformed, err) {
			l.m.decodeErrors.Inc()
			l.log.Warn("failover peer "+l.cfg.Name+": malformed message; closing the link",
				"conn", c.id, "remote", c.remote, "err", err)
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.closeWith(CauseTimeout, err) {
			l.m.timeouts.Inc()
			// ISC's wording (failover.c dhcp_failover_timeout, fw §6).
			// The state machine closes a silent link long before, with
			// a line of its own: one line per timeout.
			l.log.Warn("timeout waiting for failover peer "+l.cfg.Name,
				"conn", c.id, "remote", c.remote, "receive_timeout", l.cfg.ReceiveTimeout,
				"max_response_delay", l.cfg.MaxResponseDelay,
				"note", "the failover state machine did not close the silent link itself")
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		c.closeWith(CausePeerClosed, err)
	default:
		c.closeWith(CauseReadError, err)
	}
}

// writeLoop writes queued messages until the connection ends. It sends
// nothing of its own: CONTACT keepalives are the state machine's, so that
// they take their xids from the link's one counter (fw §1, §6).
func (l *Link) writeLoop(c *conn) {
	w := bufio.NewWriterSize(c.nc, 4096)
	for {
		select {
		case <-c.done:
			return
		case b := <-c.queue:
			if !l.write(c, w, b) {
				return
			}
		case err := <-c.closeReq:
			// Send already queued everything that precedes the Close
			// (one caller, in order); write that, then close.
			for len(c.queue) > 0 {
				if !l.write(c, w, <-c.queue) {
					return
				}
			}
			c.closeWith(CauseClosed, err)
			return
		}
	}
}

// write stamps and writes one encoded message, flushing when nothing else
// waits; it closes the connection and reports false if the write fails.
func (l *Link) write(c *conn, w *bufio.Writer, b []byte) bool {
	now := time.Now()
	if binary.BigEndian.Uint32(b[4:8]) == 0 {
		binary.BigEndian.PutUint32(b[4:8], uint32(now.Unix()))
	}
	// A peer that stops reading for as long as it may stay silent is
	// treated like a silent one.
	err := c.nc.SetWriteDeadline(now.Add(l.cfg.MaxResponseDelay))
	if err == nil {
		_, err = w.Write(b)
	}
	if err == nil && len(c.queue) == 0 {
		err = w.Flush()
	}
	if err != nil {
		if c.closeWith(CauseWriteError, err) {
			l.log.Warn("failover peer "+l.cfg.Name+": write failed; closing the link",
				"conn", c.id, "remote", c.remote, "err", err)
		}
		return false
	}
	l.m.messageSent(wire.MessageType(b[2]), len(b))
	return true
}
