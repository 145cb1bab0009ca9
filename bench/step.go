package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// stepResult is one row of the table: one server (or pair) at one target
// rate.
type stepResult struct {
	Server string
	Target int // DORA exchanges initiated per second; 0 = as fast as perfdhcp can
	Period time.Duration
	Res    *lab.PerfdhcpResult
	Err    error

	// ServerCPU and PerfCPU are CPU time over the test period divided by
	// its wall time, in percent of one core; ServerCPU adds up both
	// servers of a pair (Members has each one's).
	ServerCPU, PerfCPU float64
	Load1              float64
	// RcvbufLost counts replies the kernel dropped because perfdhcp's
	// receive buffer was full (-1 if unknown); SrvRcvbufLost is the same
	// in the servers' namespaces, meaningful for UDP sockets.
	RcvbufLost, SrvRcvbufLost int64

	// Members has one entry per server process: one, or a pair's primary
	// and secondary.
	Members []memberResult
	// Settled is how far a pair's partners agreed after the load.
	Settled  *settled
	Profiles []string // CPU profile files, if any were taken
	// StartTime is how long the start took: for a pair, until both
	// servers were normal with balanced pools.
	StartTime time.Duration
	// Split is how a pair's pools were split when the load began;
	// Imbalanced says one server held much less than its half.
	Split      string
	Imbalanced bool
}

// memberResult is one server process of a step.
type memberResult struct {
	Host string // srv1, srv2
	CPU  float64
	// Tandem only: snapshots taken right after start (empty pool; for a
	// pair, balanced) and after the load (leases held).
	Before, After *tandemSnapshot
}

// tandemDelta adds up, over the members, how a Tandem counter moved
// during the step; ok is false unless every member has both snapshots.
func (r *stepResult) tandemDelta(f func(*tandemSnapshot) float64) (sum float64, ok bool) {
	if len(r.Members) == 0 {
		return 0, false
	}
	for _, m := range r.Members {
		if m.Before == nil || m.After == nil {
			return 0, false
		}
		sum += f(m.After) - f(m.Before)
	}
	return sum, true
}

// dropPct is the worse of the two exchanges' drop ratios.
func (r *stepResult) dropPct() float64 {
	if r.Res == nil {
		return 100
	}
	return max(r.Res.DiscoverOffer.DropsRatio, r.Res.RequestAck.DropsRatio)
}

// achieved is completed DORA exchanges (ACKs perfdhcp received and
// matched to its requests) per second of the test period. perfdhcp's own "Rate" line
// divides by the period plus the exit wait, which understates every rate
// by the same factor; the exit wait only collects replies to requests
// sent within the period.
func (r *stepResult) achieved() float64 {
	if r.Res == nil || r.Period <= 0 {
		return 0
	}
	return float64(r.Res.RequestAck.Received) / r.Period.Seconds()
}

// failedBadly says the server is past its limit at this rate, so higher
// fixed rates would only cost time.
func (r *stepResult) failedBadly(maxDrop float64) bool {
	if r.Err != nil || r.Res == nil {
		return true
	}
	if r.dropPct() > maxDrop {
		return true
	}
	return r.Target > 0 && r.achieved() < 0.8*float64(r.Target)
}

// better says whether a is a better run of the same step than b: a
// result beats an error, then more completed exchanges win. Noise on a
// shared machine only ever slows a run down, so the best run is the
// closest to what the server can do.
func better(a, b *stepResult) bool {
	if (a.Res == nil) != (b.Res == nil) {
		return a.Res != nil
	}
	return a.achieved() > b.achieved()
}

// stepConfig is what every step shares.
type stepConfig struct {
	lab         *lab.Lab
	period      time.Duration
	clients     int
	exitWait    time.Duration
	metricsAddr string // Tandem's -metrics address in the server namespace
	profileDir  string
	perfExtra   []string // extra perfdhcp arguments
	prefix      []string // wrapper for perfdhcp, e.g. nice -n -10
	perfEnv     []string // perfdhcp's extra environment (the receive buffer preload)
}

// runStep starts a fresh instance of srv, drives it with perfdhcp from the
// relay host at target exchanges/s for the period, and stops it. A pair
// gets every request on both servers (lab.RelayFanOut).
func runStep(c stepConfig, srv server, target int, profile bool) *stepResult {
	r := &stepResult{Server: srv.Name(), Target: target, Period: c.period}
	started := time.Now()
	procs, err := srv.Start()
	if err != nil {
		r.Err = fmt.Errorf("start: %w", err)
		return r
	}
	defer srv.Stop()
	r.StartTime = time.Since(started)
	pair := isPair(procs)
	if ps, ok := srv.(pairServer); ok && pair {
		r.Split, r.Imbalanced = ps.Split()
		progress("%s @ %s: both servers normal %v after the start; %s", srv.Name(), rateLabel(target), r.StartTime.Round(100*time.Millisecond), r.Split)
	}
	if pair {
		c.lab.RelayFanOut(true)
		defer c.lab.RelayFanOut(false)
	}

	isTandem := srv.Program() == "tandem"
	r.Members = make([]memberResult, len(procs))
	clients := make([]*http.Client, len(procs))
	for i, p := range procs {
		r.Members[i].Host = p.Host.Name
		if !isTandem {
			continue
		}
		clients[i] = nsHTTP(p.Host, 90*time.Second)
		s, err := snapshotTandem(clients[i], c.metricsAddr, p.PID)
		if err != nil {
			r.Err = fmt.Errorf("baseline metrics of %s: %w", p.Host.Name, err)
			return r
		}
		r.Members[i].Before = &s
	}

	opts := lab.PerfdhcpOptions{
		Server:   procs[0].Host.IP,
		Rate:     target,
		Clients:  c.clients,
		Duration: c.period,
		Seed:     1,
		ExitWait: c.exitWait,
		Extra:    c.perfExtra,
	}
	argv, err := opts.Argv()
	if err != nil {
		r.Err = err
		return r
	}
	hosts := make([]*lab.Host, len(procs))
	for i, p := range procs {
		hosts[i] = p.Host
	}
	relayLost0, errRelay := udpRcvbufErrors(c.lab.Relay)
	srvLost0, errSrv := sumRcvbufErrors(hosts)
	srvCPU0 := make([]time.Duration, len(procs))
	for i, p := range procs {
		srvCPU0[i], _ = p.CPUTime()
	}
	perf := c.lab.Relay.StartEnv(fmt.Sprintf("perfdhcp-%s-%s", srv.Name(), rateLabel(target)), c.perfEnv, withPrefix(c.prefix, argv...)...)
	t0 := time.Now()
	perfCPU0, _ := perf.CPUTime()

	type profResult struct {
		path string
		err  error
	}
	var profs []chan profResult
	if profile && isTandem {
		secs := max(int(c.period.Seconds())-1, 1)
		for i, p := range procs {
			name := fmt.Sprintf("tandem-cpu-%s.pprof", rateLabel(target))
			if pair {
				name = fmt.Sprintf("%s-%s-cpu-%s.pprof", srv.Name(), p.Host.Name, rateLabel(target))
			}
			path := filepath.Join(c.profileDir, name)
			ch := make(chan profResult, 1)
			profs = append(profs, ch)
			go func() {
				b, err := httpGet(clients[i], fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.metricsAddr, secs))
				if err == nil {
					err = os.WriteFile(path, b, 0o644)
				}
				ch <- profResult{path, err}
			}()
		}
	}

	// CPU is sampled over the test period only: perfdhcp's start-up and
	// its exit wait would dilute the figures.
	time.Sleep(c.period)
	wall := time.Since(t0)
	var cpuErrs []error
	for i, p := range procs {
		cpu1, err := p.CPUTime()
		cpuErrs = append(cpuErrs, err)
		if err == nil {
			r.Members[i].CPU = 100 * float64(cpu1-srvCPU0[i]) / float64(wall)
			r.ServerCPU += r.Members[i].CPU
		}
	}
	perfCPU1, err := perf.CPUTime()
	r.Load1 = loadAvg1()
	if err := errors.Join(append(cpuErrs, err)...); err == nil {
		r.PerfCPU = 100 * float64(perfCPU1-perfCPU0) / float64(wall)
	}

	werr := perf.Wait(c.exitWait + 60*time.Second)
	if errors.Is(werr, lab.ErrTimeout) {
		perf.Kill9()
		r.Err = fmt.Errorf("perfdhcp did not finish: %w", werr)
		return r
	}
	if code := perf.ExitCode(); code != 0 && code != 3 {
		r.Err = fmt.Errorf("perfdhcp exited with %d (log %s)", code, perf.LogPath)
		return r
	}
	r.RcvbufLost, r.SrvRcvbufLost = -1, -1
	if n, err := udpRcvbufErrors(c.lab.Relay); err == nil && errRelay == nil {
		r.RcvbufLost = n - relayLost0
	}
	if n, err := sumRcvbufErrors(hosts); err == nil && errSrv == nil {
		r.SrvRcvbufLost = n - srvLost0
	}
	res, err := lab.ParsePerfdhcp(perf.Log())
	if err != nil {
		r.Err = err
		return r
	}
	r.Res = res
	for _, ch := range profs {
		p := <-ch
		if p.err != nil {
			fmt.Fprintf(os.Stderr, "bench: CPU profile at %s: %v\n", rateLabel(target), p.err)
			continue
		}
		r.Profiles = append(r.Profiles, p.path)
	}

	if ps, ok := srv.(pairServer); ok && pair {
		st := ps.Settle()
		r.Settled = &st
	} else if isTandem {
		// The lease counts that /metrics shows are republished once a
		// second by the server loop.
		time.Sleep(1500 * time.Millisecond)
	}
	if isTandem {
		for i, p := range procs {
			s, err := snapshotTandem(clients[i], c.metricsAddr, p.PID)
			if err != nil {
				r.Err = fmt.Errorf("metrics of %s after load: %w", p.Host.Name, err)
				return r
			}
			r.Members[i].After = &s
			name := fmt.Sprintf("tandem-metrics-%s.txt", rateLabel(target))
			if pair {
				name = fmt.Sprintf("%s-%s-metrics-%s.txt", srv.Name(), p.Host.Name, rateLabel(target))
			}
			_ = os.WriteFile(filepath.Join(c.profileDir, name), []byte(s.Text), 0o644)
		}
	}
	return r
}

// sumRcvbufErrors adds up udpRcvbufErrors over hosts.
func sumRcvbufErrors(hosts []*lab.Host) (int64, error) {
	var sum int64
	for _, h := range hosts {
		n, err := udpRcvbufErrors(h)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

func rateLabel(target int) string {
	if target <= 0 {
		return "unlimited"
	}
	return fmt.Sprint(target)
}
