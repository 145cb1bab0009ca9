package lab

import (
	"encoding/csv"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestKea(t *testing.T) {
	needs(t, "kea-dhcp4", "perfdhcp", "dhclient")
	l := New(t, Options{Servers: 1, Clients: 1})
	srv := l.Servers[0]
	pools := Pools{LeaseTime: 10 * time.Minute, RelaySize: 1000}
	k := NewKea(srv, pools.KeaDhcp4())
	first := k.Start()

	c := NewDHClient(l.Clients[0], DHClientOptions{ClientID: "kea-client"})
	ev, err := c.Acquire(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !inRange(ev.IP, LANRangeFirst, LANRangeLast) || ev.ServerID != srv.IP || ev.LeaseTime != 10*time.Minute {
		t.Errorf("Acquire from Kea: %+v", ev)
	}
	c.Stop()

	res, err := RunPerfdhcp(l.Relay, PerfdhcpOptions{Server: srv.IP, Rate: 50, Clients: 20, Exchanges: 40, Seed: 3, ExitWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.RequestAck.Received == 0 {
		t.Fatalf("perfdhcp against Kea: %+v\n%s", res, res.Output)
	}
	// Ten-minute leases, no releases: no address may go to two clients.
	var acked Acks
	if err := acked.AddLog("kea", first.Log()); err != nil {
		t.Fatal(err)
	}
	t.Log(acked.Summary())
	if acked.Len() != res.RequestAck.Received+1 { // the dhclient's too
		t.Errorf("Kea logged %d allocations, want %d (perfdhcp's %d and the dhclient's)", acked.Len(), res.RequestAck.Received+1, res.RequestAck.Received)
	}
	if err := acked.CheckUnique(); err != nil {
		t.Error(err)
	}

	// Kill -9 leaves a PID file behind; the restart must not trip on it,
	// and must find the leases the first process persisted.
	first.Kill9()
	k.Start()
	rb, err := c.Reboot(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rb.IP != ev.IP {
		t.Errorf("after Kea restart the client got %s, had %s", rb.IP, ev.IP)
	}

	text, err := k.Leases()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("lease file: %v", err)
	}
	first2, last2 := pools.RelayRange()
	relayed := 0
	for _, r := range rows[1:] { // row 0 is the header
		a, err := netip.ParseAddr(r[0])
		if err != nil {
			t.Fatalf("lease file row %v: %v", r, err)
		}
		switch {
		case inRange(a, first2, last2):
			relayed++
		case a == ev.IP:
		default:
			t.Errorf("lease for %s, in neither pool", a)
		}
	}
	if relayed == 0 {
		t.Errorf("no relayed leases in Kea's lease file:\n%s", text)
	}
}
