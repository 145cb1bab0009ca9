package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tandemdhcp/tandem/internal/control"
	"github.com/tandemdhcp/tandem/internal/dhcp"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// The control API's calls run inside the loop: each is a closure sent on
// s.calls and answered when the loop has run it.

// call runs fn in the server loop and waits for it.
func (s *Server) call(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case s.calls <- func() { fn(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status implements control.Backend.
func (s *Server) Status(ctx context.Context) (control.Status, error) {
	var st control.Status
	err := s.call(ctx, func() {
		st = control.Status{Version: s.opts.Version, Started: s.started, Now: s.now()}
		for i, p := range s.db.Pools {
			tag := p.Tag.(dhcp.PoolTag)
			ps := control.PoolStatus{Index: i, Subnet: p.Subnet.String(), FailoverPeer: p.FailoverPeer,
				Size: p.Size(), States: make(map[string]int)}
			if len(tag.Pool.Ranges) > 0 {
				r := tag.Pool.Ranges[0]
				ps.Range = r.Start.String() + "-" + r.End.String()
				if len(tag.Pool.Ranges) > 1 {
					ps.Range += fmt.Sprintf(" (+%d ranges)", len(tag.Pool.Ranges)-1)
				}
			}
			for state, n := range p.Counts() {
				ps.States[state.String()] = n
			}
			st.Pools = append(st.Pools, ps)
		}
		st.Failover = s.failoverStatus()
	})
	return st, err
}

// SetFailoverState implements control.Backend.
func (s *Server) SetFailoverState(ctx context.Context, peer, state string) error {
	var err error
	if cerr := s.call(ctx, func() { err = s.setFailoverState(peer, state) }); cerr != nil {
		return cerr
	}
	return err
}

// Leases implements control.Backend.
func (s *Server) Leases(ctx context.Context, state string) ([]control.Lease, error) {
	var want lease.BindingState
	if state != "" {
		var ok bool
		if want, ok = lease.ParseBindingState(state); !ok {
			return nil, fmt.Errorf("unknown binding state %q", state)
		}
	}
	var out []control.Lease
	err := s.call(ctx, func() {
		s.db.Each(func(l *lease.Lease, _ *lease.Pool) {
			if (want == lease.StateNone && l.Pristine()) || (want != lease.StateNone && l.State != want) {
				return
			}
			cl := control.Lease{Address: l.Addr().String(), State: l.State.String(), Hostname: l.Hostname}
			if hw := l.HardwareAddr(); hw != nil {
				cl.Hardware = hw.String()
			}
			if l.ClientID != "" {
				cl.ClientID = fmt.Sprintf("%x", l.ClientID)
			}
			if l.Starts != 0 {
				cl.Starts = time.Unix(l.Starts, 0).UTC()
			}
			if l.Ends != 0 && l.Ends != lease.Never {
				cl.Ends = time.Unix(l.Ends, 0).UTC()
			}
			out = append(out, cl)
		})
	})
	return out, err
}

var errNoFailover = errors.New("no failover relationship is configured")
