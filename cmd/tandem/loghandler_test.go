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
