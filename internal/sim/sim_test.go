package sim

import (
	"flag"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	flagSeed      = flag.Uint64("seed", 0, "replay one schedule of TestRandom with this seed")
	flagSchedules = flag.Int("schedules", 10_000, "number of random schedules TestRandom runs")
	flagFirst     = flag.Uint64("first-seed", 1, "first seed of TestRandom's range")
	flagLong      = flag.Bool("long", false, "run TestRandom for 1,000,000 schedules")
	flagTrace     = flag.Int("events", 80, "events of trace printed with a failure")
	flagSurvey    = flag.Bool("survey", false, "TestRandom: list every failing seed in one line each and go on")
	flagWork      = flag.Uint("workarounds", 0, "TestRandom: mask known bugs (sim.Work* bits) to look for others")
	flagLarge     = flag.Bool("large", false, "TestRandom: large schedules (20-200 clients, up to 2 h of faults)")
)

func randomOptions(seed uint64) Options {
	o := Random(seed)
	if *flagLarge {
		o = RandomLarge(seed)
	}
	o.Workarounds = *flagWork
	return o
}

// report formats a violation with everything needed to replay it.
func report(seed uint64, v *Violation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %v\n", seed, v)
	large := ""
	if *flagLarge {
		large = " -large"
	}
	if *flagWork != 0 {
		large += fmt.Sprintf(" -workarounds=%d", *flagWork)
	}
	fmt.Fprintf(&b, "replay: go test ./internal/sim -run 'TestRandom$' -seed=%d%s -v\n", seed, large)
	o := randomOptions(seed)
	fmt.Fprintf(&b, "schedule: %d clients, pool %d, mclt %d, lease %d, split %d, lbmax %d, mrd %d, max-unacked %d, skew p %+d s %+d, chaos %d s, fault every %d s\n",
		o.Clients, o.PoolSize, o.MCLT, o.LeaseTime, o.Split, o.LBMaxSeconds, o.MaxResponseDelay, o.MaxUnacked, o.Skew[0], o.Skew[1], o.Chaos, o.FaultEvery)
	if len(v.Trace) > 0 {
		fmt.Fprintf(&b, "last %d events:\n", len(v.Trace))
		for _, l := range v.Trace {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}

// replay runs a seed again with tracing on, to report the violation with
// its trace. It also checks that the run is deterministic: the replay
// must fail the same way at the same step.
func replay(t *testing.T, seed uint64, first *Violation) {
	t.Helper()
	o := randomOptions(seed)
	o.Trace = *flagTrace
	v := Run(o)
	if v == nil || v.Step != first.Step || v.Invariant != first.Invariant {
		t.Errorf("seed %d: NOT DETERMINISTIC: first run %v, replay %v", seed, first, v)
		t.Error(report(seed, first))
		return
	}
	if v.Invariant == "DB" {
		// Find the step that broke the database.
		o.CheckDBEvery = 1
		v = Run(o)
	}
	t.Error(report(seed, v))
}

func TestRandom(t *testing.T) {
	if *flagSeed != 0 {
		o := randomOptions(*flagSeed)
		o.Trace = *flagTrace
		o.CheckDBEvery = 1
		if v := Run(o); v != nil {
			t.Fatal(report(*flagSeed, v))
		}
		t.Logf("seed %d: ok", *flagSeed)
		return
	}
	n := *flagSchedules
	if *flagLong {
		n = 1_000_000
	}
	if testing.Short() {
		n = min(n, 500)
	}
	// The simulation allocates briskly and keeps little: a lazier
	// collector doubles the speed.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	start := time.Now()
	steps := 0
	failures := 0
	var okTime time.Duration
	okRuns := 0
	for i := range n {
		seed := *flagFirst + uint64(i)
		t0 := time.Now()
		s, err := New(randomOptions(seed))
		if err != nil {
			t.Fatal(err)
		}
		v := s.RunSchedule()
		steps += s.Steps()
		if v == nil {
			okTime += time.Since(t0)
			okRuns++
		}
		if v != nil {
			failures++
			if *flagSurvey {
				t.Logf("seed %d: %v", seed, v)
				continue
			}
			replay(t, seed, v)
			if failures >= 3 {
				t.Fatalf("stopping after %d failing schedules (of %d run)", failures, i+1)
			}
		}
	}
	el := time.Since(start)
	t.Logf("%d schedules in %v: %.0f schedules/s, %.0f steps/s, %d steps per schedule on average; the %d that passed ran at %.0f schedules/s",
		n, el.Round(time.Millisecond), float64(n)/el.Seconds(), float64(steps)/el.Seconds(), steps/max(n, 1),
		okRuns, float64(okRuns)/max(okTime.Seconds(), 1e-9))
}

// TestDeterministic: one seed run twice gives the same run, step for step,
// with or without tracing (which must not touch the randomness).
func TestDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		o := Random(seed)
		o.Workarounds = WorkServeRequests // run long enough to mean something
		a, _ := New(o)
		va := a.RunSchedule()
		o.Trace = 300
		b, _ := New(o)
		vb := b.RunSchedule()
		c, _ := New(o)
		vc := c.RunSchedule()
		if a.Steps() != b.Steps() || a.now != b.now || (va == nil) != (vb == nil) {
			t.Errorf("seed %d: %d steps to %d untraced, %d steps to %d traced", seed, a.Steps(), a.now, b.Steps(), b.now)
		}
		if b.Steps() != c.Steps() || (vb == nil) != (vc == nil) || !slices.Equal(b.trace.lines(), c.trace.lines()) {
			t.Errorf("seed %d: two traced runs differ", seed)
		}
		if a.Steps() < 1000 {
			t.Errorf("seed %d: only %d steps", seed, a.Steps())
		}
	}
}
