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

// fsyncResult is what strace counted while a server handed out leases at
// a low rate, where no batching can hide a missing fsync.
type fsyncResult struct {
	Server string
	ACKs   int            // DHCPACKs perfdhcp received
	Calls  map[string]int // sync system calls by name
	Err    error
}

func (f fsyncResult) total() int {
	n := 0
	for _, c := range f.Calls {
		n += c
	}
	return n
}

// checkFsync runs srv at rate exchanges/s for period with strace counting
// the sync family of system calls in every thread of the server.
func checkFsync(c stepConfig, srv server, rate int, period time.Duration) fsyncResult {
	out := fsyncResult{Server: srv.Name()}
	proc, err := srv.Start()
	if err != nil {
		out.Err = err
		return out
	}
	defer srv.Stop()

	outPath := filepath.Join(c.lab.Dir, fmt.Sprintf("strace-%s.txt", srv.Name()))
	// --seccomp-bpf stops the tracee only on the traced calls, so the
	// server runs at nearly full speed; -f follows every thread.
	st := exec.Command("strace", "-f", "--seccomp-bpf", "-c", "-o", outPath,
		"-e", "trace="+strings.Join(syncCalls, ","), "-p", strconv.Itoa(proc.PID))
	var stderr strings.Builder
	st.Stderr = &stderr
	if err := st.Start(); err != nil {
		out.Err = fmt.Errorf("strace: %w", err)
		return out
	}
	stopStrace := func() error {
		_ = st.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- st.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			_ = st.Process.Kill()
			<-done
			return fmt.Errorf("strace did not stop on SIGINT")
		}
	}
	// strace prints one "attached" line per thread once it is in place.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "attached") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)

	res, err := lab.RunPerfdhcp(c.lab.Relay, lab.PerfdhcpOptions{
		Server: proc.Host.IP, Rate: rate, Clients: c.clients, Duration: period, Seed: 2, ExitWait: time.Second,
	})
	serr := stopStrace()
	if err != nil {
		out.Err = err
		return out
	}
	out.ACKs = res.RequestAck.Received
	b, rerr := os.ReadFile(outPath)
	if rerr != nil {
		out.Err = fmt.Errorf("strace output: %v (%v; %s)", rerr, serr, strings.TrimSpace(stderr.String()))
		return out
	}
	out.Calls = parseStraceCounts(string(b))
	return out
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
