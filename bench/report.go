package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// perfSaturated is the perfdhcp CPU share (percent of one core) above
// which the load generator, not the server, is probably what limits the
// rate: perfdhcp's sending loop is one thread.
const perfSaturated = 90.0

// bestRate picks a server's step with the highest achieved rate whose
// drops, in both exchanges, stay under maxDrop percent.
func bestRate(rows []*stepResult, server string, maxDrop float64) *stepResult {
	var best *stepResult
	for _, r := range rows {
		if r.Server != server || r.Res == nil || r.Err != nil || r.dropPct() >= maxDrop {
			continue
		}
		if best == nil || r.achieved() > best.achieved() {
			best = r
		}
	}
	return best
}

// ratio formats a/b, or "-" when either side is missing.
func ratio(a, b *stepResult) string {
	if a == nil || b == nil || a.Res == nil || b.Res == nil || b.achieved() <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a.achieved()/b.achieved())
}

func find(rows []*stepResult, server string, target int) *stepResult {
	for _, r := range rows {
		if r.Server == server && r.Target == target {
			return r
		}
	}
	return nil
}

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func pct(v float64) string {
	if v > 0 && v < 0.01 {
		return "<0.01"
	}
	return fmt.Sprintf("%.2f", v)
}

// tableSpec says how to lay out a table.
type tableSpec struct {
	title   string
	rates   []int
	servers []string // in column order; tandem first
	tandem  string   // the row that gets the ratios
	isc     string   // server names the ratios compare against ("" = absent)
	kea     string
	maxDrop float64 // for the "best" rows
	skipped map[string]int
}

// tableSpecs makes one table of the single servers and one of the pairs,
// each with Tandem compared to its own kind.
func tableSpecs(o options, names map[string]string, skipped map[string]int) []tableSpec {
	var out []tableSpec
	for _, g := range []struct {
		title            string
		tandem, isc, kea string
	}{
		{"Single servers", "tandem", "isc", "kea"},
		{"Failover pairs (primary srv1 + secondary srv2, every request to both)", "tandem-pair", "isc-pair", "kea-ha"},
	} {
		rates := o.rates
		if g.tandem == "tandem-pair" {
			rates = o.pairRates
		}
		spec := tableSpec{title: g.title, rates: rates, tandem: names[g.tandem], isc: names[g.isc], kea: names[g.kea],
			maxDrop: o.maxDrop, skipped: skipped}
		for _, kind := range []string{g.tandem, g.isc, g.kea} {
			if names[kind] != "" {
				spec.servers = append(spec.servers, names[kind])
			}
		}
		if len(spec.servers) > 0 {
			out = append(out, spec)
		}
	}
	return out
}

// ratioHeads names the ratio columns after the rows they divide.
func (spec tableSpec) ratioHeads() (string, string) {
	t, i, k := spec.tandem, spec.isc, spec.kea
	if t == "" {
		t = "tandem"
	}
	if i == "" {
		i = "isc"
	}
	if k == "" {
		k = "kea"
	}
	return t + "/" + i, t + "/" + k
}

// printTable writes the one table of the benchmark and its footnotes.
func printTable(w io.Writer, rows []*stepResult, spec tableSpec) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	vsISC, vsKea := spec.ratioHeads()
	header := []string{"server", "target/s", "achieved/s", "drops % D-O/R-A", "avg ms D-O/R-A", "max ms D-O/R-A",
		"srv CPU%", "srv rcvbuf lost", "perfdhcp CPU%", "perfdhcp rcvbuf lost", "load1", "fsyncs (ACKs per fsync)", vsISC, vsKea}
	// tabwriter aligns a column only over consecutive lines that have a
	// cell in it, so every line gets all the cells.
	row := func(cells ...string) {
		for len(cells) < len(header) {
			cells = append(cells, "")
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	row(header...)
	line := func(r *stepResult, target string, vsISC, vsKea *stepResult) {
		if r == nil {
			return
		}
		if r.Err != nil || r.Res == nil {
			msg := "no result"
			if r.Err != nil {
				msg = firstLine(r.Err.Error())
			}
			row(r.Server, target, "error", truncate(msg, 60))
			return
		}
		do, ra := r.Res.DiscoverOffer, r.Res.RequestAck
		perf := fmt.Sprintf("%.0f", r.PerfCPU)
		if r.PerfCPU >= perfSaturated {
			perf += " !"
		}
		ri, rk := "", ""
		if r.Server == spec.tandem {
			ri, rk = ratio(r, vsISC), ratio(r, vsKea)
		}
		count := func(n int64) string {
			if n < 0 {
				return "?"
			}
			return fmt.Sprint(n)
		}
		row(r.Server, target, fmt.Sprintf("%.0f", r.achieved()),
			pct(do.DropsRatio)+" / "+pct(ra.DropsRatio),
			ms(do.AvgDelay)+" / "+ms(ra.AvgDelay), ms(do.MaxDelay)+" / "+ms(ra.MaxDelay),
			cpuCell(r), count(r.SrvRcvbufLost), perf, count(r.RcvbufLost),
			fmt.Sprintf("%.1f", r.Load1), fsyncCell(r, spec), ri, rk)
	}
	for _, rate := range spec.rates {
		for _, s := range spec.servers {
			r := find(rows, s, rate)
			if r == nil {
				if at, ok := spec.skipped[s]; ok && (rate == 0 || rate > at) {
					row(s, rateLabel(rate), "skipped", "(failed at "+rateLabel(at)+")")
				}
				continue
			}
			line(r, rateLabel(rate), find(rows, spec.isc, rate), find(rows, spec.kea, rate))
		}
		row()
	}
	bestOf := func(s string) *stepResult {
		if s == "" {
			return nil
		}
		return bestRate(rows, s, spec.maxDrop)
	}
	for _, s := range spec.servers {
		b := bestOf(s)
		label := fmt.Sprintf("best <%g%%", spec.maxDrop)
		if b == nil {
			row(s, label, "none", fmt.Sprintf("(all >= %g%%)", spec.maxDrop))
			continue
		}
		line(b, label+" ("+rateLabel(b.Target)+")", bestOf(spec.isc), bestOf(spec.kea))
	}
	tw.Flush()
}

func fsyncCell(r *stepResult, spec tableSpec) string {
	syncs, ok1 := r.tandemDelta(func(s *tandemSnapshot) float64 { return s.Syncs })
	acks, ok2 := r.tandemDelta(func(s *tandemSnapshot) float64 { return s.ACKs })
	switch {
	case r.Server == spec.tandem && ok1 && ok2:
		if syncs <= 0 {
			return fmt.Sprintf("0 (%.0f ACKs)", acks)
		}
		return fmt.Sprintf("%.0f (%.1f)", syncs, acks/syncs)
	case r.Server == spec.isc:
		return "1 per ACK [a]"
	case r.Server == spec.kea:
		return "none [b]"
	}
	return "-"
}

// cpuCell is the server's CPU share; a pair's as primary+secondary.
func cpuCell(r *stepResult) string {
	if len(r.Members) < 2 {
		return fmt.Sprintf("%.0f", r.ServerCPU)
	}
	var parts []string
	for _, m := range r.Members {
		parts = append(parts, fmt.Sprintf("%.0f", m.CPU))
	}
	return strings.Join(parts, "+")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
