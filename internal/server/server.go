// Package server is Tandem's runtime: one goroutine owns the lease
// database and runs the pure DHCP handler over batches of received
// packets; a second goroutine makes each batch's lease changes durable
// with one fsync (group commit) and only then releases the replies that
// promised something. Sockets, clock and disk live here, nowhere deeper.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemdhcp/tandem/internal/config"
	"github.com/tandemdhcp/tandem/internal/control"
	"github.com/tandemdhcp/tandem/internal/dhcp"
	"github.com/tandemdhcp/tandem/internal/dhcpnet"
	"github.com/tandemdhcp/tandem/internal/failover"
	"github.com/tandemdhcp/tandem/internal/lease"
	"github.com/tandemdhcp/tandem/internal/leasefile"
)

// Options configure a Server.
type Options struct {
	Config     *config.Config
	LeaseFile  string
	Port       int      // DHCP server port; clients are on Port+1
	Interfaces []string // empty = every suitable interface
	Logger     *slog.Logger
	// Registerer receives the server's metrics; nil = none.
	Registerer prometheus.Registerer
	// Now is the clock; nil = time.Now. Tests may stop it.
	Now func() time.Time
	// ControlSocket is the unix socket of the operator API ("" = none).
	ControlSocket string
	// Version is reported by the control API.
	Version string
}

// Server is a running DHCP server.
type Server struct {
	opts    Options
	log     *slog.Logger
	db      *lease.DB
	handler *dhcp.Handler
	stats   *dhcp.Stats
	journal *leasefile.Journal
	conn    *dhcpnet.Conn
	now     func() time.Time
	metrics *metrics

	failoverStates []lease.FailoverStateRecord

	commits  chan commitJob
	commitWG sync.WaitGroup
	// commitErr is set by the committer when the disk fails; the loop stops.
	commitErr chan error

	fileMetrics      *leasefile.Metrics
	lastSnapshotSize int64
	started          time.Time
	// calls are control API requests, run by the loop.
	calls chan func()

	// Failover relationships, one per "failover peer" block.
	rels       []*relationship
	relByName  map[string]*relationship
	peerEvents chan peerEvent
	// appended counts bytes queued for the journal since the last
	// snapshot; the loop owns it, so it needs no lock.
	appended int64
	// recordsHint sizes a batch's record buffer from the last batch, so
	// that encoding a batch allocates once rather than growing the buffer
	// lease by lease (a few per cent of a busy pair's CPU).
	recordsHint int
}

// commitJob is one batch: lease records to make durable, then replies to
// send. A job with a snapshot replaces the file instead (compaction).
type commitJob struct {
	records  []byte
	replies  []dhcpnet.Reply
	sends    []peerSend // failover messages, after the records are durable
	closes   []peerClose
	snapshot []byte
	done     chan struct{} // closed when the job is finished (tests, shutdown)
}

// New loads the lease file, builds the lease database and opens the
// sockets. The lease file is compacted before the server answers anyone.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Port == 0 {
		opts.Port = 67
	}
	s := &Server{
		opts:        opts,
		log:         opts.Logger,
		now:         opts.Now,
		stats:       &dhcp.Stats{},
		commits:     make(chan commitJob, 1024),
		commitErr:   make(chan error, 1),
		calls:       make(chan func()),
		fileMetrics: leasefile.NewMetrics(),
	}
	s.metrics = newMetrics(s)
	db, err := dhcp.BuildDB(opts.Config)
	if err != nil {
		return nil, err
	}
	s.db = db
	if err := s.loadLeases(); err != nil {
		return nil, err
	}
	if err := s.setupFailover(); err != nil {
		s.journal.Close()
		return nil, err
	}
	var policy dhcp.Policy
	if len(s.rels) > 0 {
		policy = policyRouter(s.relByName)
	}
	s.handler = dhcp.NewHandler(opts.Config, db, policy, s.stats)
	if opts.Registerer != nil {
		for _, c := range s.metrics.collectors() {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	netMetrics := dhcpnet.NewMetrics()
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(netMetrics); err != nil {
			return nil, err
		}
	}
	conn, err := dhcpnet.Listen(dhcpnet.Config{Port: uint16(opts.Port), Interfaces: opts.Interfaces,
		Logger: opts.Logger, Metrics: netMetrics})
	if err != nil {
		s.journal.Close()
		return nil, fmt.Errorf("listening on port %d: %w", opts.Port, err)
	}
	s.conn = conn
	return s, nil
}

// loadLeases reads the lease file into the database (ISC's dhcpd.leases
// format, so an ISC server's file can be taken over as it is), then
// rewrites it compactly.
func (s *Server) loadLeases() error {
	path := s.opts.LeaseFile
	contents, err := leasefile.Load(path, s.log, s.fileMetrics)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.log.Info("lease file does not exist; starting with no leases", "file", path)
		contents = &leasefile.Contents{}
	case err != nil:
		return err
	}
	dropped := 0
	for i := range contents.Leases {
		if !s.db.Restore(&contents.Leases[i]) {
			dropped++
			s.log.Warn("lease for an address in no configured pool dropped",
				"address", contents.Leases[i].Addr(), "state", contents.Leases[i].State)
		}
	}
	s.db.DrainDirty(func(*lease.Lease) {})
	s.failoverStates = contents.Failover
	s.log.Info("lease file read", "file", path, "records", contents.Records,
		"leases", len(contents.Leases)-dropped, "dropped", dropped)
	j, err := leasefile.OpenJournal(path, s.log, s.fileMetrics)
	if err != nil {
		return err
	}
	s.journal = j
	snap := s.snapshot()
	if err := j.Compact(func(w io.Writer) error { _, err := w.Write(snap); return err }); err != nil {
		j.Close()
		return fmt.Errorf("compacting lease file %s: %w", path, err)
	}
	s.lastSnapshotSize = int64(len(snap))
	return nil
}

// snapshotRecordSize is room for a typical lease record (330 bytes for an
// active failover lease, 400 with a client identifier and a host name); a
// longer one only makes the buffer grow once.
const snapshotRecordSize = 400

// snapshot encodes every lease worth keeping and the failover states.
func (s *Server) snapshot() []byte {
	// Sized first: growing a buffer of tens of MB lease by lease cost a
	// busy pair about 4 % of its CPU in copies.
	kept := 0
	s.db.Each(func(l *lease.Lease, _ *lease.Pool) {
		if !l.Pristine() {
			kept++
		}
	})
	buf := make([]byte, 0, kept*snapshotRecordSize+len(s.failoverStates)*512)
	s.db.Each(func(l *lease.Lease, _ *lease.Pool) {
		if l.Pristine() {
			return
		}
		c := l.Snapshot()
		buf = leasefile.AppendLease(buf, &c)
	})
	for i := range s.failoverStates {
		buf = leasefile.AppendFailoverState(buf, &s.failoverStates[i])
	}
	return buf
}

// Run serves until ctx is done or the disk fails. With failover
// relationships, a stop is graceful as in ISC dhcpd: each relationship
// moves to shutdown and tells its partner, which can then take over at
// once (partner-down), before the server exits.
func (s *Server) Run(ctx context.Context) error {
	// Links and readers outlive ctx during a graceful shutdown.
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batches := make(chan []dhcpnet.Packet, 64)
	readErr := make(chan error, 1)
	go func() { readErr <- s.readLoop(runCtx, batches) }()
	s.commitWG.Add(1)
	go s.commitLoop()
	var linksWG sync.WaitGroup
	defer func() {
		cancel()
		linksWG.Wait()
		close(s.commits)
		s.commitWG.Wait()
		s.conn.Close()
		s.journal.Close()
	}()
	s.startLinks(runCtx, &linksWG)

	if s.opts.ControlSocket != "" {
		go func() {
			if err := control.Serve(runCtx, s.opts.ControlSocket, s, s.log); err != nil {
				s.log.Error("control API stopped", "socket", s.opts.ControlSocket, "err", err)
			}
		}()
	}
	s.started = s.now()
	s.log.Info("server started", "pools", len(s.db.Pools), "port", s.opts.Port,
		"failover relationships", len(s.rels))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	s.housekeeping()
	stop := ctx.Done()
	var stopDeadline time.Time
	for {
		select {
		case <-stop:
			if len(s.rels) == 0 {
				s.log.Info("server stopping")
				return nil
			}
			s.log.Info("server stopping: telling failover partners")
			stop = nil
			stopDeadline = s.now().Add(shutdownWait)
			s.shutdownFailover()
		case err := <-s.commitErr:
			return fmt.Errorf("lease file: %w", err)
		case err := <-readErr:
			return fmt.Errorf("receiving: %w", err)
		case b := <-batches:
			s.handleBatch(b)
		case ev := <-s.peerEvents:
			s.handlePeerEvent(ev)
		case <-tick.C:
			s.housekeeping()
		case fn := <-s.calls:
			fn()
			s.flush(nil)
		}
		if !stopDeadline.IsZero() && (s.failoverStopped() || s.now().After(stopDeadline)) {
			s.flushWait()
			s.log.Info("server stopping")
			return nil
		}
	}
}

func (s *Server) readLoop(ctx context.Context, out chan<- []dhcpnet.Packet) error {
	buf := make([]dhcpnet.Packet, 64)
	for {
		n, err := s.conn.ReadBatch(buf)
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		// The connection reuses its buffers; the loop gets copies, all
		// in one allocation.
		size := 0
		for i := range n {
			size += len(buf[i].Data)
		}
		slab := make([]byte, 0, size)
		batch := make([]dhcpnet.Packet, n)
		for i := range n {
			batch[i] = buf[i]
			start := len(slab)
			slab = append(slab, buf[i].Data...)
			batch[i].Data = slab[start:len(slab):len(slab)]
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return nil
		}
	}
}

// handleBatch runs the handler over received packets, then hands the
// batch's lease changes and promised replies to the committer.
func (s *Server) handleBatch(pkts []dhcpnet.Packet) {
	now := s.now().Unix()
	var durable, immediate []dhcpnet.Reply
	logRequests := s.log.Enabled(context.Background(), slog.LevelDebug)
	for i := range pkts {
		pkt := &pkts[i]
		msg, err := dhcpv4.FromBytes(pkt.Data)
		if err != nil {
			s.stats.Malformed.Add(1)
			s.log.Debug("malformed DHCP packet dropped", "from", pkt.Src, "len", len(pkt.Data), "err", err)
			continue
		}
		var local []netip.Prefix
		ifi, ok := s.conn.Interface(pkt.IfIndex)
		if ok {
			local = ifi.Prefixes
		}
		res := s.handler.Handle(now, dhcp.Request{Packet: msg, LocalAddrs: local})
		if logRequests {
			s.logExchange(msg, res, ifi.Name)
		}
		if res.Reply == nil {
			continue
		}
		r := dhcpnet.ReplyFromMessage(res.Reply, pkt.IfIndex)
		if res.Durable {
			durable = append(durable, r)
		} else {
			immediate = append(immediate, r)
		}
	}
	s.sendReplies(immediate)
	s.flush(durable)
}

// flush makes everything decided so far durable and then tells it: the
// dirty leases and failover state records go to the committer with the
// DHCP replies and failover messages that wait for them.
func (s *Server) flush(replies []dhcpnet.Reply) {
	var job commitJob
	job.replies = replies
	var report func(ip uint32, p *lease.Pool)
	if len(s.rels) > 0 {
		now := s.now().Unix()
		report = func(ip uint32, p *lease.Pool) {
			if r := s.relByName[p.FailoverPeer]; r != nil {
				s.step(r, now, failover.LeaseChanged{IP: ip})
			}
		}
	}
	job.records = s.drainLeases(job.records, report)
	for _, r := range s.rels {
		job = s.collectReady(r, job)
	}
	// Leases the failover nodes changed while producing Ready.
	job.records = s.drainLeases(job.records, nil)
	if len(job.records) == 0 && len(job.sends) == 0 && len(job.closes) == 0 {
		s.sendReplies(job.replies)
		return
	}
	s.appended += int64(len(job.records))
	// Capped, so that one huge batch (a pool balanced at once) does not
	// make every later one allocate as much.
	s.recordsHint = min(len(job.records)+len(job.records)/4, maxRecordsHint)
	s.commits <- job
}

// Bounds of Server.recordsHint: a lease record is 300-400 bytes.
const (
	minRecordsHint = 1 << 10
	maxRecordsHint = 64 << 10
)

// drainLeases encodes the dirty leases, reporting each of a failover pool
// to fn, if fn is not nil (after the drain: fn may change the DB).
func (s *Server) drainLeases(rec []byte, fn func(ip uint32, p *lease.Pool)) []byte {
	var ips []uint32
	s.db.DrainDirty(func(l *lease.Lease) {
		if rec == nil {
			rec = make([]byte, 0, max(s.recordsHint, minRecordsHint))
		}
		c := l.Snapshot()
		rec = leasefile.AppendLease(rec, &c)
		if fn != nil {
			ips = append(ips, l.IP)
		}
	})
	for _, ip := range ips {
		if _, p := s.db.Get(ip); p != nil && p.FailoverPeer != "" {
			fn(ip, p)
		}
	}
	return rec
}

// flushWait flushes and waits until the committer has finished.
func (s *Server) flushWait() {
	s.flush(nil)
	done := make(chan struct{})
	s.commits <- commitJob{done: done}
	<-done
}

func (s *Server) sendReplies(rs []dhcpnet.Reply) {
	if len(rs) == 0 {
		return
	}
	if _, err := s.conn.SendBatch(rs); err != nil {
		s.log.Debug("sending replies failed", "err", err)
	}
}

// commitLoop writes queued batches, as many as are waiting, with one
// fsync, then sends their replies: persist before you tell.
func (s *Server) commitLoop() {
	defer s.commitWG.Done()
	failed := false
	for job := range s.commits {
		jobs := []commitJob{job}
	drain:
		for len(jobs) < 256 {
			select {
			case j, ok := <-s.commits:
				if !ok {
					break drain
				}
				jobs = append(jobs, j)
			default:
				break drain
			}
		}
		if failed {
			continue
		}
		if err := s.commitBatch(jobs); err != nil {
			failed = true
			s.log.Error("lease file write failed; no more leases will be granted", "err", err)
			select {
			case s.commitErr <- err:
			default:
			}
			continue
		}
		for _, j := range jobs {
			s.sendReplies(j.replies)
			s.sendPeers(j.sends, j.closes)
			if j.done != nil {
				close(j.done)
			}
		}
	}
}

func (s *Server) commitBatch(jobs []commitJob) error {
	start := time.Now()
	pending := false
	for _, j := range jobs {
		if j.snapshot != nil {
			if pending {
				if err := s.journal.Sync(); err != nil {
					return err
				}
				pending = false
			}
			snap := j.snapshot
			if err := s.journal.Compact(func(w io.Writer) error { _, err := w.Write(snap); return err }); err != nil {
				return err
			}
			continue
		}
		if len(j.records) > 0 {
			if err := s.journal.Write(j.records); err != nil {
				return err
			}
			pending = true
		}
	}
	if pending {
		if err := s.journal.Sync(); err != nil {
			return err
		}
	}
	s.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	s.metrics.commitBatches.Observe(float64(len(jobs)))
	return nil
}

// housekeeping expires leases and offers and compacts the lease file when
// it has grown well past its last snapshot.
func (s *Server) housekeeping() {
	now := s.now().Unix()
	s.db.Expire(now, s.expiredState)
	s.handler.ExpireOffers(now)
	s.tickFailover(now)
	s.flush(nil)
	const minCompact = 4 << 20
	if s.appended > minCompact && s.appended > 3*s.lastSnapshotSize {
		snap := s.snapshot()
		s.log.Info("compacting lease file", "file", s.opts.LeaseFile,
			"size", s.lastSnapshotSize+s.appended, "snapshot", len(snap))
		s.lastSnapshotSize, s.appended = int64(len(snap)), 0
		s.commits <- commitJob{snapshot: snap}
	}
	s.metrics.publishPools(s.db)
}
