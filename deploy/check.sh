#!/usr/bin/env bash
# Validates numverify's deployment files on a machine without a container
# engine: docker-compose.yml, the kustomize base and overlays, the Prometheus
# scrape configs, the Dockerfile's build, and the contract between the
# manifests and the binary (every command, flag and variable they use exists).
#
#   bash deploy/check.sh          # exits non-zero on any failure
#
# Installs what it needs only when missing (Debian's docker-compose and
# python3-yaml through apt; kustomize through the Go module proxy when
# kubectl has no `kustomize`), so a second run is fast.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

KUSTOMIZE_VERSION=v5.7.1
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/numverify-deploy-check"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$CACHE/bin"
PY=/usr/bin/python3

say() { printf '== %s\n' "$*"; }
die() { printf 'deploy/check.sh: %s\n' "$*" >&2; exit 1; }

apt_updated=
apt_install() {
	if [ -z "$apt_updated" ]; then
		apt-get update -qq >/dev/null || die "apt-get update failed"
		apt_updated=1
	fi
	# No recommends: docker-compose would otherwise pull in a whole Docker engine.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
		|| die "apt-get install $* failed"
}

# ---------------------------------------------------------------- tools
say "tools"
if ! [ -x "$PY" ] || ! "$PY" -c 'import yaml' 2>/dev/null; then
	echo "  installing python3-yaml (apt)"
	apt_install python3 python3-yaml
fi

# Compose: the v2 plugin (`docker compose`) when present, else Debian's docker-compose.
if docker compose version >/dev/null 2>&1; then
	COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
	COMPOSE=(docker-compose)
else
	echo "  installing docker-compose (apt)"
	apt_install docker-compose
	COMPOSE=(docker-compose)
fi
echo "  compose:   $("${COMPOSE[@]}" version 2>/dev/null | head -n1)"

if kubectl kustomize --help >/dev/null 2>&1; then
	KUSTOMIZE=(kubectl kustomize)
elif command -v kustomize >/dev/null 2>&1; then
	KUSTOMIZE=(kustomize build)
else
	if ! [ -x "$CACHE/bin/kustomize" ]; then
		echo "  installing kustomize $KUSTOMIZE_VERSION (go install)"
		GOBIN="$CACHE/bin" GOFLAGS= go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" \
			|| die "go install kustomize failed"
	fi
	KUSTOMIZE=("$CACHE/bin/kustomize" build)
fi
echo "  kustomize: ${KUSTOMIZE[*]} ($("${KUSTOMIZE[0]}" version 2>/dev/null | grep -i kustomize | head -n1 | tr -s ' '))"

# ---------------------------------------------------------------- compose
say "docker-compose.yml"
"${COMPOSE[@]}" -f docker-compose.yml --env-file deploy/compose/.env.example config -q \
	|| die "compose config rejects docker-compose.yml"
echo "  ok   compose config accepts it (with deploy/compose/.env.example)"
"${COMPOSE[@]}" -f docker-compose.yml --env-file deploy/compose/.env.example config >"$WORK/compose.yml"
: >"$WORK/empty.env"
if env -u POSTGRES_PASSWORD -u NUMVERIFY_SECRETS_KEY -u NUMVERIFY_RESOURCE_SECRETS_KEY -u NUMVERIFY_NETWORK_ADMIN_TOKEN -u NUMVERIFY_RADIUS_SECRET \
	"${COMPOSE[@]}" -f docker-compose.yml --env-file "$WORK/empty.env" config -q >/dev/null 2>&1; then
	die "compose config accepts docker-compose.yml without secrets: a secret is inlined or defaulted"
fi
echo "  ok   compose config refuses it without the secrets (none is inlined)"
"$PY" deploy/check_manifests.py compose "$WORK/compose.yml"

# ---------------------------------------------------------------- kustomize
say "kustomize"
for overlay in base overlays/dev overlays/production; do
	name="${overlay##*/}"
	"${KUSTOMIZE[@]}" "deploy/k8s/$overlay" >"$WORK/k8s-$name.yaml" || die "kustomize cannot render deploy/k8s/$overlay"
	"$PY" deploy/check_manifests.py k8s "$name" "$WORK/k8s-$name.yaml"
done

# ---------------------------------------------------------------- prometheus
say "prometheus"
"$PY" deploy/check_manifests.py prometheus deploy/prometheus/prometheus.yml k8s
"$PY" deploy/check_manifests.py prometheus deploy/prometheus/compose.yml compose

# ---------------------------------------------------------------- haproxy
say "deploy/haproxy"
if command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then
	"$(command -v haproxy || echo /usr/sbin/haproxy)" -c -q -f deploy/haproxy/haproxy.cfg \
		|| die "haproxy -c rejects deploy/haproxy/haproxy.cfg"
	echo "  ok   haproxy -c accepts deploy/haproxy/haproxy.cfg (e2e/replicas_test.go runs it)"
else
	echo "  skip haproxy not installed (e2e/replicas_test.go runs the file when it is)"
fi

# ---------------------------------------------------------------- Dockerfile
say "deploy/Dockerfile"
df=deploy/Dockerfile
grep -Eq '^ARG GO_VERSION=1\.26$' "$df" || die "$df: the builder is not Go 1.26"
grep -Eq '^FROM .*golang:\$\{GO_VERSION\}.* AS build$' "$df" || die "$df: no golang builder stage"
grep -q -- '--mount=type=cache,target=/go/pkg/mod' "$df" || die "$df: no module cache mount"
grep -Eq '^FROM gcr\.io/distroless/static-debian12:nonroot$' "$df" || die "$df: final stage is not distroless static nonroot"
grep -Eq '^USER 65532:65532$' "$df" || die "$df: no non-root USER"
grep -Eq '^EXPOSE 9090 9091 9092 8080$' "$df" || die "$df: EXPOSE is not 9090 9091 9092 8080"
grep -Fq 'ENTRYPOINT ["/numverify"]' "$df" || die "$df: ENTRYPOINT is not /numverify"
grep -q '^ENV CGO_ENABLED=0' "$df" || die "$df: CGO_ENABLED=0 not set"
grep -Fq 'go build -trimpath -buildvcs=false -ldflags "-s -w" -o /out/numverify ./cmd/numverify' "$df" \
	|| die "$df: the build command changed: update deploy/check.sh to build the same way"
echo "  ok   stages, base images, user, ports, entrypoint"
for f in go.mod go.sum cmd migrations; do
	if grep -Eqx "/?$f(/.*)?" .dockerignore; then die ".dockerignore excludes $f, which the build needs"; fi
done
echo "  ok   .dockerignore keeps go.mod, go.sum, cmd/, migrations/"
# The image's build, without an engine: the same command, the same flags.
CGO_ENABLED=0 GOFLAGS=-trimpath go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$WORK/numverify" ./cmd/numverify \
	|| die "the image's go build fails"
echo "  ok   CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\" ./cmd/numverify ($(du -h "$WORK/numverify" | cut -f1))"
"$PY" deploy/check_manifests.py static-elf "$WORK/numverify"

# ---------------------------------------------------------------- CLI contract
say "manifests against the binary"
"$PY" deploy/check_manifests.py cli "$WORK/numverify" deploy/pending.txt \
	"$WORK/compose.yml" "$WORK/k8s-dev.yaml" "$WORK/k8s-production.yaml"

say "deploy/check.sh: all checks passed"
