package sim

import (
	"strings"
	"testing"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// The checkers must be able to fail: each is fed a breach by hand.

func checkWorld(t *testing.T, skew [2]int64) *Sim {
	t.Helper()
	s, err := New(Options{Seed: 7, Clients: 3, PoolSize: 4, MCLT: 60, LeaseTime: 600, Split: 128,
		MaxResponseDelay: 10, MaxUnacked: 10, Skew: skew, Manual: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Advance(30)
	if s.violation != nil {
		t.Fatal(s.violation)
	}
	return s
}

func wantViolation(t *testing.T, s *Sim, inv, text string) {
	t.Helper()
	v := s.violation
	if v == nil || v.Invariant != inv || !strings.Contains(v.Detail, text) {
		t.Fatalf("want %s violation with %q, got %v", inv, text, v)
	}
}

func TestCheckI1(t *testing.T) {
	for _, tc := range []struct {
		name     string
		skew     [2]int64
		gapAfter int64 // the second belief starts this many ms before the first ends
		want     bool
	}{
		{"overlap without skew", [2]int64{0, 0}, 1000, true},
		{"back to back", [2]int64{0, 0}, 0, false},
		{"within the skew margin", [2]int64{10, 0}, 9000, false},
		{"beyond the skew margin", [2]int64{10, 0}, 11_000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := checkWorld(t, tc.skew)
			a, b := s.clients[0], s.clients[1]
			ip := poolStart
			a.ip, a.holdFrom, a.end = ip, s.now, s.now+60_000
			s.hold(a)
			s.now = a.end - tc.gapAfter
			b.ip, b.holdFrom, b.end = ip, s.now, s.now+60_000
			s.hold(b)
			if tc.want {
				wantViolation(t, s, "I1", "held by c0")
			} else if s.violation != nil {
				t.Fatal(s.violation)
			}
		})
	}
}

func TestCheckI2(t *testing.T) {
	s := checkWorld(t, [2]int64{})
	p := s.srv[0]
	now := s.srvNow(p)
	before := lease.Lease{IP: poolStart, State: lease.Free, TSFP: 0}
	after := lease.Lease{IP: poolStart, State: lease.Active, Ends: now + 61}
	s.checkGrant(p, now, wire.StateNormal, now-100, 60, &before, &after)
	wantViolation(t, s, "I2", "beyond max(now, tsfp")

	// A tsfp the partner never had on disk.
	s = checkWorld(t, [2]int64{})
	p = s.srv[0]
	now = s.srvNow(p)
	before = lease.Lease{IP: poolStart, State: lease.Active, TSFP: now + 500}
	after = lease.Lease{IP: poolStart, State: lease.Active, Ends: now + 400}
	s.checkGrant(p, now, wire.StateNormal, now-100, 60, &before, &after)
	wantViolation(t, s, "I2", "never had more than")

	// Partner-down after STOS+MCLT is exempt.
	s = checkWorld(t, [2]int64{})
	p = s.srv[0]
	before = lease.Lease{IP: poolStart, State: lease.Free}
	after = lease.Lease{IP: poolStart, State: lease.Active, Ends: now + 600}
	s.checkGrant(p, now, wire.StatePartnerDown, now-61, 60, &before, &after)
	if s.violation != nil {
		t.Fatal(s.violation)
	}
}

func TestCheckI4(t *testing.T) {
	s := checkWorld(t, [2]int64{})
	p := s.srv[0] // primary: BACKUP is the partner's
	now := s.srvNow(p)
	before := lease.Lease{IP: poolStart, State: lease.Backup}
	after := lease.Lease{IP: poolStart, State: lease.Active, Ends: now + 60}
	s.checkGrant(p, now, wire.StateCommunicationsInterrupted, now-1000, 60, &before, &after)
	wantViolation(t, s, "I4", "which was backup")

	s = checkWorld(t, [2]int64{})
	p = s.srv[0]
	s.checkGrant(p, now, wire.StatePartnerDown, now-30, 60, &before, &after)
	wantViolation(t, s, "I4", "before max(STOS")

	// The node's fields allow it, but the partner served a moment ago.
	s = checkWorld(t, [2]int64{})
	p = s.srv[0]
	s.Crash(1)
	s.checkGrant(p, now, wire.StatePartnerDown, now-1000, 60, &before, &after)
	wantViolation(t, s, "I4", "after s last served")
}

func TestCheckI3(t *testing.T) {
	s := checkWorld(t, [2]int64{})
	s.Acquire(0)
	s.Advance(5)
	c := s.clients[0]
	if c.ip == 0 || !c.hasLastAck {
		t.Fatal("no binding")
	}
	sv := s.srv[c.lastAck.srv]
	// Lose the record from the disk behind the server's back.
	delete(sv.disk, c.ip)
	s.Crash(sv.idx)
	wantViolation(t, s, "I3", "is not on disk")
}

func TestCheckI5(t *testing.T) {
	s := checkWorld(t, [2]int64{})
	if s.Converge(600); s.violation != nil {
		t.Fatal(s.violation)
	}
	// Make the secondary disagree about one address.
	q := s.srv[1]
	if _, err := q.db.Update(poolStart, func(l *lease.Lease) {
		l.State = lease.Abandoned
	}); err != nil {
		t.Fatal(err)
	}
	if diffs := s.compare(); len(diffs) != 1 {
		t.Fatalf("compare found %v", diffs)
	}
}
