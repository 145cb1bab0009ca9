package server

import "github.com/tandemdhcp/tandem/internal/control"

// failoverStatus reports the failover relationships.
func (s *Server) failoverStatus() []control.PeerStatus { return nil }

// setFailoverState forces a relationship's state.
func (s *Server) setFailoverState(peer, state string) error { return errNoFailover }
