#!/usr/bin/env bash
# Installs the test dependencies (scripts/setup.sh), then vets and tests the
# whole module. The end-to-end tests build network namespaces and need
# root; as another user they skip. Extra arguments go to `go test`
# (e.g. -count=1, -run TestKea). The closing lines are go test's own.
set -euo pipefail
cd "$(dirname "$0")/.."

"$(dirname "$0")/setup.sh"

command -v go >/dev/null || { echo "test: go not found in PATH" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || echo "test: not root: network-namespace tests will skip" >&2

# Vet problems fail the run, but go test still runs so that its summary
# stays the last thing printed.
echo "test: go vet ./..." >&2
vet=0
go vet ./... || vet=$?
echo "test: go test ./..." >&2
status=0
go test -timeout 60m "$@" ./... || status=$?
if [ "$vet" -ne 0 ] && [ "$status" -eq 0 ]; then
	echo "FAIL (go vet reported problems above)"
	status=$vet
fi
exit "$status"
