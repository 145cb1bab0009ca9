package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The kinds of malformation the decoder reports. Each is a case where ISC's
// receiver logs a protocol error and closes the TCP connection
// (server/failover.c dhcp_failover_link_signal and do_a_failover_option;
// fw §1, §3.1), so a link that sees one should close too. Match them with
// errors.Is; errors.As gives the *DecodeError with the details.
var (
	// ErrLength: the length field is below 12 or above 2048, or does not
	// match the bytes given (fw §1).
	ErrLength = errors.New("bad message length")
	// ErrPayloadOffset: the payload offset is below 12, or beyond the end
	// of the message. ISC subtracts 12 from it unsigned, so a smaller value
	// would desynchronise its reader (fw §1).
	ErrPayloadOffset = errors.New("bad payload offset")
	// ErrMessageType: a type above DISCONNECT carries options (fw §1).
	ErrMessageType = errors.New("invalid message type")
	// ErrTruncatedOption: an option's code, length or data runs past the
	// end of the message ("message overflow" in ISC).
	ErrTruncatedOption = errors.New("truncated option")
	// ErrDuplicateOption: an option occurs twice (fw §0 rule 3).
	ErrDuplicateOption = errors.New("duplicate option")
	// ErrOptionSize: a fixed-size option has another length (fw §0 rule 5).
	ErrOptionSize = errors.New("wrong option size")
	// ErrDDNS: the DDNS option, which ISC cannot parse (fw §3.3).
	ErrDDNS = errors.New("DDNS option not supported")
)

// DecodeError describes a malformed message.
type DecodeError struct {
	Err    error       // one of the Err* kinds above
	Type   MessageType // the header's type, if the header was readable
	Offset int         // byte offset of the problem within the message
	Option OptionCode  // the option concerned, or 0
	Detail string
}

func (e *DecodeError) Error() string {
	s := fmt.Sprintf("failover message: %v", e.Err)
	if e.Option != 0 {
		s += fmt.Sprintf(" %s (%d)", e.Option, uint16(e.Option))
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s + fmt.Sprintf(" (type %s, offset %d)", e.Type, e.Offset)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// checkLength validates a message's length field (fw §1).
func checkLength(n int) error {
	if n < HeaderLen || n > MaxMessageLen {
		return &DecodeError{Err: ErrLength,
			Detail: fmt.Sprintf("length field %d outside %d..%d", n, HeaderLen, MaxMessageLen)}
	}
	return nil
}

// Unmarshal decodes one whole message, b being exactly its bytes (length
// field included). It never retains b.
//
// It is as strict as ISC's decoder (fw §1, §3.1): a bad length or payload
// offset, a truncated, duplicate or wrongly sized option, options on a type
// above DISCONNECT, or a DDNS option each give a *DecodeError. Header bytes
// between 12 and a larger payload offset are skipped, as ISC does. Options
// with unknown codes are kept in Unknown. Semantic checks that ISC answers
// with a reject rather than a disconnect are not done here; see
// CheckBindingUpdate.
func Unmarshal(b []byte) (*Message, error) {
	if len(b) < 2 {
		return nil, &DecodeError{Err: ErrLength,
			Detail: fmt.Sprintf("%d bytes, shorter than the length field", len(b))}
	}
	n := int(binary.BigEndian.Uint16(b))
	if err := checkLength(n); err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, &DecodeError{Err: ErrLength,
			Detail: fmt.Sprintf("length field %d but %d bytes given", n, len(b))}
	}
	m := &Message{
		Type: MessageType(b[2]),
		Time: binary.BigEndian.Uint32(b[4:]),
		XID:  binary.BigEndian.Uint32(b[8:]),
	}
	payoff := int(b[3])
	if payoff < HeaderLen || payoff > n {
		return nil, &DecodeError{Err: ErrPayloadOffset, Type: m.Type, Offset: 3,
			Detail: fmt.Sprintf("payload offset %d in a %d-byte message", payoff, n)}
	}
	if m.Type > maxMessageType && payoff < n {
		return nil, &DecodeError{Err: ErrMessageType, Type: m.Type, Offset: 2,
			Detail: "options on an undefined message type"}
	}

	var seen uint32 // bit c set once option c (1..29) was decoded
	for off := payoff; off < n; {
		if n-off < 4 {
			return nil, &DecodeError{Err: ErrTruncatedOption, Type: m.Type, Offset: off,
				Detail: fmt.Sprintf("%d bytes left for a 4-byte option header", n-off)}
		}
		code := OptionCode(binary.BigEndian.Uint16(b[off:]))
		olen := int(binary.BigEndian.Uint16(b[off+2:]))
		if olen > n-off-4 {
			return nil, &DecodeError{Err: ErrTruncatedOption, Type: m.Type, Offset: off, Option: code,
				Detail: fmt.Sprintf("length %d but %d bytes left", olen, n-off-4)}
		}
		data := b[off+4 : off+4+olen]
		if !code.Known() {
			m.Unknown = append(m.Unknown, RawOption{Code: code, Data: clone(data)})
			off += 4 + olen
			continue
		}
		if code == OptDDNS {
			return nil, &DecodeError{Err: ErrDDNS, Type: m.Type, Offset: off, Option: code,
				Detail: "ISC cannot parse it (ISC-Bugs #36996)"}
		}
		if seen&(1<<code) != 0 {
			return nil, &DecodeError{Err: ErrDuplicateOption, Type: m.Type, Offset: off, Option: code}
		}
		seen |= 1 << code
		if size := code.fixedSize(); size != 0 && olen != size {
			return nil, &DecodeError{Err: ErrOptionSize, Type: m.Type, Offset: off, Option: code,
				Detail: fmt.Sprintf("length %d, want %d", olen, size)}
		}
		m.setOption(code, data)
		off += 4 + olen
	}
	return m, nil
}

// clone copies data, never returning nil: a present option with no bytes
// stays distinguishable from an absent one.
func clone(data []byte) []byte { return append(make([]byte, 0, len(data)), data...) }

// setOption stores a known option whose size has been checked.
func (m *Message) setOption(code OptionCode, data []byte) {
	u32 := func() Opt[uint32] { return Some(binary.BigEndian.Uint32(data)) }
	switch code {
	case OptAddressesTransferred:
		m.AddressesTransferred = u32()
	case OptAssignedIPAddress:
		m.AssignedIP = Some(netip.AddrFrom4([4]byte(data)))
	case OptBindingStatus:
		m.BindingStatus = Some(BindingState(data[0]))
	case OptClientIdentifier:
		m.ClientID = Some(clone(data))
	case OptClientHardwareAddr:
		m.CHAddr = Some(clone(data))
	case OptCLTT:
		m.CLTT = u32()
	case OptClientReplyOptions:
		m.ClientReplyOptions = Some(clone(data))
	case OptClientRequestOptions:
		m.ClientRequestOptions = Some(clone(data))
	case OptDelayedService:
		m.DelayedService = Some(data[0])
	case OptHBA:
		m.HBA = Some(clone(data))
	case OptIPFlags:
		m.IPFlags = Some(IPFlags(binary.BigEndian.Uint16(data)))
	case OptLeaseExpiration:
		m.LeaseExpiry = u32()
	case OptMaxUnacked:
		m.MaxUnacked = u32()
	case OptMCLT:
		m.MCLT = u32()
	case OptMessage:
		m.MessageText = Some(string(data))
	case OptMessageDigest:
		m.MessageDigest = Some(clone(data))
	case OptPotentialExpiration:
		m.PotentialExpiry = u32()
	case OptReceiveTimer:
		m.ReceiveTimer = u32()
	case OptProtocolVersion:
		m.ProtocolVersion = Some(data[0])
	case OptRejectReason:
		m.RejectReason = Some(RejectReason(data[0]))
	case OptRelationshipName:
		m.RelationshipName = Some(string(data))
	case OptServerFlags:
		m.ServerFlags = Some(ServerFlags(data[0]))
	case OptServerState:
		m.ServerState = Some(ServerState(data[0]))
	case OptSTOS:
		m.STOS = u32()
	case OptTLSReply:
		m.TLSReply = Some(data[0])
	case OptTLSRequest:
		m.TLSRequest = Some(data[0])
	case OptVendorClass:
		m.VendorClass = Some(string(data))
	case OptVendorOptions:
		m.VendorOptions = Some(clone(data))
	}
}
