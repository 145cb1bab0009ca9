// Package leasefile reads and writes ISC dhcpd's lease file (dhcpd.leases,
// see dhcpd.leases(5)) durably.
//
// The file is a journal: every change of a lease or of a failover peer's
// state is appended as a whole record, and the last record for an address
// (or peer) wins. A Journal appends encoded records and makes a batch
// durable with one fsync (group commit); Compact rewrites the file through
// a temporary file and an atomic rename, as ISC does every hour.
//
// Load reads a file back. A kill -9 or power loss during an append leaves a
// torn last record: Load cuts it off (it was never synced, so no client was
// told about it) and says so in a warning. Damage anywhere else stops Load
// with the file and line, because the records after it may hold leases
// clients were promised.
//
// Mapping between dhcpd.leases and lease.Lease:
//
//   - Times are Unix seconds. An absent time statement is 0; "never" is
//     Never (math.MaxInt64). Written times use ISC's default
//     "W YYYY/MM/DD HH:MM:SS" in UTC; "epoch N" (db-time-format local) is
//     read too, and written for times a four-digit year cannot express.
//   - "binding state" absent leaves State as lease.StateNone (ISC guesses
//     from the clock; callers decide). "next binding state" and
//     "rewind binding state" absent mean "same as binding state", ISC's
//     rule in server/confpars.c; so StateNone in Next or Rewind is written as
//     absent and reads back as State.
//   - ISC reads an absent "tstp" as "tstp = ends"; this package reports what
//     the file says (0) and leaves that default to the caller.
//   - In a failover state record, a line that is absent leaves that field
//     as the peer's earlier record had it (ISC updates its in-memory state
//     line by line), and an empty state is written as an absent line. "at"
//     absent (an operator's hand edit such as "my state partner-down;")
//     reads as 0; ISC substitutes the current time. Records are kept for
//     every peer named, configured or not.
//
// Statements Tandem does not keep ("set", "on expiry", "option agent.…",
// "billing class") and records it does not keep (DHCPv6 ia-na/ia-ta/ia-pd,
// OMAPI host/group/class) are skipped and counted in Contents.Skipped; they
// are lost when the file is rewritten.
package leasefile
