#!/usr/bin/env bash
# Tandem's demo: builds the namespaces, starts a failover pair of Tandems
# on examples/classic (primary.conf and secondary.conf, both including
# shared.conf), waits until both are normal, lets real dhclients and a
# perfdhcp burst through a relay agent (which sends every request to both
# servers) get addresses, prints who got which address from which server,
# both servers' failover states, pool splits, counters and failover log
# lines, and removes everything again (Ctrl-C included).
#
#   sudo scripts/demo.sh [-failover kill|stop] [-mode pair|single] [-clients N] [-perf N] [-keep] [-dir DIR]
#
#   -failover kill   afterwards kill -9 the primary, show the secondary
#                    serving alone (communications-interrupted), restart it
#   -failover stop   afterwards SIGTERM the primary: the secondary goes
#                    partner-down by itself and serves alone
#   -mode single     one server on examples/single.conf instead of the pair
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
