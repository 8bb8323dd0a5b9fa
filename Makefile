# vflink: one module, one binary.
SHELL := /bin/bash
GO ?= go
BIN := bin/vflink

.PHONY: build test test-nova conformance conformance-peer bench-bulk test-short fuzz run demo bench clean

build:
	$(GO) build -o $(BIN) ./cmd/vflink

# The whole suite: unit tests, real embedded etcd, a real 3-member etcd cluster, kill -9 restarts,
# the real openstack CLI (skipped when it is not installed; .ci/run installs it).
test:
	$(GO) vet ./...
	@set -o pipefail; $(GO) test -v -count=1 -timeout 20m ./... > test.out 2>&1; rc=$$?; \
	  grep -E '^(ok |FAIL|--- FAIL|--- SKIP|panic:)' test.out; \
	  if [ $$rc -ne 0 ]; then echo "--- failing output (test.out) ---"; grep -B2 -A30 -E '^\s*--- FAIL|^panic:' test.out | head -300; fi; \
	  awk '/^ *--- PASS/{p++} /^ *--- FAIL/{f++} /^ *--- SKIP/{s++} END{printf "%d passed, %d failed, %d skipped\n", p, f, s}' test.out; \
	  exit $$rc

# real Nova 26, Keystone 22, placement and rabbitmq (Debian packages) on loopback with vflink as
# their Neutron and Glance; root; prints "nova-e2e: PASS <n> checks boot_to_active_s=..."
test-nova:
	bash test/novae2e/run.sh

# OpenStack's Tempest 33 (Debian python3-tempest, installed when missing): tempest.api.network and
# tempest.api.identity against vflink with its built-in Keystone on loopback; prints
# "tempest network: passed=N failed=N skipped=N of 264" and the identity line
conformance:
	bash test/conformance/run.sh

# the same network suite against the real Neutron 21 behind Keystone 22 (~45 minutes with vflink's
# run; not in CI), then a test-by-test comparison
conformance-peer:
	bash test/conformance/neutron-peer.sh

# one native bulk create of 1000 ports on the real Neutron 21 peer and on vflink, side by side
bench-bulk:
	bash test/bench/bulk.sh

test-short:
	$(GO) test -short -count=1 ./...

# Short fuzzing runs of every fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRequestBodies -fuzztime 30s ./internal/openstack/neutron
	$(GO) test -run '^$$' -fuzz FuzzNewSubnet -fuzztime 30s ./internal/ipam
	$(GO) test -run '^$$' -fuzz FuzzNextFree -fuzztime 30s ./internal/ipam

# Build and start a server on loopback with its data in ./data (Ctrl-C stops it). The first start
# creates the admin and writes ./data/openrc and ./data/clouds.yaml for the openstack CLI.
run: build
	$(BIN) server --listen 127.0.0.1:9696 --data-dir ./data

# The lab demo (root): installs the Debian packages it needs when they are missing, builds, and
# runs the seed's workflow on the whole fabric emulated on this machine, with real packets.
SCENARIO ?= access
demo:
	@missing=0; for c in ovs-vsctl ovsdb-server ovs-vswitchd lldpd lldpcli openstack ip ethtool ping; do command -v $$c >/dev/null || missing=1; done; \
	  if [ $$missing = 1 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    openvswitch-switch lldpd iproute2 ethtool iputils-ping python3-openstackclient >/dev/null; fi
	$(GO) build -o $(BIN) ./cmd/vflink
	$(BIN) lab demo --scenario $(SCENARIO)

clean:
	rm -rf bin test.out
