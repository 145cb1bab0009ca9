#!/bin/bash
# Regenerates the ISC-written lease files under testdata by running the real
# ISC dhcpd 4.4 and dhclient in two private network namespaces joined by a
# veth pair (198.18.5.0/24). Needs root, iproute2, isc-dhcp-server and
# isc-dhcp-client. It creates and removes only its own namespaces and stops
# only the processes it started, by PID.
#
#   usage: gen-isc-leases.sh OUTDIR
#
# Writes OUTDIR/isc-4.4.leases (plain server: two clients, one release) and
# OUTDIR/isc-4.4-failover-primary.leases / -secondary.leases (a failover
# server whose partner never answers).
set -euo pipefail

out=$(realpath "${1:?usage: $0 OUTDIR}")
tag=lf$$
srv=${tag}s
cli=${tag}c
work=$(mktemp -d)
pids=()

cleanup() {
	local rc=$?
	if ((rc != 0)); then
		for f in "$work"/*.log "$work"/*.clog; do echo "--- $f"; cat "$f"; done >&2
	fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	ip netns del "$srv" 2>/dev/null || true
	ip netns del "$cli" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$srv"
ip netns add "$cli"
ip link add "${tag}a" netns "$srv" type veth peer name "${tag}b" netns "$cli"
ip -n "$srv" addr add 198.18.5.1/24 dev "${tag}a"
ip -n "$cli" addr add 198.18.5.2/24 dev "${tag}b"
for ns in "$srv" "$cli"; do ip -n "$ns" link set lo up; done
ip -n "$srv" link set "${tag}a" up
ip -n "$cli" link set "${tag}b" up
# Fixed MAC so the output is recognisable.
ip -n "$cli" link set "${tag}b" address 00:11:22:33:44:55

common='
authoritative;
ddns-update-style none;
ping-check false;
default-lease-time 600;
max-lease-time 7200;
'

# wait_for FILE PATTERN SECONDS: poll until FILE contains PATTERN.
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		if grep -q -- "$2" "$1" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "timeout waiting for '$2' in $1" >&2
	return 1
}

# start_dhcpd NAME CONF [SEED]: runs dhcpd in the server namespace on a
# lease file holding SEED.
start_dhcpd() {
	local name=$1
	printf '%s' "$2" >"$work/$name.conf"
	printf '%s' "${3:-}" >"$work/$name.leases"
	ip netns exec "$srv" dhcpd -4 -f -d -cf "$work/$name.conf" -lf "$work/$name.leases" \
		-pf "$work/$name.pid" "${tag}a" >"$work/$name.log" 2>&1 &
	pids+=($!)
	srv_pid=$!
	wait_for "$work/$name.log" "Sending on" 10
}

stop_pid() {
	kill "$1" 2>/dev/null || true
	local i
	for ((i = 0; i < 50; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null || true
}

# client MODE NAME CLIENTCONF: one dhclient run, stopped by PID afterwards.
# MODE bind waits for BOUND; release sends a DHCPRELEASE (dhclient -r);
# decline makes the hook fail, so dhclient declines the address it is given
# and the server abandons it.
client() {
	local mode=$1 name=$2 conf=$3 flags=() status=0
	printf '%s' "$conf" >"$work/$name.cconf"
	[[ $mode == release ]] && flags=(-r)
	[[ $mode == decline ]] && status=1
	# dhclient runs its hook with a clean environment: the log path is literal.
	printf '#!/bin/sh\necho "$reason $new_ip_address" >>%s\nexit %s\n' "$work/hook.log" "$status" >"$work/hook"
	chmod +x "$work/hook"
	ip netns exec "$cli" dhclient -1 -d "${flags[@]}" -cf "$work/$name.cconf" \
		-lf "$work/client.leases" -pf "$work/client.pid" -sf "$work/hook" "${tag}b" \
		>"$work/$name.clog" 2>&1 &
	local pid=$!
	pids+=($pid)
	if [[ $mode == bind ]]; then
		wait_for "$work/hook.log" "BOUND" 20
	else
		local i
		for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	: >"$work/hook.log"
	stop_pid "$pid"
}

# 1. A plain server; client A binds and releases, client B binds, client C
# declines.
start_dhcpd plain "$common
subnet 198.18.5.0 netmask 255.255.255.0 {
	range 198.18.5.100 198.18.5.110;
	on commit {
		set clip = binary-to-ascii(10, 8, \".\", leased-address);
		on expiry { log(info, \"expired\"); }
	}
}
"
client bind a 'send dhcp-client-identifier "\001\000\021\"3DU";
send host-name "client-a";
send vendor-class-identifier "lftest vci";
'
client release a-release 'send dhcp-client-identifier "\001\000\021\"3DU";'
client bind b 'send dhcp-client-identifier 1:0:11:22:33:44:56;
send host-name "client b";
'
rm -f "$work/client.leases"
client decline c 'send dhcp-client-identifier "client-c";'
wait_for "$work/plain.log" "abandoned" 10
stop_pid "$srv_pid"
cp "$work/plain.leases" "$out/isc-4.4.leases"

# 2. Failover servers whose partner (198.18.5.3) never answers: each writes
# its state block on every transition. With no state on file a server starts
# in recover and stays there without a partner; seeded with "normal" it goes
# startup -> communications-interrupted and serves.
for role in primary secondary; do
	if [[ $role == primary ]]; then
		extra='primary; mclt 1800; split 128;'
	else
		extra='secondary;'
	fi
	start_dhcpd "fo-$role" "$common
failover peer \"dhcp-failover\" {
	$extra
	address 198.18.5.1; port 647;
	peer address 198.18.5.3; peer port 647;
	max-response-delay 30;
	max-unacked-updates 10;
	load balance max seconds 3;
}
subnet 198.18.5.0 netmask 255.255.255.0 {
	pool {
		failover peer \"dhcp-failover\";
		range 198.18.5.100 198.18.5.103;
	}
}
" 'failover peer "dhcp-failover" state {
  my state normal at 4 2026/11/19 10:00:00;
  partner state normal at 4 2026/11/19 10:00:00;
}
'
	wait_for "$work/fo-$role.log" "I move from startup to communications-interrupted" 40
	if [[ $role == primary ]]; then
		rm -f "$work/client.leases" # a fresh DISCOVER, not a REBOOT of the old address
		client bind fo 'send dhcp-client-identifier "fo-client";
send host-name "fo-client";
'
	fi
	stop_pid "$srv_pid"
	cp "$work/fo-$role.leases" "$out/isc-4.4-failover-$role.leases"
	cp "$work/fo-$role.log" "$work/keep-$role.log"
done
echo "--- primary log"; cat "$work/keep-primary.log"
