package sim

import (
	"fmt"
	"strings"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

// traceRing keeps the last n trace lines.
type traceRing struct {
	buf  []string
	next int
	full bool
}

func newTraceRing(n int) *traceRing { return &traceRing{buf: make([]string, n)} }

func (r *traceRing) add(line string) {
	r.buf[r.next] = line
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// lines returns the kept lines, oldest first.
func (r *traceRing) lines() []string {
	if !r.full {
		return append([]string(nil), r.buf[:r.next]...)
	}
	out := append([]string(nil), r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// describeMsg is a one-line summary of a failover message.
func describeMsg(m *wire.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s xid=%d", m.Type, m.XID)
	if v, ok := m.AssignedIP.Get(); ok {
		fmt.Fprintf(&b, " %s", v)
	}
	if v, ok := m.BindingStatus.Get(); ok {
		fmt.Fprintf(&b, " %s", v)
	}
	if v, ok := m.ServerState.Get(); ok {
		fmt.Fprintf(&b, " %s", v)
		if m.ServerFlags.Value&wire.ServerFlagStartup != 0 {
			b.WriteString("(startup)")
		}
	}
	if v, ok := m.CHAddr.Get(); ok && len(v) > 0 {
		fmt.Fprintf(&b, " chaddr=%x", v)
	}
	if v, ok := m.LeaseExpiry.Get(); ok && m.Type == wire.MsgBndUpd {
		fmt.Fprintf(&b, " ends=%d", v)
	}
	if v, ok := m.PotentialExpiry.Get(); ok {
		fmt.Fprintf(&b, " tstp=%d", v)
	}
	if v, ok := m.RejectReason.Get(); ok {
		fmt.Fprintf(&b, " reject=%s %q", v, m.MessageText.Value)
	}
	return b.String()
}

// recordMsg adds a failover message to the scenario output: binding
// updates, acks and keepalives are only counted (lines starting with "#"),
// other messages are shown as they go.
func (s *Sim) recordMsg(dir string, m *wire.Message) {
	line := dir + " " + m.Type.String()
	switch m.Type {
	case wire.MsgContact, wire.MsgBndUpd, wire.MsgBndAck:
		if r, rejected := m.RejectReason.Get(); rejected {
			line += " rejected (" + r.String() + ")"
		}
		s.lines = append(s.lines, "#"+line)
		return
	case wire.MsgState:
		line += " " + m.ServerState.Value.String()
		if m.ServerFlags.Value&wire.ServerFlagStartup != 0 {
			line += " (startup)"
		}
	}
	if v, ok := m.AssignedIP.Get(); ok {
		line += " " + v.String()
	}
	if v, ok := m.RejectReason.Get(); ok {
		line += fmt.Sprintf(" reject=%s %q", v, m.MessageText.Value)
	}
	s.lines = append(s.lines, line)
}
