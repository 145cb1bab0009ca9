package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// syncCalls are the system calls that make file data durable.
var syncCalls = []string{"fsync", "fdatasync", "sync_file_range", "syncfs", "msync", "sync"}

// fsyncResult is what strace counted while a server (or both servers of
// a pair) handed out leases at a low rate, where no batching can hide a
// missing fsync.
type fsyncResult struct {
	Server string
	ACKs   int            // DHCPACKs perfdhcp received
	Calls  map[string]int // sync system calls by name, all members together
	// Members holds each server's total of sync calls, for a pair.
	Members []memberSyncs
	Err     error
}

type memberSyncs struct {
	Host  string
	Calls int
}

func (f fsyncResult) total() int {
	n := 0
	for _, c := range f.Calls {
		n += c
	}
	return n
}

// checkFsync runs srv at rate exchanges/s for period with strace counting
// the sync family of system calls in every thread of every server process.
func checkFsync(c stepConfig, srv server, rate int, period time.Duration) fsyncResult {
	out := fsyncResult{Server: srv.Name(), Calls: map[string]int{}}
	procs, err := srv.Start()
	if err != nil {
		out.Err = err
		return out
	}
	defer srv.Stop()
	if isPair(procs) {
		c.lab.RelayFanOut(true)
		defer c.lab.RelayFanOut(false)
	}

	var tracers []*tracer
	defer func() {
		for _, t := range tracers {
			t.stop()
		}
	}()
	for _, p := range procs {
		outPath := filepath.Join(c.lab.Dir, fmt.Sprintf("strace-%s-%s.txt", srv.Name(), p.Host.Name))
		t, err := startTracer(p.PID, outPath)
		if err != nil {
			out.Err = err
			return out
		}
		tracers = append(tracers, t)
	}
	time.Sleep(200 * time.Millisecond)

	res, err := lab.RunPerfdhcp(c.lab.Relay, lab.PerfdhcpOptions{
		Server: procs[0].Host.IP, Rate: rate, Clients: c.clients, Duration: period, Seed: 2, ExitWait: time.Second,
	})
	if ps, ok := srv.(pairServer); ok && isPair(procs) && err == nil {
		// The partners' updates, and their fsyncs, follow the ACKs.
		ps.Settle()
	}
	var serrs []error
	for _, t := range tracers {
		serrs = append(serrs, t.stop())
	}
	if err != nil {
		out.Err = err
		return out
	}
	out.ACKs = res.RequestAck.Received
	for i, t := range tracers {
		b, rerr := os.ReadFile(t.outPath)
		if rerr != nil {
			out.Err = fmt.Errorf("strace output: %v (%v; %s)", rerr, serrs[i], strings.TrimSpace(t.stderr.String()))
			return out
		}
		m := memberSyncs{Host: procs[i].Host.Name}
		for name, n := range parseStraceCounts(string(b)) {
			out.Calls[name] += n
			m.Calls += n
		}
		out.Members = append(out.Members, m)
	}
	return out
}

// tracer is strace -c attached to one process.
type tracer struct {
	cmd     *exec.Cmd
	outPath string
	stderr  strings.Builder
	done    bool
	err     error
}

func startTracer(pid int, outPath string) (*tracer, error) {
	t := &tracer{outPath: outPath}
	// --seccomp-bpf stops the tracee only on the traced calls, so the
	// server runs at nearly full speed; -f follows every thread.
	t.cmd = exec.Command("strace", "-f", "--seccomp-bpf", "-c", "-o", outPath,
		"-e", "trace="+strings.Join(syncCalls, ","), "-p", strconv.Itoa(pid))
	t.cmd.Stderr = &t.stderr
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("strace: %w", err)
	}
	// strace prints one "attached" line per thread once it is in place.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(t.stderr.String(), "attached") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return t, nil
}

// stop ends strace with SIGINT, which makes it print its counts; it is
// safe to call twice.
func (t *tracer) stop() error {
	if t.done {
		return t.err
	}
	t.done = true
	_ = t.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- t.cmd.Wait() }()
	select {
	case t.err = <-done:
	case <-time.After(10 * time.Second):
		_ = t.cmd.Process.Kill()
		<-done
		t.err = fmt.Errorf("strace did not stop on SIGINT")
	}
	return t.err
}

// parseStraceCounts reads the table strace -c prints:
//
//	% time     seconds  usecs/call     calls    errors syscall
//	------ ----------- ----------- --------- --------- ----------------
//	100.00    0.012345          41       300           fsync
//
// The errors column is blank when there were none, so calls is always the
// fourth field and the name the last.
func parseStraceCounts(text string) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[len(f)-1] == "total" || f[len(f)-1] == "syscall" {
			continue
		}
		if _, err := strconv.ParseFloat(f[0], 64); err != nil {
			continue
		}
		n, err := strconv.Atoi(f[3])
		if err != nil {
			continue
		}
		out[f[len(f)-1]] += n
	}
	return out
}
