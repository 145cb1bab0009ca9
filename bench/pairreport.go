package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// keaHAOptions is the benchmark's Kea HA pair: load balancing with the
// dedicated HTTP listener (HA+MT). A heartbeat every second brings the
// pair to load-balancing in a few seconds instead of Kea's 10 s rounds;
// it is one small HTTP exchange a second, nothing on the serving path.
var keaHAOptions = lab.KeaHAOptions{Mode: "load-balancing", HeartbeatDelay: time.Second}

// keaHASocket is the Kea HA pair's dhcp-socket-type. lab.RelayFanOut turns
// each relayed request into a broadcast so that both servers see it, and
// Kea's udp sockets, bound to the interface's address, never receive
// broadcasts; its raw (packet) sockets do.
const keaHASocket = "raw"

func describePairs(o options) string {
	return fmt.Sprintf("Tandem and ISC read examples/classic's primary.conf/secondary.conf (mclt 1800, split 128, max-response-delay 30, "+
		"max-unacked-updates %d) with the pools above as failover pools; Kea HA: %s, HA+MT (dedicated HTTP listener, port 8000), "+
		"heartbeat %v, each pool split HA_server1/HA_server2, dhcp-socket-type %s",
		o.pairMaxUnacked, keaHAOptions.Mode, keaHAOptions.HeartbeatDelay, keaHASocket)
}

// printPairs tells, per pair step, how the load was split between the
// servers and whether every lease reached both: for the Tandem pair the
// durability evidence (fsyncs before ACKs, BNDUPDs sent and acknowledged),
// for all three the active leases each server holds after the step.
func printPairs(w io.Writer, rows []*stepResult) {
	header := false
	for _, r := range rows {
		if r.Settled == nil || len(r.Members) != 2 {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\nFailover pairs after each step (p = primary on srv1, s = secondary on srv2):\n")
			header = true
		}
		for _, l := range pairLines(r) {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if header {
		fmt.Fprintf(w, "  A step marked IMBALANCED: a server held less than its half of a pool's free addresses by more than max-lease-misbalance\n")
		fmt.Fprintf(w, "  (15 %%) when the load began, after the primary's balancing had been delivered; it runs out early.\n")
		fmt.Fprintf(w, "  Tandem's figures come from -metrics: tandem_dhcp_replies_total, tandem_leasefile_syncs_total,\n")
		fmt.Fprintf(w, "  tandem_failover_messages_{sent,received}_total{type=BNDUPD|BNDACK}, tandem_failover_updates_{queued,unacked},\n")
		fmt.Fprintf(w, "  tandem_pool_leases{state=active}. Tandem writes and fsyncs a batch's leases before the batch's DHCPACKs and\n")
		fmt.Fprintf(w, "  BNDUPDs leave, and the partner's BNDUPDs before its BNDACKs, so a server's fsyncs cover both; a lease changed\n")
		fmt.Fprintf(w, "  again before its BNDUPD went out is sent once, with its latest state.\n")
		fmt.Fprintf(w, "  ISC: ACKs are \"DHCPACK on\" lines in each log, active leases read from the lease files; an address both\n")
		fmt.Fprintf(w, "  servers ACKed was ACKed twice (ISC's secondary also answers a REQUEST naming the primary once it holds the\n")
		fmt.Fprintf(w, "  lease), so the two add up to more than perfdhcp's exchanges. Kea: active leases read from the memfile CSVs; a\n")
		fmt.Fprintf(w, "  lease's half of the pool tells which server allocated it.\n")
	}
}

// pairLines describes one pair step.
func pairLines(r *stepResult) []string {
	st := r.Settled
	head := fmt.Sprintf("%s @ %s:", r.Server, rateLabel(r.Target))
	pad := strings.Repeat(" ", len(head))
	var out []string
	agree := "agree"
	if !st.Agreed {
		agree = "DIFFER"
	}
	leases := fmt.Sprintf("active leases p %s / s %s (%s, %v after the load)%s",
		countOrUnknown(st.Active[0]), countOrUnknown(st.Active[1]), agree, st.Waited.Round(100*time.Millisecond), errSuffix(st.Err))
	out = append(out, fmt.Sprintf("%s both normal %v after the start; %s", head, r.StartTime.Round(100*time.Millisecond), r.Split))
	head = pad
	b0, a0 := r.Members[0].Before, r.Members[0].After
	b1, a1 := r.Members[1].Before, r.Members[1].After
	if b0 == nil || a0 == nil || b1 == nil || a1 == nil {
		both := ""
		if st.BothWhat != "" {
			both = fmt.Sprintf(" (%d %s)", st.BothAnswered, st.BothWhat)
		}
		out = append(out, fmt.Sprintf("%s %s p %d + s %d%s; %s", head, st.AnsweredWhat, st.Answered[0], st.Answered[1], both, leases))
		return out
	}
	d := func(f func(*tandemSnapshot) float64) [2]float64 {
		return [2]float64{f(a0) - f(b0), f(a1) - f(b1)}
	}
	acks := d(func(s *tandemSnapshot) float64 { return s.ACKs })
	syncs := d(func(s *tandemSnapshot) float64 { return s.Syncs })
	upd := d(func(s *tandemSnapshot) float64 { return s.BndUpdSent })
	ackRecv := d(func(s *tandemSnapshot) float64 { return s.BndAckRecv })
	updRecv := d(func(s *tandemSnapshot) float64 { return s.BndUpdRecv })
	ackSent := d(func(s *tandemSnapshot) float64 { return s.BndAckSent })
	perSync := "-"
	if n := syncs[0] + syncs[1]; n > 0 {
		perSync = fmt.Sprintf("%.1f", (acks[0]+acks[1])/n)
	}
	perACK := "-"
	if n := acks[0] + acks[1]; n > 0 {
		perACK = fmt.Sprintf("%.3f", (upd[0]+upd[1])/n)
	}
	noFree := ""
	if nf := d(func(s *tandemSnapshot) float64 { return s.NoFree }); nf[0]+nf[1] > 0 {
		noFree = fmt.Sprintf("; DISCOVERs dropped for want of a free address p %.0f + s %.0f", nf[0], nf[1])
	}
	out = append(out,
		fmt.Sprintf("%s ACKs p %.0f + s %.0f; fsyncs p %.0f + s %.0f (%s ACKs per fsync)%s", head, acks[0], acks[1], syncs[0], syncs[1], perSync, noFree),
		fmt.Sprintf("%s BNDUPDs sent p %.0f + s %.0f (%s per ACK), BNDACKs received p %.0f + s %.0f; the partner's BNDUPDs received p %.0f + s %.0f, BNDACKs sent p %.0f + s %.0f",
			pad, upd[0], upd[1], perACK, ackRecv[0], ackRecv[1], updRecv[0], updRecv[1], ackSent[0], ackSent[1]),
		fmt.Sprintf("%s updates left queued/unacked: p %.0f/%.0f, s %.0f/%.0f; %s",
			pad, a0.Queued, a0.Unacked, a1.Queued, a1.Unacked, leases),
	)
	return out
}

func countOrUnknown(n int) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}
