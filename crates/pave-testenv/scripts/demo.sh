#!/usr/bin/env bash
# `make demo`: starts the test bed (control plane + moto), installs the CRDs, runs the
# operator, applies examples/, prints what pave knows, and stays up until Ctrl-C.
#
#   PAVE_DEMO_BIN=DIR   use pave-testenv, pave-operator and kubectl-pave from DIR
#                       instead of building them (tests/readme.rs runs the demo so)
#   PAVE_DEMO_DIR=DIR   the state dir: kubeconfig, env file, logs (default
#                       $PAVE_CACHE_DIR/demo); replaced on every start
set -euo pipefail
cd "$(dirname "$0")/../../.."

CACHE="${PAVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pave}"
STATE="${PAVE_DEMO_DIR:-$CACHE/demo}"
TARGET="${CARGO_TARGET_DIR:-target}"

die() { echo "demo: $*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
seconds_since() { local ms=$(( $(now_ms) - $1 )); echo "$((ms / 1000)).$(( (ms % 1000) / 100 ))s"; }

if [ -n "${PAVE_DEMO_BIN:-}" ]; then
  BIN="$(cd "$PAVE_DEMO_BIN" && pwd)" || die "PAVE_DEMO_BIN=$PAVE_DEMO_BIN is not a directory"
  for bin in pave-testenv pave-operator kubectl-pave; do
    [ -x "$BIN/$bin" ] || die "$BIN/$bin is missing: run cargo build --workspace, or unset PAVE_DEMO_BIN"
  done
  built="no build (binaries from $BIN)"
else
  command -v cargo >/dev/null 2>&1 || die "cargo is not installed: install Rust 1.94 or newer with rustup and run again"
  echo "demo: building pave (cargo build)" >&2
  build_started=$(now_ms)
  cargo build -q -p pave-testenv -p pave-operator -p pave-cli || die "cargo build failed: see the errors above"
  built="built in $(seconds_since "$build_started")"
  echo "demo: $built" >&2
  BIN="$(cd "$TARGET/debug" && pwd)"
fi

# A demo left running in another terminal owns the state dir; a stale one is replaced.
if [ -f "$STATE/testenv.pid" ] && kill -0 "$(cat "$STATE/testenv.pid")" 2>/dev/null; then
  die "a demo is already running (pid $(cat "$STATE/testenv.pid")): stop it with Ctrl-C there, or kill $(cat "$STATE/testenv.pid")"
fi
rm -rf "$STATE"
mkdir -p "$STATE"

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo >&2
  echo "demo: stopping" >&2
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

testbed_started=$(now_ms)
"$BIN/pave-testenv" up --crds crds --state-dir "$STATE" --keep >"$STATE/testenv.out" 2>&1 &
pids+=($!)
echo "${pids[0]}" >"$STATE/testenv.pid"
echo "demo: starting etcd, kube-apiserver, kube-controller-manager and moto" >&2
until [ -f "$STATE/env" ] && grep -q "pave test bed is up" "$STATE/testenv.out" 2>/dev/null; do
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$STATE/testenv.out" >&2; die "the test bed did not start: see above"; }
  sleep 0.2
done
set -a
# shellcheck disable=SC1091
source "$STATE/env"
set +a
export PATH="$PAVE_TESTBED_BIN:$BIN:$PATH"

"$BIN/pave-operator" --metrics-addr 127.0.0.1:0 >"$STATE/operator.log" 2>&1 &
pids+=($!)

kubectl apply -f examples/ >&2
# The operator records what it saw in status; give it a moment to catch up.
for _ in $(seq 50); do
  [ -n "$(kubectl get comp -n team-payments payment-service -o jsonpath='{.status.observedGeneration}' 2>/dev/null)" ] && break
  kill -0 "${pids[1]}" 2>/dev/null || { tail -n 20 "$STATE/operator.log" >&2; die "pave-operator exited: see its log above"; }
  sleep 0.2
done

# The environment provisions in moto within seconds.
for _ in $(seq 100); do
  [ "$(kubectl get devenv -n team-payments feature-payment-v2-env -o jsonpath='{.status.phase}' 2>/dev/null)" = Ready ] && break
  sleep 0.3
done

echo
echo "== kubectl get pave -A"
kubectl get pave -A
echo
echo "== the catalog: what resolves, what does not, and who depends on whom"
kubectl get comp -A -o custom-columns='NAMESPACE:.metadata.namespace,NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].reason,IMPACT:.status.impact,UNRESOLVED:.status.unresolvedRefs[*]'
to_catalog=$(seconds_since "$testbed_started")
echo
echo "== kubectl pave trace devenv -n team-payments feature-payment-v2-env"
kubectl pave trace devenv -n team-payments feature-payment-v2-env || true
echo
echo "== kubectl pave score --scorecard examples/port/service-maturity.yaml examples/backstage/catalog-info.yaml"
kubectl pave score --scorecard examples/port/service-maturity.yaml examples/backstage/catalog-info.yaml || true
# Every command below is also in README.md's "Things to try", and tests/readme.rs
# checks that it is.
cat <<TXT

pave is running: $built; test bed start to first catalog $to_catalog.
In another terminal, from $(pwd):

  export KUBECONFIG=$KUBECONFIG PATH=$PAVE_TESTBED_BIN:$BIN:\$PATH
  kubectl get pave -A
  kubectl describe comp -n team-payments payment-service
  kubectl pave import examples/backstage/catalog-info.yaml
  kubectl pave trace devenv -n team-payments feature-payment-v2-env
  kubectl explain devenv.spec.parameters

More in README.md, "Things to try". AWS (moto) answers at $AWS_ENDPOINT_URL.
Logs: $STATE (operator.log, etcd.log, ...). Ctrl-C stops everything.
TXT
wait "${pids[0]}"
