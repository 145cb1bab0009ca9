#!/usr/bin/env bash
# Installs what Tandem's end-to-end tests, demo and benchmark need on a
# Debian 12 machine that has Go and gcc: ISC dhcpd, dhclient and dhcrelay,
# Kea's kea-dhcp4 and perfdhcp, nftables, iproute2, libfaketime (tshark if
# it can). libfaketime skews ISC dhcpd's clock in the clock-skew tests, as
# network namespaces share the one real clock.
#
# The DHCP servers must only ever run inside the test namespaces. Debian
# starts a service when its package is installed, so a policy-rc.d that
# forbids starting services is in place while apt runs, the services are
# disabled at boot, and afterwards no DHCP server may be running in this
# machine's own network namespace.
#
# Idempotent; when everything is installed it only checks, in about a second.
# Environment: TANDEM_SETUP_TSHARK=1 installs tshark even when nothing else
# is missing.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "run as root (or install sudo)"
	SUDO=sudo
fi

required_pkgs=(isc-dhcp-client isc-dhcp-server isc-dhcp-relay kea-dhcp4-server kea-admin nftables iproute2 faketime)
required_cmds=(dhclient dhcpd dhcrelay kea-dhcp4 perfdhcp nft ip faketime)
optional_pkgs=(tshark)

pkg_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

cmd_present() {
	# The daemons live in /usr/sbin, which a non-root PATH may lack.
	PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null
}

missing=()
for p in "${required_pkgs[@]}"; do
	pkg_installed "$p" || missing+=("$p")
done
for c in "${required_cmds[@]}"; do
	if ! cmd_present "$c"; then
		log "command $c not found"
		# Reinstalling the packages is the remedy; which one holds it does
		# not matter here.
		[ ${#missing[@]} -gt 0 ] || missing+=("${required_pkgs[@]}")
	fi
done

want_optional=()
for p in "${optional_pkgs[@]}"; do
	pkg_installed "$p" || want_optional+=("$p")
done

install_with_policy() {
	# Forbid service starts for the duration of the install (invoke-rc.d
	# consults /usr/sbin/policy-rc.d; 101 = action forbidden), restoring
	# whatever policy was there before.
	# Globals, not locals: the EXIT trap may run after this function has
	# been left by a failing apt-get.
	policy=/usr/sbin/policy-rc.d
	backup=
	if [ -e "$policy" ]; then
		backup=$(mktemp)
		$SUDO cp -p "$policy" "$backup"
	fi
	restore_policy() {
		if [ -n "$backup" ]; then
			$SUDO cp -p "$backup" "$policy"
			rm -f "$backup"
		else
			$SUDO rm -f "$policy"
		fi
	}
	trap restore_policy EXIT
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
	$SUDO chmod 755 "$policy"

	export DEBIAN_FRONTEND=noninteractive
	local apt=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -y
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	log "apt-get update"
	"${apt[@]}" update
	if [ $# -gt 0 ]; then
		log "installing $*"
		"${apt[@]}" install --no-install-recommends "$@"
	fi
	for p in "${want_optional[@]}"; do
		log "installing optional $p"
		"${apt[@]}" install --no-install-recommends "$p" || log "optional $p not installed; continuing"
	done

	restore_policy
	trap - EXIT
}

if [ ${#missing[@]} -gt 0 ]; then
	install_with_policy "${missing[@]}"
elif [ ${#want_optional[@]} -gt 0 ] && [ "${TANDEM_SETUP_TSHARK:-}" = 1 ]; then
	install_with_policy
else
	log "required packages already installed"
	[ ${#want_optional[@]} -eq 0 ] || log "optional ${want_optional[*]} missing (TANDEM_SETUP_TSHARK=1 installs it)"
fi

for c in "${required_cmds[@]}"; do
	cmd_present "$c" || die "command $c still missing after install"
done

# The packaged services must not start at boot on the real interface, nor
# when a later upgrade runs invoke-rc.d (which honours disabled services).
services=(isc-dhcp-server isc-dhcp-server6 isc-dhcp-relay kea-dhcp4-server kea-dhcp6-server kea-ctrl-agent kea-dhcp-ddns-server)
for svc in "${services[@]}"; do
	if [ -e "/etc/init.d/$svc" ] && compgen -G "/etc/rc[2-5].d/S??$svc" >/dev/null; then
		log "disabling $svc at boot (init script links)"
		$SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || log "could not disable $svc"
	fi
done
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	for svc in "${services[@]}"; do
		if [ "$(systemctl is-enabled "$svc" 2>/dev/null || true)" = enabled ]; then
			log "disabling $svc at boot (systemd)"
			$SUDO systemctl disable "$svc" >/dev/null 2>&1 || log "could not disable $svc"
		fi
	done
fi

# AppArmor profiles shipped with these packages confine the daemons to
# /etc/dhcp, /var/lib/dhcp and friends; the lab keeps configs, leases and
# hook scripts in per-test directories, so the profiles must not apply.
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || true)" = Y ] && command -v apparmor_parser >/dev/null; then
	for prof in usr.sbin.dhcpd sbin.dhclient usr.sbin.kea-dhcp4; do
		f=/etc/apparmor.d/$prof
		[ -e "$f" ] || continue
		if [ ! -e "/etc/apparmor.d/disable/$prof" ]; then
			log "disabling AppArmor profile $prof (the lab runs it on files outside its allowed paths)"
			$SUDO mkdir -p /etc/apparmor.d/disable
			$SUDO ln -sf "$f" "/etc/apparmor.d/disable/$prof"
		fi
		$SUDO apparmor_parser -R "$f" >/dev/null 2>&1 || true
	done
fi

# No DHCP server may run in this machine's own network namespace. Servers
# in other namespaces (test labs) are not ours to judge. A packaged server
# that slipped through is stopped by the PID in its package's PID file;
# anything else is reported, never killed.
own_ns=$(readlink /proc/self/ns/net)
pidfiles=(/run/dhcpd.pid /var/run/dhcpd.pid /run/dhcp-server/dhcpd.pid /run/dhcpd6.pid
	/run/dhcrelay.pid /var/run/dhcrelay.pid
	/run/kea/kea-dhcp4.kea-dhcp4.pid /run/kea/kea-dhcp6.kea-dhcp6.pid
	/run/kea/kea-ctrl-agent.kea-ctrl-agent.pid /run/kea/kea-dhcp-ddns.kea-dhcp-ddns.pid)

servers_in_own_ns() {
	local d pid comm
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		read -r comm 2>/dev/null <"$d/comm" || continue
		case "$comm" in
		dhcpd | dhcrelay | kea-dhcp4 | kea-dhcp6 | kea-ctrl-agent | kea-dhcp-ddns) ;;
		*) continue ;;
		esac
		[ "$($SUDO readlink "$d/ns/net" 2>/dev/null)" = "$own_ns" ] || continue
		printf '%s %s\n' "$pid" "$comm"
	done
}

stray=$(servers_in_own_ns)
if [ -n "$stray" ]; then
	while read -r pid comm; do
		owned=
		for f in "${pidfiles[@]}"; do
			if [ -r "$f" ] && [ "$(tr -d ' \n' <"$f")" = "$pid" ]; then
				owned=$f
			fi
		done
		if [ -n "$owned" ]; then
			log "stopping packaged $comm (pid $pid from $owned)"
			$SUDO kill -TERM "$pid" || true
			for _ in $(seq 50); do
				[ -d "/proc/$pid" ] || break
				sleep 0.1
			done
			[ ! -d "/proc/$pid" ] || $SUDO kill -KILL "$pid" || true
		else
			log "$comm (pid $pid) runs in this machine's network namespace and no package PID file names it"
		fi
	done <<<"$stray"
	sleep 0.2
	left=$(servers_in_own_ns)
	[ -z "$left" ] || die "DHCP servers running outside the test namespaces (stop them yourself):
$left"
fi

log "ok: $(dpkg-query -W -f='${Package} ${Version}\n' "${required_pkgs[@]}" "${optional_pkgs[@]}" 2>/dev/null | paste -sd, - | sed 's/,/, /g')"
