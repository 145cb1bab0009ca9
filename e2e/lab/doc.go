// Package lab builds throw-away network-namespace topologies and drives the
// real DHCP programs in them: ISC dhcpd, kea-dhcp4, dhclient and perfdhcp,
// and Tandem itself (NewTandem builds cmd/tandem once per process).
// Tandem's end-to-end tests, its demo and its benchmark stand on it.
//
// A lab is a bridge in a namespace of its own and one namespace per host,
// each joined to the bridge by a veth pair (eth0 inside the host):
//
//	srv1   198.18.0.1/24            route 198.19.0.0/16 via 198.18.0.3
//	srv2   198.18.0.2/24            route 198.19.0.0/16 via 198.18.0.3
//	relay  198.18.0.3/24 and 198.19.0.1/16 (perfdhcp -l 198.19.0.1 relays)
//	cli1…  no address until DHCP gives one
//
// AddSegment hangs a further client off a host (normally the relay host)
// on a veth pair of its own, for a real relay agent such as dhcrelay.
//
// Namespaces are named tdm<pid>-<n>-<host>, so parallel labs and labs of
// other processes never collide, and a lab whose process died without
// cleaning up is removed by the next New. Every process runs in its own
// process group and dies with the process that started it; Close (also
// registered with the owner's Cleanup) kills them and deletes the
// namespaces.
//
// Only addresses from 198.18.0.0/15 are used, and nothing leaves the
// namespaces. Creating namespaces needs root.
package lab
