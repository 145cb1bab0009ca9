package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tandemdhcp/tandem/internal/control"
)

// FailoverConfs is a failover pair's configuration in the layout
// dhcpd.conf(5) recommends and examples/classic uses: one small file per
// server holding its "failover peer" block, both including one shared
// file with the scopes and pools.
type FailoverConfs struct {
	Primary, Secondary, Shared string
	// SharedName is the file name the include statements use.
	SharedName string
}

// ReadFailoverConfs reads primary.conf, secondary.conf and shared.conf
// from dir; a relative dir is taken from Tandem's module root
// ("examples/classic").
func ReadFailoverConfs(dir string) (FailoverConfs, error) {
	if !filepath.IsAbs(dir) {
		root, err := ModuleRoot()
		if err != nil {
			return FailoverConfs{}, err
		}
		dir = filepath.Join(root, dir)
	}
	c := FailoverConfs{SharedName: "shared.conf"}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"primary.conf", &c.Primary}, {"secondary.conf", &c.Secondary}, {"shared.conf", &c.Shared}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return FailoverConfs{}, err
		}
		*f.dst = string(b)
	}
	include := fmt.Sprintf("include %q;", c.SharedName)
	if !strings.Contains(c.Primary, include) || !strings.Contains(c.Secondary, include) {
		return FailoverConfs{}, fmt.Errorf("%s: primary.conf and secondary.conf must both say %s", dir, include)
	}
	return c, nil
}

// SetPeerParam sets a parameter of the failover peer block in both
// servers' files ("mclt", "60"), replacing the statement if it is there
// and adding it otherwise; an empty value removes it. Parameters only the
// primary may give (mclt, split, hba) change only the primary's file.
func (c FailoverConfs) SetPeerParam(key, value string) FailoverConfs {
	c.Primary = SetPeerParam(c.Primary, key, value)
	switch key {
	case "mclt", "split", "hba":
	default:
		c.Secondary = SetPeerParam(c.Secondary, key, value)
	}
	return c
}

var peerBlock = regexp.MustCompile(`(?s)failover\s+peer\s+"[^"]*"\s*\{.*?\n\}`)

// SetPeerParam edits the failover peer block of one dhcpd.conf text (see
// FailoverConfs.SetPeerParam). It panics if conf has no peer block: a
// test config without one is a mistake in the test.
func SetPeerParam(conf, key, value string) string {
	loc := peerBlock.FindStringIndex(conf)
	if loc == nil {
		panic("lab: no failover peer block in configuration")
	}
	block := conf[loc[0]:loc[1]]
	stmt := regexp.MustCompile(`(?m)^[ \t]*` + regexp.QuoteMeta(key) + `[ \t]+[^;\n]*;[^\n]*\n`)
	line := ""
	if value != "" {
		line = fmt.Sprintf("  %s %s;\n", key, value)
	}
	if stmt.MatchString(block) {
		done := false
		block = stmt.ReplaceAllStringFunc(block, func(string) string {
			if done {
				return ""
			}
			done = true
			return line
		})
	} else {
		block = block[:len(block)-1] + line + "}"
	}
	return conf[:loc[0]] + block + conf[loc[1]:]
}

// AppendShared adds declarations at the end of the shared file.
func (c FailoverConfs) AppendShared(decls string) FailoverConfs {
	c.Shared = strings.TrimRight(c.Shared, "\n") + "\n\n" + decls
	return c
}

// WriteBeside writes content to name in the server's directory, next to
// its dhcpd.conf, where a relative include statement finds it.
func (t *Tandem) WriteBeside(name, content string) string {
	tb := t.Host.lab.tb
	tb.Helper()
	p := filepath.Join(t.Dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatalf("lab: %v", err)
	}
	return p
}

// TandemPair is a failover pair of Tandems: the primary on the lab's
// first server host, the secondary on the second.
type TandemPair struct {
	Primary, Secondary *Tandem
	Confs              FailoverConfs
}

// NewTandemPair writes the pair's configuration (each server's file as
// its dhcpd.conf, the shared file beside it) and starts nothing. The
// lab needs at least two servers; their addresses are the ones
// examples/classic names.
func NewTandemPair(l *Lab, c FailoverConfs) *TandemPair {
	l.tb.Helper()
	if len(l.Servers) < 2 {
		l.tb.Fatalf("lab: a failover pair needs two server hosts, the lab has %d", len(l.Servers))
	}
	p := &TandemPair{
		Primary:   NewTandem(l.Servers[0], c.Primary),
		Secondary: NewTandem(l.Servers[1], c.Secondary),
		Confs:     c,
	}
	// Both run on the loopback of their own namespace, so the default
	// metrics address does not collide.
	for _, t := range p.Servers() {
		t.WriteBeside(c.SharedName, c.Shared)
	}
	return p
}

// Servers returns the primary and the secondary.
func (p *TandemPair) Servers() []*Tandem { return []*Tandem{p.Primary, p.Secondary} }

// Start starts both servers at once and waits until both serve.
func (p *TandemPair) Start() {
	tb := p.Primary.Host.lab.tb
	tb.Helper()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, t := range p.Servers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = t.TryStart()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatalf("lab: %v", err)
	}
}

// Status asks the running server for its status through the operator
// command, "tandem status -json".
func (t *Tandem) Status() (control.Status, error) {
	out, err := t.Ctl("status", "-json")
	if err != nil {
		return control.Status{}, err
	}
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return control.Status{}, fmt.Errorf("tandem status -json on %s: %v: %q", t.Host.Name, err, out)
	}
	return st, nil
}

// Failover returns the status of the server's only failover relationship.
func (t *Tandem) Failover() (control.PeerStatus, error) {
	st, err := t.Status()
	if err != nil {
		return control.PeerStatus{}, err
	}
	if len(st.Failover) != 1 {
		return control.PeerStatus{}, fmt.Errorf("tandem on %s has %d failover relationships, want 1", t.Host.Name, len(st.Failover))
	}
	return st.Failover[0], nil
}

// AwaitFailover polls the status until ok holds for the only failover
// relationship and returns that status; on timeout the error wraps
// ErrTimeout and names the last status seen.
func (t *Tandem) AwaitFailover(timeout time.Duration, what string, ok func(control.PeerStatus) bool) (control.PeerStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := t.Failover()
		if err == nil && ok(st) {
			return st, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return st, fmt.Errorf("tandem on %s: no %s within %v: %w (last error: %v)", t.Host.Name, what, timeout, ErrTimeout, err)
			}
			return st, fmt.Errorf("tandem on %s: no %s within %v: %w (last: local %s, partner %s, connected %v)",
				t.Host.Name, what, timeout, ErrTimeout, st.LocalState, st.PartnerState, st.Connected)
		}
		if p := t.Proc(); p != nil && p.Exited() {
			return st, fmt.Errorf("tandem on %s exited while waiting for %s; last lines:\n%s", t.Host.Name, what, tail(p.Log(), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// AwaitStates waits until the server's local and partner states are the
// given ones (ISC's names: "normal", "partner-down" …; "" = any).
func (t *Tandem) AwaitStates(local, partner string, timeout time.Duration) (control.PeerStatus, error) {
	what := fmt.Sprintf("local state %q and partner state %q", local, partner)
	return t.AwaitFailover(timeout, what, func(st control.PeerStatus) bool {
		return (local == "" || st.LocalState == local) && (partner == "" || st.PartnerState == partner)
	})
}

// WaitNormal runs the operator's "tandem wait normal", which returns once
// every relationship of the server is normal. (Ctl would put -s before
// the state, and tandem wait and tandem state set read their state
// argument first.)
func (t *Tandem) WaitNormal(timeout time.Duration) error {
	_, err := t.Command("wait", "normal", "-s", t.ControlSocket, "-timeout", timeout.String())
	return err
}

// SetState runs the operator's "tandem state set STATE".
func (t *Tandem) SetState(state string) error {
	_, err := t.Command("state", "set", state, "-s", t.ControlSocket)
	return err
}

// LeaseList lists the running server's leases through "tandem leases
// -json"; state "" lists every lease but never-used free ones.
func (t *Tandem) LeaseList(state string) ([]control.Lease, error) {
	args := []string{"-json"}
	if state != "" {
		args = append(args, "-state", state)
	}
	out, err := t.Ctl("leases", args...)
	if err != nil {
		return nil, err
	}
	var ls []control.Lease
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		return nil, fmt.Errorf("tandem leases -json on %s: %v", t.Host.Name, err)
	}
	return ls, nil
}

// StateLinePattern is a regexp for ISC's log line of a local state change
// of relationship peer, "failover peer NAME: I move from FROM to TO";
// from "" matches any state.
func StateLinePattern(peer, from, to string) string {
	f := `\S+`
	if from != "" {
		f = regexp.QuoteMeta(from)
	}
	return fmt.Sprintf(`failover peer %s: I move from %s to %s\b`, regexp.QuoteMeta(peer), f, regexp.QuoteMeta(to))
}

// PeerLinePattern is the same for the partner's reported change, "failover
// peer NAME: peer moves from FROM to TO".
func PeerLinePattern(peer, from, to string) string {
	f := `\S+`
	if from != "" {
		f = regexp.QuoteMeta(from)
	}
	return fmt.Sprintf(`failover peer %s: peer moves from %s to %s\b`, regexp.QuoteMeta(peer), f, regexp.QuoteMeta(to))
}

// NewISCDhcpdFailover prepares ISC dhcpd as one server of a failover pair:
// conf is its own file, shared the included one. dhcpd opens a relative
// include from its working directory, not from the including file's, so
// the include statement is rewritten to the shared file's absolute path.
func NewISCDhcpdFailover(h *Host, conf, sharedName, shared string) *ISCDhcpd {
	tb := h.lab.tb
	tb.Helper()
	d := NewISCDhcpd(h, "")
	path := filepath.Join(d.Dir, sharedName)
	if err := os.WriteFile(path, []byte(shared), 0o644); err != nil {
		tb.Fatalf("lab: %v", err)
	}
	d.SetConf(strings.ReplaceAll(conf, fmt.Sprintf("include %q;", sharedName), fmt.Sprintf("include %q;", path)))
	return d
}
