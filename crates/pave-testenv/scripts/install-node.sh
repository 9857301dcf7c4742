#!/usr/bin/env bash
# Installs what the node tier takes from the distribution: containerd, runc, the CNI
# plugins, iptables (kube-proxy) and conntrack. Debian's packages, through apt; runs
# apt only when one is missing. Needs root, as the node tier itself does.
#
# Prints the CNI plugin directory on stdout when done.
# Every failure ends with one line "install-node: <what failed>: <what to do>".
set -euo pipefail

die() { echo "install-node: $*" >&2; exit 1; }
CNI_DIR=/usr/lib/cni

missing=()
for tool in containerd:containerd runc:runc iptables:iptables conntrack:conntrack nsenter:util-linux; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
[ -x "$CNI_DIR/bridge" ] && [ -x "$CNI_DIR/host-local" ] || missing+=(containernetworking-plugins)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "${missing[*]} missing and not root: run as root, or apt-get install ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 || die "${missing[*]} missing and no apt-get: install them with the system's package manager"
  echo "install-node: installing ${missing[*]} with apt" >&2
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "apt-get install ${missing[*]} failed (log above): check that Debian's package mirror is reachable and run again"
  fi
  rm -f "$log"
fi
echo "$CNI_DIR"
