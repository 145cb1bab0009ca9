package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors of MarshalBinary and AppendTo, wrapped with details.
var (
	// ErrTooLarge: the message would exceed MaxMessageLen, which ISC
	// refuses by closing the link (fw §1).
	ErrTooLarge = errors.New("message longer than 2048 bytes")
	// ErrNotIPv4: AssignedIP is not an IPv4 address.
	ErrNotIPv4 = errors.New("assigned-IP-address is not IPv4")
	// ErrRawKnownOption: an Unknown entry has a code 1..29, which must be
	// sent through its typed field (or, for DDNS, not at all).
	ErrRawKnownOption = errors.New("known option code in Unknown")
)

// iscOrder is the option order ISC's senders use for each message type
// (server/failover.c dhcp_failover_send_*; fw §4.1 for BNDUPD). BNDACK lists
// the fields ISC compiles out (DO_BNDACK_SHOULD_NOT) in their place, and
// BNDUPD/BNDACK end with the request/reply-option slots ISC leaves empty.
// Options a type's list lacks follow in code order.
var iscOrder = map[MessageType][]OptionCode{
	MsgPoolResp: {OptAddressesTransferred},
	MsgBndUpd: {OptAssignedIPAddress, OptBindingStatus, OptClientIdentifier,
		OptClientHardwareAddr, OptLeaseExpiration, OptPotentialExpiration,
		OptSTOS, OptCLTT, OptIPFlags, OptClientRequestOptions,
		OptClientReplyOptions},
	MsgBndAck: {OptAssignedIPAddress, OptBindingStatus, OptClientIdentifier,
		OptClientHardwareAddr, OptLeaseExpiration, OptPotentialExpiration,
		OptSTOS, OptCLTT, OptIPFlags, OptRejectReason, OptMessage,
		OptClientRequestOptions, OptClientReplyOptions},
	MsgConnect: {OptRelationshipName, OptMaxUnacked, OptReceiveTimer,
		OptVendorClass, OptProtocolVersion, OptTLSRequest, OptMCLT, OptHBA},
	MsgConnectAck: {OptRelationshipName, OptMaxUnacked, OptReceiveTimer,
		OptVendorClass, OptProtocolVersion, OptTLSReply, OptRejectReason,
		OptMessage},
	MsgState:      {OptServerState, OptServerFlags, OptSTOS},
	MsgDisconnect: {OptRejectReason, OptMessage},
}

// encodeOrders[t] is the full emission order for type t (index 0 serves
// every type without a list of its own).
var encodeOrders = buildEncodeOrders()

func buildEncodeOrders() [maxMessageType + 1][]OptionCode {
	var orders [maxMessageType + 1][]OptionCode
	for t := range orders {
		first := iscOrder[MessageType(t)]
		listed := make(map[OptionCode]bool, len(first))
		order := append([]OptionCode(nil), first...)
		for _, c := range first {
			listed[c] = true
		}
		for c := OptionCode(1); c <= maxKnownOption; c++ {
			if !listed[c] && c != OptDDNS {
				order = append(order, c)
			}
		}
		orders[t] = order
	}
	return orders
}

// MarshalBinary encodes m as ISC would send it (see AppendTo).
func (m *Message) MarshalBinary() ([]byte, error) {
	b, err := m.AppendTo(make([]byte, 0, 128))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendTo appends the encoded message to buf: the 12-byte header with the
// length counting the whole message and payload offset 12 (fw §1), then each
// present option once as code(2) length(2) data, big-endian (fw §3), in
// ISC's order for the type, then the Unknown options. It never emits DDNS
// (fw §3.3).
//
// It fails, returning buf unchanged, if the message would exceed
// MaxMessageLen, if AssignedIP is not IPv4, if Unknown holds a code 1..29,
// or if a type above DISCONNECT carries options (ISC's decoder calls that a
// protocol error, fw §1). Whatever AppendTo produces, Unmarshal decodes to an
// equal Message.
func (m *Message) AppendTo(buf []byte) ([]byte, error) {
	start := len(buf)
	out := append(buf, 0, 0, byte(m.Type), PayloadOffset)
	out = binary.BigEndian.AppendUint32(out, m.Time)
	out = binary.BigEndian.AppendUint32(out, m.XID)

	order := encodeOrders[0]
	if m.Type <= maxMessageType {
		order = encodeOrders[m.Type]
	}
	var err error
	for _, code := range order {
		if out, err = m.appendOption(out, code); err != nil {
			return buf[:start], fmt.Errorf("wire: encode %s: %w", m.Type, err)
		}
		if len(out)-start > MaxMessageLen {
			return buf[:start], fmt.Errorf("wire: encode %s: %w", m.Type, ErrTooLarge)
		}
	}
	for _, raw := range m.Unknown {
		if raw.Code.Known() {
			return buf[:start], fmt.Errorf("wire: encode %s: %w: %s (%d)",
				m.Type, ErrRawKnownOption, raw.Code, uint16(raw.Code))
		}
		if len(raw.Data) > MaxMessageLen {
			return buf[:start], fmt.Errorf("wire: encode %s: %w", m.Type, ErrTooLarge)
		}
		out = appendTLV(out, raw.Code, raw.Data)
		if len(out)-start > MaxMessageLen {
			return buf[:start], fmt.Errorf("wire: encode %s: %w", m.Type, ErrTooLarge)
		}
	}
	n := len(out) - start
	if m.Type > maxMessageType && n > HeaderLen {
		return buf[:start], fmt.Errorf("wire: encode %s: %w", m.Type, ErrMessageType)
	}
	binary.BigEndian.PutUint16(out[start:], uint16(n))
	return out, nil
}

func appendTLV[T ~[]byte | ~string](b []byte, code OptionCode, data T) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

func appendU8[T ~uint8](b []byte, code OptionCode, o Opt[T]) []byte {
	if !o.Present {
		return b
	}
	return appendTLV(b, code, []byte{byte(o.Value)})
}

func appendU16[T ~uint16](b []byte, code OptionCode, o Opt[T]) []byte {
	if !o.Present {
		return b
	}
	return appendTLV(b, code, binary.BigEndian.AppendUint16(nil, uint16(o.Value)))
}

func appendU32(b []byte, code OptionCode, o Opt[uint32]) []byte {
	if !o.Present {
		return b
	}
	return appendTLV(b, code, binary.BigEndian.AppendUint32(nil, o.Value))
}

// appendVar appends a variable-length option; data longer than a message
// can hold is refused before its length could wrap the 16-bit field.
func appendVar[T ~[]byte | ~string](b []byte, code OptionCode, o Opt[T]) ([]byte, error) {
	if !o.Present {
		return b, nil
	}
	if len(o.Value) > MaxMessageLen {
		return b, fmt.Errorf("%w: %s of %d bytes", ErrTooLarge, code, len(o.Value))
	}
	return appendTLV(b, code, o.Value), nil
}

// appendOption appends option code if m carries it.
func (m *Message) appendOption(b []byte, code OptionCode) ([]byte, error) {
	switch code {
	case OptAddressesTransferred:
		return appendU32(b, code, m.AddressesTransferred), nil
	case OptAssignedIPAddress:
		if !m.AssignedIP.Present {
			return b, nil
		}
		if !m.AssignedIP.Value.Is4() {
			return b, fmt.Errorf("%w: %v", ErrNotIPv4, m.AssignedIP.Value)
		}
		a := m.AssignedIP.Value.As4()
		return appendTLV(b, code, a[:]), nil
	case OptBindingStatus:
		return appendU8(b, code, m.BindingStatus), nil
	case OptClientIdentifier:
		return appendVar(b, code, m.ClientID)
	case OptClientHardwareAddr:
		return appendVar(b, code, m.CHAddr)
	case OptCLTT:
		return appendU32(b, code, m.CLTT), nil
	case OptClientReplyOptions:
		return appendVar(b, code, m.ClientReplyOptions)
	case OptClientRequestOptions:
		return appendVar(b, code, m.ClientRequestOptions)
	case OptDelayedService:
		return appendU8(b, code, m.DelayedService), nil
	case OptHBA:
		return appendVar(b, code, m.HBA)
	case OptIPFlags:
		return appendU16(b, code, m.IPFlags), nil
	case OptLeaseExpiration:
		return appendU32(b, code, m.LeaseExpiry), nil
	case OptMaxUnacked:
		return appendU32(b, code, m.MaxUnacked), nil
	case OptMCLT:
		return appendU32(b, code, m.MCLT), nil
	case OptMessage:
		return appendVar(b, code, m.MessageText)
	case OptMessageDigest:
		return appendVar(b, code, m.MessageDigest)
	case OptPotentialExpiration:
		return appendU32(b, code, m.PotentialExpiry), nil
	case OptReceiveTimer:
		return appendU32(b, code, m.ReceiveTimer), nil
	case OptProtocolVersion:
		return appendU8(b, code, m.ProtocolVersion), nil
	case OptRejectReason:
		return appendU8(b, code, m.RejectReason), nil
	case OptRelationshipName:
		return appendVar(b, code, m.RelationshipName)
	case OptServerFlags:
		return appendU8(b, code, m.ServerFlags), nil
	case OptServerState:
		return appendU8(b, code, m.ServerState), nil
	case OptSTOS:
		return appendU32(b, code, m.STOS), nil
	case OptTLSReply:
		return appendU8(b, code, m.TLSReply), nil
	case OptTLSRequest:
		return appendU8(b, code, m.TLSRequest), nil
	case OptVendorClass:
		return appendVar(b, code, m.VendorClass)
	case OptVendorOptions:
		return appendVar(b, code, m.VendorOptions)
	}
	// DDNS has no field (fw §3.3); nothing else reaches here.
	return b, nil
}
