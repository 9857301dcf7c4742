#!/usr/bin/env bash
# Packs a directory into a single-layer OCI image archive, with nothing but tar and
# sha256sum: what `ctr images import` (and `docker load`, `podman load`) read. The
# layer is reproducible: sorted, root-owned, every timestamp zero.
#
#   oci-archive.sh OUT.tar NAME ROOTFS USER ENTRYPOINT [ARG...]
#
#   NAME        the full image name, e.g. localhost/pause:v1.34.4 (recorded in
#               index.json, so an import names the image)
#   USER        uid:gid the image runs as
#   ENTRYPOINT  the program, an absolute path inside ROOTFS
#
# Prints OUT.tar on stdout. Every failure ends with one line "oci-archive: ...".
set -euo pipefail

die() { echo "oci-archive: $*" >&2; exit 1; }
[ $# -ge 5 ] || die "usage: oci-archive.sh OUT.tar NAME ROOTFS USER ENTRYPOINT [ARG...]"
out="$1" name="$2" rootfs="$3" user="$4"; shift 4
[ -d "$rootfs" ] || die "$rootfs is not a directory"
[ -x "$rootfs$1" ] || die "the entrypoint $1 is not an executable in $rootfs"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"

json_list() { # items... → ["a","b"]
  local first=1 item
  printf '['
  for item in "$@"; do
    [ $first -eq 1 ] || printf ','
    first=0
    printf '"%s"' "$item"
  done
  printf ']'
}
blob() { # file → its digest, after moving it into blobs/
  local digest
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$work/blobs/sha256/$digest"
  echo "$digest"
}
size() { stat -c %s "$work/blobs/sha256/$1"; }

tar -C "$rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
  -cf "$work/layer.tar" . || die "could not pack $rootfs"
layer=$(blob "$work/layer.tar")

printf '{"architecture":"%s","os":"linux","config":{"User":"%s","Entrypoint":%s,"Env":["PATH=/"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$(go env GOARCH 2>/dev/null || echo amd64)" "$user" "$(json_list "$@")" "$layer" >"$work/config.json"
config=$(blob "$work/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config" "$(size "$config")" "$layer" "$(size "$layer")" >"$work/manifest.json"
manifest=$(blob "$work/manifest.json")

printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$(size "$manifest")" "$name" "${name##*:}" >"$work/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"

mkdir -p "$(dirname "$out")"
tar -C "$work" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
  -cf "$out.tmp" oci-layout index.json blobs || die "could not write $out"
mv "$out.tmp" "$out"
echo "$out"
