package lab

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// OMAPIKey is the HMAC-MD5 key that guards ISC dhcpd's OMAPI listener.
// omshell signs every message with it; without a key anyone who can reach
// the port may change the server's failover state.
type OMAPIKey struct {
	// Name is the key's name in dhcpd.conf and in omshell's "key" command.
	Name string
	// Secret is the base64 secret.
	Secret string
}

// LabOMAPIKey is a fixed key for lab servers: the secret protects nothing
// outside a namespace, so it need not be random.
var LabOMAPIKey = OMAPIKey{Name: "omapi_key", Secret: "dGFuZGVtLWxhYi1vbWFwaS0x"}

// DefaultOMAPIPort is the port dhcpd.conf(5) uses in its examples.
const DefaultOMAPIPort = 7911

// DhcpdConf returns the global statements that open OMAPI on port and
// require this key: `omapi-port`, the `key` block and `omapi-key`.
// Tandem's configuration parser accepts them too, so a config carrying
// them can be handed to either server.
func (k OMAPIKey) DhcpdConf(port int) string {
	return fmt.Sprintf("omapi-port %d;\nkey %s {\n  algorithm hmac-md5;\n  secret \"%s\";\n}\nomapi-key %s;\n",
		port, k.Name, k.Secret, k.Name)
}

// ISCFailoverState numbers a failover state as ISC dhcpd 4.4's OMAPI
// failover-state object does (dhcpd(8), "local-state"; failover-wire.md
// §7.2). The 3.0.x numbering differs: there 1 was partner-down, in 4.4 it
// is startup, and a server set to it falls back after 15 s.
var ISCFailoverState = map[string]int{
	"startup":                    1,
	"normal":                     2,
	"communications-interrupted": 3,
	"partner-down":               4,
	"potential-conflict":         5,
	"recover":                    6,
	"paused":                     7,
	"shutdown":                   8,
	"recover-done":               9,
	"resolution-interrupted":     10,
	"conflict-done":              11,
	"recover-wait":               254,
}

// OMShell runs omshell on h against the OMAPI listener at 127.0.0.1:port
// (run it on the server's own host), authenticated with key. It sends the
// "server", "port", "key" and "connect" commands, then commands, and
// returns omshell's output. omshell exits 0 whatever happened to the
// commands, so an output line that reports a failure ("can't …",
// "not found", "not connected", …) is returned as an error.
func OMShell(h *Host, port int, key OMAPIKey, commands ...string) (string, error) {
	script := []string{
		"server 127.0.0.1",
		"port " + strconv.Itoa(port),
		fmt.Sprintf("key %s %s", key.Name, key.Secret),
		"connect",
	}
	script = append(script, commands...)
	out, err := h.RunInput(strings.Join(script, "\n")+"\n", "omshell")
	if err != nil {
		return out, err
	}
	if m := omshellFailure.FindString(out); m != "" {
		return out, fmt.Errorf("omshell on %s: %s; output:\n%s", h.Name, strings.TrimSpace(m), out)
	}
	return out, nil
}

var omshellFailure = regexp.MustCompile(`(?mi)^.*(can't|cannot|not found|not connected|no key|invalid|key unknown|failed|error).*$`)

// omapiLocalState matches the local-state attribute omshell prints after
// "open" or "update": an integer or 4 bytes of hex.
var omapiLocalState = regexp.MustCompile(`(?m)^local-state = (\S+)\s*$`)

// ParseOMAPIInt reads an integer attribute as omshell prints it: decimal,
// or colon-separated hex bytes (00:00:00:04).
func ParseOMAPIInt(s string) (int, error) {
	if strings.Contains(s, ":") {
		v := 0
		for _, b := range strings.Split(s, ":") {
			n, err := strconv.ParseUint(b, 16, 8)
			if err != nil {
				return 0, fmt.Errorf("omapi value %q: %v", s, err)
			}
			v = v<<8 | int(n)
		}
		return v, nil
	}
	return strconv.Atoi(s)
}

// SetFailoverState changes the local state of failover relationship peer
// through OMAPI, the way dhcpd(8) tells operators to force partner-down:
// open the failover-state object by name, set local-state, update. The
// config must open OMAPI with key on port (OMAPIKey.DhcpdConf). It returns
// the local-state omshell read back after the update.
func (d *ISCDhcpd) SetFailoverState(port int, key OMAPIKey, peer, state string) (int, error) {
	n, ok := ISCFailoverState[state]
	if !ok {
		return 0, fmt.Errorf("no ISC failover state %q", state)
	}
	out, err := OMShell(d.Host, port, key,
		"new failover-state",
		fmt.Sprintf("set name = %q", peer),
		"open",
		fmt.Sprintf("set local-state = %d", n),
		"update",
	)
	if err != nil {
		return 0, err
	}
	ms := omapiLocalState.FindAllStringSubmatch(out, -1)
	if len(ms) == 0 {
		return 0, fmt.Errorf("omshell on %s printed no local-state; output:\n%s", d.Host.Name, out)
	}
	got, err := ParseOMAPIInt(ms[len(ms)-1][1])
	if err != nil {
		return 0, err
	}
	return got, nil
}

// FailoverState reads the local-state of failover relationship peer
// through OMAPI.
func (d *ISCDhcpd) FailoverState(port int, key OMAPIKey, peer string) (int, error) {
	out, err := OMShell(d.Host, port, key,
		"new failover-state",
		fmt.Sprintf("set name = %q", peer),
		"open",
	)
	if err != nil {
		return 0, err
	}
	m := omapiLocalState.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("omshell on %s printed no local-state; output:\n%s", d.Host.Name, out)
	}
	return ParseOMAPIInt(m[1])
}
