package sim

import (
	"fmt"
	"strconv"
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

// recordMsg adds a failover message to the scenario output, collapsing
// runs of binding updates and acks of one direction into counts.
func (s *Sim) recordMsg(dir string, m *wire.Message) {
	line := dir + " " + m.Type.String()
	switch m.Type {
	case wire.MsgContact:
		return // keepalives: noise
	case wire.MsgBndUpd, wire.MsgBndAck:
		if n := len(s.lines); n > 0 {
			if prev, cnt, ok := strings.Cut(s.lines[n-1], " ×"); ok && prev == line {
				c, _ := strconv.Atoi(cnt)
				s.lines[n-1] = fmt.Sprintf("%s ×%d", line, c+1)
				return
			} else if s.lines[n-1] == line {
				s.lines[n-1] = line + " ×2"
				return
			}
		}
	case wire.MsgState:
		line += " " + m.ServerState.Value.String()
		if m.ServerFlags.Value&wire.ServerFlagStartup != 0 {
			line += "(startup)"
		}
	}
	if v, ok := m.RejectReason.Get(); ok {
		line += " reject=" + v.String()
	}
	s.lines = append(s.lines, line)
}
