package lab

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// TB is what a lab needs from its owner. *testing.T and *testing.B satisfy
// it; programs (a demo, a benchmark) use a *Session.
type TB interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Cleanup(func())
	TempDir() string
}

// Session is a TB for programs that run a lab outside `go test`. Fatalf
// tears everything down and exits the program with status 1, so a program
// that fails half-way still leaves no namespaces or processes behind.
type Session struct {
	name string
	dir  string
	log  *slog.Logger

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	closed   bool
	tempN    int
}

// NewSession returns a Session whose files live under dir; an empty dir
// means a fresh directory under os.TempDir(). The caller must defer Close.
func NewSession(name, dir string) (*Session, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "tandem-"+sanitize(name)+"-")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Session{
		name: name,
		dir:  dir,
		log:  slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}, nil
}

// Dir is the directory holding the session's files; it is kept after Close
// so that logs can be read.
func (s *Session) Dir() string { return s.dir }

func (s *Session) Helper()      {}
func (s *Session) Name() string { return s.name }

func (s *Session) Logf(format string, args ...any) {
	s.log.Info(fmt.Sprintf(format, args...))
}

// Fatalf logs, runs every cleanup and exits the process.
func (s *Session) Fatalf(format string, args ...any) {
	s.log.Error(fmt.Sprintf(format, args...))
	s.mu.Lock()
	s.failed = true
	s.mu.Unlock()
	s.Close()
	os.Exit(1)
}

func (s *Session) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Cleanup registers f to run at Close, last registered first, like testing.
func (s *Session) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// TempDir returns a new directory inside the session directory.
func (s *Session) TempDir() string {
	s.mu.Lock()
	s.tempN++
	n := s.tempN
	s.mu.Unlock()
	d := filepath.Join(s.dir, strconv.Itoa(n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		s.Fatalf("session temp dir: %v", err)
	}
	return d
}

// Close runs the registered cleanups once; later calls do nothing.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	fs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// CloseOnSignal makes SIGINT and SIGTERM run Close and exit, so an operator
// interrupting a demo does not leave namespaces behind.
func (s *Session) CloseOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		s.log.Info("signal received, cleaning up", "signal", sig.String())
		s.Close()
		os.Exit(130)
	}()
}
