// Package e2e holds Tandem's end-to-end tests: the real tandem binary in
// network namespaces (package lab) with real clients — ISC dhclient and
// dhcrelay, Kea's perfdhcp — and real faults such as kill -9 under load.
//
// The tests need root and the programs scripts/setup.sh installs; without
// them they skip. They are few and slow on purpose: each one checks what
// an operator would check by hand, against the wire and the lease file.
//
//	go test ./e2e/...
//
// TANDEM_LAB_DIR=/some/dir keeps every test's configs, lease files and
// process logs there after the run; TANDEM_BIN=path uses a tandem binary
// instead of building one.
package e2e
