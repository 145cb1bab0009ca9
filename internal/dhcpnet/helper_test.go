package dhcpnet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// The network-namespace tests run the Conn in a helper process started with
// "ip netns exec": the whole process then lives in the server namespace, as
// the daemon would, and the lazily opened AF_PACKET sockets and interface
// reloads happen there whatever thread does them. The helper is this test
// binary, switched into helper mode by an environment variable; it takes
// JSON commands on stdin and answers each with one JSON line on stdout.

const helperEnv = "TANDEM_DHCPNET_HELPER"

type helperConfig struct {
	Port       uint16
	Interfaces []string
}

type helperCmd struct {
	Op        string // "send", "recv", "interfaces", "metrics", "quit"
	Replies   []Reply
	Count     int
	TimeoutMS int
}

type helperResp struct {
	Err        string             `json:",omitempty"`
	Sent       int                `json:",omitempty"`
	Packets    []Packet           `json:",omitempty"`
	Interfaces []Interface        `json:",omitempty"`
	Metrics    map[string]float64 `json:",omitempty"`
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		os.Exit(helperMain(cfg))
	}
	os.Exit(m.Run())
}

func helperMain(cfgJSON string) int {
	var cfg helperConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "helper config:", err)
		return 2
	}
	out := json.NewEncoder(os.Stdout)
	c, err := Listen(Config{Port: cfg.Port, Interfaces: cfg.Interfaces})
	if err != nil {
		out.Encode(helperResp{Err: err.Error()})
		return 1
	}
	defer c.Close()
	out.Encode(helperResp{Interfaces: c.Interfaces()})

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	pkts := make([]Packet, 16)
	for in.Scan() {
		var cmd helperCmd
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			out.Encode(helperResp{Err: err.Error()})
			continue
		}
		var r helperResp
		switch cmd.Op {
		case "quit":
			return 0
		case "send":
			n, err := c.SendBatch(cmd.Replies)
			r.Sent = n
			if err != nil {
				r.Err = err.Error()
			}
		case "recv":
			c.SetReadDeadline(time.Now().Add(time.Duration(cmd.TimeoutMS) * time.Millisecond))
			for len(r.Packets) < cmd.Count {
				n, err := c.ReadBatch(pkts)
				for _, p := range pkts[:n] {
					p.Data = bytes.Clone(p.Data)
					r.Packets = append(r.Packets, p)
				}
				if err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						r.Err = err.Error()
					}
					break
				}
			}
		case "interfaces":
			r.Interfaces = c.Interfaces()
		case "metrics":
			r.Metrics, err = counterValues(c.Metrics())
			if err != nil {
				r.Err = err.Error()
			}
		default:
			r.Err = "unknown op " + cmd.Op
		}
		out.Encode(r)
	}
	return 0
}
