package leasefile

import (
	"math"
	"strconv"

	"github.com/tandemdhcp/tandem/internal/lease"
)

// Never is the time ISC writes as "never" (its MAX_TIME): a lease that does
// not end.
const Never int64 = math.MaxInt64

// Header is what ISC writes at the top of every new lease file
// (server/db.c new_lease_file), with Tandem's name. authoring-byte-order
// only matters for DHCPv6 IA records, which Tandem never writes.
const Header = "# The format of this file is documented in the dhcpd.leases(5) manual page.\n" +
	"# This lease file was written by tandem\n\n" +
	"# authoring-byte-order entry is generated, DO NOT DELETE\n" +
	"authoring-byte-order little-endian;\n\n"

// lastDateTime is 9999-12-31 23:59:59 UTC: the last time the date form can
// write with a four-digit year. Later (and negative) times are written as
// "epoch N", which ISC reads too.
const lastDateTime = 253402300799

// AppendLease appends l as one dhcpd.leases record, in the order and form of
// ISC's write_lease (server/db.c): times that are 0 are left out, Never is
// "never"; "next binding state" and "rewind binding state" only when they
// differ from "binding state". FlagDynamicRange is not written: it comes
// from the configuration.
func AppendLease(buf []byte, l *lease.Lease) []byte {
	buf = append(buf, "lease "...)
	buf = appendIPv4(buf, l.IP)
	buf = append(buf, " {"...)
	buf = appendTimeStatement(buf, "\n  starts ", l.Starts)
	buf = appendTimeStatement(buf, "\n  ends ", l.Ends)
	buf = appendTimeStatement(buf, "\n  tstp ", l.TSTP)
	buf = appendTimeStatement(buf, "\n  tsfp ", l.TSFP)
	buf = appendTimeStatement(buf, "\n  atsfp ", l.ATSFP)
	buf = appendTimeStatement(buf, "\n  cltt ", l.CLTT)
	if l.State != lease.StateNone {
		buf = append(buf, "\n  binding state "...)
		buf = append(buf, stateName(l.State)...)
		buf = append(buf, ';')
	}
	if l.Next != lease.StateNone && l.Next != l.State {
		buf = append(buf, "\n  next binding state "...)
		buf = append(buf, stateName(l.Next)...)
		buf = append(buf, ';')
	}
	// ISC leaves out a rewind state it cannot name: the reader then takes
	// the binding state, the conservative choice.
	if validState(l.Rewind) && l.Rewind != l.State {
		buf = append(buf, "\n  rewind binding state "...)
		buf = append(buf, l.Rewind.String()...)
		buf = append(buf, ';')
	}
	if l.Flags&lease.FlagReserved != 0 {
		buf = append(buf, "\n  reserved;"...)
	}
	if l.Flags&lease.FlagBootp != 0 {
		buf = append(buf, "\n  dynamic-bootp;"...)
	}
	if l.HType != 0 || l.HLen != 0 {
		buf = append(buf, "\n  hardware "...)
		buf = appendHardwareType(buf, l.HType)
		n := min(int(l.HLen), len(l.HAddr))
		if n > 0 {
			buf = append(buf, ' ')
			buf = appendHexColon(buf, l.HAddr[:n])
		}
		buf = append(buf, ';')
	}
	if l.ClientID != "" {
		buf = append(buf, "\n  uid "...)
		buf = appendQuoted(buf, l.ClientID)
		buf = append(buf, ';')
	}
	if l.Hostname != "" {
		// ISC leaves out a hostname with unprintable bytes; escaping it
		// keeps it, and ISC's reader decodes the escapes.
		buf = append(buf, "\n  client-hostname "...)
		buf = appendQuoted(buf, l.Hostname)
		buf = append(buf, ';')
	}
	return append(buf, "\n}\n"...)
}

// AppendFailoverState appends r as a "failover peer … state" record in the
// form of ISC's write_failover_state (server/db.c; failover-wire.md §13).
// An empty state leaves its line out, which ISC's reader takes as "no
// change"; MCLT 0 is left out (ISC writes mclt on the secondary only).
func AppendFailoverState(buf []byte, r *lease.FailoverStateRecord) []byte {
	buf = append(buf, "\nfailover peer "...)
	buf = appendQuoted(buf, r.Peer)
	buf = append(buf, " state {"...)
	if r.MyState != "" {
		buf = append(buf, "\n  my state "...)
		buf = append(buf, r.MyState...)
		buf = append(buf, " at "...)
		buf = appendTime(buf, r.MyStateAt)
	}
	if r.PartnerState != "" {
		buf = append(buf, "\n  partner state "...)
		buf = append(buf, r.PartnerState...)
		buf = append(buf, " at "...)
		buf = appendTime(buf, r.PartnerAt)
	}
	if r.MCLT != 0 {
		buf = append(buf, "\n  mclt "...)
		buf = strconv.AppendUint(buf, uint64(r.MCLT), 10)
		buf = append(buf, ';')
	}
	return append(buf, "\n}\n"...)
}

func validState(s lease.BindingState) bool {
	return s >= lease.Free && s <= lease.Backup
}

// stateName names s as ISC's write_lease does: a state out of range is
// written as "abandoned", so that nobody hands the address out.
func stateName(s lease.BindingState) string {
	if !validState(s) {
		return "abandoned"
	}
	return s.String()
}

func appendTimeStatement(buf []byte, prefix string, t int64) []byte {
	if t == 0 {
		return buf
	}
	buf = append(buf, prefix...)
	return appendTime(buf, t)
}

// appendTime appends t and the statement's semicolon: "never;",
// "W YYYY/MM/DD HH:MM:SS;" (UTC, W = weekday 0..6 with 0 = Sunday) or
// "epoch N;".
func appendTime(buf []byte, t int64) []byte {
	switch {
	case t == Never:
		return append(buf, "never;"...)
	case t < 0 || t > lastDateTime:
		buf = append(buf, "epoch "...)
		buf = strconv.AppendInt(buf, t, 10)
		return append(buf, ';')
	}
	days := t / 86400
	secs := t % 86400
	y, m, d := civilFromDays(days)
	buf = append(buf, byte('0'+(days+4)%7), ' ') // 1970-01-01 was a Thursday
	buf = append(buf, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '/')
	buf = append2(buf, m)
	buf = append(buf, '/')
	buf = append2(buf, d)
	buf = append(buf, ' ')
	buf = append2(buf, int(secs/3600))
	buf = append(buf, ':')
	buf = append2(buf, int(secs/60%60))
	buf = append(buf, ':')
	buf = append2(buf, int(secs%60))
	return append(buf, ';')
}

func append2(buf []byte, v int) []byte {
	return append(buf, byte('0'+v/10), byte('0'+v%10))
}

// civilFromDays converts days since 1970-01-01 to a proleptic Gregorian
// date (Howard Hinnant's days_from_civil inverse).
func civilFromDays(z int64) (year, month, day int) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		month = int(mp + 3)
	} else {
		month = int(mp - 9)
	}
	if month <= 2 {
		y++
	}
	return int(y), month, day
}

// daysFromCivil converts a proleptic Gregorian date to days since
// 1970-01-01.
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := int64(m + 9)
	if m > 2 {
		mp = int64(m - 3)
	}
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func appendIPv4(buf []byte, ip uint32) []byte {
	for i := 3; i >= 0; i-- {
		buf = strconv.AppendUint(buf, uint64(byte(ip>>(8*i))), 10)
		if i > 0 {
			buf = append(buf, '.')
		}
	}
	return buf
}

const hexDigits = "0123456789abcdef"

// appendHexColon writes bytes as ISC's print_hw_addr does: two lowercase
// hex digits each, separated by colons.
func appendHexColon(buf []byte, b []byte) []byte {
	for i, c := range b {
		if i > 0 {
			buf = append(buf, ':')
		}
		buf = append(buf, hexDigits[c>>4], hexDigits[c&15])
	}
	return buf
}

// Hardware type names of ISC's hardware_types table (common/tables.c);
// every other type is "unknown-N".
var hardwareTypeNames = map[uint8]string{
	1:  "ethernet",
	6:  "token-ring",
	8:  "fddi",
	32: "infiniband",
}

func appendHardwareType(buf []byte, t uint8) []byte {
	if t == 1 { // the common case, without the map lookup
		return append(buf, "ethernet"...)
	}
	if name, ok := hardwareTypeNames[t]; ok {
		return append(buf, name...)
	}
	buf = append(buf, "unknown-"...)
	return strconv.AppendUint(buf, uint64(t), 10)
}

// appendQuoted writes s as a quoted string the way ISC's quotify_buf does:
// printable ASCII as is, '"' and '\' behind a backslash, every other byte
// as a three-digit octal escape. This is also how ISC 4.4 writes uid with
// its default lease-id-format (octal).
func appendQuoted(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20 || c > 0x7e:
			buf = append(buf, '\\', '0'+c>>6, '0'+c>>3&7, '0'+c&7)
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"')
}
