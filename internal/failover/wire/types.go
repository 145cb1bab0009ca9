package wire

import (
	"fmt"
	"strings"

	"github.com/tandemdhcp/tandem/internal/lease"
)

// Protocol constants (draft §6.1, ISC includes/failover.h; fw §0, §1).
const (
	// Port is the TCP port ISC listens on and dials by default, for both
	// roles (fw §0 rule 1).
	Port = 647
	// HeaderLen is the fixed header: length(2) type(1) payload-offset(1)
	// time(4) xid(4).
	HeaderLen = 12
	// PayloadOffset is the offset ISC always sends. The draft says 8, which
	// cannot hold a 12-byte header; ISC uses 12 (fw §1, §14 item 1).
	PayloadOffset = 12
	// MaxMessageLen is the largest message ISC accepts, length field
	// included (DHCP_FAILOVER_MAX_MESSAGE_SIZE, fw §1).
	MaxMessageLen = 2048
	// ProtocolVersion is the value ISC sends in protocol-version (it never
	// checks the peer's, fw §14 item 13).
	ProtocolVersion = 1
	// MaxCHADDRLen is the longest client-hardware-address ISC stores: the
	// htype byte plus 16 bytes of address (hardware_addr.hbuf, fw §3).
	MaxCHADDRLen = 17
	// HBALen is the size of a hash-bucket-assignment: 256 buckets, one bit
	// each (draft §12.11). ISC refuses a CONNECT whose HBA has another size
	// (fw §5).
	HBALen = 32
)

// MessageType is the message type byte of the header (draft §6.1, ISC
// FTM_*; fw §2).
type MessageType uint8

// Message types. The numbering is the draft's and ISC's; Wireshark's
// dissector swaps the names of 7 and 9 (fw §2), this package does not.
const (
	MsgPoolReq    MessageType = 1  // POOLREQ: ask the peer to rebalance pools
	MsgPoolResp   MessageType = 2  // POOLRESP: answer to POOLREQ
	MsgBndUpd     MessageType = 3  // BNDUPD: binding update
	MsgBndAck     MessageType = 4  // BNDACK: binding acknowledgement
	MsgConnect    MessageType = 5  // CONNECT: primary opens the relationship
	MsgConnectAck MessageType = 6  // CONNECTACK: secondary's answer
	MsgUpdReqAll  MessageType = 7  // UPDREQALL: send me every binding
	MsgUpdDone    MessageType = 8  // UPDDONE: all requested updates sent
	MsgUpdReq     MessageType = 9  // UPDREQ: send me what I have not acked
	MsgState      MessageType = 10 // STATE: my failover state changed
	MsgContact    MessageType = 11 // CONTACT: keepalive
	MsgDisconnect MessageType = 12 // DISCONNECT: closing, with a reason
)

// maxMessageType is ISC's FTM_MAX: a message of a higher type that carries
// options is a protocol error (fw §1).
const maxMessageType = MsgDisconnect

var messageTypeNames = [...]string{
	MsgPoolReq:    "POOLREQ",
	MsgPoolResp:   "POOLRESP",
	MsgBndUpd:     "BNDUPD",
	MsgBndAck:     "BNDACK",
	MsgConnect:    "CONNECT",
	MsgConnectAck: "CONNECTACK",
	MsgUpdReqAll:  "UPDREQALL",
	MsgUpdDone:    "UPDDONE",
	MsgUpdReq:     "UPDREQ",
	MsgState:      "STATE",
	MsgContact:    "CONTACT",
	MsgDisconnect: "DISCONNECT",
}

// Valid reports whether t is one of the twelve defined types.
func (t MessageType) Valid() bool { return t >= MsgPoolReq && t <= maxMessageType }

// String returns the draft's name of the type ("BNDUPD"), or
// "message-type-N" for an undefined one.
func (t MessageType) String() string {
	if t.Valid() {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("message-type-%d", uint8(t))
}

// ServerState is a failover state as carried in the server-state option
// (draft §12.24, ISC enum failover_state; fw §7.2).
type ServerState uint8

// Server states. The numbers are ISC's (and 3.1+'s, which differ from
// 3.0.x). ISC never puts StateStartup on the wire: in startup it sends its
// saved state with ServerFlagStartup (fw §7.2).
const (
	StateUnknown                   ServerState = 0 // ISC-internal "unknown-state"
	StateStartup                   ServerState = 1
	StateNormal                    ServerState = 2
	StateCommunicationsInterrupted ServerState = 3
	StatePartnerDown               ServerState = 4
	StatePotentialConflict         ServerState = 5
	StateRecover                   ServerState = 6
	StatePaused                    ServerState = 7
	StateShutdown                  ServerState = 8
	StateRecoverDone               ServerState = 9
	StateResolutionInterrupted     ServerState = 10
	StateConflictDone              ServerState = 11
	// StateRecoverWait has no number in draft-12 (the state exists, §9.6);
	// ISC uses 254, as 3.0.x did (fw §7.2, §14 item 3).
	StateRecoverWait ServerState = 254
)

// serverStateNames are ISC's tokens for the states: the names it logs and
// writes in dhcpd.leases "my state …" lines (failover.c
// dhcp_failover_state_name_print, confpars.c parse_failover_state).
var serverStateNames = map[ServerState]string{
	StateUnknown:                   "unknown-state",
	StateStartup:                   "startup",
	StateNormal:                    "normal",
	StateCommunicationsInterrupted: "communications-interrupted",
	StatePartnerDown:               "partner-down",
	StatePotentialConflict:         "potential-conflict",
	StateRecover:                   "recover",
	StatePaused:                    "paused",
	StateShutdown:                  "shutdown",
	StateRecoverDone:               "recover-done",
	StateResolutionInterrupted:     "resolution-interrupted",
	StateConflictDone:              "conflict-done",
	StateRecoverWait:               "recover-wait",
}

// Valid reports whether s is a state ISC knows. ISC moves to shutdown when a
// peer reports any other value (fw §7.2), so the caller must check.
func (s ServerState) Valid() bool {
	_, ok := serverStateNames[s]
	return ok
}

// String returns ISC's token ("communications-interrupted"), or
// "unknown-state-N" for a value ISC does not define.
func (s ServerState) String() string {
	if n, ok := serverStateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("unknown-state-%d", uint8(s))
}

// ParseServerState reads one of ISC's state tokens, as found in
// dhcpd.leases and dhcpd.conf. ISC's lexer ignores case, so this does too.
func ParseServerState(name string) (ServerState, bool) {
	for s, n := range serverStateNames {
		if strings.EqualFold(n, name) {
			return s, true
		}
	}
	return StateUnknown, false
}

// ServerFlags is the server-flags option (draft §12.23).
type ServerFlags uint8

// ServerFlagStartup tells the peer that the sender is in STARTUP and the
// state it sends is the one it will resume (ISC FTF_SERVER_STARTUP; fw §7.2,
// §14 item 15).
const ServerFlagStartup ServerFlags = 0x01

// IPFlags is the IP-flags option: 2 bytes on the wire, although draft §12.12
// shows a length of 1 (fw §0 rule 5, §3).
type IPFlags uint16

// IP-flags bits (ISC FTF_IP_FLAG_*, includes/failover.h).
const (
	IPFlagReserved IPFlags = 0x0001 // the address is reserved for this client
	IPFlagBootp    IPFlags = 0x0002 // leased to a BOOTP client
)

// RejectReason is the reject-reason option (draft §12.21, ISC FTR_*;
// fw §3.2).
type RejectReason uint8

// Reject reasons. ISC emits only 1-8, 16, 18 and 19 (fw §3.2).
const (
	RejectIllegalIPAddr       RejectReason = 1
	RejectFatalConflict       RejectReason = 2
	RejectMissingBindInfo     RejectReason = 3
	RejectTimeMismatch        RejectReason = 4
	RejectInvalidMCLT         RejectReason = 5
	RejectMisc                RejectReason = 6
	RejectDuplicateConnection RejectReason = 7
	RejectInvalidPartner      RejectReason = 8
	RejectTLSUnsupported      RejectReason = 9
	RejectTLSUnconfigured     RejectReason = 10
	RejectTLSRequired         RejectReason = 11
	RejectDigestUnsupported   RejectReason = 12
	RejectDigestUnconfigured  RejectReason = 13
	RejectVersionMismatch     RejectReason = 14
	RejectOutdatedBindInfo    RejectReason = 15
	RejectLessCriticalInfo    RejectReason = 16
	RejectNoTraffic           RejectReason = 17
	RejectHBAConflict         RejectReason = 18
	RejectIPNotReserved       RejectReason = 19
	RejectDigestFailure       RejectReason = 20
	RejectMissingDigest       RejectReason = 21
	RejectUnknown             RejectReason = 254
)

var rejectReasonNames = map[RejectReason]string{
	RejectIllegalIPAddr:       "illegal IP address",
	RejectFatalConflict:       "fatal conflict",
	RejectMissingBindInfo:     "missing binding information",
	RejectTimeMismatch:        "time mismatch",
	RejectInvalidMCLT:         "invalid MCLT",
	RejectMisc:                "unknown reason",
	RejectDuplicateConnection: "duplicate connection",
	RejectInvalidPartner:      "invalid failover partner",
	RejectTLSUnsupported:      "TLS not supported",
	RejectTLSUnconfigured:     "TLS not configured",
	RejectTLSRequired:         "TLS required",
	RejectDigestUnsupported:   "message digest not supported",
	RejectDigestUnconfigured:  "message digest not configured",
	RejectVersionMismatch:     "protocol version mismatch",
	RejectOutdatedBindInfo:    "outdated binding information",
	RejectLessCriticalInfo:    "less critical binding information",
	RejectNoTraffic:           "no traffic",
	RejectHBAConflict:         "hash bucket assignment conflict",
	RejectIPNotReserved:       "IP not reserved",
	RejectDigestFailure:       "message digest compare failed",
	RejectMissingDigest:       "missing message digest",
	RejectUnknown:             "unknown error",
}

// String describes the reason in a few words, or "reject-reason-N".
func (r RejectReason) String() string {
	if n, ok := rejectReasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reject-reason-%d", uint8(r))
}

// BindingState is the binding-status option: the lease states of draft
// §12.3, numbered as ISC's and as internal/lease's (fw §7.1).
type BindingState = lease.BindingState

// OptionCode identifies an option (draft §12, ISC FTO_*; fw §3).
type OptionCode uint16

// Option codes 1..29. Codes ≥30 are vendor extensions (Microsoft uses
// 30-41) that ISC skips; so does this package (fw §3).
const (
	OptAddressesTransferred OptionCode = 1
	OptAssignedIPAddress    OptionCode = 2
	OptBindingStatus        OptionCode = 3
	OptClientIdentifier     OptionCode = 4
	OptClientHardwareAddr   OptionCode = 5
	OptCLTT                 OptionCode = 6
	OptClientReplyOptions   OptionCode = 7
	OptClientRequestOptions OptionCode = 8
	OptDDNS                 OptionCode = 9
	OptDelayedService       OptionCode = 10
	OptHBA                  OptionCode = 11
	OptIPFlags              OptionCode = 12
	OptLeaseExpiration      OptionCode = 13
	OptMaxUnacked           OptionCode = 14
	OptMCLT                 OptionCode = 15
	OptMessage              OptionCode = 16
	OptMessageDigest        OptionCode = 17
	OptPotentialExpiration  OptionCode = 18
	OptReceiveTimer         OptionCode = 19
	OptProtocolVersion      OptionCode = 20
	OptRejectReason         OptionCode = 21
	OptRelationshipName     OptionCode = 22
	OptServerFlags          OptionCode = 23
	OptServerState          OptionCode = 24
	OptSTOS                 OptionCode = 25
	OptTLSReply             OptionCode = 26
	OptTLSRequest           OptionCode = 27
	OptVendorClass          OptionCode = 28
	OptVendorOptions        OptionCode = 29
)

// maxKnownOption is ISC's FTO_MAX.
const maxKnownOption = OptVendorOptions

// optionInfo is one row of ISC's option table (server/stables.c ft_options
// and ft_sizes; fw §3): the name ISC logs and the exact length of a
// fixed-size option (0 = any length).
type optionInfo struct {
	name string
	size int
}

var optionTable = [...]optionInfo{
	OptAddressesTransferred: {"addresses-transferred", 4},
	OptAssignedIPAddress:    {"assigned-IP-address", 4},
	OptBindingStatus:        {"binding-status", 1},
	OptClientIdentifier:     {"client-identifier", 0},
	OptClientHardwareAddr:   {"client-hardware-address", 0},
	OptCLTT:                 {"client-last-transaction-time", 4},
	OptClientReplyOptions:   {"client-reply-options", 0},
	OptClientRequestOptions: {"client-request-options", 0},
	OptDDNS:                 {"DDNS", 0}, // never accepted, see decodeOption
	OptDelayedService:       {"delayed-service", 1},
	OptHBA:                  {"hash-bucket-assignment", 0},
	OptIPFlags:              {"IP-flags", 2},
	OptLeaseExpiration:      {"lease-expiration-time", 4},
	OptMaxUnacked:           {"max-unacked-bndupd", 4},
	OptMCLT:                 {"MCLT", 4},
	OptMessage:              {"message", 0},
	OptMessageDigest:        {"message-digest", 0},
	OptPotentialExpiration:  {"potential-expiration-time", 4},
	OptReceiveTimer:         {"receive-timer", 4},
	OptProtocolVersion:      {"protocol-version", 1},
	OptRejectReason:         {"reject-reason", 1},
	OptRelationshipName:     {"relationship-name", 0},
	OptServerFlags:          {"server-flags", 1},
	OptServerState:          {"server-state", 1},
	OptSTOS:                 {"start-time-of-state", 4},
	OptTLSReply:             {"TLS-reply", 1},
	OptTLSRequest:           {"TLS-request", 1},
	OptVendorClass:          {"vendor-class-identifier", 0},
	OptVendorOptions:        {"vendor-specific-options", 0},
}

// Known reports whether c is one of the options 1..29 ISC parses.
func (c OptionCode) Known() bool { return c >= 1 && c <= maxKnownOption }

// String returns the option's name as ISC logs it ("MCLT",
// "assigned-IP-address"), or "option-N" for codes ISC does not know.
func (c OptionCode) String() string {
	if c.Known() {
		return optionTable[c].name
	}
	return fmt.Sprintf("option-%d", uint16(c))
}

// fixedSize returns the exact length of a fixed-size option, or 0.
func (c OptionCode) fixedSize() int {
	if c.Known() {
		return optionTable[c].size
	}
	return 0
}
