package config

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxIncludeDepth bounds nested includes; real configurations use one or
// two levels, and the bound keeps a hostile readInclude from recursing
// without end.
const maxIncludeDepth = 32

// maxNesting bounds nested blocks (groups in groups …) for the same reason.
const maxNesting = 64

// ParseFile reads a dhcpd.conf, following its include statements, and
// returns the validated configuration. Any error is a *Error.
func ParseFile(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Pos: Pos{File: path}, Msg: fmt.Sprintf("cannot read configuration: %v", err)}
	}
	return Parse(path, src, os.ReadFile)
}

// Parse parses src as the dhcpd.conf called name. readInclude reads the
// files named by include statements; a relative include path is taken
// relative to the directory of the file that includes it, and the joined
// path is what readInclude receives. readInclude may be nil when src has no
// includes. Any error is a *Error naming file, line and statement.
func Parse(name string, src []byte, readInclude func(path string) ([]byte, error)) (cfg *Config, err error) {
	st := newState(readInclude)
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bailout)
			if !ok {
				panic(r)
			}
			cfg, err = nil, b.err
		}
	}()
	st.parseFile(name, src, st.global)
	st.resolve()
	return st.cfg, nil
}

// bailout carries the first error out of the recursive-descent parser.
// Parse recovers only this type, so genuine bugs still crash loudly.
type bailout struct{ err *Error }

func fail(pos Pos, stmt, format string, args ...any) {
	panic(bailout{&Error{Pos: pos, Statement: stmt, Msg: fmt.Sprintf(format, args...)}})
}

type scopeKind int

const (
	scopeGlobal scopeKind = iota
	scopeShared
	scopeSubnet
	scopePool
	scopeGroup
	scopeHost
)

func (k scopeKind) String() string {
	return [...]string{"global scope", "shared-network", "subnet", "pool", "group", "host"}[k]
}

// scope is one {}-level of the file. Parameters are collected as setters
// and applied after the whole file is read, because in ISC dhcpd a
// parameter applies to its whole scope wherever it is written in it (the
// statements are evaluated per request, not while parsing).
type scope struct {
	kind   scopeKind
	parent *scope
	pos    Pos
	depth  int
	sets   []func(*Params)

	// auth is ISC's group->authoritative flag. Unlike other parameters it
	// is copied into a child scope when the child is declared (clone_group
	// in common/memory.c), so "authoritative;" only affects scopes that
	// come after it. Tandem keeps that behaviour.
	auth bool

	peerRef    string // "failover peer NAME;" written in this scope
	peerRefPos Pos
	noPeer     bool // "no failover peer;" (pools)

	allow, deny []permit // pool permit lists

	shared *SharedNetwork
	subnet *Subnet
	pool   *Pool
	host   *Host
	// ranges written directly in a subnet, outside any pool
	ranges []Range

	resolved *Params
}

func (s *scope) enclosing(kind scopeKind) *scope {
	for p := s; p != nil; p = p.parent {
		if p.kind == kind {
			return p
		}
	}
	return nil
}

type peerRef struct {
	name string
	pos  Pos
}

type state struct {
	readInclude func(string) ([]byte, error)
	includes    []string // include chain, for cycle detection

	cfg    *Config
	global *scope
	opts   *optionTable

	sharedScopes []*scope
	subnetScopes []*scope
	subnetScope  map[*Subnet]*scope
	poolScopes   []*scope // explicit pools in file order
	implicit     []*Pool  // pools made of ranges outside pool blocks
	hostScopes   []*scope

	peers     map[string]*FailoverPeer
	peerRefs  []peerRef
	keys      map[string]*Key
	hostNames map[string]Pos
	omapiKey  token
}

func newState(readInclude func(string) ([]byte, error)) *state {
	return &state{
		readInclude: readInclude,
		cfg:         &Config{},
		global:      &scope{kind: scopeGlobal},
		opts:        newOptionTable(),
		peers:       map[string]*FailoverPeer{},
		keys:        map[string]*Key{},
		hostNames:   map[string]Pos{},
		subnetScope: map[*Subnet]*scope{},
	}
}

func (st *state) warn(pos Pos, stmt, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if stmt != "" {
		msg = stmt + ": " + msg
	}
	st.cfg.Warnings = append(st.cfg.Warnings, pos.String()+": "+msg)
}

func (st *state) parseFile(name string, src []byte, s *scope) {
	toks, err := lex(name, src)
	if err != nil {
		panic(bailout{err.(*Error)})
	}
	st.includes = append(st.includes, filepath.Clean(name))
	p := &parser{st: st, toks: toks}
	for p.peek().Kind != tokEOF {
		if t := p.peek(); t.isPunct('}') {
			fail(t.Pos, "", "unexpected }: no block is open in this file")
		}
		p.statement(s)
	}
	st.includes = st.includes[:len(st.includes)-1]
}

type parser struct {
	st   *state
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.Kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) semi(stmt string) {
	t := p.next()
	if !t.isPunct(';') {
		fail(t.Pos, stmt, "expected ; but found %s", t)
	}
}

func (p *parser) expect(c byte, stmt string) token {
	t := p.next()
	if !t.isPunct(c) {
		fail(t.Pos, stmt, "expected %c but found %s", c, t)
	}
	return t
}

func (p *parser) keyword(kw, stmt string) {
	t := p.next()
	if !t.is(kw) {
		fail(t.Pos, stmt, "expected %q but found %s", kw, t)
	}
}

// dotted reads word('.'word)* and an optional trailing dot: a host name,
// an IP address or a dotted key algorithm.
func (p *parser) dotted(stmt, what string) (string, token) {
	first := p.next()
	if first.Kind != tokWord {
		fail(first.Pos, stmt, "expected %s but found %s", what, first)
	}
	var b strings.Builder
	b.WriteString(first.Text)
	for p.peek().isPunct('.') {
		if p.peekAt(1).Kind == tokWord {
			p.next()
			b.WriteByte('.')
			b.WriteString(p.next().Text)
			continue
		}
		// A trailing dot ends a fully qualified name.
		p.next()
		b.WriteByte('.')
		break
	}
	return b.String(), first
}

// name reads a quoted string or a dotted name.
func (p *parser) name(stmt, what string) (string, token) {
	if t := p.peek(); t.Kind == tokString {
		p.next()
		if t.Text == "" {
			fail(t.Pos, stmt, "empty %s", what)
		}
		return t.Text, t
	}
	return p.dotted(stmt, what)
}

// ip reads a dotted-quad IPv4 address. ISC also accepts host names in many
// places and resolves them at startup; Tandem insists on addresses so that
// the configuration means the same thing whenever it is read.
func (p *parser) ip(stmt, what string) netip.Addr {
	s, t := p.dotted(stmt, what)
	a, ok := parseIPv4(s)
	if !ok {
		if looksNumeric(s) {
			fail(t.Pos, stmt, "%q is not a valid IPv4 address", s)
		}
		fail(t.Pos, stmt, "expected %s but found %q (Tandem does not resolve host names; write the IPv4 address)", what, s)
	}
	return a
}

func looksNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

func parseIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, part := range parts {
		if part == "" || len(part) > 3 {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(part, 10, 8)
		if err != nil {
			return netip.Addr{}, false
		}
		b[i] = byte(v)
	}
	return netip.AddrFrom4(b), true
}

// hexList reads colon-separated hex bytes ("00:1a:2b", "1:0:c"), which ISC
// allows to span whitespace and lines.
func (p *parser) hexList(stmt, what string) []byte {
	var out []byte
	for {
		t := p.next()
		if t.Kind != tokWord {
			fail(t.Pos, stmt, "expected %s (colon-separated hex bytes) but found %s", what, t)
		}
		v, err := strconv.ParseUint(t.Text, 16, 8)
		if err != nil {
			fail(t.Pos, stmt, "%q is not a hex byte", t.Text)
		}
		out = append(out, byte(v))
		if !p.peek().isPunct(':') {
			return out
		}
		p.next()
	}
}

// iscNumber converts a number the way ISC's convert_num does: "0x" starts
// hex, a leading 0 octal, anything else decimal. Like ISC it does not
// distinguish signed from unsigned fields: any value from -2^(bits-1) to
// 2^bits-1 is accepted and stored in two's complement, so that the common
// "array of integer 8" definitions holding 0..255 keep working.
func iscNumber(s string, bits int) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	base := 10
	switch {
	case strings.HasPrefix(digits, "0x") || strings.HasPrefix(digits, "0X"):
		base, digits = 16, digits[2:]
	case len(digits) > 1 && digits[0] == '0':
		base, digits = 8, digits[1:]
	}
	u, err := strconv.ParseUint(digits, base, 64)
	if err != nil || digits == "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if neg {
		if u > 1<<(bits-1) {
			return 0, fmt.Errorf("%s does not fit in %d bits", s, bits)
		}
		return -int64(u), nil
	}
	if u > uint64(1)<<bits-1 {
		return 0, fmt.Errorf("%s does not fit in %d bits", s, bits)
	}
	return int64(u), nil
}

func (p *parser) number(stmt, what string, bits int) int64 {
	t := p.next()
	if t.Kind != tokWord {
		fail(t.Pos, stmt, "expected %s but found %s", what, t)
	}
	v, err := iscNumber(t.Text, bits)
	if err != nil {
		fail(t.Pos, stmt, "%v", err)
	}
	return v
}

// decimal reads a plain decimal number, as ISC's atoi-based failover
// parameters expect.
func (p *parser) decimal(stmt, what string, max uint64) uint64 {
	t := p.next()
	if t.Kind != tokWord {
		fail(t.Pos, stmt, "expected %s but found %s", what, t)
	}
	v, err := strconv.ParseUint(t.Text, 10, 64)
	if err != nil {
		fail(t.Pos, stmt, "expected %s but found %q", what, t.Text)
	}
	if v > max {
		fail(t.Pos, stmt, "%d is too large for %s (at most %d)", v, what, max)
	}
	return v
}

// block parses statements up to the closing brace of a block whose opening
// brace has just been read.
func (p *parser) block(s *scope, stmt string, open token) {
	for {
		t := p.peek()
		if t.isPunct('}') {
			p.next()
			return
		}
		if t.Kind == tokEOF {
			fail(open.Pos, stmt, "block is not closed: missing } before end of %s", t.Pos.File)
		}
		p.statement(s)
	}
}

func (p *parser) child(s *scope, kind scopeKind, pos Pos) *scope {
	c := &scope{kind: kind, parent: s, pos: pos, auth: s.auth, depth: s.depth + 1}
	if c.depth > maxNesting {
		fail(pos, kind.String(), "blocks nested more than %d deep", maxNesting)
	}
	return c
}

// unsupported are statements of ISC dhcpd that Tandem does not implement.
// They are errors, never silently skipped: ignoring a class or an "if"
// would hand out different answers than the operator wrote.
var unsupported = map[string]string{
	"class":                "client classes are not supported by Tandem",
	"subclass":             "client classes are not supported by Tandem",
	"vendor-class":         "client classes are not supported by Tandem",
	"user-class":           "client classes are not supported by Tandem",
	"match":                "client classes are not supported by Tandem",
	"spawn":                "client classes are not supported by Tandem",
	"add":                  "client classes are not supported by Tandem",
	"if":                   "conditional statements are not supported by Tandem",
	"elsif":                "conditional statements are not supported by Tandem",
	"else":                 "conditional statements are not supported by Tandem",
	"switch":               "conditional statements are not supported by Tandem",
	"case":                 "conditional statements are not supported by Tandem",
	"on":                   "event statements (on commit/release/expiry) are not supported by Tandem",
	"set":                  "variables are not supported by Tandem",
	"unset":                "variables are not supported by Tandem",
	"define":               "functions are not supported by Tandem",
	"eval":                 "expressions are not supported by Tandem",
	"execute":              "execute is not supported by Tandem",
	"log":                  "log statements are not supported by Tandem",
	"return":               "expressions are not supported by Tandem",
	"break":                "conditional statements are not supported by Tandem",
	"fetch":                "expressions are not supported by Tandem",
	"default":              "\"default\" option statements are not supported by Tandem; use option",
	"append":               "\"append\" option statements are not supported by Tandem; use option",
	"prepend":              "\"prepend\" option statements are not supported by Tandem; use option",
	"send":                 "\"send\" is a dhclient statement",
	"parse-vendor-option":  "vendor option parsing is not supported by Tandem",
	"zone":                 "Tandem does no DNS updates",
	"lease":                "lease declarations belong in dhcpd.leases, not dhcpd.conf",
	"authoring-byte-order": "authoring-byte-order belongs in dhcpd.leases",
	"server-duid":          "DHCPv6 is not supported by Tandem",
	"subnet6":              "DHCPv6 is not supported by Tandem",
	"range6":               "DHCPv6 is not supported by Tandem",
	"prefix6":              "DHCPv6 is not supported by Tandem",
	"pool6":                "DHCPv6 is not supported by Tandem",
	"fixed-address6":       "DHCPv6 is not supported by Tandem",
	"fixed-prefix6":        "DHCPv6 is not supported by Tandem",
	"host-identifier":      "host-identifier is not supported by Tandem; use hardware or option dhcp-client-identifier",
	"dynamic":              "OMAPI-created host declarations are not supported in dhcpd.conf",
	"deleted":              "OMAPI-created host declarations are not supported in dhcpd.conf",
	"static":               "OMAPI-created group declarations are not supported in dhcpd.conf",
}

func (p *parser) statement(s *scope) {
	t := p.next()
	if t.Kind != tokWord {
		if t.isPunct(';') {
			fail(t.Pos, "", "unexpected ; (empty statement)")
		}
		fail(t.Pos, "", "expected a statement but found %s", t)
	}
	kw := strings.ToLower(t.Text)
	switch kw {
	case "include":
		p.include(s, t)
	case "shared-network":
		p.sharedNetwork(s, t)
	case "subnet":
		p.subnet(s, t)
	case "pool":
		p.pool(s, t)
	case "range":
		p.rangeStmt(s, t)
	case "host":
		p.host(s, t)
	case "group":
		p.group(s, t)
	case "hardware":
		p.hardware(s, t)
	case "fixed-address":
		p.fixedAddress(s, t)
	case "uid":
		h := p.inHost(s, t, "uid")
		var id []byte
		if n := p.peek(); n.Kind == tokString {
			p.next()
			id = []byte(n.Text)
		} else {
			id = p.hexList("uid", "a client identifier")
		}
		p.semi("uid")
		p.setClientID(h, id, t, "uid")
	case "option":
		p.option(s, t, "option")
	case "supersede":
		p.option(s, t, "supersede")
	case "server-identifier":
		a := p.ip("server-identifier", "an IPv4 address")
		p.semi("server-identifier")
		s.sets = append(s.sets, func(pp *Params) { pp.ServerIdentifier = a })
	case "authoritative":
		p.semi("authoritative")
		p.authoritative(s, t, true)
	case "not":
		p.keyword("authoritative", "not authoritative")
		p.semi("not authoritative")
		p.authoritative(s, t, false)
	case "allow", "deny", "ignore":
		if s.kind == scopePool && kw != "ignore" {
			p.permit(s, t, kw == "allow")
		} else {
			p.allowDeny(s, t, kw == "allow")
		}
	case "failover":
		p.failover(s, t)
	case "no":
		stmt := "no failover peer"
		p.keyword("failover", stmt)
		p.keyword("peer", stmt)
		p.semi(stmt)
		if s.kind != scopePool {
			fail(t.Pos, stmt, "allowed only in a pool")
		}
		s.noPeer = true
	case "key":
		p.key(s, t)
	case "interface":
		stmt := "interface"
		if s.kind != scopeShared && s.kind != scopeSubnet {
			fail(t.Pos, stmt, "allowed only in a shared-network or subnet")
		}
		p.name(stmt, "an interface name")
		p.semi(stmt)
		p.st.warn(t.Pos, stmt, "ignored: Tandem chooses interfaces from its command line")
	case "db-time-format":
		stmt := "db-time-format"
		v := p.next()
		if !v.is("default") && !v.is("local") {
			fail(v.Pos, stmt, "expected default or local but found %s", v)
		}
		p.semi(stmt)
		p.st.warn(t.Pos, stmt, "ignored: Tandem writes lease times in UTC, as db-time-format default does")
	default:
		if sp, ok := serverParams[kw]; ok {
			p.serverParam(s, t, kw, sp)
			return
		}
		if why, ok := unsupported[kw]; ok {
			fail(t.Pos, kw, "%s", why)
		}
		fail(t.Pos, t.Text, "unknown statement")
	}
}

func (p *parser) include(s *scope, t token) {
	f := p.next()
	if f.Kind != tokString {
		fail(f.Pos, "include", "expected a quoted file name but found %s", f)
	}
	p.semi("include")
	path := f.Text
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(t.Pos.File), path)
	}
	clean := filepath.Clean(path)
	for i, inc := range p.st.includes {
		if inc == clean {
			chain := append(append([]string{}, p.st.includes[i:]...), clean)
			fail(t.Pos, "include", "include cycle: %s", strings.Join(chain, " -> "))
		}
	}
	if len(p.st.includes) >= maxIncludeDepth {
		fail(t.Pos, "include", "includes nested more than %d deep", maxIncludeDepth)
	}
	if p.st.readInclude == nil {
		fail(t.Pos, "include", "cannot read %s: no include reader", path)
	}
	src, err := p.st.readInclude(path)
	if err != nil {
		fail(t.Pos, "include", "cannot read %s: %v", path, err)
	}
	p.st.parseFile(path, src, s)
}

func (p *parser) sharedNetwork(s *scope, t token) {
	stmt := "shared-network"
	if s.kind != scopeGlobal && s.kind != scopeGroup || s.enclosing(scopeShared) != nil || s.enclosing(scopeSubnet) != nil {
		fail(t.Pos, stmt, "not allowed inside a %s", s.kind)
	}
	name, _ := p.name(stmt, "a shared-network name")
	open := p.expect('{', stmt)
	c := p.child(s, scopeShared, t.Pos)
	c.shared = &SharedNetwork{Name: name, Pos: t.Pos}
	p.st.sharedScopes = append(p.st.sharedScopes, c)
	p.block(c, stmt, open)
}

func (p *parser) subnet(s *scope, t token) {
	stmt := "subnet"
	switch s.kind {
	case scopeGlobal, scopeGroup, scopeShared:
	default:
		fail(t.Pos, stmt, "not allowed inside a %s", s.kind)
	}
	if s.enclosing(scopeSubnet) != nil {
		fail(t.Pos, stmt, "not allowed inside a subnet")
	}
	net := p.ip(stmt, "the subnet number")
	p.keyword("netmask", stmt)
	maskTok := p.peek()
	mask := p.ip(stmt, "the netmask")
	m := mask.As4()
	maskBits := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	ones := 0
	for ones < 32 && maskBits&(1<<(31-ones)) != 0 {
		ones++
	}
	if ones < 32 && maskBits<<ones != 0 {
		fail(maskTok.Pos, stmt, "netmask %s is not contiguous", mask)
	}
	prefix := netip.PrefixFrom(net, ones)
	if prefix.Masked().Addr() != net {
		fail(t.Pos, stmt, "subnet %s netmask %s: bad subnet number/mask combination (host bits set)", net, mask)
	}
	open := p.expect('{', stmt)
	c := p.child(s, scopeSubnet, t.Pos)
	c.subnet = &Subnet{Prefix: prefix, Pos: t.Pos}
	if sh := s.enclosing(scopeShared); sh != nil {
		c.subnet.SharedNetwork = sh.shared.Name
		sh.shared.Subnets = append(sh.shared.Subnets, c.subnet)
	}
	p.st.subnetScopes = append(p.st.subnetScopes, c)
	p.block(c, stmt, open)
}

func (p *parser) pool(s *scope, t token) {
	stmt := "pool"
	if s.kind != scopeSubnet && s.kind != scopeShared {
		fail(t.Pos, stmt, "a pool must be declared directly inside a subnet or shared-network, not in a %s", s.kind)
	}
	open := p.expect('{', stmt)
	c := p.child(s, scopePool, t.Pos)
	c.pool = &Pool{Pos: t.Pos}
	p.st.poolScopes = append(p.st.poolScopes, c)
	p.block(c, stmt, open)
	if len(c.pool.Ranges) == 0 {
		fail(t.Pos, stmt, "pool declaration with no address range")
	}
}

func (p *parser) rangeStmt(s *scope, t token) {
	stmt := "range"
	if s.kind != scopeSubnet && s.kind != scopePool {
		fail(t.Pos, stmt, "a range must be declared inside a subnet or pool, not in a %s", s.kind)
	}
	r := Range{Pos: t.Pos}
	if p.peek().is("dynamic-bootp") {
		p.next()
		r.DynamicBootp = true
	}
	r.Start = p.ip(stmt, "the first address of the range")
	r.End = r.Start
	if !p.peek().isPunct(';') {
		r.End = p.ip(stmt, "the last address of the range")
	}
	p.semi(stmt)
	// dhcpd.conf(5) allows a range to be written high-to-low.
	if r.End.Less(r.Start) {
		r.Start, r.End = r.End, r.Start
	}
	if s.kind == scopePool {
		s.pool.Ranges = append(s.pool.Ranges, r)
	} else {
		s.ranges = append(s.ranges, r)
	}
}

func (p *parser) host(s *scope, t token) {
	stmt := "host"
	if s.kind == scopeHost {
		fail(t.Pos, stmt, "host declarations cannot be nested")
	}
	name, _ := p.name(stmt, "a host name")
	// Host names are case-sensitive, as in ISC's host_name_hash.
	if prev, ok := p.st.hostNames[name]; ok {
		fail(t.Pos, stmt, "host %s already declared at %s", name, prev)
	}
	p.st.hostNames[name] = t.Pos
	open := p.expect('{', stmt)
	c := p.child(s, scopeHost, t.Pos)
	c.host = &Host{Name: name, Pos: t.Pos}
	p.st.hostScopes = append(p.st.hostScopes, c)
	p.block(c, stmt, open)
}

func (p *parser) group(s *scope, t token) {
	stmt := "group"
	if s.kind == scopeHost {
		fail(t.Pos, stmt, "group declarations are not allowed in a host (named group references are not supported by Tandem)")
	}
	// A group may carry a name (for OMAPI); it is only a scope here.
	if n := p.peek(); n.Kind == tokString || n.Kind == tokWord {
		p.name(stmt, "a group name")
	}
	open := p.expect('{', stmt)
	c := p.child(s, scopeGroup, t.Pos)
	p.block(c, stmt, open)
}

func (p *parser) inHost(s *scope, t token, stmt string) *Host {
	if s.kind != scopeHost {
		fail(t.Pos, stmt, "allowed only in a host declaration")
	}
	return s.host
}

// hardwareTypes are the link types ISC's parse_hardware_param knows, with
// their ARP hardware type numbers (RFC 1700 / IANA).
var hardwareTypes = map[string]uint8{
	"ethernet":   1,
	"token-ring": 6,
	"fddi":       8,
	"infiniband": 32,
}

func (p *parser) hardware(s *scope, t token) {
	stmt := "hardware"
	h := p.inHost(s, t, stmt)
	if h.HardwareAddr != nil {
		fail(t.Pos, stmt, "host %s already has a hardware address", h.Name)
	}
	ty := p.next()
	code, ok := hardwareTypes[strings.ToLower(ty.Text)]
	if ty.Kind != tokWord || !ok {
		fail(ty.Pos, stmt, "expected ethernet, token-ring, fddi or infiniband but found %s", ty)
	}
	addr := p.hexList(stmt, "a hardware address")
	if len(addr) > 16 {
		fail(ty.Pos, stmt, "hardware address is %d bytes long; DHCP allows at most 16", len(addr))
	}
	p.semi(stmt)
	h.HardwareType = code
	h.HardwareAddr = addr
}

func (p *parser) fixedAddress(s *scope, t token) {
	stmt := "fixed-address"
	h := p.inHost(s, t, stmt)
	if h.FixedAddresses != nil {
		fail(t.Pos, stmt, "only one fixed-address statement per host")
	}
	for {
		h.FixedAddresses = append(h.FixedAddresses, p.ip(stmt, "an IPv4 address"))
		if !p.peek().isPunct(',') {
			break
		}
		p.next()
	}
	p.semi(stmt)
}

func (p *parser) setClientID(h *Host, id []byte, t token, stmt string) {
	if h.ClientID != nil {
		fail(t.Pos, stmt, "host %s already has a client identifier", h.Name)
	}
	if len(id) == 0 {
		fail(t.Pos, stmt, "empty client identifier")
	}
	h.ClientID = id
}

func (p *parser) authoritative(s *scope, t token, v bool) {
	stmt := "authoritative"
	if !v {
		stmt = "not authoritative"
	}
	if s.kind == scopeHost {
		fail(t.Pos, stmt, "authority makes no sense in a host declaration")
	}
	s.auth = v
}

// allowDeny handles allow/deny/ignore outside pools, where they set flags
// of the scope (dhcpd.conf(5) "ALLOW DENY AND IGNORE IN SCOPE").
func (p *parser) allowDeny(s *scope, t token, allow bool) {
	k := p.next()
	stmt := strings.ToLower(t.Text) + " " + k.Text
	if k.Kind != tokWord {
		fail(k.Pos, strings.ToLower(t.Text), "expected unknown-clients, bootp, booting, dynamic-bootp, duplicates, declines, client-updates or leasequery but found %s", k)
	}
	var set func(*Params)
	switch strings.ToLower(k.Text) {
	case "unknown-clients":
		set = func(pp *Params) { pp.AllowUnknownClients = allow }
	case "bootp":
		set = func(pp *Params) { pp.AllowBootp = allow }
	case "booting":
		set = func(pp *Params) { pp.AllowBooting = allow }
	case "dynamic-bootp":
		set = func(pp *Params) { pp.AllowDynamicBootp = allow }
	case "duplicates", "declines", "client-updates", "leasequery":
		p.semi(stmt)
		p.st.warn(t.Pos, stmt, "accepted but has no effect in Tandem")
		return
	case "known-clients", "dynamic", "members", "all", "known", "unknown":
		fail(k.Pos, stmt, "this form of %s is allowed only inside a pool", strings.ToLower(t.Text))
	default:
		fail(k.Pos, strings.ToLower(t.Text), "expected unknown-clients, bootp, booting, dynamic-bootp, duplicates, declines, client-updates or leasequery but found %s", k)
	}
	p.semi(stmt)
	s.sets = append(s.sets, set)
}

// permit is an entry of a pool's allow or deny list
// (dhcpd.conf(5) "ALLOW AND DENY WITHIN POOL DECLARATIONS").
type permit int

const (
	permitKnown permit = iota + 1
	permitUnknown
	permitAll
	permitDynamicBootp
)

func (p *parser) permit(s *scope, t token, allow bool) {
	verb := strings.ToLower(t.Text)
	k := p.next()
	if k.Kind != tokWord {
		fail(k.Pos, verb, "expected a permit (known-clients, unknown-clients, all clients, dynamic bootp clients) but found %s", k)
	}
	stmt := verb + " " + strings.ToLower(k.Text)
	clients := func() {
		c := p.next()
		if !c.is("clients") {
			fail(c.Pos, stmt, "expected \"clients\" but found %s", c)
		}
	}
	var pm permit
	switch strings.ToLower(k.Text) {
	case "known-clients":
		pm = permitKnown
	case "unknown-clients":
		pm = permitUnknown
	case "known":
		clients()
		pm = permitKnown
	case "unknown":
		clients()
		pm = permitUnknown
	case "all":
		clients()
		pm = permitAll
	case "dynamic":
		b := p.next()
		if !b.is("bootp") {
			fail(b.Pos, stmt, "expected \"bootp\" but found %s", b)
		}
		clients()
		pm = permitDynamicBootp
	case "members":
		fail(k.Pos, stmt, "client classes are not supported by Tandem")
	case "authenticated", "unauthenticated":
		fail(k.Pos, stmt, "client authentication is not supported (ISC dhcpd does not implement it either)")
	case "after":
		fail(k.Pos, stmt, "time-limited pools are not supported by Tandem")
	case "bootp", "booting", "duplicates", "declines", "client-updates", "leasequery", "dynamic-bootp":
		fail(k.Pos, stmt, "not a pool permit; inside a pool allow and deny take known-clients, unknown-clients, all clients or dynamic bootp clients")
	default:
		fail(k.Pos, verb, "expected a permit (known-clients, unknown-clients, all clients, dynamic bootp clients) but found %s", k)
	}
	p.semi(stmt)
	if allow {
		s.allow = append(s.allow, pm)
	} else {
		s.deny = append(s.deny, pm)
	}
}

func (p *parser) key(s *scope, t token) {
	stmt := "key"
	name, _ := p.name(stmt, "a key name")
	if prev, ok := p.st.keys[name]; ok {
		fail(t.Pos, stmt, "key %s already declared at %s", name, prev.Pos)
	}
	open := p.expect('{', stmt)
	k := &Key{Name: name, Pos: t.Pos}
	for {
		n := p.next()
		switch {
		case n.isPunct('}'):
			if k.Algorithm == "" {
				fail(t.Pos, stmt, "key %s has no algorithm", name)
			}
			if k.Secret == nil {
				fail(t.Pos, stmt, "key %s has no secret", name)
			}
			// ISC accepts an optional semicolon after a key block.
			if p.peek().isPunct(';') {
				p.next()
			}
			p.st.keys[name] = k
			p.st.cfg.Keys = append(p.st.cfg.Keys, k)
			return
		case n.Kind == tokEOF:
			fail(open.Pos, stmt, "block is not closed: missing } before end of %s", n.Pos.File)
		case n.is("algorithm"):
			if k.Algorithm != "" {
				fail(n.Pos, "key algorithm", "key %s has more than one algorithm", name)
			}
			alg, _ := p.dotted("key algorithm", "an algorithm name")
			p.semi("key algorithm")
			// ISC stores the algorithm as a domain name, adding
			// ".SIG-ALG.REG.INT." to a bare name (common/parse.c
			// parse_key); OMAPI compares it case-insensitively.
			if !strings.Contains(alg, ".") {
				alg += ".SIG-ALG.REG.INT."
			}
			if !strings.HasSuffix(alg, ".") {
				alg += "."
			}
			k.Algorithm = alg
		case n.is("secret"):
			if k.Secret != nil {
				fail(n.Pos, "key secret", "key %s has more than one secret", name)
			}
			k.Secret = p.base64("key secret")
		default:
			fail(n.Pos, stmt, "expected algorithm, secret or } but found %s", n)
		}
	}
}

// base64 reads a base64 secret up to the semicolon. A secret may be
// quoted or bare; bare, ISC's lexer splits it at '+', '/' and '=', so the
// pieces are joined again (as ISC's parse_base64 does).
func (p *parser) base64(stmt string) []byte {
	var b strings.Builder
	first := p.peek()
	for {
		t := p.peek()
		if t.isPunct(';') || t.Kind == tokEOF || t.isPunct('}') {
			break
		}
		p.next()
		b.WriteString(t.Text)
	}
	p.semi(stmt)
	s := b.String()
	if s == "" {
		fail(first.Pos, stmt, "empty secret")
	}
	secret, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		secret, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil || len(secret) == 0 {
		fail(first.Pos, stmt, "secret is not valid base64")
	}
	return secret
}
