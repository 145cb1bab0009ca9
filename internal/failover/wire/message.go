package wire

import "net/netip"

// Opt is an option that a message may or may not carry. The zero Opt is
// absent; build a present one with [Some].
type Opt[T any] struct {
	Value   T
	Present bool
}

// Some returns a present option holding v.
func Some[T any](v T) Opt[T] { return Opt[T]{Value: v, Present: true} }

// Get returns the value and whether the option is present.
func (o Opt[T]) Get() (T, bool) { return o.Value, o.Present }

// Or returns the value if present, else def.
func (o Opt[T]) Or(def T) T {
	if o.Present {
		return o.Value
	}
	return def
}

// RawOption is an option kept as it arrived: code, and data without the
// 4-byte code/length prefix.
type RawOption struct {
	Code OptionCode
	Data []byte
}

// Message is one failover message: the header fields and every option the
// draft defines (draft §6.1, §12; fw §1-§3).
//
// Each option appears at most once (fw §3.1). Times are Unix seconds as
// 32-bit unsigned integers, exactly as on the wire; ISC applies no clock-skew
// correction to them (fw §1).
//
// The DDNS option (9) has no field: ISC's decoder cannot parse it and drops
// the link, so it is never sent, and a peer that sends one is treated as
// ISC would treat a non-empty one: as a protocol error (fw §3.3).
//
// Which options a message should carry, and which ISC uses, is in fw §2;
// the decoder accepts every known option in every message type, like the
// draft and stricter than ISC, which drops the options it has no use for
// without looking at them (server/stables.c fto_allowed). ISC never sends
// such options.
type Message struct {
	Type MessageType
	// Time is the sender's clock (Unix seconds). ISC checks it only on
	// CONNECT and CONNECTACK, within ±60 s (fw §1).
	Time uint32
	// XID: a per-link counter starting at 0; a response echoes the
	// request's xid; ISC never uses 0 for a BNDUPD (fw §1).
	XID uint32

	// AddressesTransferred (1): in POOLRESP, the number of leases the sender
	// queued for the peer (fw §2).
	AddressesTransferred Opt[uint32]
	// AssignedIP (2): the lease's IPv4 address. Must be an IPv4 address to
	// encode; decoding always yields one.
	AssignedIP Opt[netip.Addr]
	// BindingStatus (3): the lease's binding state (fw §7.1).
	BindingStatus Opt[BindingState]
	// ClientID (4): raw contents of the client's option 61. ISC omits it
	// when the lease has no uid, and an absent ClientID in a non-free update
	// means the client sent none (fw §3, §4.2).
	ClientID Opt[[]byte]
	// CHAddr (5): ISC's layout: htype byte, then the hardware address.
	// ISC refuses (reject, not a protocol error) more than MaxCHADDRLen
	// bytes (fw §3; see CheckBindingUpdate).
	CHAddr Opt[[]byte]
	// CLTT (6): client last transaction time. ISC omits it when zero.
	CLTT Opt[uint32]
	// ClientReplyOptions (7) and ClientRequestOptions (8): ISC never sends
	// them and ignores them (fw §3).
	ClientReplyOptions   Opt[[]byte]
	ClientRequestOptions Opt[[]byte]
	// DelayedService (10): parsed by ISC and never used (fw §3).
	DelayedService Opt[uint8]
	// HBA (11): hash bucket assignment, CONNECT only. ISC requires exactly
	// HBALen bytes there and gives a set bit to the primary (fw §5, §8);
	// see HBAFromSplit.
	HBA Opt[[]byte]
	// IPFlags (12): RESERVED and BOOTP; ISC omits it when zero (fw §4.1).
	IPFlags Opt[IPFlags]
	// LeaseExpiry (13): the lease's end time.
	LeaseExpiry Opt[uint32]
	// MaxUnacked (14): how many BNDUPDs the sender accepts unacked.
	MaxUnacked Opt[uint32]
	// MCLT (15): maximum client lead time in seconds, from the primary's
	// CONNECT (fw §5).
	MCLT Opt[uint32]
	// MessageText (16): human-readable text, not NUL-terminated.
	MessageText Opt[string]
	// MessageDigest (17): ISC implements no authentication; it discards this
	// option and never sends one (fw §10).
	MessageDigest Opt[[]byte]
	// PotentialExpiry (18): the potential expiration time the sender may
	// grant up to (tstp in ISC's lease file).
	PotentialExpiry Opt[uint32]
	// ReceiveTimer (19): the sender's max-response-delay in seconds; ISC
	// sends CONTACT every third of the peer's value (fw §6).
	ReceiveTimer Opt[uint32]
	// ProtocolVersion (20): ISC sends ProtocolVersion and never checks it.
	ProtocolVersion Opt[uint8]
	// RejectReason (21): present means rejected.
	RejectReason Opt[RejectReason]
	// RelationshipName (22): the failover peer name, compared byte for byte
	// with the configured one; not NUL-terminated (fw §3, §5).
	RelationshipName Opt[string]
	// ServerFlags (23): ServerFlagStartup.
	ServerFlags Opt[ServerFlags]
	// ServerState (24): the sender's failover state (fw §7.2).
	ServerState Opt[ServerState]
	// STOS (25): in STATE, when the sender entered its state; in BNDUPD ISC
	// puts the lease's start time here, not the draft's binding-state start
	// (fw §4.1, §14 item 8).
	STOS Opt[uint32]
	// TLSReply (26) and TLSRequest (27): ISC supports no TLS and sends 0,
	// one byte each (fw §3, §5).
	TLSReply   Opt[uint8]
	TLSRequest Opt[uint8]
	// VendorClass (28): ISC sends "isc-" and its version, e.g.
	// "isc-4.4.3-P1" (fw §3).
	VendorClass Opt[string]
	// VendorOptions (29): ignored by ISC.
	VendorOptions Opt[[]byte]

	// Unknown holds the options with codes ISC does not know (0, ≥30), in
	// the order they arrived, for logging; ISC skips them (fw §3). They are
	// encoded after the known options.
	Unknown []RawOption
}
