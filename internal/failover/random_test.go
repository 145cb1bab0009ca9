package failover

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/tandemdhcp/tandem/internal/failover/wire"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// TestRandomPair drives the two-node harness through random clients, link
// cuts, crashes, restarts (some with an empty lease file) and operator
// partner-down, and checks after every step that no address is bound to
// two clients whose leases both still run (design.md I1), and at the end,
// once the pair has healed, that both databases agree (I5).
//
// Partner-down is declared only while the partner is really down, and a
// crashed server restarts only when it can reach its partner at once: the
// operator's side of the protocol's bargain. Within it, the MCLT rules
// must prevent every duplicate.
func TestRandomPair(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	if v, err := strconv.Atoi(os.Getenv("FAILOVER_SEEDS")); err == nil {
		seeds = v
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomPair(t, uint64(seed)) })
	}
}

// TestRandomPairIsDeterministic: the same seed gives the same run, message
// for message (the simulator replays failing seeds).
func TestRandomPairIsDeterministic(t *testing.T) {
	run := func() string {
		var out []string
		h := newHarness(t)
		h.capture = func(dir string, m *wire.Message) { out = append(out, dir+" "+describe(m)) }
		randomPairWith(t, 7, h)
		return tail(out, len(out))
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("two runs of one seed differ")
	}
}

func arg(key string, vals ...string) datadriven.CmdArg {
	return datadriven.CmdArg{Key: key, Vals: vals}
}

func randomPair(t *testing.T, seed uint64) { randomPairWith(t, seed, newHarness(t)) }

func randomPairWith(t *testing.T, seed uint64, h *harness) {
	rng := rand.New(rand.NewPCG(seed, 0x7a4d))
	mclt := []string{"60", "300"}[rng.IntN(2)]
	h.run(&datadriven.TestData{Cmd: "start", CmdArgs: []datadriven.CmdArg{
		arg("mclt", mclt), arg("pools", "12"), arg("max-unacked", fmt.Sprint(1+rng.IntN(10))),
		arg("lbmax", []string{"0", "3"}[rng.IntN(2)]),
	}})
	var history, transcript []string
	do := func(cmd string, args ...datadriven.CmdArg) {
		out := h.run(&datadriven.TestData{Cmd: cmd, CmdArgs: args})
		transcript = append(transcript, out)
	}
	do("link", arg("up"))
	partitioned := false
	for step := range 300 {
		p, s := h.nodes[0], h.nodes[1]
		var what string
		switch r := rng.IntN(100); {
		case r < 40:
			tag := []string{"p", "s"}[rng.IntN(2)]
			client := fmt.Sprintf("c%d", rng.IntN(20))
			what = "allocate " + tag + " " + client
			do("allocate", arg(tag), arg(client), arg("time", fmt.Sprint(100+rng.IntN(8000))))
		case r < 48:
			// A client releases its lease on the server it talks to.
			hn := h.nodes[rng.IntN(2)]
			if hn.down {
				continue
			}
			a := ip("198.18.0.10") + uint32(rng.IntN(12))
			l, _ := hn.db.Get(a)
			if l.State != lease.Active || l.Ends <= h.now {
				continue
			}
			what = "release " + hn.tag + " " + addrOf(a).String()
			do("lease", arg(hn.tag), arg(addrOf(a).String()), arg("release"))
		case r < 70:
			d := []string{"1s", "3s", "20s", "90s", "10m"}[rng.IntN(5)]
			what = "tick " + d
			do("tick", arg(d))
		case r < 76:
			if partitioned || p.down || s.down {
				continue
			}
			what = "partition"
			partitioned = true
			do("link", arg("down"))
		case r < 84:
			if !partitioned {
				continue
			}
			what = "heal"
			partitioned = false
			if !p.down && !s.down {
				do("link", arg("up"))
			}
		case r < 90:
			hn := h.nodes[rng.IntN(2)]
			if hn.down || h.other(hn).down {
				continue
			}
			if rng.IntN(3) == 0 {
				// A graceful stop: the partner goes partner-down, and
				// the restart may skip the MCLT wait.
				what = "shutdown " + hn.tag
				do("shutdown", arg(hn.tag))
				do("tick", arg("5s"))
				if !hn.down {
					do("crash", arg(hn.tag))
				}
			} else {
				what = "crash " + hn.tag
				do("crash", arg(hn.tag))
			}
		case r < 95:
			hn := h.nodes[rng.IntN(2)]
			if !hn.down || partitioned {
				continue
			}
			empty := rng.IntN(3) == 0
			what = "restart " + hn.tag
			args := []datadriven.CmdArg{arg(hn.tag)}
			if empty {
				what += " empty"
				args = append(args, arg("empty"))
			}
			do("restart", args...)
			do("link", arg("up"))
		default:
			// The operator declares the partner down, truthfully.
			// Never while it is still recovering its own database: it
			// cannot know what it granted before it lost it.
			hn := h.nodes[rng.IntN(2)]
			if hn.down || !h.other(hn).down || hn.node.State() == stPartnerDown ||
				hn.node.State() == stRecover || hn.node.State() == stRecoverWait || hn.node.lostDB {
				continue
			}
			what = "set-state " + hn.tag + " partner-down"
			do("set-state", arg(hn.tag), arg("partner-down"))
		}
		history = append(history, fmt.Sprintf("%d@%+d: %s", step, h.now-harnessStart, what))
		transcript = append(transcript, fmt.Sprintf("## %d@%+d: %s", step, h.now-harnessStart, what))
		if dup := duplicates(h); dup != "" {
			if f := os.Getenv("FAILOVER_TRANSCRIPT"); f != "" {
				os.WriteFile(f, []byte(tail(transcript, len(transcript))), 0o644)
			}
			t.Fatalf("seed %d: %s\nafter:\n%s", seed, dup, tail(transcript, 150))
		}
	}

	// Heal everything and let the pair settle: both must be normal and
	// agree on every lease.
	for _, hn := range h.nodes {
		if hn.down {
			do("restart", arg(hn.tag))
		}
	}
	if !h.up {
		do("link", arg("up"))
	}
	do("tick", arg("3h"))
	do("tick", arg("3h"))
	h.lines = h.lines[:0]
	for _, hn := range h.nodes {
		if st := hn.node.State(); st != stNormal {
			do("print-state")
			if f := os.Getenv("FAILOVER_TRANSCRIPT"); f != "" {
				os.WriteFile(f, []byte(tail(transcript, len(transcript))), 0o644)
			}
			t.Fatalf("seed %d: %s ends in %s\n%s\n%s", seed, hn.tag, st, tail(history, 25), h.flush())
		}
	}
	if diff := differences(h); diff != "" {
		if f := os.Getenv("FAILOVER_TRANSCRIPT"); f != "" {
			os.WriteFile(f, []byte(tail(transcript, len(transcript))), 0o644)
		}
		t.Errorf("seed %d: databases differ after healing:\n%s\n%s", seed, diff, tail(history, 25))
	}
}

func tail(s []string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	out := ""
	for _, x := range s {
		out += x + "\n"
	}
	return out
}

// duplicates reports an address two clients both believe they hold: each
// got a DHCPACK for it (its last) that has not run out (design.md I1).
func duplicates(h *harness) string {
	holder := map[uint32]string{}
	names := make([]string, 0, len(h.acked))
	for c := range h.acked {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		cl := h.acked[c]
		if cl.ends <= h.now {
			continue
		}
		if other, ok := holder[cl.ip]; ok {
			o := h.acked[other]
			return fmt.Sprintf("%s held by %s (until %+d) and %s (until %+d)", addrOf(cl.ip), other, o.ends-harnessStart, c, cl.ends-harnessStart)
		}
		holder[cl.ip] = c
	}
	return ""
}

// differences lists leases whose binding the servers disagree on.
func differences(h *harness) string {
	p, s := h.nodes[0], h.nodes[1]
	var out string
	p.db.Each(func(lp *lease.Lease, _ *lease.Pool) {
		ls, _ := s.db.Get(lp.IP)
		same := lp.State == ls.State
		if lp.State == lease.Active {
			same = same && lease.KeyOf(lp) == lease.KeyOf(ls) && lp.Ends == ls.Ends
		}
		if !same {
			out += fmt.Sprintf("p %s\ns %s\n", h.leaseLine(lp), h.leaseLine(ls))
		}
	})
	return out
}

// FuzzNodeMessage feeds arbitrary bytes, decoded as a failover message, to
// nodes of both roles in several states: no input may panic or corrupt the
// lease database.
func FuzzNodeMessage(f *testing.F) {
	a := netip.MustParseAddr("198.18.0.12")
	for _, m := range []*wire.Message{
		{Type: wire.MsgConnect, RelationshipName: wire.Some(relName), MCLT: wire.Some(uint32(60)), HBA: wire.Some(make([]byte, 32))},
		{Type: wire.MsgConnectAck, RelationshipName: wire.Some(relName)},
		{Type: wire.MsgState, ServerState: wire.Some(wire.StatePartnerDown), ServerFlags: wire.Some(wire.ServerFlags(1))},
		{Type: wire.MsgBndUpd, XID: 3, AssignedIP: wire.Some(a), BindingStatus: wire.Some(lease.Active), CHAddr: wire.Some([]byte{1, 2, 3, 4, 5, 6, 7})},
		{Type: wire.MsgBndUpd, AssignedIP: wire.Some(a), BindingStatus: wire.Some(lease.Expired), CHAddr: wire.Some([]byte{1})},
		{Type: wire.MsgBndAck, XID: 1, AssignedIP: wire.Some(a)},
		{Type: wire.MsgUpdReqAll}, {Type: wire.MsgUpdReq}, {Type: wire.MsgUpdDone}, {Type: wire.MsgPoolReq},
		{Type: wire.MsgDisconnect, RejectReason: wire.Some(wire.RejectMisc)},
	} {
		m.Time = testNow
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	states := []wire.ServerState{stStartup, stNormal, stRecover, stPartnerDown, stPotentialConflict, stConflictDone, stCommInterrupted}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.Unmarshal(b)
		if err != nil {
			return
		}
		for _, role := range []struct{ primary bool }{{true}, {false}} {
			for _, st := range states {
				r := roleOf(role.primary)
				n, db, _ := testNode(t, r, st, stNormal)
				if st != stStartup {
					linked(t, n, stNormal)
				} else {
					n.link = link{up: true, upAt: testNow, lastRecv: testNow, lastSend: testNow}
				}
				mc := *m
				if err := n.Step(testNow, MessageReceived{Msg: &mc}); err != nil {
					t.Fatal(err)
				}
				n.Step(testNow+3, Tick{})
				rd := n.Ready()
				for _, out := range rd.Messages {
					if _, err := out.MarshalBinary(); err != nil {
						t.Fatalf("node sent an unencodable %s: %v", out.Type, err)
					}
				}
				if err := db.Check(); err != nil {
					t.Fatalf("lease DB inconsistent after %s: %v", m.Type, err)
				}
			}
		}
	})
}
