package main

import (
	"bytes"
	"log/slog"
	"testing"
)

func TestLineHandlerKeepsISCWording(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newLineHandler(&buf, slog.LevelInfo, false)).With("relationship", "dhcp-failover")
	log.Info("failover peer dhcp-failover: I move from normal to communications-interrupted")
	log.Warn("lease dropped", "address", "198.18.0.9", "why", "torn record")
	log.Debug("not shown")
	want := "failover peer dhcp-failover: I move from normal to communications-interrupted relationship=dhcp-failover\n" +
		"WARN lease dropped relationship=dhcp-failover address=198.18.0.9 why=\"torn record\"\n"
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestStateArgBeforeOrAfterFlags(t *testing.T) {
	for _, args := range [][]string{{"normal", "-s", "x.sock"}, {"-s", "x.sock", "normal"}} {
		fs, sock, _ := ctlFlags("wait")
		got, err := stateArg(fs, args)
		if err != nil || got != "normal" || *sock != "x.sock" {
			t.Errorf("stateArg(%q) = %q, %v, socket %q", args, got, err, *sock)
		}
	}
	fs, _, _ := ctlFlags("wait")
	if _, err := stateArg(fs, []string{"-s", "x.sock", "norml"}); err == nil {
		t.Error("a misspelt state was accepted")
	}
}
