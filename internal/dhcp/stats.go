package dhcp

import (
	"sync"
	"sync/atomic"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Stats counts what the handler saw and did. The server loop writes it
// and a metrics scrape reads it, so the counters are atomic.
type Stats struct {
	received [dhcpv4.MessageTypeInform + 1]atomic.Uint64
	sent     [dhcpv4.MessageTypeInform + 1]atomic.Uint64
	// Malformed counts packets that failed to decode (counted by the caller).
	Malformed atomic.Uint64

	mu    sync.Mutex
	drops map[string]uint64
	naks  map[string]uint64
}

func (s *Stats) countReceived(mt dhcpv4.MessageType) {
	if int(mt) < len(s.received) {
		s.received[mt].Add(1)
	}
}

func (s *Stats) countSent(mt dhcpv4.MessageType) {
	if int(mt) < len(s.sent) {
		s.sent[mt].Add(1)
	}
}

func (s *Stats) countDrop(reason string) {
	s.mu.Lock()
	if s.drops == nil {
		s.drops = make(map[string]uint64)
	}
	s.drops[reason]++
	s.mu.Unlock()
}

func (s *Stats) countNak(reason string) {
	s.mu.Lock()
	if s.naks == nil {
		s.naks = make(map[string]uint64)
	}
	s.naks[reason]++
	s.mu.Unlock()
}

// Received returns how many requests of a message type were handled
// (MessageTypeNone counts BOOTP).
func (s *Stats) Received(mt dhcpv4.MessageType) uint64 {
	if int(mt) < len(s.received) {
		return s.received[mt].Load()
	}
	return 0
}

// Sent returns how many replies of a message type were produced.
func (s *Stats) Sent(mt dhcpv4.MessageType) uint64 {
	if int(mt) < len(s.sent) {
		return s.sent[mt].Load()
	}
	return 0
}

// Drops returns a copy of the silent-drop counts by reason.
func (s *Stats) Drops() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]uint64, len(s.drops))
	for k, v := range s.drops {
		m[k] = v
	}
	return m
}

// Naks returns a copy of the NAK counts by reason.
func (s *Stats) Naks() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]uint64, len(s.naks))
	for k, v := range s.naks {
		m[k] = v
	}
	return m
}
