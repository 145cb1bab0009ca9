#!/usr/bin/env bash
# Runs Tandem's benchmark against ISC dhcpd and Kea: first scripts/setup.sh
# (installs or checks the DHCP programs, safely), then `go run ./bench`
# with this script's arguments, e.g. bench/run.sh -quick. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec go run ./bench "$@"
