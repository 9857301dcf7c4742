#!/usr/bin/env bash
# `make image`: pave-operator's container image as an OCI archive, built with no
# Docker and no registry. The root file system holds the release binary, exactly the
# shared libraries it links (ldd's list, with the loader), the CA bundle the AWS SDK
# reads, and /etc/passwd and /etc/group naming the non-root user 65532; no shell,
# nothing else. The Dockerfile at the repository's root builds the same image for
# teams that build with Docker (CI here has no Docker engine and exercises this).
#
#   build-image.sh [NAME]   NAME defaults to localhost/pave-operator:<version>
#
# Prints the archive's path; `ctr -n k8s.io images import ARCHIVE` (or `docker load
# -i`, `podman load -i`) loads it. Skips the packing when binary and name are as
# last time. Every failure ends with one line "build-image: <what failed>: <what to do>".
set -euo pipefail

die() { echo "build-image: $*" >&2; exit 1; }
say() { echo "build-image: $*" >&2; }

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
SCRIPTS="$ROOT/crates/pave-testenv/scripts"
CACHE="${PAVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pave}"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)
[ -n "$VERSION" ] || die "no version in $ROOT/Cargo.toml: the workspace's [workspace.package] version moved; update this script"
NAME="${1:-localhost/pave-operator:$VERSION}"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

command -v cargo >/dev/null 2>&1 || die "cargo is not installed: install Rust (rustup) and run again"
[ -f "$CA_BUNDLE" ] || die "$CA_BUNDLE is missing: apt-get install ca-certificates"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

say "cargo build --release -p pave-operator"
(cd "$ROOT" && cargo build -q --release --locked -p pave-operator) \
  || die "cargo build --release -p pave-operator failed (output above): fix the build and run again"
BINARY="$TARGET/release/pave-operator"
[ -x "$BINARY" ] || die "cargo built no $BINARY: is CARGO_TARGET_DIR the one cargo used?"

# The scripts are part of the key: a change to how the image is packed repacks it.
key=$(cat "$BINARY" "$CA_BUNDLE" "$0" "$SCRIPTS/oci-archive.sh" | sha256sum | cut -c1-16)
OUT="$CACHE/images/pave-operator-$VERSION-$key.tar"
if [ -f "$OUT" ] && [ "$(cat "$OUT.name" 2>/dev/null)" = "$NAME" ]; then
  echo "$OUT"
  exit 0
fi

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
chmod 0755 "$rootfs" # mktemp makes it 0700: user 65532 could not reach /
install -D -m 0555 "$BINARY" "$rootfs/pave-operator"
strip "$rootfs/pave-operator" 2>/dev/null || true
# Every library the binary links, at the path the loader looks for it (the loader
# itself is the line without "=>").
libs=$(ldd "$BINARY" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p')
[ -n "$libs" ] || die "ldd listed no libraries for $BINARY: is it a dynamically linked glibc binary?"
for lib in $libs; do
  # 0555: the loader must be executable (the kernel checks it like the binary).
  install -D -m 0555 "$(readlink -f "$lib")" "$rootfs$lib"
done
install -D -m 0444 "$CA_BUNDLE" "$rootfs$CA_BUNDLE"
mkdir -p "$rootfs/etc"
printf 'pave:x:65532:65532:pave:/:/nonexistent\n' >"$rootfs/etc/passwd"
printf 'pave:x:65532:\n' >"$rootfs/etc/group"
chmod 0444 "$rootfs/etc/passwd" "$rootfs/etc/group"

mkdir -p "$CACHE/images"
rm -f "$CACHE/images/pave-operator-$VERSION-"*.tar "$CACHE/images/pave-operator-$VERSION-"*.tar.name
bash "$SCRIPTS/oci-archive.sh" "$OUT" "$NAME" "$rootfs" 65532:65532 /pave-operator >/dev/null \
  || die "packing the image failed (see above)"
echo "$NAME" >"$OUT.name"
say "$NAME: $(du -h "$OUT" | cut -f1) in $OUT"
echo "$OUT"
