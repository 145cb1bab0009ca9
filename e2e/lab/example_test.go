package lab_test

import (
	"fmt"
	"log"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// A program (demo, benchmark) owns a lab through a Session instead of a
// testing.T: Close, deferred, or a fatal error, or Ctrl-C tears it down.
func ExampleNewSession() {
	s, err := lab.NewSession("bench", "")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	s.CloseOnSignal()

	l := lab.New(s, lab.Options{Servers: 1})
	srv := l.Servers[0]
	d := lab.NewISCDhcpd(srv, lab.Pools{RelaySize: 10000}.DhcpdConf())
	proc := d.Start()

	res, err := lab.RunPerfdhcp(l.Relay, lab.PerfdhcpOptions{
		Server:   srv.IP,
		Clients:  10000,
		Duration: 10 * time.Second,
		Seed:     1,
	})
	if err != nil {
		s.Fatalf("%v", err)
	}
	cpu, _ := proc.CPUTime()
	fmt.Printf("dhcpd: %.0f DORA/s, %d drops, %v CPU\n", res.Rate, res.RequestAck.Drops, cpu)
}
