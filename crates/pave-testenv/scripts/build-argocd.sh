#!/usr/bin/env bash
# Builds Argo CD's application-controller and repo-server for the test bed from the
# upstream Go module and caches the result outside the repository, keyed by version.
#
#   crds        go mod download of github.com/argoproj/argo-cd/v3 (seconds, nothing is
#               compiled) and a copy of its manifests/crds/*.yaml; prints that dir
#   build, all  the one `argocd` binary (its role comes from ARGOCD_BINARY_NAME) and the
#               repo-server's hack/git-verify-wrapper.sh and hack/gpg-wrapper.sh, in a
#               bin dir; installs Debian's redis-server if it is missing (as root);
#               `all` fills the crds dir too; prints the bin dir
#   path        prints the bin dir without building anything
#
# Argo CD v3.2.11 is the release whose every module comes from the Go module proxy:
# v3.2.12 does not compile from it, v3.3 and later are refused. The wrapper module
# requires it and repeats its own go.mod's replace block (read from the module cache,
# never written from memory), as Go ignores replaces of dependencies.
#
# Progress goes to stderr, the result path to stdout. Every failure ends with one line
# "build-argocd: <what failed>: <what to do>".
set -euo pipefail

ARGOCD_VERSION="${PAVE_ARGOCD_VERSION:-v3.2.11}"
MODULE=github.com/argoproj/argo-cd/v3

CACHE="${PAVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pave}"
ROOT="$CACHE/argocd/$ARGOCD_VERSION"
BIN="$ROOT/bin"
CRDS="$ROOT/crds"
SRC="$ROOT/src"
# One log per lock (see lock below), so a crds run does not write into a build's log.
LOG="$CACHE/argocd/build.log"

die() { echo "build-argocd: $*" >&2; exit 1; }
say() { echo "build-argocd: $*" >&2; }

target="${1:-all}"
case "$target" in
  path) echo "$BIN"; exit 0 ;;
  crds | build | all) ;;
  *) die "unknown target '$target': use crds, build, all or path" ;;
esac

command -v go >/dev/null 2>&1 || die "Go is not installed: install Go 1.25.5 or newer (https://go.dev/doc/install) and run again"
command -v git >/dev/null 2>&1 || die "git is not installed (the repo-server runs it too): apt-get install git"

mkdir -p "$CACHE/argocd" "$SRC"

run_logged() { # what, command...
  local what="$1"; shift
  if ! "$@" >>"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    die "$what failed (full log: $LOG): check the Go module proxy is reachable (GOPROXY=$(go env GOPROXY)) and run again"
  fi
}

# Where the module's source is in the module cache (read-only); downloads it if needed.
module_dir() {
  local dir
  dir=$(cd "$SRC" && go mod download -json "$MODULE@$ARGOCD_VERSION" 2>>"$LOG" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || true
  [ -n "$dir" ] && [ -d "$dir" ] \
    || die "could not download $MODULE@$ARGOCD_VERSION (log: $LOG): check the Go module proxy is reachable and the version exists"
  echo "$dir"
}

fill_crds() {
  [ -f "$CRDS/.complete" ] && return
  say "downloading $MODULE@$ARGOCD_VERSION for its CRDs"
  local dir
  dir=$(module_dir)
  ls "$dir"/manifests/crds/*-crd.yaml >/dev/null 2>&1 \
    || die "found no CRDs in $dir/manifests/crds: the release's layout changed; update this script"
  rm -rf "$CRDS"
  mkdir -p "$CRDS"
  # Only the CRDs: kustomization.yaml there is no manifest.
  cp "$dir"/manifests/crds/*-crd.yaml "$CRDS/"
  chmod u+w "$CRDS"/*.yaml
  : >"$CRDS/.complete"
}

build_argocd() {
  [ -x "$BIN/argocd" ] && [ -x "$BIN/git-verify-wrapper.sh" ] && [ -x "$BIN/gpg-wrapper.sh" ] && return
  say "building argocd $ARGOCD_VERSION (about 8 minutes on two cores with cold caches)"
  local dir wrapper="$SRC/module"
  dir=$(module_dir)
  local upstream_gomod="$dir/go.mod"
  local go_directive
  go_directive=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream_gomod" | head -n 1)
  grep -q '^replace (' "$upstream_gomod" \
    || die "found no replace block in $upstream_gomod: the release's go.mod layout changed; update this script"
  rm -rf "$wrapper"
  mkdir -p "$wrapper"
  {
    echo "module pave.dev/testbed/argocd"
    echo
    echo "go ${go_directive:-1.25}"
    echo
    echo "require $MODULE $ARGOCD_VERSION"
    echo
    # The whole block, comments included, up to its closing parenthesis.
    sed -n '/^replace (/,/^)/p' "$upstream_gomod"
  } >"$wrapper/go.mod"
  cat >"$wrapper/tools.go" <<'GO'
//go:build tools

// Only here so that `go mod tidy` records everything Argo CD's main package needs.
package tools

import _ "github.com/argoproj/argo-cd/v3/cmd"
GO
  (cd "$wrapper" && run_logged "go mod tidy for argocd $ARGOCD_VERSION" go mod tidy)
  local pkg="$MODULE/common"
  local ldflags="-s -w -X $pkg.version=${ARGOCD_VERSION#v} -X $pkg.gitTag=$ARGOCD_VERSION -X $pkg.gitTreeState=clean"
  ldflags="$ldflags -X $pkg.kubectlVersion=$(cd "$wrapper" && go list -m -f '{{.Version}}' k8s.io/client-go)"
  mkdir -p "$BIN"
  say "  go build $MODULE/cmd"
  (cd "$wrapper" && run_logged "go build argocd $ARGOCD_VERSION" \
    env CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN/argocd.tmp" "$MODULE/cmd")
  # The repo-server runs these from PATH on every manifest generation, even with GPG
  # verification off; without them every sync fails with "permission denied".
  local script
  for script in git-verify-wrapper.sh gpg-wrapper.sh; do
    [ -f "$dir/hack/$script" ] || die "$dir/hack/$script is missing: the release's layout changed; update this script"
    cp "$dir/hack/$script" "$BIN/$script.tmp"
    chmod 0755 "$BIN/$script.tmp"
    mv "$BIN/$script.tmp" "$BIN/$script"
  done
  mv "$BIN/argocd.tmp" "$BIN/argocd"
}

install_redis() {
  command -v redis-server >/dev/null 2>&1 && return
  [ "$(id -u)" = 0 ] || die "redis-server is not installed: run 'apt-get install redis-server' as root and run again"
  command -v apt-get >/dev/null 2>&1 || die "redis-server is not installed and there is no apt-get: install Redis 7 so that redis-server is on PATH"
  say "installing redis-server (apt-get)"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; } >>"$LOG" 2>&1; then
    tail -n 20 "$LOG" >&2
    die "apt-get install redis-server failed (full log: $LOG): fix apt's sources and run again"
  fi
  command -v redis-server >/dev/null 2>&1 || die "redis-server is still not on PATH after apt-get install: check PATH includes /usr/bin"
}

# Test binaries run in parallel may all call this at once: the first one does the work,
# the others wait for it and then find it done. The CRDs have their own lock so that a
# test that needs only them does not wait for a build of the binary.
lock() { # name
  exec 9>"$CACHE/argocd/.lock-$1"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  LOG="$CACHE/argocd/$1.log"
  : >"$LOG"
}

case "$target" in
  crds)
    lock crds; fill_crds
    echo "$CRDS" ;;
  build | all)
    if [ "$target" = all ]; then lock crds; fill_crds; fi
    lock build
    build_argocd
    install_redis
    echo "$BIN" ;;
esac
