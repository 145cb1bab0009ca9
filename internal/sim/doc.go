// Package sim is a deterministic simulator of a Tandem failover pair: two
// servers, each running the real lease database (internal/lease), the real
// DHCP handler (internal/dhcp) and the real failover state machine
// (internal/failover), built from real dhcpd.conf text (internal/config),
// serving many simulated DHCP clients on a virtual clock, while faults
// happen: partitions, kill -9, restarts with or without the lease file,
// graceful shutdowns, operator-forced partner-down and clock skew. After
// every step the simulator checks the invariants of design.md.
//
// Everything random comes from one seed (math/rand/v2, PCG), and nothing
// else varies, so a seed replays its run exactly.
//
// # The model
//
// Time is a global clock in milliseconds. A server sees whole seconds of
// its own clock: global time plus a fixed skew of at most ±60 s, as the
// failover protocol sees timestamps (whole seconds, no skew correction,
// fw §1). Each server owns a "disk": the leases and the failover state
// record that reached durable storage. A server persists as
// internal/server does: the lease changes and the state record of a batch
// are appended and synced together (group commit, a few milliseconds
// later), and only then do the batch's DHCPACKs and failover messages
// leave. A crash (kill -9) loses what was not synced; a restart rebuilds
// the server from its disk, or from an empty one (a lost lease file).
//
// The link between the servers is one TCP connection at a time: messages
// of one direction arrive in order (a delay, never reordering), a
// partition silently drops what is in flight and everything after it, and
// each side learns of the loss later (a reset, or its own receive
// timeout). Messages travel encoded (wire.Message.MarshalBinary, then
// wire.Unmarshal), so what a node sends must survive the wire. Either
// side redials some seconds after a link ends, as internal/peer does.
//
// Clients run the RFC 2131 client state machine (§4.4): DISCOVER,
// collect offers, REQUEST, BOUND, RENEWING at T1 (unicast to their
// server), REBINDING at T2 (broadcast), expiry; they occasionally
// release, decline, go away and come back with INIT-REBOOT. A broadcast
// reaches every running server the client can reach; a partition may
// leave a client able to reach one server only.
//
// # The operator's contract
//
// Some faults are outside what any failover protocol can survive, and
// ISC's documentation tells operators to avoid them; the simulator does
// not inject them:
//
//   - partner-down is forced on a server only while its partner is really
//     down (crashed or stopped), and never on a server that lost its lease
//     file and has not yet resynchronised with its partner (it would serve
//     from an empty database);
//   - while a server is in (or saved) partner-down, its partner is started
//     only where the two can talk, and no partition starts while a server
//     is in startup: a server coming back must reach its partner before it
//     leaves startup (15 s), or it would serve from a stale state while the
//     partner uses its addresses. dhcpd.conf(5) warns of exactly this ("if
//     you put one server into the PARTNER-DOWN state, and then *that*
//     server goes down, and the other server comes back up, the other
//     server will not know ..."). A server that comes back in recover (after
//     a graceful shutdown, or without its lease file) serves no one before
//     it has talked to its partner and may start any time;
//   - the two servers never both lose their lease files before one of
//     them has resynchronised (the second loss would leave no record of
//     the leases clients hold);
//   - automatic partner-down (auto-partner-down) is off: ISC documents it
//     as unsafe when the partner may still be serving.
//
// # Invariants
//
// I1 (no duplicate): no address is held by two clients under leases both
// believe valid. A client believes from the DHCPACK it received until the
// lease time of that ACK has run from the (whole second of the) time it
// sent its REQUEST, the conservative rule of RFC 2131 §4.4.1; the server
// computed its end from a later time, so a single server's bookkeeping
// never ends before the client's belief.
//
// Clock skew can break I1 by itself, by a bounded amount: the partners
// exchange absolute times and apply no skew correction (ISC, fw §1, §14
// item 10), so a server whose clock runs d seconds ahead of its partner's
// takes a lease its partner granted to be over d seconds early (in
// partner-down reclaim, or accepting the partner's expiry). The protocol
// promises no more than that (CONNECT refuses a skew over 60 s). I1 is
// therefore checked with a margin of d = |skew(primary) - skew(secondary)|:
// two beliefs in one address violate I1 when the later one began more than
// d seconds before the earlier one ends. A third of the random schedules
// run without skew, where the margin is 0.
//
// I2 (MCLT): at every DHCPACK a server grants, the lease ends no later
// than MCLT after the later of now and the potential expiry its partner
// acknowledged (the lease's tsfp before the grant; fw §11); partner-down
// after STOS+MCLT is exempt. And that acknowledged potential expiry must
// be true: the partner must once have had at least that value durably
// recorded for the address (its tsfp or tstp on disk).
//
// I3 (durability): when a server crashes, every lease whose latest
// DHCPACK to its client came from that server, and which has not ended,
// is on its disk with the same client and an end no earlier than the ACK
// promised (less the skew margin, as for I1).
//
// I4 (partner's addresses): a server grants an address from its
// partner's free pool (BACKUP on the primary, FREE or ABANDONED on the
// secondary) only in partner-down, once MCLT has passed since it entered
// partner-down (its STOS) and since the lease's acknowledged potential
// expiry; and the partner has in fact not been serving for MCLT.
//
// I5 (convergence): after the faults stop, the network heals and both
// servers run, the pair reaches normal-normal and, at a moment when no
// update is queued, unacknowledged or in flight, both lease databases
// agree on every address: the same binding state; for an active lease
// the same client and end (within the skew margin: both servers may have
// answered one broadcast REQUEST, each computing the end on its own
// clock). Addresses whose lease ends within the skew
// margin (plus a few seconds) of now are in the middle of expiring and
// are left out.
//
// SVC: the DHCP handler ACKs a REQUEST only when the failover node's
// policy (Serve) would serve the client: never in startup, recover,
// conflict resolution, shutdown or paused (fw §7.2).
//
// Also lease.DB.Check (internal consistency) holds on both databases.
//
// # Running
//
//	go test ./internal/sim                              10,000 random schedules, scenarios, checks
//	go test ./internal/sim -run 'TestRandom$' -seed=N -v replay one schedule with its trace
//	go test ./internal/sim -run 'TestRandom$' -long      a million schedules
//	go test ./internal/sim -run 'TestRandom$' -large     20-200 clients, up to 2 h of faults
//	go test ./internal/sim -run 'TestRandom$' -survey -schedules=N   one line per failing seed, go on
//	go test ./internal/sim -run TestScenarios -rewrite   regenerate testdata/*.txt
//	go test ./internal/sim -run TestFixed -v                         reproductions of fixed bugs
//
// -workarounds=1 masks the known dhcp bug (WorkServeRequests) so that a
// survey can look past it; -events=N sets the length of the trace printed
// with a failure.
package sim
