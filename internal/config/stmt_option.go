package config

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// option parses "option NAME VALUE;", "supersede NAME VALUE;" and
// "option NAME code N = TYPE;".
func (p *parser) option(s *scope, t token, verb string) {
	if n := p.peek(); n.is("space") {
		fail(n.Pos, "option space", "option spaces are not supported by Tandem")
	}
	nt := p.next()
	if nt.Kind != tokWord {
		fail(nt.Pos, verb, "expected an option name but found %s", nt)
	}
	name := strings.ToLower(nt.Text)
	if p.peek().isPunct('.') && p.peekAt(1).Kind == tokWord {
		// "option dhcp.routers …" names the option space explicitly;
		// only the DHCPv4 space is supported.
		p.next()
		opt := p.next()
		if name != "dhcp" {
			fail(nt.Pos, verb+" "+nt.Text+"."+opt.Text, "option space %s is not supported by Tandem", nt.Text)
		}
		name = strings.ToLower(opt.Text)
	}
	stmt := verb + " " + name
	if p.peek().is("code") {
		if verb != "option" {
			fail(nt.Pos, stmt, "expected a value but found \"code\"")
		}
		p.defineOption(s, t, name, stmt)
		return
	}
	if n := p.peek(); n.isPunct('=') {
		fail(n.Pos, stmt, "option expressions are not supported by Tandem; write the value itself")
	}
	switch name {
	case "dhcp-server-identifier":
		a := p.ip(stmt, "an IPv4 address")
		p.semi(stmt)
		s.sets = append(s.sets, func(pp *Params) { pp.ServerIdentifier = a })
		return
	case "dhcp-client-identifier":
		h := p.inHost(s, t, stmt)
		id := p.value(stmt, typ(false, fBytes))
		p.semi(stmt)
		p.setClientID(h, id, t, stmt)
		return
	case "dhcp-lease-time":
		// ISC dhcpd replaces this option with the lease time it
		// computes, so a configured value never reaches a client.
		p.value(stmt, typ(false, fUint32))
		p.semi(stmt)
		p.st.warn(t.Pos, stmt, "ignored, as in ISC dhcpd: the lease time comes from default-lease-time, max-lease-time and min-lease-time")
		return
	}
	if why, ok := serverSetOptions[name]; ok {
		fail(nt.Pos, stmt, "cannot be set in the configuration: %s", why)
	}
	def := p.st.opts.lookup(name)
	if def == nil {
		fail(nt.Pos, stmt, "unknown option %s", nt.Text)
	}
	data := p.value(stmt, def.typ)
	p.semi(stmt)
	opt := Option{Code: def.code, Name: def.name, Data: data}
	s.sets = append(s.sets, func(pp *Params) { setOption(pp, opt) })
}

// setOption sets o in pp, replacing a value with the same code in place.
func setOption(pp *Params, o Option) {
	for i := range pp.Options {
		if pp.Options[i].Code == o.Code {
			pp.Options[i] = o
			return
		}
	}
	pp.Options = append(pp.Options, o)
}

// defineOption parses "code N = TYPE;" after "option NAME" (dhcp-options(5)
// "DEFINING NEW OPTIONS").
func (p *parser) defineOption(s *scope, t token, name, stmt string) {
	if s.kind != scopeGlobal {
		fail(t.Pos, stmt, "option definitions are allowed only at global scope")
	}
	p.next() // "code"
	code := p.number(stmt, "an option code", 8)
	if code < 1 || code > 254 {
		fail(t.Pos, stmt, "option code %d is outside 1..254", code)
	}
	p.expect('=', stmt)
	var ty optType
	if p.peek().is("array") {
		p.next()
		p.keyword("of", stmt)
		ty.array = true
	}
	if p.peek().isPunct('{') {
		p.next()
		for {
			ty.fields = append(ty.fields, p.fieldType(stmt))
			n := p.next()
			if n.isPunct('}') {
				break
			}
			if !n.isPunct(',') {
				fail(n.Pos, stmt, "expected , or } in the record type but found %s", n)
			}
		}
	} else {
		ty.fields = append(ty.fields, p.fieldType(stmt))
	}
	p.semi(stmt)
	if err := ty.validate(); err != nil {
		fail(t.Pos, stmt, "%v", err)
	}
	p.st.opts.define(optionDef{name: name, code: uint8(code), typ: ty})
}

func (p *parser) fieldType(stmt string) fieldKind {
	t := p.next()
	if t.Kind != tokWord {
		fail(t.Pos, stmt, "expected an option data type but found %s", t)
	}
	intType := func(signed bool) fieldKind {
		bits := p.next()
		switch bits.Text {
		case "8":
			if signed {
				return fInt8
			}
			return fUint8
		case "16":
			if signed {
				return fInt16
			}
			return fUint16
		case "32":
			if signed {
				return fInt32
			}
			return fUint32
		}
		fail(bits.Pos, stmt, "expected 8, 16 or 32 but found %s", bits)
		return 0
	}
	switch strings.ToLower(t.Text) {
	case "ip-address":
		return fIP
	case "unsigned":
		p.keyword("integer", stmt)
		return intType(false)
	case "signed":
		p.keyword("integer", stmt)
		return intType(true)
	case "integer":
		return intType(true)
	case "boolean":
		return fFlag
	case "text":
		return fText
	case "string":
		return fBytes
	case "domain-name":
		return fDomain
	case "domain-list":
		if p.peek().is("compressed") {
			p.next()
			return fDomainListCompressed
		}
		return fDomainList
	}
	fail(t.Pos, stmt, "option data type %s is not supported by Tandem", t.Text)
	return 0
}

// value parses an option value of type ty and returns its wire encoding.
func (p *parser) value(stmt string, ty optType) []byte {
	var out []byte
	for {
		for _, f := range ty.fields {
			out = p.field(stmt, f, out)
		}
		if !ty.array || !p.peek().isPunct(',') {
			return out
		}
		p.next()
	}
}

func (p *parser) field(stmt string, f fieldKind, out []byte) []byte {
	switch f {
	case fIP:
		a := p.ip(stmt, "an IPv4 address").As4()
		return append(out, a[:]...)
	case fInt8:
		return append(out, byte(p.number(stmt, "a number", 8)))
	case fUint8:
		return append(out, byte(p.number(stmt, "a number", 8)))
	case fInt16:
		return binary.BigEndian.AppendUint16(out, uint16(p.number(stmt, "a number", 16)))
	case fUint16:
		return binary.BigEndian.AppendUint16(out, uint16(p.number(stmt, "a number", 16)))
	case fInt32:
		return binary.BigEndian.AppendUint32(out, uint32(p.number(stmt, "a number", 32)))
	case fUint32:
		return binary.BigEndian.AppendUint32(out, uint32(p.number(stmt, "a number", 32)))
	case fLeaseTime:
		if p.peek().is("infinite") {
			p.next()
			return binary.BigEndian.AppendUint32(out, 0xffffffff)
		}
		return binary.BigEndian.AppendUint32(out, uint32(p.number(stmt, "a number of seconds or infinite", 32)))
	case fFlag:
		return append(out, p.flag(stmt, false))
	case fText:
		t := p.next()
		if t.Kind != tokString && t.Kind != tokWord {
			fail(t.Pos, stmt, "expected a quoted string but found %s", t)
		}
		return append(out, t.Text...)
	case fBytes:
		if t := p.peek(); t.Kind == tokString {
			p.next()
			return append(out, t.Text...)
		}
		return append(out, p.hexList(stmt, "a quoted string or hex bytes")...)
	case fDomain:
		t := p.next()
		if t.Kind != tokString {
			fail(t.Pos, stmt, "expected a quoted domain name but found %s", t)
		}
		b, err := encodeDomain(out, t.Text, nil)
		if err != nil {
			fail(t.Pos, stmt, "%v", err)
		}
		return b
	case fDomainList, fDomainListCompressed:
		var known map[string]int
		if f == fDomainListCompressed {
			known = map[string]int{}
		}
		var body []byte
		for {
			t := p.next()
			if t.Kind != tokString {
				fail(t.Pos, stmt, "expected a quoted domain name but found %s", t)
			}
			var err error
			// Compression offsets count from the start of the option
			// data (RFC 3397 §2), so encode into a fresh slice.
			body, err = encodeDomain(body, t.Text, known)
			if err != nil {
				fail(t.Pos, stmt, "%v", err)
			}
			if !p.peek().isPunct(',') {
				return append(out, body...)
			}
			p.next()
		}
	}
	panic("config: unknown field kind")
}

// flag reads a boolean: true/on or false/off, and for server parameters
// also "ignore" (ISC's third value, which denies without logging).
func (p *parser) flag(stmt string, allowIgnore bool) byte {
	t := p.next()
	switch {
	case t.is("true"), t.is("on"):
		return 1
	case t.is("false"), t.is("off"):
		return 0
	case allowIgnore && t.is("ignore"):
		return 2
	}
	fail(t.Pos, stmt, "expected true, false, on or off but found %s", t)
	return 0
}

// paramValue is a decoded server parameter value.
type paramValue struct {
	num  uint32
	flag byte
	text string
	addr netip.Addr
}

func (p *parser) paramValue(stmt string, k fieldKind) paramValue {
	switch k {
	case fFlag:
		return paramValue{flag: p.flag(stmt, true)}
	case fText:
		return paramValue{text: string(p.field(stmt, fText, nil))}
	case fIP:
		return paramValue{addr: p.ip(stmt, "an IPv4 address")}
	case fUint8:
		return paramValue{num: uint32(p.field(stmt, k, nil)[0])}
	case fUint16:
		return paramValue{num: uint32(binary.BigEndian.Uint16(p.field(stmt, k, nil)))}
	case fUint32, fLeaseTime:
		return paramValue{num: binary.BigEndian.Uint32(p.field(stmt, k, nil))}
	}
	panic("config: unsupported parameter kind")
}
