package config

import (
	"fmt"
	"strings"
)

// fieldKind is one element of an option's value syntax. The kinds mirror
// the data types of dhcp-options(5) ("ip-address", "unsigned integer 16",
// "text", …) and ISC's internal format letters noted beside them.
type fieldKind int

const (
	fIP                   fieldKind = iota + 1 // I: 4 bytes
	fInt8                                      // b
	fUint8                                     // B
	fInt16                                     // s
	fUint16                                    // S
	fInt32                                     // l
	fUint32                                    // L
	fLeaseTime                                 // T: uint32 or "infinite"
	fFlag                                      // f: true/false/on/off, one byte
	fText                                      // t: quoted string or a single word, no NUL on the wire
	fBytes                                     // X: colon-separated hex bytes or a quoted string
	fDomain                                    // d: one domain name, RFC 1035 wire form
	fDomainList                                // D: comma-separated quoted names
	fDomainListCompressed                      // Dc: the same with RFC 1035 §4.1.4 compression
)

// optType is the value syntax of an option: a record of fields which may
// repeat as a comma-separated array (ISC's trailing 'A').
type optType struct {
	fields []fieldKind
	array  bool
}

func typ(array bool, f ...fieldKind) optType { return optType{fields: f, array: array} }

// optionDef names a DHCPv4 option (RFC 2132 and later RFCs, names as in
// dhcp-options(5)).
type optionDef struct {
	name string
	code uint8
	typ  optType
}

// standardOptions are the DHCPv4 options Tandem understands by name. The
// ones a server computes itself (lease time, message type, …) are listed in
// serverSetOptions instead. Encapsulated option spaces (43 as a space, 63,
// 81, 82, 124, 125) are not supported; 43 is accepted as raw bytes.
var standardOptions = []optionDef{
	{"subnet-mask", 1, typ(false, fIP)},
	{"time-offset", 2, typ(false, fInt32)},
	{"routers", 3, typ(true, fIP)},
	{"time-servers", 4, typ(true, fIP)},
	{"ien116-name-servers", 5, typ(true, fIP)},
	{"domain-name-servers", 6, typ(true, fIP)},
	{"log-servers", 7, typ(true, fIP)},
	{"cookie-servers", 8, typ(true, fIP)},
	{"lpr-servers", 9, typ(true, fIP)},
	{"impress-servers", 10, typ(true, fIP)},
	{"resource-location-servers", 11, typ(true, fIP)},
	{"host-name", 12, typ(false, fText)},
	{"boot-size", 13, typ(false, fUint16)},
	{"merit-dump", 14, typ(false, fText)},
	{"domain-name", 15, typ(false, fText)},
	{"swap-server", 16, typ(false, fIP)},
	{"root-path", 17, typ(false, fText)},
	{"extensions-path", 18, typ(false, fText)},
	{"ip-forwarding", 19, typ(false, fFlag)},
	{"non-local-source-routing", 20, typ(false, fFlag)},
	{"policy-filter", 21, typ(true, fIP, fIP)},
	{"max-dgram-reassembly", 22, typ(false, fUint16)},
	{"default-ip-ttl", 23, typ(false, fUint8)},
	{"path-mtu-aging-timeout", 24, typ(false, fUint32)},
	{"path-mtu-plateau-table", 25, typ(true, fUint16)},
	{"interface-mtu", 26, typ(false, fUint16)},
	{"all-subnets-local", 27, typ(false, fFlag)},
	{"broadcast-address", 28, typ(false, fIP)},
	{"perform-mask-discovery", 29, typ(false, fFlag)},
	{"mask-supplier", 30, typ(false, fFlag)},
	{"router-discovery", 31, typ(false, fFlag)},
	{"router-solicitation-address", 32, typ(false, fIP)},
	{"static-routes", 33, typ(true, fIP, fIP)},
	{"trailer-encapsulation", 34, typ(false, fFlag)},
	{"arp-cache-timeout", 35, typ(false, fUint32)},
	{"ieee802-3-encapsulation", 36, typ(false, fFlag)},
	{"default-tcp-ttl", 37, typ(false, fUint8)},
	{"tcp-keepalive-interval", 38, typ(false, fUint32)},
	{"tcp-keepalive-garbage", 39, typ(false, fFlag)},
	{"nis-domain", 40, typ(false, fText)},
	{"nis-servers", 41, typ(true, fIP)},
	{"ntp-servers", 42, typ(true, fIP)},
	{"vendor-encapsulated-options", 43, typ(false, fBytes)},
	{"netbios-name-servers", 44, typ(true, fIP)},
	{"netbios-dd-server", 45, typ(true, fIP)},
	{"netbios-node-type", 46, typ(false, fUint8)},
	{"netbios-scope", 47, typ(false, fText)},
	{"font-servers", 48, typ(true, fIP)},
	{"x-display-manager", 49, typ(true, fIP)},
	{"dhcp-message", 56, typ(false, fText)},
	{"dhcp-renewal-time", 58, typ(false, fUint32)},
	{"dhcp-rebinding-time", 59, typ(false, fUint32)},
	{"vendor-class-identifier", 60, typ(false, fBytes)},
	{"nwip-domain", 62, typ(false, fText)},
	{"nisplus-domain", 64, typ(false, fText)},
	{"nisplus-servers", 65, typ(true, fIP)},
	{"tftp-server-name", 66, typ(false, fText)},
	{"bootfile-name", 67, typ(false, fText)},
	{"mobile-ip-home-agent", 68, typ(true, fIP)},
	{"smtp-server", 69, typ(true, fIP)},
	{"pop-server", 70, typ(true, fIP)},
	{"nntp-server", 71, typ(true, fIP)},
	{"www-server", 72, typ(true, fIP)},
	{"finger-server", 73, typ(true, fIP)},
	{"irc-server", 74, typ(true, fIP)},
	{"streettalk-server", 75, typ(true, fIP)},
	{"streettalk-directory-assistance-server", 76, typ(true, fIP)},
	{"user-class", 77, typ(false, fText)},
	{"nds-servers", 85, typ(true, fIP)},
	{"nds-tree-name", 86, typ(false, fText)},
	{"nds-context", 87, typ(false, fText)},
	{"bcms-controller-names", 88, typ(false, fDomainList)},
	{"bcms-controller-address", 89, typ(true, fIP)},
	{"client-last-transaction-time", 91, typ(false, fUint32)},
	{"associated-ip", 92, typ(true, fIP)},
	{"pxe-system-type", 93, typ(true, fUint16)},
	{"pxe-interface-id", 94, typ(false, fUint8, fUint8, fUint8)},
	{"pxe-client-id", 97, typ(false, fUint8, fBytes)},
	{"uap-servers", 98, typ(false, fText)},
	{"geoconf-civic", 99, typ(false, fBytes)},
	{"pcode", 100, typ(false, fText)},
	{"tcode", 101, typ(false, fText)},
	{"v6-only-preferred", 108, typ(false, fUint32)},
	{"netinfo-server-address", 112, typ(true, fIP)},
	{"netinfo-server-tag", 113, typ(false, fText)},
	{"default-url", 114, typ(false, fText)},
	{"auto-config", 116, typ(false, fUint8)},
	{"name-service-search", 117, typ(true, fUint16)},
	{"subnet-selection", 118, typ(false, fIP)},
	{"domain-search", 119, typ(false, fDomainListCompressed)}, // RFC 3397
	{"pana-agent", 136, typ(true, fIP)},
	{"v4-lost", 137, typ(false, fDomain)},
	{"capwap-ac-v4", 138, typ(true, fIP)},
	{"sip-ua-cs-domains", 141, typ(false, fDomainListCompressed)},
	{"ipv4-address-andsf", 142, typ(true, fIP)},
	{"tftp-server-address", 150, typ(true, fIP)},
	{"v4-portparams", 159, typ(false, fUint8, fUint8, fUint16)},
	{"v4-captive-portal", 160, typ(false, fText)},
	{"loader-configfile", 209, typ(false, fText)},
	{"loader-pathprefix", 210, typ(false, fText)},
	{"loader-reboottime", 211, typ(false, fUint32)},
	{"v4-access-domain", 213, typ(false, fDomain)},
}

// serverSetOptions are options whose value the server decides per message;
// a configuration may not set them. The text says what to write instead.
var serverSetOptions = map[string]string{
	"dhcp-requested-address":      "it is sent by clients",
	"dhcp-lease-time":             "use default-lease-time, max-lease-time and min-lease-time",
	"dhcp-option-overload":        "the server decides overloading itself",
	"dhcp-message-type":           "the server sets it",
	"dhcp-parameter-request-list": "it is sent by clients; Tandem does not override it",
	"dhcp-max-message-size":       "it is sent by clients",
	"relay-agent-information":     "it is added by relay agents",
	"fqdn":                        "Tandem does no DNS updates",
	"slp-directory-agent":         "option 78 is not supported by Tandem",
	"slp-service-scope":           "option 79 is not supported by Tandem",
	"nwip-suboptions":             "encapsulated option spaces are not supported by Tandem",
	"vivco":                       "encapsulated option spaces are not supported by Tandem",
	"vivso":                       "encapsulated option spaces are not supported by Tandem",
}

// optionTable is the set of options known while parsing one configuration:
// the standard ones plus those defined with "option NAME code N = TYPE;".
type optionTable struct {
	byName map[string]*optionDef
}

func newOptionTable() *optionTable {
	t := &optionTable{byName: make(map[string]*optionDef, len(standardOptions))}
	for i := range standardOptions {
		d := standardOptions[i]
		t.byName[d.name] = &d
	}
	return t
}

func (t *optionTable) lookup(name string) *optionDef {
	return t.byName[strings.ToLower(name)]
}

// define adds or replaces an option definition, as ISC does for
// "option NAME code N = TYPE;" at global scope. A definition with the code
// of a standard option under another name replaces that name too, so one
// code never has two encodings.
func (t *optionTable) define(d optionDef) {
	for name, old := range t.byName {
		if old.code == d.code {
			delete(t.byName, name)
		}
	}
	t.byName[strings.ToLower(d.name)] = &d
}

// fixedSize is the wire size of a field kind, or 0 for variable length.
func (k fieldKind) fixedSize() int {
	switch k {
	case fIP, fInt32, fUint32, fLeaseTime:
		return 4
	case fInt16, fUint16:
		return 2
	case fInt8, fUint8, fFlag:
		return 1
	}
	return 0
}

// validate checks that variable-length fields come last and are not
// repeated: the wire format has no length prefix to find where they end.
func (t optType) validate() error {
	if len(t.fields) == 0 {
		return fmt.Errorf("empty option type")
	}
	for i, f := range t.fields {
		if f.fixedSize() == 0 && (i != len(t.fields)-1 || t.array) {
			return fmt.Errorf("text, string and domain types must be the last field and cannot be in an array")
		}
	}
	return nil
}

// encodeDomain appends the RFC 1035 §3.1 wire form of name to out. When
// known is non-nil, suffixes already present in out are replaced by
// compression pointers (RFC 1035 §4.1.4), as ISC does for domain-search
// (RFC 3397 §2); known maps lower-cased suffixes to their offsets in out.
func encodeDomain(out []byte, name string, known map[string]int) ([]byte, error) {
	name = strings.TrimSuffix(name, ".")
	var labels []string
	if name != "" {
		labels = strings.Split(name, ".")
	}
	total := 1
	for _, l := range labels {
		if l == "" {
			return nil, fmt.Errorf("domain name %q has an empty label", name)
		}
		if len(l) > 63 {
			return nil, fmt.Errorf("domain name %q has a label longer than 63 bytes", name)
		}
		total += 1 + len(l)
	}
	if total > 255 {
		return nil, fmt.Errorf("domain name %q is longer than 255 bytes", name)
	}
	for i := range labels {
		if known != nil {
			suffix := strings.ToLower(strings.Join(labels[i:], "."))
			if off, ok := known[suffix]; ok {
				return append(out, 0xc0|byte(off>>8), byte(off)), nil
			}
			// Offsets must fit the 14 bits of a pointer.
			if len(out) < 0x4000 {
				known[suffix] = len(out)
			}
		}
		out = append(out, byte(len(labels[i])))
		out = append(out, labels[i]...)
	}
	return append(out, 0), nil
}
