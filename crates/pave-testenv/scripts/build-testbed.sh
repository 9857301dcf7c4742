#!/usr/bin/env bash
# Builds the test bed's Kubernetes control plane from upstream Go modules and caches
# the binaries outside the repository, keyed by version. Rebuilds only what is missing.
#
#   etcd                        go.etcd.io/etcd/server/v3   (wrapper module)
#   kube-apiserver              k8s.io/kubernetes/cmd/...   (wrapper module that replaces
#   kube-controller-manager                                  every k8s.io staging module
#   kubectl                                                  with the matching v0.x.y)
#   helm                        helm.sh/helm/v3/cmd/helm    (go install; no replaces)
#   kubelet, kube-scheduler,    k8s.io/kubernetes/cmd/...   (target `node`: the node
#   kube-proxy                                               tier's, same wrapper module)
#   pause                       build/pause/linux/pause.c   (gcc -static, from the same
#                                                            module: the sandbox image)
#
# Prints the bin directory on stdout when done; progress goes to stderr.
# Every failure ends with one line "build-testbed: <what failed>: <what to do>".
set -euo pipefail

KUBE_VERSION="${PAVE_KUBE_VERSION:-v1.34.4}"
ETCD_VERSION="${PAVE_ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${PAVE_HELM_VERSION:-v3.21.4}"

CACHE="${PAVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pave}"
BIN="$CACHE/testbed/kube-$KUBE_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION/bin"
SRC="$CACHE/testbed/src"
LOG="$CACHE/testbed/build.log"

die() { echo "build-testbed: $*" >&2; exit 1; }
say() { echo "build-testbed: $*" >&2; }

# Only printing the path needs neither Go nor the lock below.
if [ "${1:-all}" = path ]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null 2>&1 || die "Go is not installed: install Go 1.26 or newer (https://go.dev/doc/install) and run again"
command -v git >/dev/null 2>&1 || die "git is not installed: apt-get install git"

mkdir -p "$BIN" "$SRC"
# Test binaries run in parallel may all call this at once: the first one builds, the
# others wait for it (and then find everything built) instead of building it again
# and truncating its log.
exec 9>"$CACHE/testbed/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
: >"$LOG"

# A version like v1.34.4 becomes the staging version v0.34.4 and the ldflags that make
# /version honest.
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
staging_version="v0.${KUBE_VERSION#v1.}"

run_logged() { # what, command...
  local what="$1"; shift
  if ! "$@" >>"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    die "$what failed (full log: $LOG): check the Go module proxy is reachable (GOPROXY=$(go env GOPROXY)) and run again"
  fi
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return
  say "building etcd $ETCD_VERSION"
  local dir="$SRC/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<GOMOD
module pave.dev/testbed/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  (cd "$dir" && run_logged "go build etcd $ETCD_VERSION" \
    go build -mod=mod -trimpath -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

build_kubernetes() { # commands...
  local cmd missing=()
  for cmd in "$@"; do [ -x "$BIN/$cmd" ] || missing+=("$cmd"); done
  [ ${#missing[@]} -eq 0 ] && return
  say "building ${missing[*]} $KUBE_VERSION (takes a while on a cold cache)"
  local dir="$SRC/kubernetes-$KUBE_VERSION"
  mkdir -p "$dir"
  # The staging module list comes from the release's own go.mod, never from memory.
  local upstream_gomod
  upstream_gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" 2>>"$LOG" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p') || true
  [ -n "$upstream_gomod" ] && [ -f "$upstream_gomod" ] \
    || die "could not download k8s.io/kubernetes@$KUBE_VERSION (log: $LOG): check the Go module proxy is reachable and the version exists"
  local go_directive
  go_directive=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream_gomod" | head -n 1)
  {
    echo "module pave.dev/testbed/kubernetes"
    echo
    echo "go ${go_directive:-1.24}"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*$#\t\1 => \1 '"$staging_version"'#p' "$upstream_gomod"
    echo ")"
  } >"$dir/go.mod"
  grep -q 'k8s.io/apiserver => ' "$dir/go.mod" \
    || die "found no staging replaces in $upstream_gomod: the release's go.mod layout changed; update this script"
  local pkg="k8s.io/component-base/version"
  local ldflags="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for cmd in "${missing[@]}"; do
    say "  go build $cmd"
    (cd "$dir" && run_logged "go build $cmd $KUBE_VERSION" \
      go build -mod=mod -trimpath -ldflags "$ldflags" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$BIN/$cmd.tmp" "$BIN/$cmd"
  done
}

build_helm() {
  [ -x "$BIN/helm" ] && return
  say "building helm $HELM_VERSION"
  local gobin="$SRC/helm-$HELM_VERSION-bin"
  run_logged "go install helm $HELM_VERSION" env GOBIN="$gobin" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$gobin/helm" "$BIN/helm"
}

# The pause container every pod's sandbox runs, from the same release's source; static,
# so its image is the binary alone.
build_pause() {
  [ -x "$BIN/pause" ] && return
  command -v gcc >/dev/null 2>&1 || die "gcc is not installed: apt-get install gcc libc6-dev"
  say "building pause $KUBE_VERSION"
  local source
  source=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" 2>>"$LOG" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ -f "$source/build/pause/linux/pause.c" ] \
    || die "build/pause/linux/pause.c is not in k8s.io/kubernetes@$KUBE_VERSION (log: $LOG): the release's layout changed; update this script"
  run_logged "gcc pause.c" gcc -Os -static -DVERSION="$KUBE_VERSION" -o "$BIN/pause.tmp" "$source/build/pause/linux/pause.c"
  strip "$BIN/pause.tmp" 2>/dev/null || true
  mv "$BIN/pause.tmp" "$BIN/pause"
}

# The sandbox image containerd runs, named under localhost/ so that no pull can go
# anywhere but loopback; the node tier imports it.
build_pause_image() {
  [ -f "$BIN/pause.oci.tar" ] && return
  local rootfs="$SRC/pause-rootfs"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  cp "$BIN/pause" "$rootfs/pause"
  run_logged "pack the pause image" bash "$(dirname "$0")/oci-archive.sh" \
    "$BIN/pause.oci.tar" localhost/pause:testbed "$rootfs" 65535:65535 /pause
}

CONTROL_PLANE=(kube-apiserver kube-controller-manager kubectl)
NODE=(kubelet kube-scheduler kube-proxy)
case "${1:-all}" in
  all) build_etcd; build_kubernetes "${CONTROL_PLANE[@]}"; build_helm ;;
  control-plane) build_etcd; build_kubernetes "${CONTROL_PLANE[@]}" ;;
  helm) build_helm ;;
  node) build_etcd; build_kubernetes "${CONTROL_PLANE[@]}" "${NODE[@]}"; build_helm; build_pause; build_pause_image ;;
  *) die "unknown target '$1': use all, control-plane, helm, node or path" ;;
esac
echo "$BIN"
