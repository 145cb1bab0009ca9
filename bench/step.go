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

// stepResult is one row of the table: one server at one target rate.
type stepResult struct {
	Server string
	Target int // DORA exchanges initiated per second; 0 = as fast as perfdhcp can
	Period time.Duration
	Res    *lab.PerfdhcpResult
	Err    error

	// ServerCPU and PerfCPU are CPU time over the test period divided by
	// its wall time, in percent of one core.
	ServerCPU, PerfCPU float64
	Load1              float64
	// RcvbufLost counts replies the kernel dropped because perfdhcp's
	// receive buffer was full (-1 if unknown); SrvRcvbufLost is the same
	// in the server's namespace, meaningful for Tandem's UDP sockets.
	RcvbufLost, SrvRcvbufLost int64

	// Tandem only: snapshots taken right after start (empty pool) and
	// after the load (leases held).
	Before, After *tandemSnapshot
	Profile       string // CPU profile file, if one was taken
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
// relay host at target exchanges/s for the period, and stops it.
func runStep(c stepConfig, srv server, target int, profile bool) *stepResult {
	r := &stepResult{Server: srv.Name(), Target: target, Period: c.period}
	proc, err := srv.Start()
	if err != nil {
		r.Err = fmt.Errorf("start: %w", err)
		return r
	}
	defer srv.Stop()

	_, isTandem := srv.(*tandemServer)
	var client *http.Client
	if isTandem {
		client = nsHTTP(proc.Host, 90*time.Second)
		s, err := snapshotTandem(client, c.metricsAddr, proc.PID)
		if err != nil {
			r.Err = fmt.Errorf("baseline metrics: %w", err)
			return r
		}
		r.Before = &s
	}

	opts := lab.PerfdhcpOptions{
		Server:   proc.Host.IP,
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
	relayLost0, errRelay := udpRcvbufErrors(c.lab.Relay)
	srvLost0, errSrv := udpRcvbufErrors(proc.Host)
	srvCPU0, _ := proc.CPUTime()
	perf := c.lab.Relay.StartEnv(fmt.Sprintf("perfdhcp-%s-%s", srv.Name(), rateLabel(target)), c.perfEnv, withPrefix(c.prefix, argv...)...)
	t0 := time.Now()
	perfCPU0, _ := perf.CPUTime()

	var profErr chan error
	if profile && isTandem {
		profErr = make(chan error, 1)
		secs := max(int(c.period.Seconds())-1, 1)
		r.Profile = filepath.Join(c.profileDir, fmt.Sprintf("tandem-cpu-%s.pprof", rateLabel(target)))
		go func() {
			b, err := httpGet(client, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.metricsAddr, secs))
			if err == nil {
				err = os.WriteFile(r.Profile, b, 0o644)
			}
			profErr <- err
		}()
	}

	// CPU is sampled over the test period only: perfdhcp's start-up and
	// its exit wait would dilute the figures.
	time.Sleep(c.period)
	wall := time.Since(t0)
	srvCPU1, err1 := proc.CPUTime()
	perfCPU1, err2 := perf.CPUTime()
	r.Load1 = loadAvg1()
	if err := errors.Join(err1, err2); err == nil {
		r.ServerCPU = 100 * float64(srvCPU1-srvCPU0) / float64(wall)
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
	if n, err := udpRcvbufErrors(proc.Host); err == nil && errSrv == nil {
		r.SrvRcvbufLost = n - srvLost0
	}
	res, err := lab.ParsePerfdhcp(perf.Log())
	if err != nil {
		r.Err = err
		return r
	}
	r.Res = res
	if profErr != nil {
		if err := <-profErr; err != nil {
			r.Profile = ""
			fmt.Fprintf(os.Stderr, "bench: CPU profile at %s: %v\n", rateLabel(target), err)
		}
	}

	if isTandem {
		// The lease counts that /metrics shows are republished once a
		// second by the server loop.
		time.Sleep(1500 * time.Millisecond)
		s, err := snapshotTandem(client, c.metricsAddr, proc.PID)
		if err != nil {
			r.Err = fmt.Errorf("metrics after load: %w", err)
			return r
		}
		r.After = &s
		_ = os.WriteFile(filepath.Join(c.profileDir, fmt.Sprintf("tandem-metrics-%s.txt", rateLabel(target))), []byte(s.Text), 0o644)
	}
	return r
}

func rateLabel(target int) string {
	if target <= 0 {
		return "unlimited"
	}
	return fmt.Sprint(target)
}
