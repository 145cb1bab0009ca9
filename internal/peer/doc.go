// Package peer is the TCP link between the two servers of a failover pair.
// It moves framed failover messages ([wire.Message]) and reports the link
// going up and down; it decides nothing about the protocol and sends
// nothing of its own. CONNECT/CONNECTACK, CONTACT keepalives, the receive
// timeout, STATE, binding updates and the rest belong to the failover state
// machine, which the server loop drives with the [Event]s a [Link] delivers
// and the messages it hands to [Link.Send].
//
// The behaviour follows ISC dhcpd 4.4, whose facts are collected in
// shared/reference/failover-wire.md ("fw §x"); draft section numbers are
// draft-ietf-dhc-failover-12's.
//
// # Connections
//
// Like ISC, both servers listen on address:port and dial peer-address:
// peer-port from address, whatever their role (fw §5; draft §8.2 wants only
// the primary's connection used, ISC does not care who dialled, nor does
// this package). An accepted connection is kept only if it comes from a
// peer address; others are closed at once.
//
// There is at most one link at a time. A server dials only while it has
// no link, so when a connection is established (accepted or dialled) while
// a link exists, one of the two must go at once, and both servers must
// choose the same one:
//
//   - If the side that dialled the link dials again, it has given the link
//     up (it restarted, or timed the link out): the new connection
//     replaces the link at once. (ISC keeps the link it holds and refuses
//     the new CONNECT with reason 7, although its comment there calls the
//     old link dead; a peer that restarted then waits until ISC's
//     max-response-delay ends the old one.)
//   - If the two were dialled by different sides, both servers dialled at
//     about the same time. The connection dialled by the server whose
//     listening address (IP, then port) is greater stays, on both sides;
//     the other is closed.
//
// The old link is reported Down (cause "replaced") before the new one
// comes Up, so the state machine never sees two connections. ISC settles
// the same race one layer up, rejecting the second CONNECT with reason 7
// (duplicate connection, fw §5). Keeping the first connection each side
// saw, which this package did before, ended both links whenever the two
// servers saw the connections in different orders.
//
// # Reconnecting
//
// After a link ends the dialler waits RedialInterval (5 s, ISC's delay
// after a drop, fw §5) before dialling again, unless the peer connects
// first. A failed dial is retried after RedialInterval too, doubling with
// each further failure up to RedialMax (30 s). ISC waits 90 s after a failed
// connect: after a partition heals, a pair of ISC servers can sit in
// communications-interrupted for up to a minute and a half before either
// redials. Retrying sooner costs one refused SYN per attempt on a LAN, and
// the cap keeps a long outage from flooding the log and the network. Each
// wait is stretched by up to a fifth at random so that two servers that
// lost their link together do not redial in lockstep.
//
// # Framing and errors
//
// Messages are framed by their 2-byte length (fw §1) and decoded with
// [wire.Unmarshal], which is as strict as ISC's decoder. A length outside
// 12..2048, or a message that does not decode, closes that link (ISC drops
// the connection too, fw §1, §3.1) with a log line naming the peer and the
// error; the process goes on and the link is redialled as usual.
//
// # Keepalive and receive timeout (fw §6)
//
// The link sends no CONTACT: the state machine sends them, every third of
// the peer's receive-timer without sending, and closes the link when
// nothing has arrived for its own max-response-delay, logging the timeout.
// Keepalives are requests with xids from the link's one counter (fw §1),
// and the state machine is the only one that holds that counter; when the
// transport kept the link alive too, each side sent more CONTACTs than
// ISC does, with xids that clashed with the state machine's.
//
// The link still closes a connection on which nothing has arrived for
// Config.ReceiveTimeout, but only as a backstop: were the caller to stop
// timing the link out, a half-open connection would be kept for ever, as
// no redial happens while a link exists. It is far beyond
// max-response-delay (twice it, and at least a minute) so that the state
// machine gets there first: it works in whole seconds, is ticked once a
// second and closes the link only after its lease-file write. When the
// backstop does fire it logs ISC's line "timeout waiting for failover peer
// NAME" and counts tandem_peer_receive_timeouts_total; a link the state
// machine timed out ends with cause "closed" after the state machine's own
// log line, so each timeout is logged once. The backstop runs only while the link waits on
// the socket: a server loop slow to take events does not make a talking
// peer look silent.
//
// # Transaction ids and time
//
// The caller chooses every xid: requests take the next value of its
// counter and responses echo the request's (fw §1). The link stamps the
// header's time with the clock at the moment the message is written,
// unless the caller set a time of its own.
//
// # Connection identity
//
// Every link gets a fresh [ConnID], carried by all its events. Send and
// Close name the connection they mean, and do nothing to any other: a
// BNDACK or CONNECTACK meant for a link that has just dropped must not
// leak onto its successor before the state machine has seen that successor
// come up and handshaken on it.
package peer
