package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tandemdhcp/tandem/internal/control"
	"github.com/tandemdhcp/tandem/internal/failover/wire"
)

func ctlFlags(name string) (*flag.FlagSet, *string, *bool) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	sock := fs.String("s", control.DefaultSocket, "control socket of the server")
	asJSON := fs.Bool("json", false, "print JSON")
	return fs, sock, asJSON
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// status prints the server's failover states and pool counts.
func status(args []string) error {
	fs, sock, asJSON := ctlFlags("status")
	_ = fs.Parse(args)
	st, err := control.NewClient(*sock).Status()
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(st)
	}
	fmt.Printf("tandem %s, up since %s (%s)\n", st.Version, st.Started.Format(time.RFC3339),
		st.Now.Sub(st.Started).Round(time.Second))
	for _, p := range st.Failover {
		link := "not connected"
		if p.Connected {
			link = "connected"
		}
		fmt.Printf("failover peer %q (%s, %s, mclt %ds)\n", p.Name, p.Role, link, p.MCLT)
		fmt.Printf("  my state       %-28s since %s\n", p.LocalState, p.LocalSince.Format(time.RFC3339))
		since := "never heard from"
		if !p.PartnerSince.IsZero() {
			since = "since " + p.PartnerSince.Format(time.RFC3339)
		}
		fmt.Printf("  partner state  %-28s %s\n", p.PartnerState, since)
		if !p.Connected && p.LinkLost != "" && p.LinkLostAt != nil {
			fmt.Printf("  link lost      %s: %s\n", p.LinkLostAt.Format(time.RFC3339), p.LinkLost)
		}
		fmt.Printf("  updates pending %d, unacked %d\n", p.PendingUpdates, p.UnackedUpdates)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tSUBNET\tRANGE\tPEER\tSIZE\tFREE\tBACKUP\tACTIVE\tOTHER")
	for _, p := range st.Pools {
		other := 0
		for s, n := range p.States {
			if s != "free" && s != "backup" && s != "active" {
				other += n
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", p.Index, p.Subnet, p.Range, p.FailoverPeer,
			p.Size, p.States["free"], p.States["backup"], p.States["active"], other)
	}
	return tw.Flush()
}

// leases lists leases.
func leases(args []string) error {
	fs, sock, asJSON := ctlFlags("leases")
	state := fs.String("state", "", "only leases in this binding state (free, active, expired, …)")
	_ = fs.Parse(args)
	ls, err := control.NewClient(*sock).Leases(*state)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(ls)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tSTATE\tHARDWARE\tCLIENT-ID\tHOSTNAME\tENDS")
	for _, l := range ls {
		ends := ""
		if !l.Ends.IsZero() {
			ends = l.Ends.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", l.Address, l.State, l.Hardware, l.ClientID, l.Hostname, ends)
	}
	return tw.Flush()
}

// stateCmd is "tandem state set STATE [-peer NAME]".
func stateCmd(args []string) error {
	if len(args) < 2 || args[0] != "set" {
		return fmt.Errorf("usage: tandem state set STATE [-peer NAME] [-s socket]  (STATE: partner-down, shutdown, …)")
	}
	fs, sock, _ := ctlFlags("state set")
	peer := fs.String("peer", "", "failover relationship (needed only when there are several)")
	state, err := stateArg(fs, args[1:])
	if err != nil {
		return err
	}
	if err := control.NewClient(*sock).SetFailoverState(*peer, state); err != nil {
		return err
	}
	fmt.Printf("state set to %s\n", state)
	return nil
}

// wait blocks until every failover relationship is in the given state.
func wait(args []string) error {
	fs, sock, _ := ctlFlags("wait")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	want, err := stateArg(fs, args)
	if err != nil {
		return fmt.Errorf("%w\nusage: tandem wait STATE [-timeout D] [-s socket]", err)
	}
	c := control.NewClient(*sock)
	deadline := time.Now().Add(*timeout)
	for {
		st, err := c.Status()
		if err == nil && len(st.Failover) > 0 {
			ok := true
			var states []string
			for _, p := range st.Failover {
				states = append(states, p.Name+"="+p.LocalState)
				ok = ok && p.LocalState == want
			}
			sort.Strings(states)
			if ok {
				fmt.Println(strings.Join(states, " "))
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("timed out waiting for %s", want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stateArg parses flags and one failover state name, which may stand
// before or after the flags ("wait normal -s X" and "wait -s X normal").
func stateArg(fs *flag.FlagSet, args []string) (string, error) {
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" {
		return "", fmt.Errorf("no failover state given")
	}
	if _, ok := wire.ParseServerState(name); !ok {
		return "", fmt.Errorf("unknown failover state %q (normal, partner-down, communications-interrupted, shutdown, …)", name)
	}
	return name, nil
}
