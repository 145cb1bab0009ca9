package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A configuration mistake stops `tandem check-config` and `tandem serve
// -t` with a non-zero status and a message an operator can act on: the
// file, the line and the statement, as dhcpd -t does. Nothing here opens a
// socket, so it needs no namespace.
func TestConfigErrorsNameFileLineAndStatement(t *testing.T) {
	bin := tandemBinary(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.conf", "authoritative;\ndefault-lease-time 600;\n"+
		"subnet 198.18.0.0 netmask 255.255.255.0 {\n  range 198.18.0.100 198.18.0.200;\n}\n")
	unknown := write("unknown.conf", "authoritative;\n"+
		"subnet 198.18.0.0 netmask 255.255.255.0 {\n  range 198.18.0.100 198.18.0.200;\n  frobnicate yes;\n}\n")
	badRange := write("range.conf", "subnet 198.18.0.0 netmask 255.255.255.0 {\n  range 198.18.0.100 198.18.0.zzz;\n}\n")
	write("inner.conf", "default-lease-time 600;\nmax-lease-time;\n")
	included := write("outer.conf", "authoritative;\ninclude \""+filepath.Join(dir, "inner.conf")+"\";\n"+
		"subnet 198.18.0.0 netmask 255.255.255.0 {\n  range 198.18.0.100 198.18.0.200;\n}\n")

	run := func(args ...string) (string, int) {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		}
		t.Fatalf("tandem %v: %v", args, err)
		return "", 0
	}

	for _, cmd := range [][]string{{"check-config", "-cf"}, {"serve", "-t", "-cf"}} {
		if out, code := run(append(cmd, good)...); code != 0 {
			t.Errorf("tandem %s good.conf: exit %d, want 0:\n%s", strings.Join(cmd, " "), code, out)
		}
		for _, tc := range []struct {
			path string
			want []string // all must appear in the message
		}{
			{unknown, []string{unknown + ":4:", "frobnicate"}},
			{badRange, []string{badRange + ":2:", "range"}},
			{included, []string{filepath.Join(dir, "inner.conf") + ":2:", "max-lease-time"}},
		} {
			out, code := run(append(cmd, tc.path)...)
			if code == 0 {
				t.Errorf("tandem %s %s: exit 0, want failure:\n%s", strings.Join(cmd, " "), filepath.Base(tc.path), out)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("tandem %s %s: message lacks %q:\n%s", strings.Join(cmd, " "), filepath.Base(tc.path), w, out)
				}
			}
		}
	}
}
