// Package config reads the subset of ISC dhcpd.conf that failover deployments
// use and turns it into a typed Config. Every value that came from the file
// keeps its position (Pos) so that errors and warnings can name file and line.
//
// Scoping follows dhcpd.conf(5): parameters and options set at global scope
// are inherited by shared-network, subnet, pool and host scopes, and an inner
// scope overrides an outer one. The parser resolves inheritance, so the
// Params held by a Subnet, Pool or Host are already effective values.
package config

import (
	"fmt"
	"net"
	"net/netip"
)

// Pos is a place in a configuration file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Error is a configuration error: it names the file, the line and the
// statement at fault, so an operator can go straight to it.
type Error struct {
	Pos       Pos
	Statement string // the keyword(s) of the offending statement, e.g. "range", "failover peer"
	Msg       string
}

func (e *Error) Error() string {
	if e.Statement == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Statement, e.Msg)
}

// Config is a whole, validated configuration.
type Config struct {
	// Global holds the effective parameters at global scope.
	Global Params

	// SharedNetworks in file order. A subnet declared outside any
	// shared-network is not listed here; its SharedNetwork is "".
	SharedNetworks []*SharedNetwork
	// Subnets in file order, including those inside shared networks.
	Subnets []*Subnet
	// Hosts in file order, wherever they were declared (host declarations
	// are global in ISC dhcpd, but pick up parameters of their scope).
	Hosts []*Host
	// FailoverPeers in file order; names are unique.
	FailoverPeers []*FailoverPeer

	// OMAPIPort is 0 when OMAPI is not configured.
	OMAPIPort int
	// OMAPIKey names the key in Keys that OMAPI clients must use ("" = none).
	OMAPIKey string
	Keys     []*Key

	// LogFacility as written (e.g. "local7"); "" when unset.
	LogFacility string
	// DDNSUpdateStyle as written; only "none" (or unset) is accepted.
	DDNSUpdateStyle string

	// LeaseFileName and PIDFileName are "lease-file-name" and
	// "pid-file-name"; "" when unset (command-line flags decide).
	LeaseFileName string
	PIDFileName   string
	// LocalAddress is "local-address": the address to listen on for DHCP;
	// the invalid Addr when unset.
	LocalAddress netip.Addr
	// LocalPort and RemotePort are "local-port" (the DHCP server port,
	// default 67) and "remote-port" (the client port, default 68); 0 when
	// unset.
	LocalPort  int
	RemotePort int

	// Warnings are statements accepted but ignored, and advice (for
	// example a primary with no split). Each names its position.
	Warnings []string
}

// Params are the inheritable parameters of a scope, already resolved.
type Params struct {
	DefaultLeaseTime uint32 // seconds; ISC default 43200
	MaxLeaseTime     uint32 // seconds; ISC default 86400
	MinLeaseTime     uint32 // seconds; 0 = none
	Authoritative    bool

	// AllowUnknownClients: may a client without a host declaration get
	// an address here ("allow/deny unknown-clients"). Default true.
	AllowUnknownClients bool
	// AllowKnownClients: may a client with a host declaration get an
	// address from this pool. Only pool permit lists ("deny known-clients",
	// "allow unknown-clients") clear it. Default true.
	AllowKnownClients bool
	AllowBootp        bool // "allow/deny bootp": answer BOOTP at all. Default true.
	// AllowBooting is "allow/deny booting", normally written in a host to
	// refuse that client any answer. Default true.
	AllowBooting bool
	// AllowDynamicBootp: may a BOOTP client get a dynamic address from
	// this pool ("dynamic bootp clients" in a pool permit list, or a
	// "range dynamic-bootp" outside pools). A BOOTP client may use a pool
	// when AllowDynamicBootp and (known ? AllowKnownClients :
	// AllowUnknownClients). Default true.
	AllowDynamicBootp bool

	// ServerIdentifier is the invalid Addr when not configured: the
	// server then uses the address of the interface the request came in on.
	ServerIdentifier netip.Addr
	PingCheck        bool // parsed; Tandem does not ping (see README)

	// Filename, ServerName and NextServer are "filename", "server-name"
	// and "next-server": the BOOTP file, sname and siaddr fields (RFC 2131
	// §2). Empty or invalid when unset.
	Filename   string
	ServerName string
	NextServer netip.Addr
	// UseHostDeclNames is "use-host-decl-names". The parser has already
	// applied it: such hosts carry a host-name option with their name.
	UseHostDeclNames bool

	// Options are DHCP options in the order they were first set; an inner
	// scope's value for a code replaces the outer one in place.
	Options []Option
}

// Option is one DHCP option, already encoded as it goes on the wire
// (without code and length bytes). Data may exceed 255 bytes (a long
// domain-search list, for example); the sender must then split it into
// several instances as RFC 3396 describes.
type Option struct {
	Code uint8
	Name string // the dhcpd.conf name, e.g. "routers"
	Data []byte
}

// Option returns the option with the given code, if set.
func (p *Params) Option(code uint8) (Option, bool) {
	for _, o := range p.Options {
		if o.Code == code {
			return o, true
		}
	}
	return Option{}, false
}

// SharedNetwork groups subnets on one physical link.
type SharedNetwork struct {
	Name    string
	Subnets []*Subnet
	Pos     Pos
}

// Subnet is a "subnet A netmask M { … }" declaration.
type Subnet struct {
	Prefix        netip.Prefix
	SharedNetwork string // "" when not inside a shared-network
	// Pools holds the subnet's pools. Ranges written directly in the
	// subnet (outside any pool block) form one implicit pool, listed first.
	Pools  []*Pool
	Params Params
	Pos    Pos
}

// Pool is a "pool { … }" block (or the implicit pool of a subnet).
type Pool struct {
	Ranges []Range
	// FailoverPeer is the name from "failover peer "NAME";" inside the
	// pool, or "" when the pool is not shared with a partner.
	FailoverPeer string
	Params       Params
	Pos          Pos
}

// Range is a "range [dynamic-bootp] LOW [HIGH];" statement. Start <= End.
type Range struct {
	Start, End   netip.Addr
	DynamicBootp bool
	Pos          Pos
}

// Host is a "host NAME { … }" reservation.
type Host struct {
	Name           string
	HardwareType   uint8 // 1 = ethernet
	HardwareAddr   net.HardwareAddr
	ClientID       []byte // from "option dhcp-client-identifier"; nil if none
	FixedAddresses []netip.Addr
	Params         Params
	Pos            Pos
}

// Role of a server in a failover relationship.
type Role int

const (
	Primary Role = iota + 1
	Secondary
)

func (r Role) String() string {
	switch r {
	case Primary:
		return "primary"
	case Secondary:
		return "secondary"
	}
	return "unknown"
}

// FailoverPeer is a "failover peer "NAME" { … }" declaration with ISC's
// defaults applied (see dhcpd.conf(5) and failover-wire.md §6).
type FailoverPeer struct {
	Name string
	Role Role

	Address     string // local address to listen on and dial from (IP or host name)
	Port        int    // default 647
	PeerAddress string
	PeerPort    int // default 647

	MaxResponseDelay  uint32 // seconds, default 20
	MaxUnackedUpdates uint32 // default 100
	MCLT              uint32 // seconds; required on the primary, learned by the secondary
	// HBA is the 32-byte hash bucket assignment in ISC's bit sense (a set
	// bit means the primary serves the bucket). From "split N" or "hba".
	// nil on the secondary, which learns it from CONNECT.
	HBA                   []byte
	Split                 int    // -1 when "hba" was used or neither was given
	LoadBalanceMaxSeconds uint32 // default 0 (ISC code default)
	MaxLeaseMisbalance    uint32 // percent, default 15
	MaxLeaseOwnership     uint32 // percent, default 10
	MinBalance            uint32 // seconds, default 60
	MaxBalance            uint32 // seconds, default 3600
	AutoPartnerDown       uint32 // seconds, 0 = off

	Pos Pos
}

// Key is a "key NAME { algorithm …; secret …; }" block.
type Key struct {
	Name      string
	Algorithm string
	Secret    []byte // decoded from base64
	Pos       Pos
}
