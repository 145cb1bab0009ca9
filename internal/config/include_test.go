package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// memFiles serves includes from a map, recording what was asked for.
type memFiles struct {
	files map[string]string
	asked []string
}

func (m *memFiles) read(path string) ([]byte, error) {
	m.asked = append(m.asked, path)
	s, ok := m.files[path]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return []byte(s), nil
}

func TestIncludeResolvesRelativeToIncludingFile(t *testing.T) {
	m := &memFiles{files: map[string]string{
		"etc/dhcp/common/shared.conf": "# shared\n\nsubnet 198.18.0.0 netmask 255.255.255.0 {\n  include \"pools.conf\";\n}\n",
		"etc/dhcp/common/pools.conf":  "\npool { range 198.18.0.10 198.18.0.20; }\n",
		"/abs/opts.conf":              "option domain-name \"abs.test\";\n",
	}}
	src := "include \"common/shared.conf\";\ninclude \"/abs/opts.conf\";\ndefault-lease-time 60;\n"
	c, err := Parse("etc/dhcp/dhcpd.conf", []byte(src), m.read)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmpDiff([]string{"etc/dhcp/common/shared.conf", "etc/dhcp/common/pools.conf", "/abs/opts.conf"}, m.asked); diff != "" {
		t.Errorf("paths read (-want +got):\n%s", diff)
	}
	sn := c.Subnets[0]
	if sn.Pos != (Pos{"etc/dhcp/common/shared.conf", 3}) {
		t.Errorf("subnet pos %v", sn.Pos)
	}
	if p := sn.Pools[0]; p.Pos != (Pos{"etc/dhcp/common/pools.conf", 2}) || p.Ranges[0].Pos != p.Pos {
		t.Errorf("pool pos %v", p.Pos)
	}
	// The included pool is in the subnet's scope and sees global settings
	// written after the include.
	if p := sn.Pools[0].Params; p.DefaultLeaseTime != 60 || len(p.Options) != 1 {
		t.Errorf("pool params %+v", p)
	}
}

func TestIncludeErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"cycle", map[string]string{
			"a.conf": "include \"b.conf\";",
			"b.conf": "\ninclude \"c.conf\";",
			"c.conf": "\n\ninclude \"a.conf\";",
		}, "c.conf:3: include: include cycle: a.conf -> b.conf -> c.conf -> a.conf"},
		{"self", map[string]string{"a.conf": "include \"./a.conf\";"}, "a.conf:1: include: include cycle: a.conf -> a.conf"},
		{"missing", map[string]string{"a.conf": "\ninclude \"nope.conf\";"}, "a.conf:2: include: cannot read nope.conf: file does not exist"},
		{"not a string", map[string]string{"a.conf": "include nope.conf;"}, "a.conf:1: include: expected a quoted file name but found \"nope\""},
		{"error inside", map[string]string{"a.conf": "include \"b.conf\";", "b.conf": "\n\nclass \"x\" { }"}, "b.conf:3: class: client classes are not supported by Tandem"},
		{"brace spans files", map[string]string{"a.conf": "subnet 198.18.0.0 netmask 255.255.255.0 {\ninclude \"b.conf\";\n", "b.conf": "}"}, "b.conf:1: unexpected }: no block is open in this file"},
		{"block left open", map[string]string{"a.conf": "include \"b.conf\";\n}", "b.conf": "group {"}, "b.conf:1: group: block is not closed: missing } before end of b.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &memFiles{files: tc.files}
			_, err := Parse("a.conf", []byte(tc.files["a.conf"]), m.read)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (%T), want *Error", err, err)
			}
			if e.Error() != tc.want {
				t.Errorf("\n got: %s\nwant: %s", e, tc.want)
			}
		})
	}
}

func TestIncludeDepthBounded(t *testing.T) {
	// Every file includes a new one: no cycle, but no end either.
	n := 0
	read := func(path string) ([]byte, error) {
		n++
		return []byte(fmt.Sprintf("include \"f%d.conf\";", n+1)), nil
	}
	_, err := Parse("f0.conf", []byte(`include "f1.conf";`), read)
	var e *Error
	if !errors.As(err, &e) || e.Msg != "includes nested more than 32 deep" {
		t.Fatalf("got %v", err)
	}
	if n != 31 {
		t.Errorf("read %d files", n)
	}
}

func TestIncludeWithoutReader(t *testing.T) {
	e := parseError(t, "include \"x.conf\";")
	if e.Error() != "test.conf:1: include: cannot read x.conf: no include reader" {
		t.Errorf("got %v", e)
	}
}

func TestParseFileIncludesFromDisk(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.conf", "include \"sub/net.conf\";\n")
	write("sub/net.conf", "include \"opts.conf\";\nsubnet 198.18.0.0 netmask 255.255.255.0 { }\n")
	write("sub/opts.conf", "option domain-name \"disk.test\";\n")
	c, err := ParseFile(filepath.Join(dir, "main.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subnets[0].Pos != (Pos{filepath.Join(dir, "sub/net.conf"), 2}) {
		t.Errorf("subnet pos %v", c.Subnets[0].Pos)
	}
	if o, ok := c.Global.Option(15); !ok || string(o.Data) != "disk.test" {
		t.Errorf("option from nested include missing: %v", c.Global.Options)
	}

	_, err = ParseFile(filepath.Join(dir, "absent.conf"))
	var e *Error
	if !errors.As(err, &e) || e.Pos.File != filepath.Join(dir, "absent.conf") {
		t.Errorf("missing file: got %v", err)
	}
}
