package dhcpnet

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkReadBatch measures receiving over loopback: each iteration is
// one packet. A sender goroutine keeps the socket fed; it sends exactly
// b.N packets so the loop is bounded.
func BenchmarkReadBatch(b *testing.B) {
	c := loopbackConn(b, Config{})
	client, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(c.Port())})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	data := payload(1, 300)
	pkts := make([]Packet, 64)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := client.Write(data); err != nil {
				return
			}
			if i%256 == 255 {
				// Let the reader drain: loopback drops what the receive
				// buffer cannot hold.
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	got := 0
	c.SetReadDeadline(time.Now().Add(time.Duration(b.N)*100*time.Microsecond + 5*time.Second))
	for got < b.N {
		n, err := c.ReadBatch(pkts)
		got += n
		if err != nil {
			b.Logf("read %d of %d: %v", got, b.N, err)
			break
		}
	}
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkSendBatch measures routed sends over loopback in batches of 64.
func BenchmarkSendBatch(b *testing.B) {
	c := loopbackConn(b, Config{})
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(c.Port()) + 1})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	local := netip.MustParseAddr("127.0.0.1")
	rs := make([]Reply, 64)
	for i := range rs {
		rs[i] = Reply{Data: payload(byte(i), 300), IfIndex: 1, Ciaddr: local, SrcAddr: local}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(rs) {
		if _, err := c.SendBatch(rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}
