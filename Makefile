# pave's commands. `make demo` and `make test` are the two a newcomer needs.
#
# Heavy caches live outside the clone: cargo's target dir (one per checkout), the Go
# build cache, the control-plane binaries and moto's virtualenv (shared by every
# checkout) are all under $(PAVE_CACHE_DIR).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PAVE_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/pave
export PAVE_CACHE_DIR
# One cargo target dir per checkout. Test binaries embed their checkout's path
# (CARGO_MANIFEST_DIR, to find crds/ and fixtures), and cargo reuses a build made in
# another checkout when this checkout's sources are older than it: a shared dir once
# ran /work/main's tests against a deleted clone's crds/.
CHECKOUT_KEY := $(notdir $(CURDIR))-$(firstword $(shell printf '%s' '$(CURDIR)' | cksum))
export CARGO_TARGET_DIR ?= $(PAVE_CACHE_DIR)/target/$(CHECKOUT_KEY)
# Cluster tests mostly wait on the API server, so more threads than cores pays off.
export RUST_TEST_THREADS ?= 4

SCRIPTS := crates/pave-testenv/scripts

.PHONY: help demo test lint crds testbed control-plane bench image

help:
	@echo "make demo   start a local control plane with pave and the article's examples"
	@echo "make test   everything CI checks (lint, CRD freshness, unit and integration tests)"
	@echo "make crds   regenerate crds/ from the Rust types"
	@echo "make lint   cargo fmt --check and clippy"
	@echo "make image  the operator's image as an OCI archive (no Docker needed)"
	@echo "make bench  benchmarks: catalog and scorecard engines in memory; catalog (Components, then a whole org of every kind), scorecards, environments, GitOps (Argo CD) and leader failover on a real control plane"

# Builds the control plane from upstream Go modules (cached by version) and installs
# moto into its own virtualenv: what the demo needs.
control-plane:
	@bash $(SCRIPTS)/build-testbed.sh all >/dev/null
	@bash $(SCRIPTS)/install-moto.sh >/dev/null

# The whole test bed: also Argo CD from its Go module and Redis (for Argo CD) from the
# distribution, for the GitOps tests and benchmark; and the node tier: kubelet,
# kube-scheduler, kube-proxy and the pause image from the same Kubernetes module,
# containerd, runc and the CNI plugins from the distribution (apt; needs root).
testbed: control-plane
	@bash $(SCRIPTS)/build-argocd.sh all >/dev/null
	@bash $(SCRIPTS)/build-testbed.sh node >/dev/null
	@bash $(SCRIPTS)/install-node.sh >/dev/null

# The chart ships the same CRDs (tests/chart.rs fails when they differ).
crds:
	cargo run -q -p pave-cli -- crds --out crds
	cp crds/*.yaml charts/pave/crds/

# pave-operator's image, an OCI archive for `ctr images import` or `docker load`.
image:
	@bash $(SCRIPTS)/build-image.sh

lint:
	cargo fmt --all -- --check
	cargo clippy -q --workspace --all-targets -- -D warnings

test: testbed lint
	PAVE_IMAGE_ARCHIVE="$$(bash $(SCRIPTS)/build-image.sh)" \
	PAVE_TESTBED_BIN="$$(bash $(SCRIPTS)/build-testbed.sh path)" \
	PAVE_ARGOCD_BIN="$$(bash $(SCRIPTS)/build-argocd.sh path)" \
	PAVE_ARGOCD_CRDS="$$(bash $(SCRIPTS)/build-argocd.sh crds)" \
	PAVE_MOTO_SERVER="$$(bash $(SCRIPTS)/install-moto.sh)" \
	cargo test --workspace --no-fail-fast

# Reports numbers; asserts nothing about them (tests assert behaviour, not timings).
bench: testbed
	cargo bench -q -p pave-catalog --bench catalog --bench memory
	cargo bench -q -p pave-score --bench engine
	PAVE_TESTBED_BIN="$$(bash $(SCRIPTS)/build-testbed.sh path)" \
	PAVE_ARGOCD_BIN="$$(bash $(SCRIPTS)/build-argocd.sh path)" \
	PAVE_ARGOCD_CRDS="$$(bash $(SCRIPTS)/build-argocd.sh crds)" \
	PAVE_MOTO_SERVER="$$(bash $(SCRIPTS)/install-moto.sh)" \
	cargo bench -q -p pave-operator --bench catalog_cluster --bench catalog_kinds_cluster --bench scorecards_cluster --bench environments_cluster --bench gitops_argocd --bench failover

demo: control-plane
	@bash $(SCRIPTS)/demo.sh
