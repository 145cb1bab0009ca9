package e2e

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// Kill -9 as soon as the server starts compacting its lease file under
// load (it rewrites the file once enough has been appended). The rewrite
// takes milliseconds, so the kill usually lands just after it: ACKs from
// before the rewrite must be in the new file, and those after it must have
// been appended to the new file, not to the replaced one.
func TestKill9AtCompaction(t *testing.T) {
	needsLab(t, "perfdhcp")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 1})
	srv := l.Servers[0]
	pools := lab.Pools{LeaseTime: 10 * time.Minute, RelaySize: 4096}
	tdm := lab.NewTandem(srv, pools.DhcpdConf())
	p := tdm.Start()
	capture, err := startReplyCapture(l.Relay, srv.IP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(capture.close)

	type result struct {
		res *lab.PerfdhcpResult
		err error
	}
	perf := make(chan result, 1)
	go func() {
		// Few clients renewing often: the journal grows while the
		// snapshot stays small, which is what triggers a compaction.
		res, err := lab.RunPerfdhcp(l.Relay, lab.PerfdhcpOptions{
			Server: srv.IP, Rate: 2000, Clients: 500, Duration: 15 * time.Second, Seed: 5,
			BaseMAC: net.HardwareAddr{0x02, 0x74, 0x64, 0x40, 0, 0},
		})
		perf <- result{res, err}
	}()
	m, werr := p.AwaitLog(0, `compacting lease file`, 20*time.Second)
	exited := p.Exited()
	tdm.Kill9()
	pr := <-perf
	switch {
	case exited:
		t.Fatalf("tandem died under load before it compacted:\n%s", p.Log())
	case pr.err != nil:
		t.Fatal(pr.err)
	case errors.Is(werr, lab.ErrTimeout):
		// A slower machine may not append enough within the bounded run.
		t.Skipf("no compaction during the run (%d replies): %v", capture.Len(), werr)
	case werr != nil:
		t.Fatal(werr)
	}
	acks := capture.Replies(0, dhcpv4.MessageTypeAck)
	when := "before the rewrite finished"
	if _, err := p.AwaitLog(m.End, `lease file rewritten`, 0); err == nil {
		when = "just after the rewrite"
	}
	t.Logf("killed %s; %d ACKs on the wire", when, len(acks))
	c, err := tdm.Leases()
	if err != nil {
		t.Fatal(err)
	}
	checkAcksDurable(t, "after kill -9 during compaction", acks, c)
	tdm.Start()
	if c, err = tdm.Leases(); err != nil {
		t.Fatal(err)
	}
	checkAcksDurable(t, "after restart", acks, c)
}
