package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandemdhcp/tandem/internal/leasefile"
)

// TandemModule is the module path of Tandem; TandemBinary builds its
// cmd/tandem from the module root that declares it.
const TandemModule = "github.com/tandemdhcp/tandem"

// TandemBinaryEnv names an environment variable that, when set, points at
// a tandem binary to use instead of building one (scripts that built it
// already set it).
const TandemBinaryEnv = "TANDEM_BIN"

var tandemBuild struct {
	once sync.Once
	dir  string // temporary directory holding the built binary
	path string
	err  error
}

// TandemBinary returns the path of a tandem binary: $TANDEM_BIN if set,
// otherwise cmd/tandem built once per process into a temporary directory
// from the module this package belongs to. RemoveTandemBuild deletes it.
func TandemBinary() (string, error) {
	tandemBuild.once.Do(func() {
		if p := os.Getenv(TandemBinaryEnv); p != "" {
			abs, err := filepath.Abs(p)
			if err == nil {
				_, err = os.Stat(abs)
			}
			tandemBuild.path, tandemBuild.err = abs, err
			return
		}
		root, err := ModuleRoot()
		if err != nil {
			tandemBuild.err = err
			return
		}
		dir, err := os.MkdirTemp("", "tandem-build-")
		if err != nil {
			tandemBuild.err = err
			return
		}
		tandemBuild.dir = dir
		bin := filepath.Join(dir, "tandem")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tandem")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			tandemBuild.err = fmt.Errorf("go build ./cmd/tandem in %s: %v\n%s", root, err, out)
			return
		}
		tandemBuild.path = bin
	})
	return tandemBuild.path, tandemBuild.err
}

// RemoveTandemBuild deletes the binary TandemBinary built, if it built
// one. Call it once no Tandem runs any more (TestMain, end of a program).
func RemoveTandemBuild() {
	if tandemBuild.dir != "" {
		_ = os.RemoveAll(tandemBuild.dir)
	}
}

// ModuleRoot finds the directory of Tandem's go.mod: above this source
// file when the sources are at hand (go test, go run), else above the
// working directory.
func ModuleRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if isTandemModule(filepath.Join(d, "go.mod")) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("no go.mod of %s above %v", TandemModule, starts)
}

func isTandemModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) == 2 && fs[0] == "module" {
			return fs[1] == TandemModule
		}
	}
	return false
}

// Tandem runs `tandem serve` in a host namespace with its own config,
// lease and PID files, so that it can be killed and started again on the
// same lease file, like ISCDhcpd.
type Tandem struct {
	Host      *Host
	Bin       string
	Dir       string
	ConfPath  string
	LeasePath string
	PIDPath   string
	// MetricsAddr is where the server serves Prometheus metrics, on the
	// loopback of its own namespace; empty turns metrics off. Metrics
	// scrapes it.
	MetricsAddr string
	// ControlSocket is the unix socket of the operator API (tandem status,
	// leases …). Unix sockets live in the file system, which namespaces
	// share, so every server gets its own; empty turns the API off.
	ControlSocket string
	// Port is the DHCP server port; 0 means 67.
	Port int
	// Verbose adds -v (debug logging).
	Verbose bool
	// Extra arguments go before the interface names.
	Extra []string
	// ReadyTimeout bounds Start's wait for "server started".
	ReadyTimeout time.Duration

	mu   sync.Mutex
	proc *Proc
}

// NewTandem writes conf into a directory of its own and finds (or builds)
// the binary. It starts nothing; the lease file is created by the server.
func NewTandem(h *Host, conf string) *Tandem {
	tb := h.lab.tb
	tb.Helper()
	bin, err := TandemBinary()
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	dir := filepath.Join(h.lab.Dir, h.lab.uniqueName("dir", h.Name+"-tandem"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("lab: %v", err)
	}
	t := &Tandem{
		Host:         h,
		Bin:          bin,
		Dir:          dir,
		ConfPath:     filepath.Join(dir, "dhcpd.conf"),
		LeasePath:    filepath.Join(dir, "dhcpd.leases"),
		PIDPath:      filepath.Join(dir, "tandem.pid"),
		MetricsAddr:  "127.0.0.1:9967",
		ReadyTimeout: 30 * time.Second,
	}
	t.ControlSocket = filepath.Join(dir, "ctl.sock")
	// sun_path holds 108 bytes; a deep lab directory needs a shorter home.
	if len(t.ControlSocket) > 100 {
		d, err := os.MkdirTemp("", "tdmctl-")
		if err != nil {
			tb.Fatalf("lab: %v", err)
		}
		tb.Cleanup(func() { os.RemoveAll(d) })
		t.ControlSocket = filepath.Join(d, "ctl.sock")
	}
	t.SetConf(conf)
	return t
}

// SetConf replaces the configuration; it takes effect at the next Start.
func (t *Tandem) SetConf(conf string) {
	t.Host.lab.tb.Helper()
	if err := os.WriteFile(t.ConfPath, []byte(conf), 0o644); err != nil {
		t.Host.lab.tb.Fatalf("lab: %v", err)
	}
}

// Argv is the command line Start runs.
func (t *Tandem) Argv() []string {
	a := []string{t.Bin, "serve", "-d", "-cf", t.ConfPath, "-lf", t.LeasePath, "-pf", t.PIDPath}
	if t.Port != 0 {
		a = append(a, "-p", strconv.Itoa(t.Port))
	}
	if t.MetricsAddr != "" {
		a = append(a, "-metrics", t.MetricsAddr)
	}
	a = append(a, "-control", t.ControlSocket)
	if t.Verbose {
		a = append(a, "-v")
	}
	a = append(a, t.Extra...)
	return append(a, t.Host.Iface)
}

// readyPattern matches the log line Tandem writes once it answers, as a
// plain line or in slog's text format.
const readyPattern = `(^|\s|msg=")server started(\s|"|$)`

// Start starts the server and waits until it serves. Starting while a
// previous instance still runs, or the server failing to come up, is
// fatal to the lab's owner.
func (t *Tandem) Start() *Proc {
	tb := t.Host.lab.tb
	tb.Helper()
	p, err := t.TryStart()
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	return p
}

// TryStart is Start returning the failure instead, for tests that expect
// one; the process, if it was started, is returned either way.
func (t *Tandem) TryStart() (*Proc, error) {
	t.mu.Lock()
	if t.proc != nil && !t.proc.Exited() {
		pid := t.proc.PID
		t.mu.Unlock()
		return nil, fmt.Errorf("tandem on %s is already running (pid %d)", t.Host.Name, pid)
	}
	t.mu.Unlock()
	p, err := t.Host.start("tandem", nil, t.Argv())
	if err != nil {
		return nil, fmt.Errorf("starting tandem on %s: %w", t.Host.Name, err)
	}
	t.mu.Lock()
	t.proc = p
	t.mu.Unlock()
	if _, err := p.AwaitLog(0, readyPattern, t.ReadyTimeout); err != nil {
		return p, fmt.Errorf("tandem on %s did not start: %w", t.Host.Name, err)
	}
	return p, nil
}

// Proc is the current (or last) server process; nil before Start.
func (t *Tandem) Proc() *Proc {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.proc
}

// Kill9 crashes the running server (SIGKILL) and waits until it is gone.
func (t *Tandem) Kill9() {
	t.Host.lab.tb.Helper()
	if p := t.Proc(); p != nil {
		p.Kill9()
	}
}

// Stop ends the running server with SIGTERM (SIGKILL after timeout) and
// returns its exit error.
func (t *Tandem) Stop(timeout time.Duration) error {
	t.Host.lab.tb.Helper()
	if p := t.Proc(); p != nil {
		return p.Stop(timeout)
	}
	return nil
}

// Restart stops the running server, if any, with SIGTERM and starts it
// again on the same files.
func (t *Tandem) Restart() *Proc {
	t.Host.lab.tb.Helper()
	if err := t.Stop(10 * time.Second); err != nil {
		t.Host.lab.tb.Logf("lab: tandem on %s stopped with %v", t.Host.Name, err)
	}
	return t.Start()
}

// Leases parses the lease file as it is on disk now. It reads a copy and
// never modifies the file, so it is safe while the server runs: a record
// the server is appending shows up as a torn tail (Contents.Recovered),
// not as an error. A missing file is an error satisfying
// errors.Is(err, os.ErrNotExist).
func (t *Tandem) Leases() (*leasefile.Contents, error) {
	data, err := os.ReadFile(t.LeasePath)
	if err != nil {
		return nil, err
	}
	c, err := leasefile.Parse(data)
	if err != nil {
		var pe *leasefile.ParseError
		if errors.As(err, &pe) {
			pe.Path = t.LeasePath
		}
		return nil, err
	}
	return c, nil
}

// LeaseText returns the lease file's text.
func (t *Tandem) LeaseText() (string, error) {
	b, err := os.ReadFile(t.LeasePath)
	return string(b), err
}

// Command runs a tandem subcommand (check-config, serve -t …) to
// completion on the server's host and returns its combined output; a
// non-zero exit is an error wrapping *exec.ExitError.
func (t *Tandem) Command(args ...string) (string, error) {
	return t.Host.Run(append([]string{t.Bin}, args...)...)
}

// Ctl runs an operator command against the running server through its
// control socket: Ctl("status"), Ctl("leases", "-json") …
func (t *Tandem) Ctl(command string, args ...string) (string, error) {
	if t.ControlSocket == "" {
		return "", errors.New("tandem runs without a control socket")
	}
	return t.Command(append([]string{command, "-s", t.ControlSocket}, args...)...)
}

// Metrics scrapes /metrics over HTTP from inside the server's namespace
// and returns every sample by its name and labels as Prometheus prints
// them, e.g. `tandem_dhcp_malformed_total` or
// `tandem_dhcpnet_dropped_packets_total{reason="short"}`.
func (t *Tandem) Metrics() (Samples, error) {
	if t.MetricsAddr == "" {
		return nil, errors.New("tandem runs without -metrics")
	}
	h := t.Host
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return h.Dial(network, addr, 5*time.Second)
			},
			DisableKeepAlives: true,
		},
	}
	resp, err := client.Get("http://" + t.MetricsAddr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scraping tandem on %s: %w", h.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping tandem on %s: %s", h.Name, resp.Status)
	}
	return ParseSamples(resp.Body)
}

// Samples maps a Prometheus sample's name and labels (as printed in the
// text exposition format) to its value.
type Samples map[string]float64

// Sum adds up every sample of the metric name, whatever its labels.
func (s Samples) Sum(name string) float64 {
	var sum float64
	for k, v := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum += v
		}
	}
	return sum
}

// ParseSamples reads the Prometheus text exposition format: one sample a
// line, "name{labels} value [timestamp]", comments skipped.
func ParseSamples(r io.Reader) (Samples, error) {
	out := Samples{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Label values may hold spaces; the value follows the closing brace.
		key, rest := line, ""
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			key, rest = line[:i+1], strings.TrimSpace(line[i+1:])
		} else if f := strings.Fields(line); len(f) >= 2 {
			key, rest = f[0], strings.Join(f[1:], " ")
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %v", line, err)
		}
		out[key] = v
	}
	return out, sc.Err()
}
