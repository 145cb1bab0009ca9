package leasefile

// The lexer follows ISC's (common/conflex.c) where it matters for files ISC
// writes: '#' starts a comment to the end of the line, strings are in double
// quotes with backslash escapes, and '{', '}' and ';' stand alone. Words are
// runs of any other printable ASCII, so "198.18.0.1", "00:11:22:33:44:55",
// "2026/11/19" and "10:00:00" are single words that the parser splits.

type tokenKind uint8

const (
	tEOF tokenKind = iota
	tWord
	tString // text holds the raw bytes between the quotes, escapes undecoded
	tLBrace
	tRBrace
	tSemi
	tBad // a byte that has no place outside a string (control, non-ASCII)
	tUnterminated
)

type token struct {
	kind  tokenKind
	start int // offset of the token's first byte (the quote for strings)
	line  int // line of the token's first byte, from 1
	text  []byte
}

type lexer struct {
	data []byte
	pos  int
	line int
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isWordByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '{' && c != '}' && c != ';' && c != '"' && c != '#'
}

// skipBlank moves past whitespace and comments.
func (lx *lexer) skipBlank() {
	for lx.pos < len(lx.data) {
		c := lx.data[lx.pos]
		switch {
		case c == '\n':
			lx.line++
			lx.pos++
		case isSpace(c):
			lx.pos++
		case c == '#':
			for lx.pos < len(lx.data) && lx.data[lx.pos] != '\n' {
				lx.pos++
			}
		default:
			return
		}
	}
}

func (lx *lexer) next() token {
	lx.skipBlank()
	t := token{start: lx.pos, line: lx.line}
	if lx.pos >= len(lx.data) {
		t.kind = tEOF
		return t
	}
	c := lx.data[lx.pos]
	switch {
	case c == '{':
		t.kind = tLBrace
		lx.pos++
	case c == '}':
		t.kind = tRBrace
		lx.pos++
	case c == ';':
		t.kind = tSemi
		lx.pos++
	case c == '"':
		lx.pos++
		begin := lx.pos
		for lx.pos < len(lx.data) {
			switch lx.data[lx.pos] {
			case '\\':
				lx.pos++
				if lx.pos < len(lx.data) && lx.data[lx.pos] == '\n' {
					lx.line++
				}
			case '\n':
				lx.line++
			case '"':
				t.kind = tString
				t.text = lx.data[begin:lx.pos]
				lx.pos++
				return t
			}
			lx.pos++
		}
		t.kind = tUnterminated
		lx.pos = len(lx.data)
	case isWordByte(c):
		begin := lx.pos
		for lx.pos < len(lx.data) && isWordByte(lx.data[lx.pos]) {
			lx.pos++
		}
		t.kind = tWord
		t.text = lx.data[begin:lx.pos]
	default:
		t.kind = tBad
		t.text = lx.data[lx.pos : lx.pos+1]
		lx.pos++
	}
	return t
}

// decodeString undoes the escapes of a quoted string as ISC's read_string
// does: \t \r \n \b, \NNN octal (first digit 0-3), \xHH hex, and a
// backslash before any other byte stands for that byte.
func decodeString(raw []byte) (string, bool) {
	// Fast path: no escapes.
	plain := true
	for _, c := range raw {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(raw), true
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(raw) {
			return "", false
		}
		switch e := raw[i]; e {
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 'b':
			out = append(out, '\b')
		case '0', '1', '2', '3':
			if i+2 >= len(raw) || !isOctal(raw[i+1]) || !isOctal(raw[i+2]) {
				return "", false
			}
			out = append(out, (e-'0')<<6|(raw[i+1]-'0')<<3|(raw[i+2]-'0'))
			i += 2
		case 'x':
			if i+2 >= len(raw) {
				return "", false
			}
			h, ok1 := hexValue(raw[i+1])
			l, ok2 := hexValue(raw[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			out = append(out, h<<4|l)
			i += 2
		default:
			out = append(out, e)
		}
	}
	return string(out), true
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
