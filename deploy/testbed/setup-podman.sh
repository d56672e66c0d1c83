#!/usr/bin/env bash
# Prepares a Debian machine without Docker to run the compose testbed for real:
# podman (as root, runc runtime), its Docker-API socket, and Debian's
# docker-compose 1.29 to drive it. Idempotent: installs only what is missing,
# starts the API service only when the socket does not answer.
#
#   bash deploy/testbed/setup-podman.sh
#   export DOCKER_HOST=unix:///run/podman/podman.sock
#
# Why these settings (found by running it): crun refuses this machine's hybrid
# cgroups, runc works; containers do not start without explicit ulimits, and
# a higher nproc than 32768 is refused.
set -euo pipefail

SOCK=/run/podman/podman.sock
say() { printf '== %s\n' "$*"; }

need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]} (apt)"
	apt-get update -qq
	# No recommends: docker-compose would pull in a whole Docker engine.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${need[@]}" netavark aardvark-dns iptables catatonit >/dev/null
fi

conf=/etc/containers/containers.conf
want='# numverify testbed (deploy/testbed/setup-podman.sh)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"

[network]
# netavark with aardvark-dns: containers find each other (and aliases) by name.
network_backend = "netavark"
'
if [ "$(cat "$conf" 2>/dev/null)" != "$(printf '%s' "$want")" ]; then
	say "writing $conf (runtime runc, default_ulimits)"
	mkdir -p /etc/containers
	[ -f "$conf" ] && cp "$conf" "$conf.orig-$(date +%s)"
	printf '%s' "$want" >"$conf"
fi

# A fresh service for every run: on a machine whose root lacks
# CAP_SYS_RESOURCE (this sandbox's), a service that had already run other
# compose projects for a while sometimes had runc refuse the containers'
# ulimits ("error setting rlimit type 6: operation not permitted"), and a
# restarted one started them again. Only the service this script starts is
# stopped (by its socket path).
if pkill -f "podman system service --time=0 unix://$SOCK" 2>/dev/null; then
	say "stopping the podman system service left on $SOCK"
	sleep 1
fi
if ! curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
	say "starting podman system service on $SOCK"
	mkdir -p "$(dirname "$SOCK")"
	rm -f "$SOCK"
	nohup podman system service --time=0 "unix://$SOCK" >/var/log/podman-service.log 2>&1 &
	for _ in $(seq 50); do
		curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break
		sleep 0.2
	done
	curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null || { cat /var/log/podman-service.log >&2; exit 1; }
fi
say "podman $(podman version --format '{{.Client.Version}}'), $(docker-compose version --short 2>/dev/null | head -1 | sed 's/^/docker-compose /'), socket $SOCK"
