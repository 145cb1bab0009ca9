package leasefile

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	"github.com/tandemdhcp/tandem/internal/lease"
)

// Contents is what a lease file holds once its journal is replayed.
type Contents struct {
	// Leases has the last record of every address, in the file order of
	// those last records.
	Leases []lease.Lease
	// Failover has the state of every failover peer named in the file, in
	// the file order of each peer's last record. As in ISC, a record
	// updates only the lines it has; the others keep earlier values.
	Failover []lease.FailoverStateRecord
	// Records counts the lease and failover-state records read, superseded
	// ones included.
	Records int
	// Skipped counts what was read but is not kept, by keyword: records
	// ("ia-na", "host", …) and statements inside lease records ("set",
	// "on", "option", "billing", …). Nil when nothing was skipped.
	Skipped map[string]int
	// Recovered is set when a torn last record was cut off.
	Recovered *Recovery
}

// Recovery describes a torn tail: the end of a file that stops inside a
// record, as a crash during an append leaves it.
type Recovery struct {
	Offset    int64  // where the intact part ends: the file is cut here
	Dropped   int64  // bytes dropped after Offset
	Line      int    // line of the dropped record's first byte
	FirstLine string // the dropped record's first line, e.g. "lease 198.18.0.9 {"
	Reason    string // what the parser found wrong there
}

// ParseError reports damage that is not a torn tail.
type ParseError struct {
	Path   string // set by Load
	Line   int
	Offset int
	Msg    string
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
}

// Parse replays a lease file held in memory. A torn last record is left out
// and described in Contents.Recovered; the caller decides what to do with
// the file (Load truncates it). Any other damage is a *ParseError.
func Parse(data []byte) (*Contents, error) {
	p := newParser(data)
	for {
		t := p.lx.next()
		if t.kind == tEOF {
			break
		}
		if err := p.record(t); err != nil {
			if !tornTail(data, t.start) {
				return nil, err
			}
			p.c.Recovered = &Recovery{
				Offset:    int64(p.good),
				Dropped:   int64(len(data) - p.good),
				Line:      t.line,
				FirstLine: firstLine(data[t.start:]),
				Reason:    err.(*ParseError).Msg,
			}
			break
		}
		p.good = p.lx.pos
		if p.good < len(data) && data[p.good] == '\n' {
			p.good++
		}
	}
	return p.finish(), nil
}

type parser struct {
	data []byte
	lx   lexer
	good int // end of the last complete record (and its newline)

	// The record being parsed, for error messages.
	ctx      string
	ctxLease bool
	ctxIP    uint32

	c          Contents
	leases     []lease.Lease
	superseded []bool
	nDead      int
	byIP       map[uint32]int
	peerIndex  map[string]int
}

func newParser(data []byte) *parser {
	return &parser{data: data, lx: lexer{data: data, line: 1}}
}

func (p *parser) finish() *Contents {
	p.compact()
	c := p.c
	c.Leases = p.leases
	return &c
}

// addLease records l as its address's newest record.
func (p *parser) addLease(l *lease.Lease) {
	p.c.Records++
	if p.byIP == nil {
		p.byIP = make(map[uint32]int)
	}
	if i, ok := p.byIP[l.IP]; ok {
		p.superseded[i] = true
		p.nDead++
	}
	p.byIP[l.IP] = len(p.leases)
	p.leases = append(p.leases, *l)
	p.superseded = append(p.superseded, false)
	// A long journal holds many records per address; keep memory near the
	// number of addresses rather than of records.
	if p.nDead > 1024 && p.nDead > len(p.leases)/2 {
		p.compact()
	}
}

func (p *parser) compact() {
	if p.nDead == 0 {
		return
	}
	n := 0
	for i := range p.leases {
		if p.superseded[i] {
			continue
		}
		p.leases[n] = p.leases[i]
		p.byIP[p.leases[n].IP] = n
		n++
	}
	clear(p.leases[n:])
	p.leases = p.leases[:n]
	p.superseded = p.superseded[:n]
	clear(p.superseded)
	p.nDead = 0
}

func (p *parser) skipped(what string) {
	if p.c.Skipped == nil {
		p.c.Skipped = make(map[string]int)
	}
	p.c.Skipped[what]++
}

func (p *parser) errorf(t token, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	switch {
	case p.ctxLease:
		msg = "lease " + lease.U32ToAddr(p.ctxIP).String() + ": " + msg
	case p.ctx != "":
		msg = p.ctx + ": " + msg
	}
	return &ParseError{Line: t.line, Offset: t.start, Msg: msg}
}

func (p *parser) expected(t token, what string) error {
	return p.errorf(t, "expected %s, found %s", what, describe(t))
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of file"
	case tWord:
		return strconv.Quote(string(clip(t.text, 40)))
	case tString:
		return "string " + strconv.Quote(string(clip(t.text, 40)))
	case tLBrace:
		return `"{"`
	case tRBrace:
		return `"}"`
	case tSemi:
		return `";"`
	case tUnterminated:
		return "an unterminated string"
	default:
		return fmt.Sprintf("byte %#02x", t.text[0])
	}
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func (p *parser) word(what string) (token, error) {
	t := p.lx.next()
	if t.kind != tWord {
		return t, p.expected(t, what)
	}
	return t, nil
}

func (p *parser) keyword(kw string) error {
	t := p.lx.next()
	if t.kind != tWord || string(t.text) != kw {
		return p.expected(t, strconv.Quote(kw))
	}
	return nil
}

func (p *parser) semi() error {
	t := p.lx.next()
	if t.kind != tSemi {
		return p.expected(t, `";"`)
	}
	return nil
}

// record parses one top-level statement whose first token is t.
func (p *parser) record(t token) error {
	p.ctx, p.ctxLease = "", false
	if t.kind != tWord {
		return p.expected(t, "a record (lease, failover peer, …)")
	}
	switch string(t.text) {
	case "lease":
		var l lease.Lease
		if err := p.lease(&l); err != nil {
			return err
		}
		p.addLease(&l)
		return nil
	case "failover":
		return p.failoverState()
	case "authoring-byte-order":
		w, err := p.word("little-endian or big-endian")
		if err != nil {
			return err
		}
		if s := string(w.text); s != "little-endian" && s != "big-endian" {
			return p.expected(w, "little-endian or big-endian")
		}
		return p.semi()
	case "server-duid":
		// ISC's DHCPv6 server identity, written to v4 files too.
		return p.skipStatement()
	case "ia-na", "ia-ta", "ia-pd", "host", "group", "class", "subclass":
		// DHCPv6 leases and OMAPI-made objects: not Tandem's to keep.
		if err := p.skipStatement(); err != nil {
			return err
		}
		p.skipped(string(t.text))
		return nil
	}
	return p.expected(t, "a record (lease, failover peer, …)")
}

// skipStatement consumes the rest of a statement Tandem does not keep: up to
// a ';' outside braces, or to the '}' closing the braces it opened.
func (p *parser) skipStatement() error {
	depth := 0
	for {
		t := p.lx.next()
		switch t.kind {
		case tSemi:
			if depth == 0 {
				return nil
			}
		case tLBrace:
			depth++
		case tRBrace:
			if depth == 0 {
				return p.expected(t, `";"`)
			}
			depth--
			if depth == 0 {
				return nil
			}
		case tEOF, tUnterminated, tBad:
			return p.expected(t, `";" or "}"`)
		}
	}
}

// lease parses "ADDRESS { statements }" after the keyword "lease", with the
// rules of ISC's parse_lease_declaration (server/confpars.c).
func (p *parser) lease(l *lease.Lease) error {
	at, err := p.word("an IPv4 address")
	if err != nil {
		return err
	}
	v, ok := parseIPv4(at.text)
	if !ok {
		return p.expected(at, "an IPv4 address")
	}
	l.IP = v
	p.ctxLease, p.ctxIP = true, v
	if t := p.lx.next(); t.kind != tLBrace {
		return p.expected(t, `"{"`)
	}
	var seenNext, seenRewind bool
	for {
		t := p.lx.next()
		if t.kind == tRBrace {
			break
		}
		if t.kind != tWord {
			return p.expected(t, `a lease statement or "}"`)
		}
		kw := t.text
		switch string(kw) {
		case "starts", "ends", "tstp", "tsfp", "atsfp", "cltt":
			v, err := p.date()
			if err != nil {
				return err
			}
			switch string(kw) {
			case "starts":
				l.Starts = v
			case "ends":
				l.Ends = v
			case "tstp":
				l.TSTP = v
			case "tsfp":
				l.TSFP = v
			case "atsfp":
				l.ATSFP = v
			case "cltt":
				l.CLTT = v
			}
		case "binding", "next", "rewind":
			if string(kw) != "binding" {
				if err := p.keyword("binding"); err != nil {
					return err
				}
			}
			if err := p.keyword("state"); err != nil {
				return err
			}
			s, flags, err := p.bindingState()
			if err != nil {
				return err
			}
			l.Flags |= flags
			// ISC: a missing next or rewind state is the binding state.
			switch string(kw) {
			case "binding":
				l.State = s
				if !seenNext {
					l.Next = s
				}
				if !seenRewind {
					l.Rewind = s
				}
			case "next":
				seenNext = true
				l.Next = s
			case "rewind":
				seenRewind = true
				l.Rewind = s
			}
		case "abandoned": // the form before binding states existed
			seenNext = true
			l.State, l.Next = lease.Abandoned, lease.Abandoned
			if !seenRewind {
				l.Rewind = lease.Abandoned
			}
			if err := p.semi(); err != nil {
				return err
			}
		case "reserved":
			l.Flags |= lease.FlagReserved
			if err := p.semi(); err != nil {
				return err
			}
		case "dynamic-bootp", "bootp":
			l.Flags |= lease.FlagBootp
			if err := p.semi(); err != nil {
				return err
			}
		case "hardware":
			if err := p.hardware(l); err != nil {
				return err
			}
		case "uid":
			id, err := p.stringOrHex("a client identifier", 1<<16)
			if err != nil {
				return err
			}
			l.ClientID = id
		case "client-hostname":
			t := p.lx.next()
			switch t.kind {
			case tString:
				s, ok := decodeString(t.text)
				if !ok {
					return p.errorf(t, "bad escape in string %s", describe(t))
				}
				l.Hostname = s
			case tWord:
				l.Hostname = string(t.text)
			default:
				return p.expected(t, "a hostname")
			}
			if err := p.semi(); err != nil {
				return err
			}
		case "set", "on", "option", "supersede", "billing", "class",
			"ddns-fwd-name", "ddns-rev-name":
			if err := p.skipStatement(); err != nil {
				return err
			}
			p.skipped(string(kw))
		default:
			return p.expected(t, `a lease statement or "}"`)
		}
	}
	return nil
}

// bindingState reads a state name and the statement's ';'. "reserved" and
// "bootp" are pre-failover states that ISC reads as active plus a flag.
func (p *parser) bindingState() (lease.BindingState, lease.Flags, error) {
	t, err := p.word("a binding state")
	if err != nil {
		return 0, 0, err
	}
	var s lease.BindingState
	var f lease.Flags
	switch string(t.text) {
	case "free":
		s = lease.Free
	case "active":
		s = lease.Active
	case "expired":
		s = lease.Expired
	case "released":
		s = lease.Released
	case "abandoned":
		s = lease.Abandoned
	case "reset":
		s = lease.Reset
	case "backup":
		s = lease.Backup
	case "reserved":
		s, f = lease.Active, lease.FlagReserved
	case "bootp":
		s, f = lease.Active, lease.FlagBootp
	default:
		return 0, 0, p.expected(t, "a binding state (free, active, expired, released, abandoned, reset, backup)")
	}
	return s, f, p.semi()
}

// hardware reads "TYPE [xx:xx:…];" (ISC's parse_hardware_param).
func (p *parser) hardware(l *lease.Lease) error {
	t, err := p.word("a hardware type")
	if err != nil {
		return err
	}
	var htype uint8
	switch string(t.text) {
	case "ethernet":
		htype = 1
	case "token-ring":
		htype = 6
	case "fddi":
		htype = 8
	case "infiniband":
		htype = 32
	default:
		n, ok := uint64(0), false
		if rest, found := bytes.CutPrefix(t.text, []byte("unknown-")); found {
			n, ok = parseUint(rest, 255)
		}
		if !ok {
			return p.expected(t, "a hardware type (ethernet, token-ring, fddi, infiniband, unknown-N)")
		}
		htype = uint8(n)
	}
	t = p.lx.next()
	var buf [lease.MaxHardwareLen]byte
	var addr []byte
	if t.kind == tWord {
		var ok bool
		addr, ok = parseHexColon(buf[:0], t.text)
		if !ok || len(addr) > lease.MaxHardwareLen {
			return p.expected(t, "a hardware address (up to 16 hex octets separated by colons)")
		}
		t = p.lx.next()
	}
	if t.kind != tSemi {
		return p.expected(t, `";"`)
	}
	l.SetHardware(htype, addr)
	return nil
}

// stringOrHex reads a quoted string or colon-separated hex octets, then ';'.
func (p *parser) stringOrHex(what string, maxLen int) (string, error) {
	t := p.lx.next()
	var s string
	switch t.kind {
	case tString:
		var ok bool
		if s, ok = decodeString(t.text); !ok {
			return "", p.errorf(t, "bad escape in string %s", describe(t))
		}
	case tWord:
		b, ok := parseHexColon(nil, t.text)
		if !ok {
			return "", p.expected(t, what)
		}
		s = string(b)
	case tSemi: // ISC warns about a zero-length uid and keeps none
		return "", nil
	default:
		return "", p.expected(t, what)
	}
	if len(s) > maxLen {
		return "", p.errorf(t, "%s longer than %d bytes", what, maxLen)
	}
	return s, p.semi()
}

// parseIPv4 parses a dotted quad of decimal numbers up to 255.
func parseIPv4(w []byte) (uint32, bool) {
	var ip uint32
	for i := range 4 {
		j := bytes.IndexByte(w, '.')
		part := w
		if i < 3 {
			if j < 0 {
				return 0, false
			}
			part, w = w[:j], w[j+1:]
		} else if j >= 0 {
			return 0, false
		}
		if len(part) > 3 {
			return 0, false
		}
		v, ok := parseUint(part, 255)
		if !ok {
			return 0, false
		}
		ip = ip<<8 | uint32(v)
	}
	return ip, true
}

// parseHexColon parses "0:1a:ff" (one or two hex digits per octet).
func parseHexColon(dst, w []byte) ([]byte, bool) {
	if len(w) == 0 {
		return nil, false
	}
	for len(w) > 0 {
		i := bytes.IndexByte(w, ':')
		part := w
		if i >= 0 {
			part, w = w[:i], w[i+1:]
			if len(w) == 0 {
				return nil, false // trailing colon
			}
		} else {
			w = nil
		}
		if len(part) == 0 || len(part) > 2 {
			return nil, false
		}
		var v byte
		for _, c := range part {
			h, ok := hexValue(c)
			if !ok {
				return nil, false
			}
			v = v<<4 | h
		}
		dst = append(dst, v)
	}
	return dst, true
}

// date reads a time and the statement's ';': "never", "epoch N", or
// "W YYYY/MM/DD HH:MM:SS [tzoff]" (ISC's parse_date_core; the weekday is
// ignored, the time is UTC).
func (p *parser) date() (int64, error) {
	t, err := p.word("a date")
	if err != nil {
		return 0, err
	}
	switch string(t.text) {
	case "never":
		return Never, p.semi()
	case "epoch":
		n, err := p.word("seconds since the epoch")
		if err != nil {
			return 0, err
		}
		v, ok := parseInt(n.text)
		if !ok {
			return 0, p.expected(n, "seconds since the epoch")
		}
		return v, p.semi()
	}
	if _, ok := parseUint(t.text, math.MaxInt32); !ok {
		return 0, p.expected(t, `a date ("W YYYY/MM/DD HH:MM:SS", "epoch N" or "never")`)
	}
	dt, err := p.word("a date YYYY/MM/DD")
	if err != nil {
		return 0, err
	}
	y, mo, d, ok := split3(dt.text, '/', 999999, 12, 31)
	if ok && y <= 1900 {
		y += 1900 // ISC reads years up to 1900 as years since 1900
	}
	if !ok || mo < 1 || d < 1 || int(d) > daysIn(int64(y), int(mo)) {
		return 0, p.expected(dt, "a date YYYY/MM/DD")
	}
	tm, err := p.word("a time HH:MM:SS")
	if err != nil {
		return 0, err
	}
	h, mi, s, ok := split3(tm.text, ':', 23, 59, 60)
	if !ok {
		return 0, p.expected(tm, "a time HH:MM:SS")
	}
	v := daysFromCivil(int64(y), int(mo), int(d))*86400 + int64(h)*3600 + int64(mi)*60 + int64(s)
	t = p.lx.next()
	if t.kind == tWord { // a time-zone offset in seconds, which ISC adds
		off, ok := parseInt(t.text)
		if !ok || off > 1e9 || off < -1e9 {
			return 0, p.expected(t, `a time-zone offset or ";"`)
		}
		v += off
		t = p.lx.next()
	}
	if t.kind != tSemi {
		return 0, p.expected(t, `";"`)
	}
	return v, nil
}

func daysIn(year int64, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// split3 parses "a<sep>b<sep>c" as three decimal numbers with upper bounds.
func split3(w []byte, sep byte, max1, max2, max3 uint64) (a, b, c uint64, ok bool) {
	i := bytes.IndexByte(w, sep)
	if i < 0 {
		return
	}
	j := bytes.IndexByte(w[i+1:], sep)
	if j < 0 {
		return
	}
	j += i + 1
	var ok1, ok2, ok3 bool
	a, ok1 = parseUint(w[:i], max1)
	b, ok2 = parseUint(w[i+1:j], max2)
	c, ok3 = parseUint(w[j+1:], max3)
	return a, b, c, ok1 && ok2 && ok3
}

// parseUint parses decimal digits into a value no larger than max.
func parseUint(w []byte, max uint64) (uint64, bool) {
	if len(w) == 0 || len(w) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range w {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v <= max
}

func parseInt(w []byte) (int64, bool) {
	v, err := strconv.ParseInt(string(w), 10, 64)
	return v, err == nil
}

// failoverState parses `peer NAME state { … }` after the keyword
// "failover" (ISC's parse_failover_state_declaration).
func (p *parser) failoverState() error {
	if err := p.keyword("peer"); err != nil {
		return err
	}
	t := p.lx.next()
	var name string
	switch t.kind {
	case tString:
		var ok bool
		if name, ok = decodeString(t.text); !ok {
			return p.errorf(t, "bad escape in string %s", describe(t))
		}
	case tWord:
		name = string(t.text)
	default:
		return p.expected(t, "a failover peer name")
	}
	p.ctx = "failover peer " + strconv.Quote(name)
	p.ctxLease = false
	if err := p.keyword("state"); err != nil {
		return err
	}
	if t := p.lx.next(); t.kind != tLBrace {
		return p.expected(t, `"{"`)
	}
	i, known := p.peerIndex[name]
	var r lease.FailoverStateRecord
	if known {
		r = p.c.Failover[i]
	}
	r.Peer = name
	for {
		t := p.lx.next()
		if t.kind == tRBrace {
			break
		}
		if t.kind != tWord {
			return p.expected(t, `"my state", "partner state", "mclt" or "}"`)
		}
		switch string(t.text) {
		case "my", "partner", "peer": // dhcpd.leases(5) says "peer state"
			if err := p.keyword("state"); err != nil {
				return err
			}
			st, err := p.word("a failover state")
			if err != nil {
				return err
			}
			name, ok := failoverStateName(st.text)
			if !ok {
				return p.expected(st, "a failover state (normal, communications-interrupted, partner-down, …)")
			}
			var at int64
			next := p.lx.next()
			switch {
			case next.kind == tSemi:
			case next.kind == tWord && string(next.text) == "at":
				if at, err = p.date(); err != nil {
					return err
				}
			default:
				return p.expected(next, `"at" or ";"`)
			}
			if string(t.text) == "my" {
				r.MyState, r.MyStateAt = name, at
			} else {
				r.PartnerState, r.PartnerAt = name, at
			}
		case "mclt":
			n, err := p.word("a number")
			if err != nil {
				return err
			}
			v, ok := parseUint(n.text, math.MaxUint32)
			if !ok {
				return p.expected(n, "a number of seconds")
			}
			r.MCLT = uint32(v)
			if err := p.semi(); err != nil {
				return err
			}
		default:
			return p.expected(t, `"my state", "partner state", "mclt" or "}"`)
		}
	}
	p.c.Records++
	if known {
		// Move the peer to the end: Failover is in order of last records.
		p.c.Failover = append(p.c.Failover[:i], p.c.Failover[i+1:]...)
		for n, f := range p.c.Failover[i:] {
			p.peerIndex[f.Peer] = i + n
		}
	}
	if p.peerIndex == nil {
		p.peerIndex = make(map[string]int)
	}
	p.peerIndex[name] = len(p.c.Failover)
	p.c.Failover = append(p.c.Failover, r)
	return nil
}

// The failover state names ISC reads and writes
// (server/failover.c dhcp_failover_state_name_print).
var failoverStates = []string{
	"unknown-state", "partner-down", "normal", "communications-interrupted",
	"conflict-done", "resolution-interrupted", "potential-conflict",
	"recover", "recover-wait", "recover-done", "shutdown", "paused", "startup",
}

func failoverStateName(w []byte) (string, bool) {
	for _, s := range failoverStates {
		if string(w) == s {
			return s, true
		}
	}
	return "", false
}

// tornTail reports whether the record that failed to parse at offset start
// is the torn end of an append: it never reaches its own end, and no line
// after it begins a record that parses. Anything else is damage in the
// middle of the file, and the records after it must not be lost silently.
//
// A real torn tail is one partial record, so the search for later records
// is short. Input made to be slow (many lines that each open a statement
// running to the end of the file) would make it quadratic; past a budget
// the answer is "not torn", the safe one.
func tornTail(data []byte, start int) bool {
	if recordComplete(data, start) {
		return false
	}
	const budget = 4 << 20 // bytes scanned by trial parses
	spent := 0
	for i := start; i < len(data); i++ {
		if data[i] != '\n' || i+1 >= len(data) {
			continue
		}
		c := data[i+1]
		if c < 'a' || c > 'z' {
			continue
		}
		trial := newParser(data)
		trial.lx.pos = i + 1
		if t := trial.lx.next(); trial.record(t) == nil {
			return false
		}
		if spent += trial.lx.pos - (i + 1); spent > budget {
			return false
		}
	}
	return true
}

// recordComplete reports whether the statement starting at start reaches
// its end: a ';' outside braces or the '}' closing its braces.
func recordComplete(data []byte, start int) bool {
	lx := lexer{data: data, pos: start, line: 1}
	depth := 0
	for {
		switch lx.next().kind {
		case tEOF, tUnterminated:
			return false
		case tSemi:
			if depth == 0 {
				return true
			}
		case tLBrace:
			depth++
		case tRBrace:
			depth--
			if depth <= 0 {
				return true
			}
		}
	}
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimRight(b, " \t\r")
	if len(b) > 80 {
		b = append(b[:77:77], "..."...)
	}
	return string(b)
}
