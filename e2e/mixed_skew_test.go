package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// Clock skew in a mixed pair. The failover protocol lets a server refuse a
// partner whose clock is too far from its own (draft-ietf-dhc-failover-12
// §5.10; reject reason 4, time mismatch, §7.5). ISC dhcpd 4.4 checks the
// time field of the CONNECT (as secondary) and of the CONNECTACK (as
// primary) and refuses a difference over 60 s (failover-wire.md §1, §5);
// Tandem does the same. Network namespaces share one clock, so the ISC
// server's clock is moved with libfaketime.

// skewCase is one mixed pair with ISC dhcpd's clock offset from Tandem's.
type skewCase struct {
	name       string
	iscPrimary bool
	offset     time.Duration // of ISC's clock; positive = ahead of Tandem
}

// startSkewedPair starts a fresh mixed pair whose ISC dhcpd runs offset
// from the real clock, and checks from ISC's own lease file that the
// offset took effect, so that a refusal cannot come from something else.
func startSkewedPair(t *testing.T, sc skewCase) *mixedPair {
	t.Helper()
	env, err := lab.FakeClockEnv(sc.offset)
	if err != nil {
		t.Fatal(err)
	}
	c := pairConf{MCLT: 30, LeaseTime: 600, LANSize: 16}
	p := newMixedPair(t, c, sc.iscPrimary, 0)
	isc := p.isc()
	isc.isc.Env = env
	// The secondary first, so that the primary's first CONNECT finds it
	// listening.
	p.secondary.start()
	p.primary.start()
	checkISCClock(t, isc, sc.offset)
	return p
}

// iscStateStamp is the time ISC dhcpd stamps on its failover state record
// in the lease file ("my state startup at 0 2026/11/22 06:08:17;", UTC,
// dhcpd.leases(5)): its own clock, as it writes it.
var iscStateStamp = regexp.MustCompile(`my state \S+ at \d+ (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d);`)

// checkISCClock waits for ISC's failover state record and checks that the
// clock it was stamped with is offset from the real one as asked.
func checkISCClock(t *testing.T, isc *pairServer, offset time.Duration) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		text, err := isc.isc.Leases()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if m := iscStateStamp.FindAllStringSubmatch(text, -1); m != nil {
			stamp, err := time.Parse("2006/01/02 15:04:05", m[len(m)-1][1])
			if err != nil {
				t.Fatalf("%s: state stamp %q: %v", isc, m[len(m)-1][1], err)
			}
			// The record is at most a few seconds old.
			got := stamp.Sub(now)
			if got < offset-10*time.Second || got > offset+time.Second {
				t.Fatalf("%s stamped its state %s at real time %s: clock offset %v, want about %v (libfaketime not in effect?)",
					isc, stamp.Format(time.TimeOnly), now.UTC().Format(time.TimeOnly), got.Round(time.Second), offset)
			}
			t.Logf("%s clock: state stamped %s at real time %s (offset about %v)",
				isc, stamp.Format(time.TimeOnly), now.UTC().Format(time.TimeOnly), got.Round(time.Second))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s wrote no failover state record within 20s; lease file:\n%s", isc, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMixedClockSkewRefused: with ISC dhcpd's clock 90 s off Tandem's,
// the secondary of the pair refuses the primary's CONNECT, whichever
// program plays which role, and both say why: the pair never reaches
// normal, and both logs name the clock difference.
func TestMixedClockSkewRefused(t *testing.T) {
	needsLab(t, "dhcpd", "faketime")
	tandemBinary(t)
	for _, sc := range []skewCase{
		// ISC, the secondary, checks the time of Tandem's CONNECT.
		{name: "TandemPrimary_ISCAhead90s", iscPrimary: false, offset: 90 * time.Second},
		// Tandem, the secondary, checks the time of ISC's CONNECT.
		{name: "ISCPrimary_ISCBehind90s", iscPrimary: true, offset: -90 * time.Second},
	} {
		t.Run(sc.name, func(t *testing.T) {
			p := startSkewedPair(t, sc)
			isc, tdm := p.isc(), p.tandem()
			var iscLine, tdmLine string
			if sc.iscPrimary {
				// ISC's words for the CONNECTACK with reject reason 4
				// (failover.c, dhcp_failover_reject_reason_print).
				iscLine = `Failover CONNECT to ` + mixedPeer + ` rejected: Connection rejected, time mismatch too great\.`
				tdmLine = `refusing CONNECT: time mismatch: the partner's clock is (\d+) s behind ours`
			} else {
				iscLine = `Failover CONNECT from ` + mixedPeer + `: time offset too large`
				// ISC's reason, and the skew Tandem reads in ISC's
				// CONNECTACK.
				tdmLine = `Failover CONNECT to ` + mixedPeer + ` rejected: time mismatch: time offset too large \(the partner's clock is (\d+) s ahead of ours`
			}
			// Tandem first: as secondary it is the one refusing, and its
			// reject is what ISC, as primary, reports.
			tm, err := tdm.proc().AwaitLog(0, tdmLine, 30*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", tdm, err)
			}
			t.Logf("%s logged: %s", tdm, lineAt(tdm.proc().Log(), tm.End))
			// Tandem measured the skew itself: it must be the one
			// libfaketime put there, give or take the message's age.
			d, _ := strconv.Atoi(tm.Groups[1])
			want := int(sc.offset / time.Second)
			want = max(want, -want)
			if d < want-2 || d > want+2 {
				t.Errorf("%s measured a skew of %d s, want about %d s", tdm, d, want)
			}
			im, err := isc.proc().AwaitLog(0, iscLine, 30*time.Second)
			if err != nil {
				hint := ""
				if sc.iscPrimary {
					hint = " (Tandem refused its CONNECT: did Tandem's CONNECTACK with the reject reason reach it before the link closed?)"
				}
				t.Errorf("%s: %v%s", isc, err, hint)
			} else {
				t.Logf("%s logged: %s", isc, lineAt(isc.proc().Log(), im.End))
			}

			// The partners keep trying and keep refusing, and neither
			// gets to normal meanwhile.
			const window = 20 * time.Second
			time.Sleep(window)
			for _, s := range p.members() {
				log := s.proc().Log()
				for _, mv := range lab.FailoverMoves(log, mixedPeer) {
					if mv.Local && mv.To == "normal" {
						t.Errorf("%s reached normal despite the clock skew: %+v", s, mv)
					}
				}
				if s.proc().Exited() {
					t.Errorf("%s exited", s)
				}
			}
			st, err := tandemStatus(tdm.tdm)
			if err != nil {
				t.Fatalf("%s: tandem status: %v", tdm, err)
			}
			for _, ps := range st.Failover {
				if ps.Name == mixedPeer && (ps.LocalState == "normal" || ps.Connected) {
					t.Errorf("%s: tandem status says %s, connected %v, despite the clock skew", tdm, ps.LocalState, ps.Connected)
				}
			}
			if out, err := tdm.tdm.Ctl("status"); err == nil {
				t.Logf("tandem status on %s:\n%s", tdm.host.Name, out)
			}
			t.Logf("after %v more: %s refused %d times, %s %d times", window,
				isc, countMatches(isc.proc().Log(), iscLine), tdm, countMatches(tdm.proc().Log(), tdmLine))
		})
	}
}

// TestMixedClockSkewWithinLimit: a skew inside ISC's ±60 s does not stop
// the pair, so the refusals above come from the size of the skew.
func TestMixedClockSkewWithinLimit(t *testing.T) {
	needsLab(t, "dhcpd", "faketime")
	tandemBinary(t)
	for _, sc := range []skewCase{
		{name: "TandemPrimary_ISCBehind45s", iscPrimary: false, offset: -45 * time.Second},
		{name: "ISCPrimary_ISCAhead45s", iscPrimary: true, offset: 45 * time.Second},
	} {
		t.Run(sc.name, func(t *testing.T) {
			p := startSkewedPair(t, sc)
			p.awaitNormal(t, 60*time.Second)
			for _, s := range p.members() {
				if l := grepLines(s.proc().Log(), `(?i)time mismatch|time offset|clock is`); l != "" {
					t.Errorf("%s complained about the clock:\n%s", s, l)
				}
			}
		})
	}
}

// lineAt is the line of log that ends at or contains offset end.
func lineAt(log string, end int64) string {
	if end > int64(len(log)) {
		end = int64(len(log))
	}
	start := strings.LastIndexByte(log[:end], '\n') + 1
	stop := strings.IndexByte(log[end:], '\n')
	if stop < 0 {
		return log[start:]
	}
	return log[start : int(end)+stop]
}

func countMatches(log, pattern string) int {
	return len(regexp.MustCompile("(?m)"+pattern).FindAllStringIndex(log, -1))
}
