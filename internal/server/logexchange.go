package server

import (
	"context"
	"log/slog"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tandemdhcp/tandem/internal/dhcp"
)

// logExchange writes ISC dhcpd's per-request lines ("DHCPDISCOVER from
// MAC via eth0", "DHCPACK on IP to MAC via eth0"). They cost a line per
// packet, so they appear only with debug logging (tandem serve -v).
func (s *Server) logExchange(req *dhcpv4.DHCPv4, res dhcp.Result, ifname string) {
	via := ifname
	if gi := req.GatewayIPAddr; gi != nil && !gi.IsUnspecified() {
		via = gi.String()
	}
	mac := req.ClientHWAddr.String()
	ctx := context.Background()
	name := "BOOTREQUEST"
	if mt := req.MessageType(); mt != dhcpv4.MessageTypeNone {
		name = "DHCP" + mt.String()
	}
	switch req.MessageType() {
	case dhcpv4.MessageTypeRequest:
		ip := req.RequestedIPAddress()
		if ip == nil || ip.IsUnspecified() {
			ip = req.ClientIPAddr
		}
		line := name + " for " + ipString(ip)
		if sid := req.ServerIdentifier(); sid != nil {
			line += " (" + sid.String() + ")"
		}
		s.log.Log(ctx, slog.LevelDebug, line+" from "+mac+" via "+via)
	case dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
		s.log.Log(ctx, slog.LevelDebug, name+" of "+ipString(req.ClientIPAddr)+" from "+mac+" via "+via)
	default:
		s.log.Log(ctx, slog.LevelDebug, name+" from "+mac+" via "+via)
	}
	if res.Reply == nil {
		if res.Drop != "" {
			s.log.Log(ctx, slog.LevelDebug, name+" from "+mac+": "+res.Drop)
		}
		return
	}
	reply := "BOOTREPLY"
	if mt := res.Reply.MessageType(); mt != dhcpv4.MessageTypeNone {
		reply = "DHCP" + mt.String()
	}
	s.log.Log(ctx, slog.LevelDebug, reply+" on "+ipString(res.Reply.YourIPAddr)+" to "+mac+" via "+via)
}

func ipString(ip net.IP) string {
	if ip == nil {
		return "0.0.0.0"
	}
	return ip.String()
}
