package config

import (
	"testing"
)

func TestLex(t *testing.T) {
	src := "# comment { ; \"\nhost a-b_c {\n  hardware ethernet 00:1a:FF; # tail\n" +
		"  option x \"q\\\"\\t\\001\\x41\\z\";\n}\n198.18.0.1 -5 \"multi\nline\" =\n"
	got, err := lex("f.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	w := func(s string, line int) token { return token{tokWord, s, Pos{"f.conf", line}} }
	pu := func(s string, line int) token { return token{tokPunct, s, Pos{"f.conf", line}} }
	st := func(s string, line int) token { return token{tokString, s, Pos{"f.conf", line}} }
	want := []token{
		w("host", 2), w("a-b_c", 2), pu("{", 2),
		w("hardware", 3), w("ethernet", 3), w("00", 3), pu(":", 3), w("1a", 3), pu(":", 3), w("FF", 3), pu(";", 3),
		w("option", 4), w("x", 4), st("q\"\t\x01Az", 4), pu(";", 4),
		pu("}", 5),
		w("198", 6), pu(".", 6), w("18", 6), pu(".", 6), w("0", 6), pu(".", 6), w("1", 6), w("-5", 6),
		st("multi\nline", 6), pu("=", 7),
		{Kind: tokEOF, Pos: Pos{"f.conf", 8}},
	}
	if diff := cmpDiff(want, got); diff != "" {
		t.Errorf("tokens (-want +got):\n%s", diff)
	}
}

func TestLexStringEscapes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"\001"`, "\x01"},
		{`"\0"`, "\x00"},
		{`"\377x"`, "\xffx"},
		{`"\12a"`, "\na"},
		{`"\x4"`, "\x04"},
		{`"\x414"`, "A4"},
		{`"a\\b"`, `a\b`},
		{`"\n\r\t\b"`, "\n\r\t\b"},
		{`""`, ""},
	} {
		toks, err := lex("f", []byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if toks[0].Kind != tokString || toks[0].Text != tc.want {
			t.Errorf("%s: got %q, want %q", tc.in, toks[0].Text, tc.want)
		}
	}
}

func TestLexErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\nb \"open", "f:2: end of file inside a quoted string"},
		{`"x\`, "f:1: end of file inside a quoted string"},
		{`"\xg"`, `f:1: \x must be followed by hex digits`},
	} {
		_, err := lex("f", []byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v, want %s", tc.in, err, tc.want)
		}
	}
}
