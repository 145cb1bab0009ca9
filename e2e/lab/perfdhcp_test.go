package lab

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParsePerfdhcp(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		file string
		want PerfdhcpResult
	}{
		{
			// Real output of perfdhcp 2.2.0 against dhcpd, with the
			// REQUEST-ACK counters edited to be distinguishable.
			file: "testdata/perfdhcp-ok.txt",
			want: PerfdhcpResult{
				Rate: 49.6469,
				DiscoverOffer: ExchangeStats{Sent: 149, Received: 149,
					MinDelay: 156 * us, AvgDelay: 1172 * us, MaxDelay: 6137 * us, StdDev: 936 * us},
				RequestAck: ExchangeStats{Sent: 149, Received: 147, Drops: 2, DropsRatio: 1.342, Orphans: 1, NonUniqueAddresses: 3,
					MinDelay: 118 * us, AvgDelay: 1357 * us, MaxDelay: 3798 * us, StdDev: 986 * us},
			},
		},
		{
			// Real output with no server answering: n/a, inf and -nan.
			file: "testdata/perfdhcp-noserver.txt",
			want: PerfdhcpResult{
				DiscoverOffer: ExchangeStats{Sent: 5, Drops: 5, DropsRatio: 100},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParsePerfdhcp(string(b))
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Exchanges = map[string]ExchangeStats{
				"DISCOVER-OFFER": tt.want.DiscoverOffer,
				"REQUEST-ACK":    tt.want.RequestAck,
			}
			if diff := cmp.Diff(tt.want, *got, cmpopts.IgnoreFields(PerfdhcpResult{}, "Output")); diff != "" {
				t.Errorf("ParsePerfdhcp (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePerfdhcpRejectsGarbage(t *testing.T) {
	for _, out := range []string{"", "perfdhcp: error in command line", "Rate: 5 4-way exchanges/second\n"} {
		if _, err := ParsePerfdhcp(out); err == nil {
			t.Errorf("ParsePerfdhcp(%q) succeeded", out)
		}
	}
}

func TestPerfdhcpArgv(t *testing.T) {
	o := PerfdhcpOptions{
		Server:    netip.MustParseAddr("198.18.0.2"),
		Rate:      100,
		Clients:   500,
		Duration:  1500 * time.Millisecond,
		Exchanges: 1000,
		Seed:      42,
		BaseMAC:   net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
		DropTime:  2 * time.Second,
		ExitWait:  time.Second,
		Extra:     []string{"-B"},
	}
	got, err := o.Argv()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"perfdhcp", "-4", "-l", "198.19.0.1", "-r", "100", "-R", "500", "-p", "1.5", "-n", "1000",
		"-s", "42", "-b", "mac=02:00:00:00:00:01", "-d", "2", "-W", "1000000", "-B", "198.18.0.2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Argv (-want +got):\n%s", diff)
	}
	if _, err := (PerfdhcpOptions{Server: o.Server}).Argv(); err == nil {
		t.Error("Argv without Duration or Exchanges succeeded: perfdhcp would never stop")
	}
}
