package lab

import (
	"strings"
	"testing"
)

func TestSetPeerParam(t *testing.T) {
	c, err := ReadFailoverConfs("examples/classic")
	if err != nil {
		t.Fatal(err)
	}
	c = c.SetPeerParam("mclt", "60").
		SetPeerParam("max-response-delay", "5").
		SetPeerParam("auto-partner-down", "3").
		SetPeerParam("load balance max seconds", "")
	for _, tc := range []struct {
		name, conf  string
		has, hasNot []string
	}{
		{"primary", c.Primary,
			[]string{"  mclt 60;\n", "  max-response-delay 5;\n", "  auto-partner-down 3;\n}", "split 128;"},
			[]string{"mclt 1800", "max-response-delay 30", "load balance max seconds"}},
		{"secondary", c.Secondary,
			[]string{"  max-response-delay 5;\n", "  auto-partner-down 3;\n}"},
			[]string{"  mclt", "max-response-delay 30", "load balance max seconds"}},
	} {
		for _, s := range tc.has {
			if !strings.Contains(tc.conf, s) {
				t.Errorf("%s: no %q in\n%s", tc.name, s, tc.conf)
			}
		}
		for _, s := range tc.hasNot {
			if strings.Contains(tc.conf, s) {
				t.Errorf("%s: still has %q in\n%s", tc.name, s, tc.conf)
			}
		}
		if !strings.Contains(tc.conf, `include "shared.conf";`) {
			t.Errorf("%s: the include statement is gone", tc.name)
		}
	}
}

func TestSetPeerParamOnlyTouchesThePeerBlock(t *testing.T) {
	conf := "default-lease-time 600;\nfailover peer \"p\" {\n  primary;\n  mclt 10;\n}\nsubnet 198.18.0.0 netmask 255.255.255.0 {\n  mclt 99;\n}\n"
	got := SetPeerParam(conf, "mclt", "20")
	want := "default-lease-time 600;\nfailover peer \"p\" {\n  primary;\n  mclt 20;\n}\nsubnet 198.18.0.0 netmask 255.255.255.0 {\n  mclt 99;\n}\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
