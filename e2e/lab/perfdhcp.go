package lab

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PerfdhcpOptions shape one perfdhcp run. perfdhcp sends from Local as a
// relay agent would (giaddr = Local), unicast to Server, so its clients get
// addresses from the subnet of Local.
type PerfdhcpOptions struct {
	// Server is the address requests go to (required).
	Server netip.Addr
	// Local is the source and giaddr (-l); zero means RelayIP.
	Local netip.Addr
	// Rate is the number of new exchanges per second (-r); 0 means as
	// fast as perfdhcp can.
	Rate int
	// Clients is the number of distinct clients, i.e. MACs (-R); 0 leaves
	// perfdhcp's default of 1.
	Clients int
	// Duration is the test period (-p); Exchanges the number of exchanges
	// to initiate (-n). perfdhcp stops at whichever comes first; give at
	// least one of them.
	Duration  time.Duration
	Exchanges int
	// Seed makes the sequence of client MACs repeatable (-s); 0 means random.
	Seed int
	// BaseMAC is the MAC that client MACs are derived from (-b mac=…).
	BaseMAC net.HardwareAddr
	// DropTime is how long a request may wait for its reply before it
	// counts as dropped (-d); 0 keeps perfdhcp's 1 s.
	DropTime time.Duration
	// ExitWait keeps receiving this long after the last request (-W), so
	// late replies still count.
	ExitWait time.Duration
	// Extra arguments go before the server address.
	Extra []string
	// Timeout bounds the whole run; 0 means Duration (or 60 s) plus 30 s.
	Timeout time.Duration
}

// PerfdhcpResult is perfdhcp's report.
type PerfdhcpResult struct {
	// Rate is the achieved rate in complete 4-way exchanges per second.
	Rate float64
	// Malformed counts malformed packets received.
	Malformed int
	// DiscoverOffer and RequestAck are the two exchanges of DORA.
	DiscoverOffer ExchangeStats
	RequestAck    ExchangeStats
	// Exchanges holds every "Statistics for: NAME" section by NAME
	// ("DISCOVER-OFFER", "REQUEST-ACK", and renew/release ones if asked).
	Exchanges map[string]ExchangeStats
	// ExitCode is 0, or 3 when some exchanges did not complete.
	ExitCode int
	// Output is perfdhcp's full output.
	Output string
}

// ExchangeStats is one "Statistics for:" section of perfdhcp's report.
// Values perfdhcp prints as n/a, inf or nan (no replies at all) stay zero.
type ExchangeStats struct {
	Sent, Received, Drops int
	// DropsRatio is in percent.
	DropsRatio     float64
	Orphans        int
	RejectedLeases int
	// NonUniqueAddresses is perfdhcp's "non unique addresses". perfdhcp
	// counts them only when run with -u (in Extra), and then also counts a
	// client that drew the same MAC again and got its own address back: it
	// is no evidence either way of an address leased twice. Acks is.
	NonUniqueAddresses                   int
	MinDelay, AvgDelay, MaxDelay, StdDev time.Duration
}

// Argv is perfdhcp's command line for o.
func (o PerfdhcpOptions) Argv() ([]string, error) {
	if !o.Server.Is4() {
		return nil, errors.New("perfdhcp: Server must be an IPv4 address")
	}
	if o.Duration <= 0 && o.Exchanges <= 0 {
		return nil, errors.New("perfdhcp: give Duration or Exchanges, or it never stops")
	}
	local := o.Local
	if !local.IsValid() {
		local = RelayIP
	}
	a := []string{"perfdhcp", "-4", "-l", local.String()}
	if o.Rate > 0 {
		a = append(a, "-r", strconv.Itoa(o.Rate))
	}
	if o.Clients > 0 {
		a = append(a, "-R", strconv.Itoa(o.Clients))
	}
	if o.Duration > 0 {
		a = append(a, "-p", formatSeconds(o.Duration))
	}
	if o.Exchanges > 0 {
		a = append(a, "-n", strconv.Itoa(o.Exchanges))
	}
	if o.Seed > 0 {
		a = append(a, "-s", strconv.Itoa(o.Seed))
	}
	if len(o.BaseMAC) > 0 {
		a = append(a, "-b", "mac="+o.BaseMAC.String())
	}
	if o.DropTime > 0 {
		a = append(a, "-d", formatSeconds(o.DropTime))
	}
	if o.ExitWait > 0 {
		a = append(a, "-W", strconv.FormatInt(o.ExitWait.Microseconds(), 10))
	}
	a = append(a, o.Extra...)
	return append(a, o.Server.String()), nil
}

func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// RunPerfdhcp runs perfdhcp on h (normally the lab's Relay host) and parses
// its report. Exit status 3 (some exchanges failed) is a result, not an
// error; the drops are in the result.
func RunPerfdhcp(h *Host, o PerfdhcpOptions) (*PerfdhcpResult, error) {
	argv, err := o.Argv()
	if err != nil {
		return nil, err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = o.Duration
		if timeout <= 0 {
			timeout = 60 * time.Second
		}
		timeout += 30 * time.Second
	}
	p, err := h.start("perfdhcp", nil, argv)
	if err != nil {
		return nil, err
	}
	werr := p.Wait(timeout)
	if errors.Is(werr, ErrTimeout) {
		p.kill(syscall.SIGKILL)
		<-p.done
		return nil, fmt.Errorf("perfdhcp: %w; last lines:\n%s", werr, tail(p.Log(), 20))
	}
	out := p.Log()
	code := p.ExitCode()
	var ee *exec.ExitError
	if werr != nil && (!errors.As(werr, &ee) || code != 3) {
		return nil, fmt.Errorf("perfdhcp: %v; output:\n%s", werr, tail(out, 30))
	}
	res, err := ParsePerfdhcp(out)
	if err != nil {
		return nil, err
	}
	res.ExitCode = code
	return res, nil
}

var (
	perfRate    = regexp.MustCompile(`(?m)^Rate: ([0-9.eE+-]+) 4-way exchanges/second`)
	perfSection = regexp.MustCompile(`^\*\*\*Statistics for: (.+)\*\*\*$`)
	perfField   = regexp.MustCompile(`^([a-z ]+): ([0-9.eE+-]+)( ms| %)?$`)
)

// ParsePerfdhcp parses the report perfdhcp -4 prints at the end of a run.
func ParsePerfdhcp(out string) (*PerfdhcpResult, error) {
	res := &PerfdhcpResult{Output: out, Exchanges: map[string]ExchangeStats{}}
	m := perfRate.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("perfdhcp: no rate line in output:\n%s", tail(out, 30))
	}
	rate, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return nil, fmt.Errorf("perfdhcp: rate %q: %v", m[1], err)
	}
	res.Rate = rate

	var cur *ExchangeStats
	var curName string
	flush := func() {
		if cur != nil {
			res.Exchanges[curName] = *cur
		}
		cur = nil
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if s := perfSection.FindStringSubmatch(line); s != nil {
			flush()
			curName = s[1]
			cur = &ExchangeStats{}
			continue
		}
		if strings.HasPrefix(line, "***") {
			flush()
			continue
		}
		f := perfField.FindStringSubmatch(line)
		if f == nil {
			continue
		}
		if cur == nil {
			continue
		}
		if err := setExchangeField(cur, f[1], f[2]); err != nil {
			return nil, fmt.Errorf("perfdhcp: %s: %q: %v", curName, line, err)
		}
	}
	flush()
	if v := malformedLine.FindStringSubmatch(out); v != nil {
		if res.Malformed, err = strconv.Atoi(v[1]); err != nil {
			return nil, fmt.Errorf("perfdhcp: malformed packets %q: %v", v[1], err)
		}
	}
	var ok bool
	if res.DiscoverOffer, ok = res.Exchanges["DISCOVER-OFFER"]; !ok {
		return nil, fmt.Errorf("perfdhcp: no DISCOVER-OFFER statistics in output:\n%s", tail(out, 30))
	}
	res.RequestAck = res.Exchanges["REQUEST-ACK"]
	return res, nil
}

var malformedLine = regexp.MustCompile(`(?m)^Malformed packets: (\d+)`)

func setExchangeField(s *ExchangeStats, key, val string) error {
	ms := func() (time.Duration, error) {
		f, err := strconv.ParseFloat(val, 64)
		return time.Duration(math.Round(f * float64(time.Millisecond))), err
	}
	var err error
	switch key {
	case "sent packets":
		s.Sent, err = strconv.Atoi(val)
	case "received packets":
		s.Received, err = strconv.Atoi(val)
	case "drops":
		s.Drops, err = strconv.Atoi(val)
	case "drops ratio":
		s.DropsRatio, err = strconv.ParseFloat(val, 64)
	case "orphans":
		s.Orphans, err = strconv.Atoi(val)
	case "rejected leases":
		s.RejectedLeases, err = strconv.Atoi(val)
	case "non unique addresses":
		s.NonUniqueAddresses, err = strconv.Atoi(val)
	case "min delay":
		s.MinDelay, err = ms()
	case "avg delay":
		s.AvgDelay, err = ms()
	case "max delay":
		s.MaxDelay, err = ms()
	case "std deviation":
		s.StdDev, err = ms()
	}
	return err
}
