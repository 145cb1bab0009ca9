package leasefile

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// Load reads the lease file at path. A missing file is an error satisfying
// errors.Is(err, os.ErrNotExist); the caller decides whether that is fine.
//
// A torn last record (see Parse) is cut off the file itself, which is then
// fsynced, so that the Journal appends after the last complete record; the
// cut is logged at WARN and counted in m. Other damage returns a
// *ParseError naming the file and line. log and m may be nil.
func Load(path string, log *slog.Logger, m *Metrics) (*Contents, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.Path = path
		}
		return nil, err
	}
	if r := c.Recovered; r != nil {
		if err := truncate(path, int64(len(data)), r.Offset); err != nil {
			return nil, fmt.Errorf("leasefile: cutting the torn tail off %s: %w", path, err)
		}
		m.recoveredTornTail()
		log.Warn("lease file ended inside a record (a crash during a write); dropped the partial record",
			"path", path, "offset", r.Offset, "bytes", r.Dropped, "line", r.Line,
			"first_line", r.FirstLine, "reason", r.Reason)
	}
	log.Info("lease file loaded", "path", path, "records", c.Records,
		"leases", len(c.Leases), "failover_peers", len(c.Failover))
	if len(c.Skipped) > 0 {
		log.Info("lease file: skipped what Tandem does not keep; it is dropped when the file is rewritten",
			"path", path, "skipped", c.Skipped)
	}
	return c, nil
}

// truncate cuts the file back to size, provided it still has the length it
// had when read.
func truncate(path string, readLen, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != readLen {
		return fmt.Errorf("file changed while it was read (%d bytes, now %d)", readLen, st.Size())
	}
	if err := f.Truncate(size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}
