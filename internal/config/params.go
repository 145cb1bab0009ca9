package config

import "strings"

// serverParam describes a bare parameter statement ("default-lease-time
// 600;"). In ISC dhcpd these are options of the "server" option space
// (server/stables.c); their value syntax is given by kind.
type serverParam struct {
	kind fieldKind
	// global parameters configure the daemon, not a scope; they are
	// errors anywhere else.
	global bool
	// set applies a scoped parameter.
	set func(*Params, paramValue)
	// config applies a global parameter.
	config func(*state, paramValue, token)
	// ignored, when set, is why Tandem accepts the statement without
	// acting on it; a warning carries it.
	ignored string
}

const noEffect = "accepted but has no effect in Tandem"

func flagTrue(v paramValue) bool { return v.flag == 1 }

var serverParams = map[string]serverParam{
	"default-lease-time":   {kind: fLeaseTime, set: func(p *Params, v paramValue) { p.DefaultLeaseTime = v.num }},
	"max-lease-time":       {kind: fLeaseTime, set: func(p *Params, v paramValue) { p.MaxLeaseTime = v.num }},
	"min-lease-time":       {kind: fLeaseTime, set: func(p *Params, v paramValue) { p.MinLeaseTime = v.num }},
	"boot-unknown-clients": {kind: fFlag, set: func(p *Params, v paramValue) { p.AllowUnknownClients = flagTrue(v) }},
	"allow-bootp":          {kind: fFlag, set: func(p *Params, v paramValue) { p.AllowBootp = flagTrue(v) }},
	"allow-booting":        {kind: fFlag, set: func(p *Params, v paramValue) { p.AllowBooting = flagTrue(v) }},
	"dynamic-bootp":        {kind: fFlag, set: func(p *Params, v paramValue) { p.AllowDynamicBootp = flagTrue(v) }},
	"ping-check":           {kind: fFlag, set: func(p *Params, v paramValue) { p.PingCheck = flagTrue(v) }},
	"filename":             {kind: fText, set: func(p *Params, v paramValue) { p.Filename = v.text }},
	"server-name":          {kind: fText, set: func(p *Params, v paramValue) { p.ServerName = v.text }},
	"next-server":          {kind: fIP, set: func(p *Params, v paramValue) { p.NextServer = v.addr }},
	"use-host-decl-names":  {kind: fFlag, set: func(p *Params, v paramValue) { p.UseHostDeclNames = flagTrue(v) }},

	"lease-file-name": {kind: fText, global: true, config: func(st *state, v paramValue, _ token) { st.cfg.LeaseFileName = v.text }},
	"pid-file-name":   {kind: fText, global: true, config: func(st *state, v paramValue, _ token) { st.cfg.PIDFileName = v.text }},
	"omapi-port":      {kind: fUint16, global: true, config: func(st *state, v paramValue, _ token) { st.cfg.OMAPIPort = int(v.num) }},
	"local-port":      {kind: fUint16, global: true, config: func(st *state, v paramValue, _ token) { st.cfg.LocalPort = int(v.num) }},
	"remote-port":     {kind: fUint16, global: true, config: func(st *state, v paramValue, _ token) { st.cfg.RemotePort = int(v.num) }},
	"local-address":   {kind: fIP, global: true, config: func(st *state, v paramValue, _ token) { st.cfg.LocalAddress = v.addr }},

	// Parsed specially in serverParam (enumerations and refusals); the
	// entries make them known statements.
	"omapi-key":          {global: true},
	"log-facility":       {global: true},
	"ddns-update-style":  {},
	"ddns-updates":       {kind: fFlag},
	"ignore-client-uids": {kind: fFlag},

	"ping-timeout":                     {kind: fLeaseTime, ignored: "Tandem does not ping addresses before offering them"},
	"lease-id-format":                  {kind: fText, ignored: "Tandem writes client identifiers in ISC's default (octal) form, which ISC reads whatever this is set to"},
	"site-option-space":                {kind: fText, ignored: noEffect},
	"vendor-option-space":              {kind: fText, ignored: noEffect},
	"ping-timeout-ms":                  {kind: fLeaseTime, ignored: "Tandem does not ping addresses before offering them"},
	"ping-cltt-secs":                   {kind: fLeaseTime, ignored: "Tandem does not ping addresses before offering them"},
	"one-lease-per-client":             {kind: fFlag, ignored: noEffect},
	"get-lease-hostnames":              {kind: fFlag, ignored: "Tandem does no reverse DNS lookups"},
	"min-secs":                         {kind: fUint8, ignored: noEffect},
	"stash-agent-options":              {kind: fFlag, ignored: noEffect},
	"duplicates":                       {kind: fFlag, ignored: noEffect},
	"declines":                         {kind: fFlag, ignored: noEffect},
	"client-updates":                   {kind: fFlag, ignored: "Tandem does no DNS updates"},
	"leasequery":                       {kind: fFlag, ignored: "Tandem does not answer DHCPLEASEQUERY"},
	"always-reply-rfc1048":             {kind: fFlag, ignored: noEffect},
	"always-broadcast":                 {kind: fFlag, ignored: noEffect},
	"use-lease-addr-for-default-route": {kind: fFlag, ignored: noEffect},
	"update-static-leases":             {kind: fFlag, ignored: "Tandem does no DNS updates"},
	"update-optimization":              {kind: fFlag, ignored: "Tandem does no DNS updates"},
	"update-conflict-detection":        {kind: fFlag, ignored: "Tandem does no DNS updates"},
	"do-forward-updates":               {kind: fFlag, ignored: "Tandem does no DNS updates"},
	"do-reverse-updates":               {kind: fFlag, ignored: "Tandem does no DNS updates"},
	"fqdn-reply":                       {kind: fFlag, ignored: "Tandem does no DNS updates"},
	"ddns-domainname":                  {kind: fText, ignored: "Tandem does no DNS updates"},
	"ddns-hostname":                    {kind: fText, ignored: "Tandem does no DNS updates"},
	"ddns-rev-domainname":              {kind: fText, ignored: "Tandem does no DNS updates"},
	"ddns-ttl":                         {kind: fLeaseTime, ignored: "Tandem does no DNS updates"},
	"ddns-local-address4":              {kind: fIP, ignored: "Tandem does no DNS updates"},
	"ddns-dual-stack-mixed-mode":       {kind: fFlag, ignored: "Tandem does no DNS updates"},
	"ddns-guard-id-must-match":         {kind: fFlag, ignored: "Tandem does no DNS updates"},
	"ddns-other-guard-is-dynamic":      {kind: fFlag, ignored: "Tandem does no DNS updates"},
	"dont-use-fsync":                   {kind: fFlag, ignored: "Tandem always syncs the lease file before answering"},
	"limited-broadcast-address":        {kind: fIP, ignored: noEffect},
	"dhcp-cache-threshold":             {kind: fUint8, ignored: noEffect},
	"log-threshold-low":                {kind: fUint8, ignored: noEffect},
	"log-threshold-high":               {kind: fUint8, ignored: noEffect},
	"echo-client-id":                   {kind: fFlag, ignored: noEffect},
	"server-id-check":                  {kind: fFlag, ignored: noEffect},
	"abandon-lease-time":               {kind: fLeaseTime, ignored: noEffect},
	"check-secs-byte-order":            {kind: fFlag, ignored: noEffect},
	"release-on-roam":                  {kind: fFlag, ignored: noEffect},
	"infinite-is-reserved":             {kind: fFlag, ignored: noEffect},
	"adaptive-lease-time-threshold":    {kind: fUint8, ignored: noEffect},
	"dynamic-bootp-lease-cutoff":       {kind: fLeaseTime, ignored: noEffect},
	"dynamic-bootp-lease-length":       {kind: fUint32, ignored: noEffect},
	"delayed-ack":                      {kind: fUint16, ignored: noEffect},
	"max-ack-delay":                    {kind: fUint32, ignored: noEffect},
	"dhcpv6-lease-file-name":           {kind: fText, ignored: "DHCPv6 setting; Tandem serves DHCPv4 only"},
	"dhcpv6-pid-file-name":             {kind: fText, ignored: "DHCPv6 setting; Tandem serves DHCPv4 only"},
	"preferred-lifetime":               {kind: fLeaseTime, ignored: "DHCPv6 setting; Tandem serves DHCPv4 only"},
	"limit-addrs-per-ia":               {kind: fUint32, ignored: "DHCPv6 setting; Tandem serves DHCPv4 only"},
	"limit-prefs-per-ia":               {kind: fUint32, ignored: "DHCPv6 setting; Tandem serves DHCPv4 only"},
	"dhcpv6-set-tee-times":             {kind: fFlag, ignored: "DHCPv6 setting; Tandem serves DHCPv4 only"},
}

// syslogFacilities are the names ISC accepts for log-facility.
var syslogFacilities = map[string]bool{
	"kern": true, "user": true, "mail": true, "daemon": true, "auth": true,
	"syslog": true, "lpr": true, "news": true, "uucp": true, "cron": true,
	"authpriv": true, "ftp": true,
	"local0": true, "local1": true, "local2": true, "local3": true,
	"local4": true, "local5": true, "local6": true, "local7": true,
}

func (p *parser) serverParam(s *scope, t token, kw string, sp serverParam) {
	stmt := kw
	if sp.global && s.kind != scopeGlobal {
		fail(t.Pos, stmt, "allowed only at global scope, not in a %s", s.kind)
	}
	switch kw {
	case "omapi-key":
		name, _ := p.name(stmt, "a key name")
		p.semi(stmt)
		p.st.cfg.OMAPIKey = name
		p.st.omapiKey = t
		return
	case "log-facility":
		v := p.next()
		if v.Kind != tokWord || !syslogFacilities[strings.ToLower(v.Text)] {
			fail(v.Pos, stmt, "expected a syslog facility (daemon, local0 … local7, …) but found %s", v)
		}
		p.semi(stmt)
		p.st.cfg.LogFacility = strings.ToLower(v.Text)
		return
	case "ddns-update-style":
		v := p.next()
		style := strings.ToLower(v.Text)
		switch {
		case v.Kind != tokWord:
			fail(v.Pos, stmt, "expected none, ad-hoc, interim or standard but found %s", v)
		case style == "none":
		case style == "ad-hoc" || style == "interim" || style == "standard":
			fail(v.Pos, stmt, "Tandem does no DNS updates; only ddns-update-style none is accepted")
		default:
			fail(v.Pos, stmt, "expected none, ad-hoc, interim or standard but found %s", v)
		}
		p.semi(stmt)
		p.st.cfg.DDNSUpdateStyle = style
		return
	case "ddns-updates":
		v := p.flag(stmt, true)
		p.semi(stmt)
		if v == 1 {
			fail(t.Pos, stmt, "Tandem does no DNS updates; only ddns-updates off is accepted")
		}
		return
	case "ignore-client-uids":
		v := p.flag(stmt, true)
		p.semi(stmt)
		if v == 1 {
			fail(t.Pos, stmt, "not supported by Tandem: leases are always identified by client identifier when a client sends one")
		}
		return
	}
	v := p.paramValue(stmt, sp.kind)
	p.semi(stmt)
	switch {
	case sp.ignored != "":
		p.st.warn(t.Pos, stmt, "ignored: %s", sp.ignored)
	case sp.config != nil:
		sp.config(p.st, v, t)
	default:
		set := sp.set
		s.sets = append(s.sets, func(pp *Params) { set(pp, v) })
		if stmt == "ping-check" && flagTrue(v) {
			p.st.warn(t.Pos, stmt, "Tandem does not ping addresses before offering them; the failover protocol and DECLINE handling guard against duplicates")
		}
	}
}
