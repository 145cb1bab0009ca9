package config

import (
	"fmt"
	"strings"
)

// tokenKind classifies a token.
//
// The lexer follows ISC's conflex.c in one important way: dots and colons
// are tokens of their own, so an IP address is the words "198" "18" "0"
// "1" joined by dot tokens and a MAC address is hex words joined by colon
// tokens. The parser joins them again. ISC allows whitespace and even line
// breaks inside such lists (dhcpd.conf(5) prints a 32-byte hba over two
// lines), and splitting here is what makes that work.
type tokenKind int

const (
	tokEOF    tokenKind = iota
	tokWord             // a run of letters, digits, '-' and '_'
	tokString           // a quoted string; Text holds the decoded bytes
	tokPunct            // any other single character: { } ; , . : = …
)

type token struct {
	Kind tokenKind
	Text string
	Pos  Pos
}

func (t token) String() string {
	if t.Kind == tokEOF {
		return "end of file"
	}
	return fmt.Sprintf("%q", t.Text)
}

// is reports whether t is the word kw (keywords are case-insensitive in
// ISC dhcpd, see intern() in conflex.c).
func (t token) is(kw string) bool {
	return t.Kind == tokWord && strings.EqualFold(t.Text, kw)
}

// isPunct reports whether t is the single character c.
func (t token) isPunct(c byte) bool {
	return t.Kind == tokPunct && len(t.Text) == 1 && t.Text[0] == c
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// lex splits a whole file into tokens. Configuration files are small, so
// tokenizing up front keeps look-ahead trivial.
func lex(file string, src []byte) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"':
			start := line
			s, n, lines, err := lexString(src[i+1:])
			if err != nil {
				return nil, &Error{Pos: Pos{file, start}, Msg: err.Error()}
			}
			toks = append(toks, token{tokString, s, Pos{file, start}})
			line += lines
			i += 1 + n
		case isWordByte(c):
			j := i
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			toks = append(toks, token{tokWord, string(src[i:j]), Pos{file, line}})
			i = j
		default:
			toks = append(toks, token{tokPunct, string(src[i : i+1]), Pos{file, line}})
			i++
		}
	}
	toks = append(toks, token{Kind: tokEOF, Pos: Pos{file, line}})
	return toks, nil
}

// lexString decodes a quoted string whose opening quote has been consumed.
// It returns the decoded text, the number of source bytes used (including
// the closing quote) and the number of newlines inside. Escapes are those of
// ISC's read_string: \t \r \n \b, octal \ooo (first digit 0-3), hex \xHH,
// and a backslash before any other character stands for that character.
func lexString(src []byte) (string, int, int, error) {
	var b strings.Builder
	lines := 0
	i := 0
	for {
		if i >= len(src) {
			return "", 0, 0, fmt.Errorf("end of file inside a quoted string")
		}
		c := src[i]
		i++
		switch c {
		case '"':
			return b.String(), i, lines, nil
		case '\n':
			lines++
			b.WriteByte(c)
		case '\\':
			if i >= len(src) {
				return "", 0, 0, fmt.Errorf("end of file inside a quoted string")
			}
			e := src[i]
			i++
			switch {
			case e == 't':
				b.WriteByte('\t')
			case e == 'r':
				b.WriteByte('\r')
			case e == 'n':
				b.WriteByte('\n')
			case e == 'b':
				b.WriteByte('\b')
			case e >= '0' && e <= '3':
				v := int(e - '0')
				for k := 0; k < 2 && i < len(src) && src[i] >= '0' && src[i] <= '7'; k++ {
					v = v*8 + int(src[i]-'0')
					i++
				}
				b.WriteByte(byte(v))
			case e == 'x':
				v, k := 0, 0
				for ; k < 2 && i < len(src) && isHexDigit(src[i]); k++ {
					v = v*16 + hexVal(src[i])
					i++
				}
				if k == 0 {
					return "", 0, 0, fmt.Errorf(`\x must be followed by hex digits`)
				}
				b.WriteByte(byte(v))
			default:
				if e == '\n' {
					lines++
				}
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}
