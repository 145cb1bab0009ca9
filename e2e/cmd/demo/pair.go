package main

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
	"github.com/tandemdhcp/tandem/internal/control"
	"github.com/tandemdhcp/tandem/internal/lease"
)

// The failover pair's part of the demo: waiting for normal, the servers'
// states and pool splits, their failover log lines, and on request a
// failover.

// awaitNormal waits, as an operator would with "tandem wait normal",
// until both servers are normal, then until the primary has split the
// free addresses with the secondary (pool balancing, one binding update
// per address), so that both can serve when the clients come.
func (d *demo) awaitNormal() {
	p := d.p
	t0 := p.step("waiting for the pair to reach normal (tandem wait normal, on both)")
	for _, srv := range d.dep.Servers {
		if err := srv.WaitNormal(60 * time.Second); err != nil {
			p.fail("%s: %v", srv.Host.Name, err)
			d.tb.Fatalf("demo: %v", err)
		}
	}
	p.done(t0, "normal")
	for _, srv := range d.dep.Servers {
		if st, err := srv.Failover(); err == nil {
			p.note("%s (%s): %s, partner %s", srv.Host.Name, st.Role, st.LocalState, st.PartnerState)
		}
	}

	t0 = p.step("primary splits the free addresses with the secondary (pool balancing)")
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := d.dep.Servers[1].Status()
		if err == nil && balancedPools(st) {
			p.done(t0, "secondary holds its half")
			return
		}
		if time.Now().After(deadline) {
			p.fail("not balanced after 30 s; going on")
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// balancedPools: every failover pool's free addresses are split between
// free (the primary's) and backup (the secondary's) within one.
func balancedPools(st control.Status) bool {
	for _, pool := range st.Pools {
		if pool.FailoverPeer == "" {
			continue
		}
		f, b := pool.States["free"], pool.States["backup"]
		if b == 0 || f-b > 1 || b-f > 1 {
			return false
		}
	}
	return true
}

// leaseFiles reads each server's lease file, by server.
func (d *demo) leaseFiles() []map[netip.Addr]lease.Lease {
	out := make([]map[netip.Addr]lease.Lease, len(d.dep.Servers))
	for i, srv := range d.dep.Servers {
		out[i] = map[netip.Addr]lease.Lease{}
		c, err := srv.Leases()
		if err != nil {
			continue
		}
		for _, l := range c.Leases {
			out[i][l.Addr()] = l
		}
	}
	return out
}

// fileCell says, for a pair, whether both lease files hold a client's
// binding: the one that gave it, and its partner through a binding update.
func (d *demo) fileCell(files []map[netip.Addr]lease.Lease, r clientResult) cell {
	if res, ok := d.dep.Reserved[r.host.MAC.String()]; ok && r.ev.IP == res.Addr {
		return cs(cyan, "host "+res.Name+" (fixed-address)")
	}
	var on []string
	var ends int64
	for i, srv := range d.dep.Servers {
		l, ok := files[i][r.ev.IP]
		if ok && l.State == lease.Active && l.HardwareAddr().String() == r.host.MAC.String() {
			on = append(on, srv.Host.Name)
			ends = max(ends, l.Ends)
		}
	}
	switch {
	case len(on) == len(d.dep.Servers):
		return cs(green, "both, until "+time.Unix(ends, 0).Format(time.TimeOnly))
	case len(on) > 0:
		return cs(yellow, "only "+strings.Join(on, ", ")+" (update in flight)")
	}
	return cs(red, "no record!")
}

// reportFailover prints each server's view of the relationship and its
// pools, as "tandem status" shows them.
func (d *demo) reportFailover() {
	p := d.p
	p.section(fmt.Sprintf("Failover peer %q: each server's state and pools (tandem status)", d.dep.FailoverPeer))
	var rows [][]cell
	for _, srv := range d.dep.Servers {
		if proc := srv.Proc(); proc == nil || proc.Exited() {
			rows = append(rows, []cell{c(srv.Host.Name), c("—"), cs(dim, "not running")})
			continue
		}
		st, err := srv.Status()
		if err != nil {
			rows = append(rows, []cell{c(srv.Host.Name), c("—"), cs(red, "no status")})
			p.note("%s: %s", srv.Host.Name, firstLine(err.Error()))
			continue
		}
		for _, f := range st.Failover {
			link := cs(green, "connected")
			if !f.Connected {
				link = cs(red, "not connected")
			}
			rows = append(rows, []cell{c(srv.Host.Name), c(f.Role), cs(stateStyle(f.LocalState), f.LocalState),
				c(f.PartnerState), link, cf("%ds", f.MCLT), cf("%d/%d", f.PendingUpdates, f.UnackedUpdates)})
		}
	}
	p.table([]string{"SERVER", "ROLE", "MY STATE", "PARTNER STATE", "LINK", "MCLT", "UPDATES PENDING/UNACKED"}, rows)
	p.printf("\n")
	rows = nil
	for _, srv := range d.dep.Servers {
		if proc := srv.Proc(); proc == nil || proc.Exited() {
			continue
		}
		st, err := srv.Status()
		if err != nil {
			continue
		}
		for _, pool := range st.Pools {
			other := 0
			for s, n := range pool.States {
				if s != "free" && s != "backup" && s != "active" {
					other += n
				}
			}
			rows = append(rows, []cell{c(srv.Host.Name), c(pool.Subnet), c(pool.Range), cf("%d", pool.Size),
				cf("%d", pool.States["free"]), cf("%d", pool.States["backup"]), cs(bold, fmt.Sprint(pool.States["active"])), cf("%d", other)})
		}
	}
	p.table([]string{"SERVER", "SUBNET", "RANGE", "SIZE", "FREE (primary's)", "BACKUP (secondary's)", "ACTIVE", "OTHER"}, rows)
}

func stateStyle(s string) style {
	switch s {
	case "normal":
		return green
	case "communications-interrupted", "partner-down", "potential-conflict", "recover", "recover-wait", "startup":
		return yellow
	}
	return red
}

// failoverLine picks the log lines of the failover protocol: state
// changes in ISC's words, pool balancing, update requests, the link.
var failoverLine = regexp.MustCompile(`failover peer \S+: (I move|peer moves|Both servers|link up|link down|operator)|balanc(ing|ed) pool|Both servers|[Uu]pdate request|update done|Sending updates|peer update completed|timeout waiting for failover peer|cannot connect`)

// reportFailoverLogs prints each server's failover lines; the rest of the
// log (one line per rejected duplicate update at first contact, for
// instance) is counted, not shown.
func (d *demo) reportFailoverLogs(from []int64) {
	p := d.p
	const maxLines = 40
	for i, srv := range d.dep.Servers {
		proc := srv.Proc()
		p.section(fmt.Sprintf("Failover log lines of %s (%s)", srv.Host.Name, proc.LogPath))
		var lines []string
		hidden := 0
		for _, l := range strings.Split(strings.TrimRight(logSince(proc, from, i), "\n"), "\n") {
			if failoverLine.MatchString(l) {
				lines = append(lines, l)
			} else if l != "" {
				hidden++
			}
		}
		if len(lines) > maxLines {
			p.printf("  %s\n", p.paint(dim, fmt.Sprintf("… %d earlier failover lines", len(lines)-maxLines)))
			lines = lines[len(lines)-maxLines:]
		}
		for _, l := range lines {
			ts, rest := splitTimestamp(l)
			p.printf("  %s %s\n", p.paint(dim, "│ "+ts), colorLevel(p, highlightMove(p, rest)))
		}
		p.printf("  %s\n", p.paint(dim, fmt.Sprintf("(%d other lines in the log)", hidden)))
	}
}

func logSince(proc *lab.Proc, from []int64, i int) string {
	log := proc.Log()
	if i < len(from) && from[i] > 0 && from[i] <= int64(len(log)) {
		return log[from[i]:]
	}
	return log
}

var moveWords = regexp.MustCompile(`(I move|peer moves) from (\S+) to (\S+)`)

func highlightMove(p *printer, s string) string {
	return moveWords.ReplaceAllStringFunc(s, func(m string) string {
		sm := moveWords.FindStringSubmatch(m)
		return fmt.Sprintf("%s from %s to %s", sm[1], sm[2], p.paint(stateStyle(sm[3]), sm[3]))
	})
}

// failoverDemo takes one server away and shows that its partner keeps
// serving: how = "kill" crashes the primary (kill -9), which the
// secondary sees as communications-interrupted, then starts it again on
// its lease file so that the pair returns to normal; how = "stop" stops
// it gracefully (SIGTERM), which moves the secondary to partner-down by
// itself.
func (d *demo) failoverDemo(how string) {
	p := d.p
	prim, sec := d.dep.Servers[0], d.dep.Servers[1]
	marks := []int64{prim.Proc().LogSize(), sec.Proc().LogSize()}
	title := map[string]string{"kill": "A failover: the primary crashes (kill -9)", "stop": "A failover: the primary is stopped (SIGTERM)"}[how]
	p.section(title)

	var want string
	switch how {
	case "kill":
		t0 := p.step("kill -9 the primary (%s, pid %d)", prim.Host.Name, prim.Proc().PID)
		prim.Kill9()
		p.done(t0, "gone")
		want = "communications-interrupted"
	case "stop":
		t0 := p.step("SIGTERM to the primary (%s, pid %d): it moves to shutdown and tells the secondary", prim.Host.Name, prim.Proc().PID)
		if err := prim.Stop(20 * time.Second); err != nil {
			p.fail("%v", err)
		} else {
			p.done(t0, "stopped")
		}
		want = "partner-down"
	}
	t0 := p.step("the secondary notices by itself")
	st, err := sec.AwaitStates(want, "", 70*time.Second)
	if err != nil {
		p.fail("%v", err)
	} else {
		p.done(t0, "%s is %s", sec.Host.Name, st.LocalState)
	}

	// Newcomers, including one the hash gives to the primary, get leases
	// from the secondary alone.
	n := 2
	hosts := make([]*lab.Host, n)
	for i := range hosts {
		hosts[i] = d.lab.AddClient()
	}
	t0 = p.step("%d new dhclients while only the secondary runs", n)
	results := make([]clientResult, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, h := range hosts {
		cl := lab.NewDHClient(h, lab.DHClientOptions{Hostname: "demo-" + h.Name})
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, err := cl.Acquire(40 * time.Second)
			results[i] = clientResult{host: h, name: "demo-" + h.Name, ev: ev, took: ev.At.Sub(start), err: err}
		}()
	}
	wg.Wait()
	bound := 0
	for _, r := range results {
		if r.err == nil {
			bound++
		}
	}
	if bound == n {
		p.done(t0, "all %d bound", n)
	} else {
		p.fail("%d of %d bound", bound, n)
	}
	files := d.leaseFiles()
	var rows [][]cell
	for _, r := range results {
		if r.err != nil {
			rows = append(rows, []cell{c(r.host.Name), c(r.host.MAC.String()), cs(red, "no lease"), c(""), c(""), c(""), cs(red, firstLine(r.err.Error()))})
			continue
		}
		l := files[1][r.ev.IP]
		rows = append(rows, []cell{c(r.host.Name), c(r.host.MAC.String()), cs(bold, r.ev.IP.String()), c(r.ev.LeaseTime.String()),
			c(d.dep.serverName(r.ev.ServerID)), c(d.dep.designated(r.host.MAC).Host.Name), cf("%s in %s's file", l.State, sec.Host.Name)})
	}
	p.printf("\n")
	p.table([]string{"HOST", "MAC", "ADDRESS", "LEASE", "FROM", "HASH SAYS", "LEASE FILE"}, rows)
	if how == "kill" {
		p.note("In communications-interrupted the secondary allocates only its own (backup) addresses, and no lease ends more than the MCLT beyond what the primary acknowledged.")
	} else {
		p.note("In partner-down the secondary serves everyone; it may take the primary's free addresses too once the MCLT has passed since it entered partner-down.")
	}

	if how == "kill" {
		t0 = p.step("starting the primary again on its lease file")
		if _, err := prim.TryStart(); err != nil {
			p.fail("%v", err)
			d.tb.Fatalf("demo: %v", err)
		}
		p.done(t0, "pid %d", prim.Proc().PID)
		t0 = p.step("waiting for the pair to be normal again")
		ok := true
		for _, srv := range d.dep.Servers {
			if _, err := srv.AwaitStates("normal", "normal", 60*time.Second); err != nil {
				p.fail("%v", err)
				ok = false
				break
			}
		}
		if ok {
			p.done(t0, "normal")
		}
		marks[0] = 0 // the restarted primary has a new log
	}
	d.reportFailover()
	d.reportFailoverLogs(marks)
}
