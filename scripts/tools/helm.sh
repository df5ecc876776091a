#!/usr/bin/env bash
# Install helm (v3, Apache-2.0) from the Go module proxy into
# $ONEX_CACHE_DIR/bin/helm. No prebuilt binary is downloaded: the module is
# built with the machine's Go toolchain.
#
# Idempotent: when the binary already exists and reports the pinned version,
# nothing is done. Prints the binary's path on stdout as its last line.
#
#   scripts/tools/helm.sh            install (or confirm) the pinned version
#   HELM_VERSION=v3.21.4 scripts/tools/helm.sh
set -euo pipefail

# v3.22.0 is the newest helm v3 that builds with go1.26 here.
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
ONEX_CACHE_DIR="${ONEX_CACHE_DIR:-${HOME:-/root}/.cache/onex-fleet}"
BIN_DIR="$ONEX_CACHE_DIR/bin"
HELM="$BIN_DIR/helm"
GO="${GO:-go}"

# Written after a successful build: what the binary was stamped with.
STAMP="$BIN_DIR/helm.stamp"

installed_version() {
  [ -x "$HELM" ] || return 1
  "$HELM" version --template '{{.Version}}' 2>/dev/null
}

if [ "$(installed_version || true)" = "$HELM_VERSION" ] && [ -f "$STAMP" ] &&
  grep -qx "version=$HELM_VERSION" "$STAMP"; then
  echo "helm $HELM_VERSION already installed" >&2
  echo "$HELM"
  exit 0
fi

echo "installing helm $HELM_VERSION into $BIN_DIR (go install; takes a few minutes the first time)" >&2
mkdir -p "$BIN_DIR"
# GOWORK=off: a tool install, not part of the repo's workspace; GOFLAGS is
# reset so a caller's -mod=... cannot break it.
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

# Stamp the binary the way helm's own release build (its Makefile) does:
#  - the version, so `helm version` reports it (a plain go install says "v3.22");
#  - the Kubernetes version `helm template`/`helm lint` assume without a
#    cluster: 1.<minor of k8s.io/client-go>, else helm assumes v1.20.0 and
#    refuses charts with a newer kubeVersion (this one needs >= 1.23).
gomod="$("$GO" mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
[ -f "$gomod" ] || { echo "helm.sh: cannot find helm's go.mod ($gomod)" >&2; exit 1; }
k8s_minor="$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' "$gomod")"
[[ "$k8s_minor" =~ ^[0-9]+$ ]] || { echo "helm.sh: no k8s.io/client-go version in $gomod" >&2; exit 1; }

ldflags="-s -w"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
GOBIN="$BIN_DIR" "$GO" install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"

got="$(installed_version || true)"
if [ "$got" != "$HELM_VERSION" ]; then
  echo "helm.sh: installed binary reports version '$got', want $HELM_VERSION" >&2
  exit 1
fi
printf 'version=%s\nkube_version=1.%s\n' "$HELM_VERSION" "$k8s_minor" >"$STAMP"
echo "$HELM"
