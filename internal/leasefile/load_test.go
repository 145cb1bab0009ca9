package leasefile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemdhcp/tandem/internal/lease"
)

// logBuffer returns a logger writing text lines into the returned buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dhcpd.leases")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// metricValue gathers m and returns the value of the named counter or
// gauge (summed over labels), or the count of the named histogram.
func metricValue(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	reg := newRegistry(t, m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, metric := range mf.GetMetric() {
			sum += metric.GetCounter().GetValue() + metric.GetGauge().GetValue() +
				float64(metric.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// sampleFile is a header, a failover state and three leases, the last of
// which (or, with failoverLast, a failover state) is the record tests tear.
func sampleFile(failoverLast bool) (data []byte, lastStart int, keep *Contents) {
	leases := []lease.Lease{
		withHW(lease.Lease{IP: ip("198.18.0.7"), State: lease.Active, Next: lease.Expired, Rewind: lease.Free,
			ClientID: "\x01\x00\x11\x22\x33\x44\x55", Hostname: "seven",
			Starts: at("2026/11/19 10:00:00"), Ends: at("2026/11/19 12:00:00"), TSTP: at("2026/11/19 13:00:00"),
			CLTT: at("2026/11/19 10:00:00")}, hw(1, 0, 0x11, 0x22, 0x33, 0x44, 0x55)),
		{IP: ip("198.18.0.8"), State: lease.Free, Next: lease.Free, Rewind: lease.Free, Ends: at("2026/11/19 09:00:00")},
		withHW(lease.Lease{IP: ip("198.18.0.9"), State: lease.Active, Next: lease.Expired, Rewind: lease.Free,
			ClientID: "client \"nine\"", Hostname: "nine",
			Starts: at("2026/11/19 10:00:00"), Ends: at("2026/11/19 12:00:00"), TSTP: at("2026/11/19 13:00:00"),
			TSFP: at("2026/11/19 13:00:00"), ATSFP: at("2026/11/19 13:00:00"),
			CLTT: at("2026/11/19 10:00:00")}, hw(1, 0, 0x11, 0x22, 0x33, 0x44, 0x99)),
	}
	states := []lease.FailoverStateRecord{
		{Peer: "dhcp-failover", MyState: "normal", MyStateAt: at("2026/11/19 10:00:00"),
			PartnerState: "normal", PartnerAt: at("2026/11/19 10:00:00"), MCLT: 3600},
		{Peer: "dhcp-failover", MyState: "communications-interrupted", MyStateAt: at("2026/11/19 11:00:00"),
			PartnerState: "normal", PartnerAt: at("2026/11/19 10:00:00"), MCLT: 3600},
	}
	data = append(data, Header...)
	data = AppendFailoverState(data, &states[0])
	data = AppendLease(data, &leases[0])
	data = AppendLease(data, &leases[1])
	keep = &Contents{Leases: leases[:2], Failover: states[:1], Records: 3}
	if failoverLast {
		data = AppendLease(data, &leases[2])
		keep.Leases = leases
		keep.Records++
		lastStart = len(data)
		data = AppendFailoverState(data, &states[1])
	} else {
		lastStart = len(data)
		data = AppendLease(data, &leases[2])
	}
	return data, lastStart, keep
}

// TestLoadTornTailEveryOffset cuts a file at every byte inside its last
// record, as a crash during the append would, and expects Load to keep the
// earlier records, warn, and cut the file back to the last complete record.
func TestLoadTornTailEveryOffset(t *testing.T) {
	for _, failoverLast := range []bool{false, true} {
		t.Run(fmt.Sprintf("failoverLast=%v", failoverLast), func(t *testing.T) {
			full, lastStart, keep := sampleFile(failoverLast)
			firstLine := "lease 198.18.0.9 {"
			tornFrom := lastStart + 1
			if failoverLast {
				// The record begins with ISC's blank line; a cut right after
				// it leaves nothing but whitespace, which is no damage.
				firstLine = `failover peer "dhcp-failover" state {`
				tornFrom = lastStart + 2
			}
			// Up to len-2: a cut after the closing brace is a complete record.
			for cut := tornFrom; cut <= len(full)-2; cut++ {
				path := writeFile(t, full[:cut])
				log, logged := logBuffer()
				m := NewMetrics()
				c, err := Load(path, log, m)
				if err != nil {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				if diff := cmp.Diff(keep.Leases, c.Leases); diff != "" {
					t.Fatalf("cut at %d: leases (-want +got):\n%s", cut, diff)
				}
				if diff := cmp.Diff(keep.Failover, c.Failover); diff != "" {
					t.Fatalf("cut at %d: failover (-want +got):\n%s", cut, diff)
				}
				want := &Recovery{Offset: int64(lastStart), Dropped: int64(cut - lastStart),
					Line: bytes.Count(full[:lastStart], []byte("\n")) + 1, FirstLine: firstLine}
				if failoverLast {
					want.Line++
				}
				if got := c.Recovered; got == nil || got.Offset != want.Offset || got.Dropped != want.Dropped ||
					got.Line != want.Line || !strings.HasPrefix(firstLine, got.FirstLine) || got.Reason == "" {
					t.Fatalf("cut at %d: Recovered = %+v, want %+v", cut, got, want)
				}
				if !strings.Contains(logged.String(), "level=WARN") ||
					!strings.Contains(logged.String(), fmt.Sprintf("offset=%d bytes=%d", lastStart, cut-lastStart)) {
					t.Fatalf("cut at %d: no warning with offset and size in the log:\n%s", cut, logged)
				}
				if v := metricValue(t, m, "tandem_leasefile_torn_tails_recovered_total"); v != 1 {
					t.Fatalf("cut at %d: torn tail counter = %v", cut, v)
				}
				onDisk, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(onDisk, full[:lastStart]) {
					t.Fatalf("cut at %d: file is %d bytes, want it cut to %d", cut, len(onDisk), lastStart)
				}
				// Loading again finds nothing more to recover.
				if c, err := Load(path, nil, nil); err != nil || c.Recovered != nil {
					t.Fatalf("cut at %d: second load: %v, %+v", cut, err, c)
				}
			}
			// Cut right after the closing brace: the record is complete.
			path := writeFile(t, full[:len(full)-1])
			c, err := Load(path, nil, nil)
			if err != nil || c.Recovered != nil || c.Records != keep.Records+1 {
				t.Fatalf("complete record without its newline: %v, %+v", err, c)
			}
		})
	}
}

func TestLoadGarbageTail(t *testing.T) {
	full, _, _ := sampleFile(false)
	for name, tail := range map[string]string{
		"zeros":           strings.Repeat("\x00", 4096), // a file system that grew the file but lost the data
		"zeros mid-line":  "lease 198.18.0.10 {\n  starts 4 2026/11\x00\x00\x00\x00",
		"partial keyword": "lea",
		"binary":          "\xff\xfe\x01\x02 lease",
		"open string":     "lease 198.18.0.10 {\n  uid \"abc",
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, append(bytes.Clone(full), tail...))
			log, logged := logBuffer()
			c, err := Load(path, log, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.Recovered == nil || c.Recovered.Offset != int64(len(full)) || len(c.Leases) != 3 {
				t.Fatalf("Recovered = %+v, %d leases", c.Recovered, len(c.Leases))
			}
			if !strings.Contains(logged.String(), "level=WARN") {
				t.Errorf("no warning:\n%s", logged)
			}
			if st, _ := os.Stat(path); st.Size() != int64(len(full)) {
				t.Errorf("file is %d bytes, want %d", st.Size(), len(full))
			}
		})
	}
}

// TestLoadDamageInTheMiddle: damage that valid records follow is not a torn
// tail; Load fails with the file and line and leaves the file alone.
func TestLoadDamageInTheMiddle(t *testing.T) {
	full, lastStart, _ := sampleFile(false)
	for name, data := range map[string][]byte{
		"garbage line": append(append(bytes.Clone(full[:lastStart]), "this is not a record\n"...), full[lastStart:]...),
		// A torn record followed by a complete one: appended after a crash
		// without recovery. The complete record may hold a promised lease.
		"torn record then a record": append(append(bytes.Clone(full[:lastStart]), "lease 198.18.0.10 {\n  starts 4 20"...),
			("\n" + string(full[lastStart:]))...),
		"NULs then a record": append(append(bytes.Clone(full[:lastStart]), "\x00\x00\x00\n"...), full[lastStart:]...),
		// A complete but invalid last record is corruption, not a torn write.
		"complete invalid last record": append(bytes.Clone(full), "lease 198.18.0.10 {\n  binding state sleepy;\n}\n"...),
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, data)
			_, err := Load(path, nil, nil)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Load = %v, want a *ParseError", err)
			}
			prefix := fmt.Sprintf("%s:%d: ", path, pe.Line)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), "expected") {
				t.Errorf("error %q does not start with %q and say what was expected", err, prefix)
			}
			if onDisk, _ := os.ReadFile(path); !bytes.Equal(onDisk, data) {
				t.Error("file was changed")
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none"), nil, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v, want ErrNotExist", err)
	}
}

func TestLoadLogsSkipped(t *testing.T) {
	data, err := os.ReadFile("testdata/handwritten.leases")
	if err != nil {
		t.Fatal(err)
	}
	log, logged := logBuffer()
	if _, err := Load(writeFile(t, data), log, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "skipped=") || !strings.Contains(logged.String(), "ia-na:1") {
		t.Errorf("log does not report what was skipped:\n%s", logged)
	}
}

// TestLoadSlowTail: a tail made of many statements that each run to the end
// of the file is not searched for ever; past a budget it counts as damage.
func TestLoadSlowTail(t *testing.T) {
	full, _, _ := sampleFile(false)
	data := append(bytes.Clone(full), "lease 198.18.0.10 {\n"...)
	data = append(data, strings.Repeat("host x\n", 100000)...)
	_, err := Parse(data)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse = %v, want a *ParseError", err)
	}
	// A short one of the same shape is a torn tail.
	data = append(append(bytes.Clone(full), "lease 198.18.0.10 {\n"...), strings.Repeat("host x\n", 10)...)
	if c, err := Parse(data); err != nil || c.Recovered == nil {
		t.Fatalf("Parse = %v, %+v; want a recovered torn tail", err, c)
	}
}
