package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Kea runs kea-dhcp4 in a host namespace with a private directory for its
// config, memfile lease file, PID file and lock file.
type Kea struct {
	Host      *Host
	Dir       string
	ConfPath  string
	LeasePath string
	// ReadyTimeout bounds Start's wait for DHCP4_STARTED.
	ReadyTimeout time.Duration
	// Prefix is a wrapper that execs kea-dhcp4 in place, such as
	// "nice -n -10"; the PID stays kea-dhcp4's.
	Prefix []string

	proc *Proc
}

// NewKea writes a kea-dhcp4 config whose "Dhcp4" object is dhcp4 (for
// example Pools{}.KeaDhcp4()) completed with what the lab decides, unless
// dhcp4 sets them itself: the host's interface with raw sockets, a memfile
// lease database with persist true and no lease file cleanup (lfc), and
// INFO logging to stdout. It does not start kea-dhcp4.
func NewKea(h *Host, dhcp4 map[string]any) *Kea {
	tb := h.lab.tb
	tb.Helper()
	dir := filepath.Join(h.lab.Dir, h.lab.uniqueName("dir", h.Name+"-kea"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("lab: %v", err)
	}
	k := &Kea{
		Host:         h,
		Dir:          dir,
		ConfPath:     filepath.Join(dir, "kea-dhcp4.json"),
		LeasePath:    filepath.Join(dir, "kea-leases4.csv"),
		ReadyTimeout: 20 * time.Second,
	}
	cfg := map[string]any{}
	for key, v := range dhcp4 {
		cfg[key] = v
	}
	setDefault(cfg, "interfaces-config", map[string]any{
		"interfaces":       []any{h.Iface},
		"dhcp-socket-type": "raw",
	})
	setDefault(cfg, "lease-database", map[string]any{
		"type":         "memfile",
		"persist":      true,
		"name":         k.LeasePath,
		"lfc-interval": 0,
	})
	setDefault(cfg, "loggers", []any{map[string]any{
		"name":           "kea-dhcp4",
		"output_options": []any{map[string]any{"output": "stdout", "flush": true}},
		"severity":       "INFO",
	}})
	b, err := json.MarshalIndent(map[string]any{"Dhcp4": cfg}, "", "  ")
	if err != nil {
		tb.Fatalf("lab: kea config: %v", err)
	}
	if err := os.WriteFile(k.ConfPath, b, 0o644); err != nil {
		tb.Fatalf("lab: %v", err)
	}
	return k
}

func setDefault(m map[string]any, key string, v any) {
	if _, ok := m[key]; !ok {
		m[key] = v
	}
}

// Argv is the command line Start runs.
func (k *Kea) Argv() []string { return []string{"kea-dhcp4", "-c", k.ConfPath} }

// Env keeps Kea's PID and lock files in the private directory: the system
// ones would clash with other instances, and a stale PID file left by a
// kill -9 would block the next start.
func (k *Kea) Env() []string {
	return []string{"KEA_PIDFILE_DIR=" + k.Dir, "KEA_LOCKFILE_DIR=" + k.Dir}
}

// Start starts kea-dhcp4 and waits for DHCP4_STARTED. Starting while a
// previous instance still runs, or Kea failing to come up, is fatal.
func (k *Kea) Start() *Proc {
	tb := k.Host.lab.tb
	tb.Helper()
	p, err := k.TryStart()
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	return p
}

// TryStart is Start returning the failure instead; the process, if it
// was started, is returned either way.
func (k *Kea) TryStart() (*Proc, error) {
	if k.proc != nil && !k.proc.Exited() {
		return nil, fmt.Errorf("kea-dhcp4 on %s is already running (pid %d)", k.Host.Name, k.proc.PID)
	}
	pids, _ := filepath.Glob(filepath.Join(k.Dir, "*.pid"))
	for _, p := range pids {
		_ = os.Remove(p)
	}
	argv := append(append([]string{}, k.Prefix...), k.Argv()...)
	p, err := k.Host.start("kea-dhcp4", k.Env(), argv)
	if err != nil {
		return nil, fmt.Errorf("starting kea-dhcp4 on %s: %w", k.Host.Name, err)
	}
	k.proc = p
	if _, err := p.AwaitLog(0, `DHCP4_STARTED`, k.ReadyTimeout); err != nil {
		return p, fmt.Errorf("kea-dhcp4 on %s did not start: %w", k.Host.Name, err)
	}
	return p, nil
}

// Proc is the current (or last) kea-dhcp4 process; nil before Start.
func (k *Kea) Proc() *Proc { return k.proc }

// Leases returns the memfile lease file's contents (CSV).
func (k *Kea) Leases() (string, error) {
	b, err := os.ReadFile(k.LeasePath)
	return string(b), err
}
