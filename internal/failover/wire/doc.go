// Package wire encodes and decodes DHCP failover messages exactly as ISC
// dhcpd 4.4 puts them on its TCP link (port 647).
//
// The protocol is draft-ietf-dhc-failover-12 ("the draft"; section numbers
// below are "draft §x.y") in ISC's dialect. The facts this package relies on
// are collected, with ISC source references, in
// shared/reference/failover-wire.md ("fw §x"). Where ISC and the draft
// disagree this package follows ISC, because the peer it must interoperate
// with is ISC dhcpd:
//
//   - the payload offset is 12, not 8 (fw §1);
//   - IP-flags is 2 bytes, not 1 (fw §3);
//   - RECOVER-WAIT is 254 (fw §7.2);
//   - a set HBA bit means the primary serves the bucket (fw §8);
//   - an option may occur at most once per message, so there is no batching
//     of binding updates (fw §3.1);
//   - the DDNS option (9) is neither sent nor accepted, because ISC cannot
//     parse it (fw §3.3).
//
// The package does no I/O beyond reading an io.Reader in [Reader], keeps no
// state and never panics on any input: everything a peer sends is untrusted.
package wire
