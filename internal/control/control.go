// Package control is the operator's interface to a running Tandem: a small
// HTTP/JSON API on a local unix socket (tandem status, tandem state set,
// tandem leases) and its client. The server loop implements Backend; every
// call is answered by the loop itself, so the API never reads state the
// loop owns from another goroutine.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// DefaultSocket is where tandem serve listens unless told otherwise.
const DefaultSocket = "/run/tandem.sock"

// Status is the answer to "tandem status".
type Status struct {
	Version  string         `json:"version"`
	Started  time.Time      `json:"started"`
	Now      time.Time      `json:"now"`
	Failover []PeerStatus   `json:"failover,omitempty"`
	Pools    []PoolStatus   `json:"pools"`
	Counters map[string]int `json:"counters,omitempty"`
}

// PeerStatus is one failover relationship.
type PeerStatus struct {
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	LocalState   string    `json:"local_state"`
	LocalSince   time.Time `json:"local_since"`
	PartnerState string    `json:"partner_state"`
	PartnerSince time.Time `json:"partner_since"`
	Connected    bool      `json:"connected"`
	// LinkLost is why the last connection to the partner ended, and
	// LinkLostAt when (absent while none has).
	LinkLost       string     `json:"link_lost,omitempty"`
	LinkLostAt     *time.Time `json:"link_lost_at,omitempty"`
	MCLT           uint32     `json:"mclt"`
	PendingUpdates int        `json:"pending_updates"`
	UnackedUpdates int        `json:"unacked_updates"`
}

// PoolStatus counts a pool's leases by binding state.
type PoolStatus struct {
	Index        int            `json:"index"`
	Subnet       string         `json:"subnet"`
	Range        string         `json:"range"`
	FailoverPeer string         `json:"failover_peer,omitempty"`
	Size         int            `json:"size"`
	States       map[string]int `json:"states"`
}

// Lease is one lease as "tandem leases" shows it.
type Lease struct {
	Address  string    `json:"address"`
	State    string    `json:"state"`
	Hardware string    `json:"hardware,omitempty"`
	ClientID string    `json:"client_id,omitempty"`
	Hostname string    `json:"hostname,omitempty"`
	Starts   time.Time `json:"starts,omitempty"`
	Ends     time.Time `json:"ends,omitempty"`
}

// Backend is what the server offers operators.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	// SetFailoverState forces a relationship's local state, as ISC's OMAPI
	// "local-state" does (peer "" = the only relationship).
	SetFailoverState(ctx context.Context, peer, state string) error
	// Leases lists leases in a state ("" = all but never-used free ones).
	Leases(ctx context.Context, state string) ([]Lease, error)
}

// Serve answers the API on a unix socket until ctx is done. The socket is
// created with mode 0600: only root (or the server's user) may steer it.
func Serve(ctx context.Context, path string, b Backend, log *slog.Logger) error {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: Handler(b), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err = srv.Serve(ln)
	_ = os.Remove(path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler returns the API's HTTP handler.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Status(r.Context())
		reply(w, st, err)
	})
	mux.HandleFunc("POST /v1/failover/state", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Peer  string `json:"peer"`
			State string `json:"state"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		err := b.SetFailoverState(r.Context(), req.Peer, req.State)
		reply(w, map[string]string{"result": "ok"}, err)
	})
	mux.HandleFunc("GET /v1/leases", func(w http.ResponseWriter, r *http.Request) {
		ls, err := b.Leases(r.Context(), r.URL.Query().Get("state"))
		reply(w, ls, err)
	})
	return mux
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// Client talks to a server's control socket.
type Client struct {
	http *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{http: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

func (c *Client) do(method, path string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, "http://tandem"+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status asks for the server's status.
func (c *Client) Status() (Status, error) {
	var st Status
	err := c.do(http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// SetFailoverState forces a relationship's local state.
func (c *Client) SetFailoverState(peer, state string) error {
	b, _ := json.Marshal(map[string]string{"peer": peer, "state": state})
	var out map[string]string
	return c.do(http.MethodPost, "/v1/failover/state", bytes.NewReader(b), &out)
}

// Leases lists leases, optionally only those in one binding state.
func (c *Client) Leases(state string) ([]Lease, error) {
	var ls []Lease
	path := "/v1/leases"
	if state != "" {
		path += "?state=" + state
	}
	err := c.do(http.MethodGet, path, nil, &ls)
	return ls, err
}
