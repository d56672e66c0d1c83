#!/usr/bin/env bash
# Builds, with podman and no registry, the images the compose testbed runs:
#
#   localhost/numverify-testbed/postgres:15   Debian bookworm's postgresql-15 (debootstrap),
#                                              with an entrypoint doing the official image's
#                                              initdb from POSTGRES_* (deploy/testbed/postgres)
#   numverify:dev                              FROM scratch: the static binary, as deploy/Dockerfile
#                                              builds it, user 65532, /var/lib/numverify
#
#   bash deploy/testbed/build-images.sh          # Postgres only when missing; numverify always
#   REBUILD_POSTGRES=1 bash deploy/testbed/build-images.sh
#
# Prints each build's wall time. Needs deploy/testbed/setup-podman.sh first.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"

PG_IMAGE="${NUMVERIFY_TESTBED_POSTGRES_IMAGE:-localhost/numverify-testbed/postgres:15}"
NV_IMAGE="${NUMVERIFY_TESTBED_IMAGE:-numverify:dev}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
say() { printf '== %s\n' "$*"; }

if [ -z "${REBUILD_POSTGRES:-}" ] && podman image exists "$PG_IMAGE"; then
	say "$PG_IMAGE exists (cached; REBUILD_POSTGRES=1 rebuilds it)"
else
	start=$SECONDS
	root=$(mktemp -d /var/tmp/numverify-pg-rootfs.XXXXXX)
	trap 'rm -rf "$root"' EXIT
	say "debootstrap bookworm + postgresql-15 into $root"
	debootstrap --variant=minbase --include=postgresql-15 bookworm "$root" "$MIRROR" >"$root.log" 2>&1 \
		|| { tail -30 "$root.log" >&2; exit 1; }
	rm -f "$root.log"
	# The package's own cluster and caches are not needed: the entrypoint makes $PGDATA.
	rm -rf "$root"/var/lib/postgresql/15 "$root"/etc/postgresql/15/main \
		"$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	install -m 0755 deploy/testbed/postgres/entrypoint.sh "$root/usr/local/bin/docker-entrypoint.sh"
	say "podman import $PG_IMAGE"
	tar -C "$root" -c . | podman import --quiet \
		--change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV PGDATA=/var/lib/postgresql/data' \
		--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
		--change 'STOPSIGNAL SIGINT' \
		--change 'EXPOSE 5432' \
		- "$PG_IMAGE" >/dev/null
	rm -rf "$root"
	trap - EXIT
	say "$PG_IMAGE built in $((SECONDS - start)) s ($(podman image inspect --format '{{.Size}}' "$PG_IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
fi

start=$SECONDS
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
say "go build (the image's command: CGO_ENABLED=0, -trimpath -ldflags \"-s -w\")"
CGO_ENABLED=0 GOFLAGS=-trimpath go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$ctx/numverify" ./cmd/numverify
built=$((SECONDS - start))
mkdir "$ctx/state"
cp deploy/testbed/Containerfile "$ctx/Containerfile"
podman build --quiet -t "$NV_IMAGE" -f "$ctx/Containerfile" "$ctx" >/dev/null
say "$NV_IMAGE built in $((SECONDS - start)) s (go build $built s)"
