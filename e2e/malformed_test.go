package e2e

import (
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// Garbage sent to the server's port is counted and dropped; it neither
// stops the server nor keeps it from serving the next client.
func TestMalformedPacketsAreCountedAndDropped(t *testing.T) {
	needsLab(t, "perfdhcp", "dhclient")
	tandemBinary(t)
	l := lab.New(t, lab.Options{Servers: 1, Clients: 1})
	srv := l.Servers[0]
	tdm := lab.NewTandem(srv, lab.Pools{LeaseTime: 10 * time.Minute, RelaySize: 100}.DhcpdConf())
	p := tdm.Start()

	before, err := tdm.Metrics()
	if err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	// Shorter than the fixed BOOTP header (RFC 951: 236 bytes before the
	// options): the socket layer drops these.
	var short [][]byte
	for i := 0; i < 20; i++ {
		short = append(short, random(1+rng.IntN(200)))
	}
	// Long enough, but not DHCP: random bytes (the magic cookie of
	// RFC 2131 §3 is wrong), and a valid request whose options run past
	// the end of the packet (RFC 2132 §2 framing broken).
	var undecodable [][]byte
	for i := 0; i < 20; i++ {
		b := random(240 + rng.IntN(300))
		b[236], b[237], b[238], b[239] = 0, 0, 0, 0 // never the cookie 99.130.83.99
		undecodable = append(undecodable, b)
	}
	good, err := dhcpv4.NewDiscovery(net.HardwareAddr{0x02, 0x74, 0x64, 0xee, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		b := good.ToBytes()
		// Keep the cookie and option 53 (bytes 240-242), then an option
		// 12 that claims 200 bytes and brings one.
		b = append(b[:243], 12, 200, 'x')
		undecodable = append(undecodable, b)
	}
	// Decodes, but a server must ignore it: a BOOTREPLY (RFC 2131 §4.1).
	var replies [][]byte
	for i := 0; i < 10; i++ {
		r, err := dhcpv4.NewReplyFromRequest(good)
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, r.ToBytes())
	}

	conn, err := l.Relay.ListenPacket("udp4", lab.RelayHostIP.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: srv.IP.AsSlice(), Port: 67}
	for _, set := range [][][]byte{short, undecodable, replies} {
		for _, b := range set {
			if _, err := conn.WriteTo(b, dst); err != nil {
				t.Fatal(err)
			}
		}
	}

	want := map[string]float64{
		`tandem_dhcpnet_dropped_packets_total{reason="short"}`: float64(len(short)),
		`tandem_dhcp_malformed_total`:                          float64(len(undecodable)),
		`tandem_dhcp_dropped_total`:                            float64(len(replies)),
		`tandem_dhcpnet_received_packets_total`:                float64(len(short) + len(undecodable) + len(replies)),
	}
	var got map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, err := tdm.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]float64{}
		done := true
		for k, w := range want {
			name := k
			if k == `tandem_dhcp_dropped_total` {
				got[k] = after.Sum(k) - before.Sum(k)
			} else {
				got[k] = after[name] - before[name]
			}
			if got[k] < w {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s went up by %v, want %v", k, got[k], w)
		}
	}
	if p.Exited() {
		t.Fatalf("tandem exited after the garbage:\n%s", p.Log())
	}

	// It still serves: a real client, and relayed perfdhcp clients.
	c := lab.NewDHClient(l.Clients[0], lab.DHClientOptions{})
	if _, err := c.Acquire(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	res, err := lab.RunPerfdhcp(l.Relay, lab.PerfdhcpOptions{
		Server: srv.IP, Rate: 50, Clients: 20, Exchanges: 20,
		// A late reply is no failure here: only a missing one.
		DropTime: 5 * time.Second, ExitWait: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.RequestAck.Received != res.RequestAck.Sent || res.RequestAck.Received == 0 {
		t.Errorf("perfdhcp after the garbage: REQUEST-ACK %d/%d\n%s", res.RequestAck.Received, res.RequestAck.Sent, res.Output)
	}
}
