#!/usr/bin/env bash
# `make demo`: starts the test bed (control plane + moto), installs the CRDs, runs the
# operator, applies examples/, prints what pave knows, and stays up until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../../.."

CACHE="${PAVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pave}"
STATE="${PAVE_DEMO_DIR:-$CACHE/demo}"
TARGET="${CARGO_TARGET_DIR:-target}"
started_ms=$(( $(date +%s%N) / 1000000 ))

die() { echo "demo: $*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 || die "cargo is not installed: install Rust 1.94 or newer with rustup and run again"
echo "demo: building pave (cargo build)" >&2
cargo build -q -p pave-testenv -p pave-operator -p pave-cli || die "cargo build failed: see the errors above"
BIN="$(cd "$TARGET/debug" && pwd)"

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
elapsed_ms=$(( $(date +%s%N) / 1000000 - started_ms ))
elapsed="$((elapsed_ms / 1000)).$(( (elapsed_ms % 1000) / 100 ))"
echo
echo "== kubectl pave trace devenv -n team-payments feature-payment-v2-env"
kubectl pave trace devenv -n team-payments feature-payment-v2-env || true
echo
echo "== kubectl pave score (offline, the article's files)"
kubectl pave score --scorecard ../shared/seed/manifests/port-scorecard.yaml ../shared/seed/manifests/catalog-info.yaml 2>/dev/null \
  || kubectl pave score --scorecard examples/scorecard-service-maturity.yaml examples/catalog-payment-service.yaml
cat <<TXT

pave is running (first catalog after ${elapsed}s). In another terminal:

  export KUBECONFIG=$KUBECONFIG PATH=$PAVE_TESTBED_BIN:$BIN:\$PATH
  kubectl get pave -A
  kubectl describe comp -n team-payments payment-service   # relations, and what dangles
  kubectl pave import ../shared/seed/manifests/catalog-info.yaml   # Backstage → pave
  kubectl explain devenv.spec.parameters
  kubectl pave crds | head

AWS (moto) answers at $AWS_ENDPOINT_URL. Logs: $STATE (operator.log, etcd.log, ...).
Ctrl-C stops everything.
TXT
wait "${pids[0]}"
