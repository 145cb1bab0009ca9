package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tandemdhcp/tandem/e2e/lab"
)

// sample is one line of the Prometheus text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metricSet is a scrape of /metrics.
type metricSet []sample

// parseMetrics reads the Prometheus text format. Only what Tandem's
// registry emits needs to work: no escaped quotes inside label values
// that contain commas, no exemplars.
func parseMetrics(text string) (metricSet, error) {
	var out metricSet
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i < 0 {
			return nil, fmt.Errorf("metrics line %d: %q", n, line)
		} else {
			s.name = line[:i]
			rest = line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("metrics line %d: unterminated labels: %q", n, line)
			}
			if err := parseLabels(rest[1:end], s.labels); err != nil {
				return nil, fmt.Errorf("metrics line %d: %v", n, err)
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics line %d: no value: %q", n, line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: value: %v", n, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseLabels(s string, into map[string]string) error {
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return fmt.Errorf("bad labels %q", s)
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var val strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			return fmt.Errorf("unterminated label value for %s", key)
		}
		into[key] = val.String()
		s = strings.TrimLeft(s[i+1:], ", ")
	}
	return nil
}

// sum adds up every sample called name whose labels include match.
func (m metricSet) sum(name string, match map[string]string) float64 {
	total := 0.0
next:
	for _, s := range m {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// nsHTTP is an HTTP client whose connections are opened inside a lab
// host's namespace, so that 127.0.0.1 is that namespace's loopback.
func nsHTTP(h *lab.Host, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return h.Dial(network, addr, 5*time.Second)
			},
		},
	}
}

func httpGet(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// tandemSnapshot is what the benchmark reads from a running Tandem.
type tandemSnapshot struct {
	HeapInuse   float64 // go_memstats_heap_inuse_bytes right after a forced GC
	RSS         float64 // VmRSS in bytes
	Syncs       float64 // tandem_leasefile_syncs_total
	SyncSeconds float64 // sum of tandem_leasefile_sync_duration_seconds
	Commits     float64 // group commits (count of tandem_lease_commit_batches)
	CommitJobs  float64 // request batches they carried (its sum)
	ACKs        float64 // tandem_dhcp_replies_total{type="ACK"}
	Offers      float64 // tandem_dhcp_replies_total{type="OFFER"}
	Requests    float64 // tandem_dhcp_requests_total, every type
	Active      float64 // tandem_pool_leases{state="active"}
	// The failover link, by message type (tandem_failover_messages_*_total).
	BndUpdSent, BndAckRecv float64 // updates of our leases, and the partner's acks of them
	BndUpdRecv, BndAckSent float64 // the partner's updates, and our acks of them
	Queued, Unacked        float64 // tandem_failover_updates_{queued,unacked}
	NoFree                 float64 // tandem_dhcp_dropped_total{reason="no free leases"}
	Text                   string  // the whole scrape, saved beside the logs
}

// snapshotTandem forces a garbage collection (the heap profile handler
// does that with gc=1) so that heap figures count live data only, then
// scrapes /metrics and reads VmRSS.
func snapshotTandem(c *http.Client, metricsAddr string, pid int) (tandemSnapshot, error) {
	var s tandemSnapshot
	base := "http://" + metricsAddr
	if _, err := httpGet(c, base+"/debug/pprof/heap?gc=1"); err != nil {
		return s, err
	}
	b, err := httpGet(c, base+"/metrics")
	if err != nil {
		return s, err
	}
	s.Text = string(b)
	m, err := parseMetrics(s.Text)
	if err != nil {
		return s, err
	}
	s.HeapInuse = m.sum("go_memstats_heap_inuse_bytes", nil)
	s.Syncs = m.sum("tandem_leasefile_syncs_total", nil)
	s.SyncSeconds = m.sum("tandem_leasefile_sync_duration_seconds_sum", nil)
	s.Commits = m.sum("tandem_lease_commit_batches_count", nil)
	s.CommitJobs = m.sum("tandem_lease_commit_batches_sum", nil)
	s.ACKs = m.sum("tandem_dhcp_replies_total", map[string]string{"type": "ACK"})
	s.Offers = m.sum("tandem_dhcp_replies_total", map[string]string{"type": "OFFER"})
	s.Requests = m.sum("tandem_dhcp_requests_total", nil)
	s.Active = m.sum("tandem_pool_leases", map[string]string{"state": "active"})
	s.BndUpdSent = m.sum("tandem_failover_messages_sent_total", map[string]string{"type": "BNDUPD"})
	s.BndAckRecv = m.sum("tandem_failover_messages_received_total", map[string]string{"type": "BNDACK"})
	s.BndUpdRecv = m.sum("tandem_failover_messages_received_total", map[string]string{"type": "BNDUPD"})
	s.BndAckSent = m.sum("tandem_failover_messages_sent_total", map[string]string{"type": "BNDACK"})
	s.Queued = m.sum("tandem_failover_updates_queued", nil)
	s.Unacked = m.sum("tandem_failover_updates_unacked", nil)
	s.NoFree = m.sum("tandem_dhcp_dropped_total", map[string]string{"reason": "no free leases"})
	s.RSS, err = vmRSS(pid)
	return s, err
}

// vmRSS reads a process's resident set size from /proc.
func vmRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("unexpected VmRSS line %q", line)
			}
			kb, err := strconv.ParseFloat(f[0], 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// loadAvg1 is the one-minute load average, the noise indicator of a
// shared machine.
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// udpRcvbufErrors reads the Udp RcvbufErrors counter of a host's
// namespace: datagrams the kernel threw away because a socket's receive
// buffer was full. On the relay host that means replies perfdhcp never
// read (it fell behind), not replies the server failed to send.
func udpRcvbufErrors(h *lab.Host) (int64, error) {
	out, err := h.Run("cat", "/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	return parseSNMPField(out, "Udp", "RcvbufErrors")
}

// parseSNMPField reads one counter from /proc/net/snmp, where each
// protocol has a header line of names and a line of values.
func parseSNMPField(text, proto, field string) (int64, error) {
	var names []string
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, proto+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == field && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("no %s %s in /proc/net/snmp", proto, field)
}
