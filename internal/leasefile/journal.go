package leasefile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// ErrClosed is returned by a Journal after Close.
var ErrClosed = errors.New("leasefile: journal closed")

// file is what the Journal needs of an *os.File; tests wrap it to make
// writes and syncs fail.
type file interface {
	io.Writer
	Sync() error
	Close() error
}

// Journal is the lease file open for appending. One goroutine (the server
// loop) uses it; it has no locks.
//
// Group commit: the caller Writes the records of a whole batch of changes,
// then calls Sync once, and tells clients and the peer only after Sync
// returned nil.
//
// A failed Write or Sync leaves the file in an unknown state (a partial
// record; after a failed fsync the kernel may have dropped the dirty pages).
// The Journal then refuses every further Write and Sync with that error, so
// nothing is acknowledged that is not on disk. A successful Compact, which
// writes the whole database to a new file, puts it back in service.
type Journal struct {
	path   string
	f      file
	size   int64
	broken error
	log    *slog.Logger
	m      *Metrics
}

// OpenJournal opens the lease file at path for appending, creating it if it
// is missing. A new or empty file gets ISC's header, synced along with its
// directory entry. Call Load first: it cuts off a torn tail, after which an
// append would otherwise be damage in the middle. log and m may be nil.
func OpenJournal(path string, log *slog.Logger, m *Metrics) (*Journal, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	j := &Journal{path: path, f: f, size: st.Size(), log: log, m: m}
	if j.size == 0 {
		err = j.start(Header)
	} else {
		// Load may leave the last record without its newline; the next
		// record starts on a line of its own.
		var last [1]byte
		if _, err = f.ReadAt(last[:], j.size-1); err == nil && last[0] != '\n' {
			err = j.start("\n")
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("leasefile: opening %s: %w", path, err)
	}
	m.wrote(0, j.size)
	return j, nil
}

func (j *Journal) start(s string) error {
	if err := j.Write([]byte(s)); err != nil {
		return err
	}
	if err := j.Sync(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(j.path))
}

// Path returns the lease file's path.
func (j *Journal) Path() string { return j.path }

// Size returns the file's size, including writes not yet synced.
func (j *Journal) Size() int64 { return j.size }

// Err returns the failure that put the journal out of service, or nil.
func (j *Journal) Err() error { return j.broken }

// Write appends encoded records. It does not sync.
func (j *Journal) Write(p []byte) error {
	if j.f == nil {
		return ErrClosed
	}
	if j.broken != nil {
		return j.broken
	}
	n, err := j.f.Write(p)
	j.size += int64(n)
	j.m.wrote(n, j.size)
	if err != nil {
		return j.fail("write", err)
	}
	return nil
}

// Sync makes every Write so far durable (fsync).
func (j *Journal) Sync() error {
	if j.f == nil {
		return ErrClosed
	}
	if j.broken != nil {
		return j.broken
	}
	start := time.Now()
	err := j.f.Sync()
	j.m.synced(time.Since(start).Seconds())
	if err != nil {
		return j.fail("sync", err)
	}
	return nil
}

func (j *Journal) fail(op string, err error) error {
	j.broken = fmt.Errorf("leasefile: %s %s: %w; the lease file is out of service until it is rewritten", op, j.path, err)
	j.m.failed(op)
	j.log.Error("lease file failed; refusing further writes", "path", j.path, "op", op, "err", err)
	return j.broken
}

// Compact replaces the lease file with a new one holding the header and
// what write writes (typically WriteSnapshot of the whole database): it
// writes path+".tmp" in the same directory, fsyncs it, keeps the old file
// as path+"~" as ISC does, renames the new file over the old one, fsyncs
// the directory and appends to the new file from then on.
//
// If anything fails before the rename, the old file is left as it was and
// the Journal keeps its state. If only the directory sync fails, the new
// file is in place but maybe not durably, so the Journal is out of service.
// A successful Compact puts a failed Journal back in service.
func (j *Journal) Compact(write func(w io.Writer) error) error {
	if j.f == nil {
		return ErrClosed
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(j.path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		j.m.compacted(false, 0)
		return fmt.Errorf("leasefile: compacting %s: %w", j.path, err)
	}
	cw := &countingWriter{w: f}
	err = writeAll(cw, write)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		j.keepBackup()
		err = os.Rename(tmp, j.path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		j.m.compacted(false, 0)
		return fmt.Errorf("leasefile: compacting %s (old file kept): %w", j.path, err)
	}
	old := j.f
	j.f, j.size, j.broken = f, cw.n, nil
	old.Close()
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		j.m.compacted(false, j.size)
		return j.fail("sync directory", err)
	}
	j.m.compacted(true, j.size)
	j.log.Info("lease file rewritten", "path", j.path, "bytes", j.size)
	return nil
}

func writeAll(w io.Writer, write func(w io.Writer) error) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	if _, err := bw.WriteString(Header); err != nil {
		return err
	}
	if err := write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// keepBackup links the current file as path+"~", as ISC's new_lease_file
// does, for operators who look there. It is a convenience: failing it
// does not stop the compaction.
func (j *Journal) keepBackup() {
	backup := j.path + "~"
	if err := os.Remove(backup); err != nil && !errors.Is(err, os.ErrNotExist) {
		j.log.Warn("lease file: cannot remove the old backup", "path", backup, "err", err)
		return
	}
	if err := os.Link(j.path, backup); err != nil {
		j.log.Warn("lease file: cannot keep a backup", "path", backup, "err", err)
	}
}

// Close closes the file without syncing it.
func (j *Journal) Close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
