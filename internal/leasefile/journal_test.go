package leasefile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/tandemdhcp/tandem/internal/lease"
)

func newRegistry(t *testing.T, m *Metrics) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range m.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func testLease(n int, s lease.BindingState) lease.Lease {
	l := lease.Lease{
		IP:    0xc6120000 + uint32(n),
		State: s, Next: lease.Expired, Rewind: lease.Free,
		ClientID: "client-" + strings.Repeat("x", n%7),
		Starts:   at("2026/11/19 10:00:00") + int64(n),
		Ends:     at("2026/11/19 12:00:00") + int64(n),
		CLTT:     at("2026/11/19 10:00:00") + int64(n),
	}
	l.SetHardware(1, []byte{0, 0x11, 0x22, 0x33, byte(n >> 8), byte(n)})
	return l
}

func TestOpenJournalCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dhcpd.leases")
	j, err := OpenJournal(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != Header || j.Size() != int64(len(Header)) {
		t.Errorf("new file holds %q (Size %d), want the header", data, j.Size())
	}
	c, err := Load(path, nil, nil)
	if err != nil || len(c.Leases) != 0 || c.Records != 0 {
		t.Errorf("Load of a new journal = %+v, %v", c, err)
	}
}

// TestOpenJournalAfterTornTail: Load leaves the last record without its
// newline when that is all that was lost; the next append starts a line.
func TestOpenJournalAfterTornTail(t *testing.T) {
	full, _, _ := sampleFile(false)
	path := writeFile(t, full[:len(full)-1])
	if _, err := Load(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := testLease(1, lease.Active)
	if err := j.Write(AppendLease(nil, &l)); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte("}\nlease 198.18.0.1 {")) {
		t.Errorf("appended record does not start on its own line:\n%s", data)
	}
	if c, err := Load(path, nil, nil); err != nil || len(c.Leases) != 4 {
		t.Fatalf("Load = %v, %+v", err, c)
	}
}

// TestGroupCommit writes a batch of records and syncs once, as the server
// loop does, and checks that every record is in the file and that exactly
// one fsync was made for the batch.
func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dhcpd.leases")
	m := NewMetrics()
	j, err := OpenJournal(path, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	syncsBefore := metricValue(t, m, "tandem_leasefile_syncs_total")
	const n = 500
	var want []lease.Lease
	var written int
	for i := range n {
		l := testLease(i, lease.Active)
		want = append(want, l)
		rec := AppendLease(nil, &l)
		written += len(rec)
		if err := j.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, m, "tandem_leasefile_syncs_total") - syncsBefore; got != 1 {
		t.Errorf("%v syncs for one batch, want 1", got)
	}
	if got := metricValue(t, m, "tandem_leasefile_sync_duration_seconds"); got < 1 {
		t.Errorf("sync duration histogram has %v samples", got)
	}
	if got, wantBytes := metricValue(t, m, "tandem_leasefile_written_bytes_total"), float64(len(Header)+written); got != wantBytes {
		t.Errorf("written bytes = %v, want %v", got, wantBytes)
	}
	if st, _ := os.Stat(path); st.Size() != j.Size() {
		t.Errorf("Size() = %d, file has %d", j.Size(), st.Size())
	}
	c, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, c.Leases); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// failingFile makes the wrapped file's writes or syncs fail.
type failingFile struct {
	file
	failWrite, failSync bool
}

func (f *failingFile) Write(p []byte) (int, error) {
	if f.failWrite {
		// A short write, as a full disk gives.
		n, _ := f.file.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return f.file.Write(p)
}

func (f *failingFile) Sync() error {
	if f.failSync {
		return syscall.EIO
	}
	return f.file.Sync()
}

// TestJournalRefusesAfterFailure: after a failed write or sync the journal
// reports the error on every later call, and only a compaction brings it
// back; the records written before are still in the file.
func TestJournalRefusesAfterFailure(t *testing.T) {
	for _, tt := range []struct {
		name      string
		failWrite bool
		want      error
	}{
		{"write", true, syscall.ENOSPC},
		{"sync", false, syscall.EIO},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dhcpd.leases")
			m := NewMetrics()
			log, logged := logBuffer()
			j, err := OpenJournal(path, log, m)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			first := testLease(1, lease.Active)
			if err := j.Write(AppendLease(nil, &first)); err != nil {
				t.Fatal(err)
			}
			if err := j.Sync(); err != nil {
				t.Fatal(err)
			}
			ff := &failingFile{file: j.f, failWrite: tt.failWrite, failSync: !tt.failWrite}
			j.f = ff
			second := testLease(2, lease.Active)
			err = j.Write(AppendLease(nil, &second))
			if err == nil {
				err = j.Sync()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			// The disk is fine again, but the journal does not pretend.
			ff.failWrite, ff.failSync = false, false
			third := testLease(3, lease.Active)
			if err := j.Write(AppendLease(nil, &third)); !errors.Is(err, tt.want) {
				t.Errorf("Write after failure = %v, want the failure", err)
			}
			if err := j.Sync(); !errors.Is(err, tt.want) {
				t.Errorf("Sync after failure = %v, want the failure", err)
			}
			if !errors.Is(j.Err(), tt.want) {
				t.Errorf("Err() = %v", j.Err())
			}
			if got := metricValue(t, m, "tandem_leasefile_failures_total"); got != 1 {
				t.Errorf("failures = %v, want 1", got)
			}
			if !strings.Contains(logged.String(), "level=ERROR") {
				t.Errorf("failure not logged:\n%s", logged)
			}
			// A torn second record may be in the file; it loads as a torn
			// tail with the first lease intact.
			c, err := Load(path, nil, nil)
			if err != nil || len(c.Leases) < 1 || c.Leases[0].IP != first.IP {
				t.Fatalf("Load after failure = %v, %+v", err, c)
			}
			// Compaction rewrites everything and puts the journal back in service.
			all := []lease.Lease{first, second, third}
			if err := j.Compact(func(w io.Writer) error { return WriteSnapshot(w, All(all), nil) }); err != nil {
				t.Fatal(err)
			}
			fourth := testLease(4, lease.Active)
			if err := j.Write(AppendLease(nil, &fourth)); err != nil {
				t.Fatal(err)
			}
			if err := j.Sync(); err != nil {
				t.Fatal(err)
			}
			c, err = Load(path, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(append(all, fourth), c.Leases); diff != "" {
				t.Errorf("after compaction (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCompact replaces a journal full of superseded records by a snapshot:
// the content is the same, the file smaller, appends continue in the new
// file, and the old one is kept as path~.
func TestCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dhcpd.leases")
	m := NewMetrics()
	j, err := OpenJournal(path, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	states := []lease.FailoverStateRecord{{Peer: "dhcp-failover", MyState: "normal", MyStateAt: 1,
		PartnerState: "normal", PartnerAt: 2, MCLT: 3600}}
	for round := range 10 {
		var buf []byte
		buf = AppendFailoverState(buf, &states[0])
		for i := range 100 {
			l := testLease(i, lease.BindingState(1+(round+i)%7))
			buf = AppendLease(buf, &l)
		}
		if err := j.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	before, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldData, _ := os.ReadFile(path)
	oldSize := j.Size()

	if err := j.Compact(func(w io.Writer) error {
		return WriteSnapshot(w, All(before.Leases), before.Failover)
	}); err != nil {
		t.Fatal(err)
	}
	if j.Size() >= oldSize/5 {
		t.Errorf("size %d after compaction, was %d", j.Size(), oldSize)
	}
	if st, _ := os.Stat(path); st.Size() != j.Size() {
		t.Errorf("Size() = %d, file has %d", j.Size(), st.Size())
	}
	after, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before.Leases, after.Leases); diff != "" {
		t.Errorf("leases (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(before.Failover, after.Failover); diff != "" {
		t.Errorf("failover (-before +after):\n%s", diff)
	}
	if backup, _ := os.ReadFile(path + "~"); !bytes.Equal(backup, oldData) {
		t.Error("the old file is not kept as path~")
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if got := metricValue(t, m, "tandem_leasefile_compactions_total"); got != 1 {
		t.Errorf("compactions = %v", got)
	}

	// Appends go to the new file.
	l := testLease(1000, lease.Active)
	if err := j.Write(AppendLease(nil, &l)); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	again, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(before.Leases, l), again.Leases); diff != "" {
		t.Errorf("after append (-want +got):\n%s", diff)
	}
}

// TestCompactFailureKeepsOldFile: a callback that fails halfway leaves the
// old file byte for byte, removes the temporary file, and the journal keeps
// appending to the old file.
func TestCompactFailureKeepsOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dhcpd.leases")
	m := NewMetrics()
	j, err := OpenJournal(path, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	a := testLease(1, lease.Active)
	if err := j.Write(AppendLease(nil, &a)); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	// A leftover temporary file from a crash during an earlier compaction.
	if err := os.WriteFile(path+".tmp", []byte("lease 198.18.0.77 {\n  starts"), 0o644); err != nil {
		t.Fatal(err)
	}
	oldData, _ := os.ReadFile(path)
	boom := errors.New("boom")
	err = j.Compact(func(w io.Writer) error {
		b := testLease(2, lease.Active)
		if _, err := w.Write(AppendLease(nil, &b)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Compact = %v, want boom", err)
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, oldData) {
		t.Error("old file changed")
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if got := metricValue(t, m, "tandem_leasefile_compactions_total"); got != 1 {
		t.Errorf("compactions (errors included) = %v", got)
	}
	c := testLease(3, lease.Active)
	if err := j.Write(AppendLease(nil, &c)); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]lease.Lease{a, c}, got.Leases); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestDiskFull runs the journal on a real, tiny tmpfs (root only): a full
// disk fails a write, refuses the following ones, and a compaction that
// does not fit leaves the old file intact.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	path := filepath.Join(dir, "dhcpd.leases")
	j, err := OpenJournal(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var kept []lease.Lease
	var werr error
	for i := 0; i < 10000 && werr == nil; i++ {
		l := testLease(i%300, lease.Active)
		if werr = j.Write(AppendLease(nil, &l)); werr == nil {
			if werr = j.Sync(); werr == nil {
				kept = append(kept, l)
			}
		}
	}
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("filling the disk ended with %v, want ENOSPC", werr)
	}
	l := testLease(0, lease.Free)
	if err := j.Write(AppendLease(nil, &l)); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Write after ENOSPC = %v", err)
	}
	oldData, _ := os.ReadFile(path)
	err = j.Compact(func(w io.Writer) error { return WriteSnapshot(w, All(kept), nil) })
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Compact on a full disk = %v, want ENOSPC", err)
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, oldData) {
		t.Error("old file changed")
	}
	// Everything synced before the disk filled up is there.
	c, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := map[uint32]lease.Lease{}
	for _, l := range kept {
		last[l.IP] = l
	}
	if len(c.Leases) != len(last) {
		t.Fatalf("%d leases after the disk filled, want %d", len(c.Leases), len(last))
	}
	for _, l := range c.Leases {
		if diff := cmp.Diff(last[l.IP], l); diff != "" {
			t.Fatalf("(-synced +loaded):\n%s", diff)
		}
	}
}

func TestJournalClosed(t *testing.T) {
	j, err := OpenJournal(filepath.Join(t.TempDir(), "dhcpd.leases"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write = %v", err)
	}
	if err := j.Sync(); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync = %v", err)
	}
	if err := j.Compact(func(io.Writer) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Compact = %v", err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestIsPristine(t *testing.T) {
	free := lease.Lease{IP: 1, State: lease.Free, Next: lease.Free, Rewind: lease.Free, Ends: 5}
	if !IsPristine(&free) {
		t.Error("a free lease without client is pristine")
	}
	for name, l := range map[string]lease.Lease{
		"backup":   {IP: 1, State: lease.Backup},
		"hardware": withHW(free, hw(1, 1, 2, 3)),
		"uid":      {IP: 1, State: lease.Free, ClientID: "x"},
		"tsfp":     {IP: 1, State: lease.Free, TSFP: 1},
	} {
		if IsPristine(&l) {
			t.Errorf("%s: pristine", name)
		}
	}
}
