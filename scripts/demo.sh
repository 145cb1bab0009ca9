#!/usr/bin/env bash
# Tandem's demo: builds the namespaces, starts Tandem on an example
# dhcpd.conf, lets real dhclients and a perfdhcp burst through a relay
# agent get addresses, prints who got what, Tandem's counters and log, and
# removes everything again (Ctrl-C included).
#
#   sudo scripts/demo.sh [-clients N] [-perf N] [-keep] [-dir DIR]
#
# It installs the DHCP test programs first (scripts/setup.sh), builds
# bin/tandem, then runs e2e/cmd/demo with `go run`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root to create network namespaces: sudo $0 $*" >&2
	exit 1
fi
command -v go >/dev/null || { echo "demo: go not found in PATH" >&2; exit 1; }

scripts/setup.sh
echo "demo: building bin/tandem" >&2
go build -o bin/tandem ./cmd/tandem
TANDEM_BIN="$PWD/bin/tandem" exec go run ./e2e/cmd/demo "$@"
