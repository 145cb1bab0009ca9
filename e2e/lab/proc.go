package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrTimeout is returned (wrapped) when a wait runs out of time.
var ErrTimeout = errors.New("timed out")

// Proc is a process the lab started inside a host's namespace, in its own
// process group, with stdout and stderr appended to LogPath.
type Proc struct {
	Name    string
	Host    *Host
	Argv    []string
	PID     int
	LogPath string
	Started time.Time

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error // valid once done is closed
}

// Start runs argv in the host's namespace. name labels the log file
// (<host>-<name>.log, then -2, -3 … for restarts). Failure to start is
// fatal to the lab's owner.
func (h *Host) Start(name string, argv ...string) *Proc {
	h.lab.tb.Helper()
	return h.StartEnv(name, nil, argv...)
}

// StartEnv is Start with extra environment variables ("K=V").
func (h *Host) StartEnv(name string, env []string, argv ...string) *Proc {
	h.lab.tb.Helper()
	p, err := h.start(name, env, argv)
	if err != nil {
		h.lab.tb.Fatalf("lab: starting %s on %s: %v", name, h.Name, err)
	}
	return p
}

func (h *Host) start(name string, env []string, argv []string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	l := h.lab
	logPath := filepath.Join(l.Dir, l.uniqueName("log", h.Name+"-"+sanitize(name))+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := h.Command(context.Background(), argv...)
	cmd.Dir = l.Dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own group, so that a kill reaches helpers it forks (dhclient's
		// hook scripts), and death with the test binary, so that a test
		// killed on timeout leaves no server behind.
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	p := &Proc{Name: name, Host: h, Argv: argv, LogPath: logPath, cmd: cmd, done: make(chan struct{})}

	// Pdeathsig fires when the *thread* that forked the child exits, and Go
	// may retire threads. Fork from a locked thread that lives until the
	// child is reaped.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	err = <-started
	logf.Close() // the child holds its own descriptor
	if err != nil {
		return nil, err
	}
	p.PID = cmd.Process.Pid
	p.Started = time.Now()
	if err := l.track(p); err != nil {
		p.kill(syscall.SIGKILL)
		<-p.done
		return nil, err
	}
	return p, nil
}

func (p *Proc) kill(sig syscall.Signal) {
	if p.Exited() {
		return
	}
	// Negative pid: the whole process group.
	_ = syscall.Kill(-p.PID, sig)
}

// Exited reports whether the process has exited and been reaped.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill9 sends SIGKILL to the process group and waits until the process is
// reaped: the crash that the servers must survive.
func (p *Proc) Kill9() {
	p.Host.lab.tb.Helper()
	p.kill(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Host.lab.tb.Fatalf("lab: %s (pid %d) still running 10s after SIGKILL", p.Name, p.PID)
	}
}

// Term sends SIGTERM to the process group and returns at once; use Wait.
func (p *Proc) Term() { p.kill(syscall.SIGTERM) }

// Signal sends sig to the process alone (SIGHUP to reload, for instance).
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("%s has exited", p.Name)
	}
	return syscall.Kill(p.PID, sig)
}

// Stop sends SIGTERM, waits up to timeout, then SIGKILLs. It returns the
// exit error of the process, if it exited on SIGTERM.
func (p *Proc) Stop(timeout time.Duration) error {
	p.Host.lab.tb.Helper()
	p.Term()
	err := p.Wait(timeout)
	if errors.Is(err, ErrTimeout) {
		p.Kill9()
		return err
	}
	return err
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for status 0), or an error wrapping ErrTimeout.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running after %v: %w", p.Name, p.PID, timeout, ErrTimeout)
	}
}

// ExitCode is the exit status, or -1 while running or after a signal.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Log returns everything the process has written so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// LogSize is the current length of the log, a cursor for AwaitLog.
func (p *Proc) LogSize() int64 {
	st, err := os.Stat(p.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// LogMatch is a match found by AwaitLog.
type LogMatch struct {
	// Groups holds the whole match and its submatches.
	Groups []string
	// End is the log offset just after the match: pass it to AwaitLog to
	// wait for the next occurrence.
	End int64
}

// WaitForLog waits until the log, from its beginning, matches pattern (a
// regexp in multi-line mode, so ^ and $ match at line boundaries), and
// returns the match and submatches. Timing out, or the process exiting
// without a match, is fatal.
func (p *Proc) WaitForLog(pattern string, timeout time.Duration) []string {
	p.Host.lab.tb.Helper()
	m, err := p.AwaitLog(0, pattern, timeout)
	if err != nil {
		p.Host.lab.tb.Fatalf("lab: %v", err)
	}
	return m.Groups
}

// AwaitLog waits until the log from offset from on matches pattern. It
// fails early if the process exits without the match.
func (p *Proc) AwaitLog(from int64, pattern string, timeout time.Duration) (LogMatch, error) {
	re, err := regexp.Compile("(?m)" + pattern)
	if err != nil {
		return LogMatch{}, err
	}
	deadline := time.Now().Add(timeout)
	for {
		// Check exit before reading, so a final write is not missed.
		exited := p.Exited()
		text, err := readFrom(p.LogPath, from)
		if err != nil {
			return LogMatch{}, err
		}
		if loc := re.FindStringSubmatchIndex(text); loc != nil {
			groups := make([]string, len(loc)/2)
			for i := range groups {
				if loc[2*i] >= 0 {
					groups[i] = text[loc[2*i]:loc[2*i+1]]
				}
			}
			return LogMatch{Groups: groups, End: from + int64(loc[1])}, nil
		}
		if exited {
			return LogMatch{}, fmt.Errorf("%s on %s exited (%v) without logging %q; last lines:\n%s",
				p.Name, p.Host.Name, p.waitErr, pattern, tail(p.Log(), 20))
		}
		if time.Now().After(deadline) {
			return LogMatch{}, fmt.Errorf("%s on %s did not log %q within %v: %w; last lines:\n%s",
				p.Name, p.Host.Name, pattern, timeout, ErrTimeout, tail(p.Log(), 20))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func readFrom(path string, off int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return "", err
	}
	b, err := io.ReadAll(f)
	return string(b), err
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux architecture Go supports.
const clockTick = 100

// CPUTime is the user plus system CPU time the process has used so far,
// read from /proc (children not included). Benchmarks report it beside
// the rate.
func (p *Proc) CPUTime() (time.Duration, error) {
	if p.Exited() {
		ps := p.cmd.ProcessState
		return ps.UserTime() + ps.SystemTime(), nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after the
	// closing parenthesis are plain.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", p.PID)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", p.PID)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}
