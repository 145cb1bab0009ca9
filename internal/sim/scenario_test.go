package sim

// Scenario scripts (testdata/*.txt, run with datadriven; -rewrite
// regenerates the expected output). Every command runs the invariant
// checks I1-I4 as the world runs; a violation is printed and stops the
// world. Commands:
//
//	new [seed=1] [clients=8] [pool=16] [mclt=60] [lease=300] [split=128]
//	    [lbmax=0] [mrd=10] [max-unacked=10] [skew-p=0] [skew-s=0]
//	run <duration>                 let the world run (e.g. 30s, 5m)
//	partition [split]              cut the servers apart (split: some
//	                               clients reach one server only)
//	heal
//	crash <p|s>                    kill -9
//	restart <p|s> [empty]          from its disk, or a lost lease file
//	shutdown <p|s>                 graceful stop
//	set-state <p|s> <state>        the operator forces a state
//	states                         both servers' states and pools
//	bindings                       what every client believes
//	converge [within=1h]           run until quiet normal-normal, then I5
//
// With "new manual", clients act only when told:
//
//	acquire <cN>                   DISCOVER, then REQUEST an offer
//	renew <cN> | rebind <cN> | release <cN>
//	reboot <cN> [addr]             INIT-REBOOT for its address (or addr)
//	reach <cN> <p|s|both>          which servers its broadcasts reach
//
// Output: state transitions, link events, STATE/UPDREQ/UPDDONE/POOLREQ
// messages as they happen, and after each command the number of binding
// updates, acks and keepalives per direction.

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

type scenario struct {
	t *testing.T
	s *Sim
}

func (sc *scenario) arg(d *datadriven.TestData, key string, def int64) int64 {
	if !d.HasArg(key) {
		return def
	}
	var v string
	d.ScanArgs(sc.t, key, &v)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		d.Fatalf(sc.t, "%s=%q: %v", key, v, err)
	}
	return n
}

func (sc *scenario) server(d *datadriven.TestData) int {
	if len(d.CmdArgs) == 0 {
		d.Fatalf(sc.t, "%s: which server (p or s)?", d.Cmd)
	}
	switch d.CmdArgs[0].Key {
	case "p":
		return 0
	case "s":
		return 1
	}
	d.Fatalf(sc.t, "%s: unknown server %q", d.Cmd, d.CmdArgs[0].Key)
	return 0
}

func (sc *scenario) run(d *datadriven.TestData) string {
	if d.Cmd != "new" && sc.s == nil {
		d.Fatalf(sc.t, "no world yet: start with new")
	}
	if sc.s != nil && sc.s.violation != nil {
		return "the world stopped at a violation\n"
	}
	var extra []string
	switch d.Cmd {
	case "new":
		o := Options{
			Seed:             uint64(sc.arg(d, "seed", 1)),
			Clients:          int(sc.arg(d, "clients", 8)),
			PoolSize:         int(sc.arg(d, "pool", 16)),
			MCLT:             uint32(sc.arg(d, "mclt", 60)),
			LeaseTime:        uint32(sc.arg(d, "lease", 300)),
			Split:            int(sc.arg(d, "split", 128)),
			LBMaxSeconds:     uint32(sc.arg(d, "lbmax", 0)),
			MaxResponseDelay: uint32(sc.arg(d, "mrd", 10)),
			MaxUnacked:       uint32(sc.arg(d, "max-unacked", 10)),
			Skew:             [2]int64{sc.arg(d, "skew-p", 0), sc.arg(d, "skew-s", 0)},
			CheckDBEvery:     1,
			Record:           true,
			Manual:           d.HasArg("manual"),
		}
		s, err := New(o)
		if err != nil {
			d.Fatalf(sc.t, "%v", err)
		}
		sc.s = s
	case "run":
		if len(d.CmdArgs) != 1 {
			d.Fatalf(sc.t, "run <duration>")
		}
		dur, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			d.Fatalf(sc.t, "%v", err)
		}
		sc.s.Advance(int64(dur / time.Second))
		extra = append(extra, fmt.Sprintf("now %s", fmtDur(sc.s.Now())))
	case "partition":
		sc.s.Partition(len(d.CmdArgs) > 0 && d.CmdArgs[0].Key == "split")
	case "heal":
		sc.s.Heal()
	case "crash":
		sc.s.Crash(sc.server(d))
	case "restart":
		sc.s.Restart(sc.server(d), len(d.CmdArgs) > 1 && d.CmdArgs[1].Key == "empty")
	case "shutdown":
		sc.s.Shutdown(sc.server(d))
	case "set-state":
		st, ok := wire.ParseServerState(d.CmdArgs[1].Key)
		if !ok {
			d.Fatalf(sc.t, "unknown state %q", d.CmdArgs[1].Key)
		}
		sc.s.SetState(sc.server(d), st)
	case "acquire", "renew", "rebind", "release", "reboot", "reach":
		sc.client(d)
	case "states":
		extra = sc.states()
	case "bindings":
		extra = sc.bindings()
	case "converge":
		within := int64(3600)
		if d.HasArg("within") {
			var v string
			d.ScanArgs(sc.t, "within", &v)
			dur, err := time.ParseDuration(v)
			if err != nil {
				d.Fatalf(sc.t, "%v", err)
			}
			within = int64(dur / time.Second)
		}
		start := sc.s.Now()
		sc.s.Converge(within)
		if sc.s.violation == nil {
			n := 0
			sc.s.srv[0].db.Each(func(*lease.Lease, *lease.Pool) { n++ })
			extra = append(extra, fmt.Sprintf("converged after %s: both normal, %d addresses agree", fmtDur(sc.s.Now()-start), n))
		}
	default:
		d.Fatalf(sc.t, "unknown command %q", d.Cmd)
	}
	return sc.output(extra)
}

// output is the recorded lines, the message counts, the command's own
// lines, and the violation if there was one.
func (sc *scenario) output(extra []string) string {
	var b strings.Builder
	counts := map[string]int{}
	for _, l := range sc.s.Output() {
		if strings.HasPrefix(l, "#") {
			counts[l[1:]]++
			continue
		}
		b.WriteString(l + "\n")
	}
	if len(counts) > 0 {
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s ×%d", k, counts[k])
		}
		b.WriteString("messages: " + strings.Join(parts, ", ") + "\n")
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	if v := sc.s.violation; v != nil {
		fmt.Fprintf(&b, "VIOLATION %v\n", v)
	}
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}

func fmtDur(sec int64) string { return (time.Duration(sec) * time.Second).String() }

func (sc *scenario) client(d *datadriven.TestData) {
	if len(d.CmdArgs) == 0 || !strings.HasPrefix(d.CmdArgs[0].Key, "c") {
		d.Fatalf(sc.t, "%s <cN>", d.Cmd)
	}
	i, err := strconv.Atoi(d.CmdArgs[0].Key[1:])
	if err != nil || i < 0 || i >= len(sc.s.clients) {
		d.Fatalf(sc.t, "%s: no client %q", d.Cmd, d.CmdArgs[0].Key)
	}
	switch d.Cmd {
	case "acquire":
		sc.s.Acquire(i)
	case "renew":
		sc.s.Renew(i)
	case "rebind":
		sc.s.Rebind(i)
	case "release":
		sc.s.Release(i)
	case "reboot":
		var addr uint32
		if len(d.CmdArgs) > 1 {
			a, err := netip.ParseAddr(d.CmdArgs[1].Key)
			if err != nil {
				d.Fatalf(sc.t, "%v", err)
			}
			addr = lease.AddrToU32(a)
		}
		sc.s.Reboot(i, addr)
	case "reach":
		m := map[string]uint8{"p": 1, "s": 2, "both": 3}[d.CmdArgs[len(d.CmdArgs)-1].Key]
		if m == 0 {
			d.Fatalf(sc.t, "reach <cN> <p|s|both>")
		}
		sc.s.Reach(i, m)
	}
}

func (sc *scenario) states() []string {
	var out []string
	for _, sv := range sc.s.srv {
		if !sv.up {
			out = append(out, sv.tag+": down")
			continue
		}
		st := sv.node.Status()
		line := fmt.Sprintf("%s: %s, partner %s", sv.tag, st.State, st.PartnerState)
		for _, pb := range st.Pools {
			p := sv.db.Pools[pb.Index]
			c := p.Counts()
			var parts []string
			for s := lease.Free; s <= lease.Backup; s++ {
				if c[s] > 0 {
					parts = append(parts, fmt.Sprintf("%s %d", s, c[s]))
				}
			}
			line += "; pool: " + strings.Join(parts, ", ")
		}
		out = append(out, line)
	}
	return out
}

func (sc *scenario) bindings() []string {
	var out []string
	s := sc.s
	for _, c := range s.clients {
		line := fmt.Sprintf("c%d: %s", c.idx, c.state)
		if c.ip != 0 && c.end > s.now {
			line += fmt.Sprintf(" %s from %s, %ds left", lease.U32ToAddr(c.ip), s.srvTag(c.srvID), (c.end-s.now)/1000)
		}
		out = append(out, line)
	}
	return out
}

func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		sc := &scenario{t: t}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return sc.run(d)
		})
	})
}
