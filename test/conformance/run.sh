#!/usr/bin/env bash
# OpenStack's own conformance suite against vflink (issue 19): Debian 12's Tempest 33 runs
# tempest.api.network (and tempest.api.identity against the built-in Keystone) on a vflink server
# on loopback. tempest.conf is written from what the server lists (its extensions); services other
# than Neutron are off. Prints
#   tempest network: passed=N failed=N skipped=N of T
#   tempest identity: passed=N failed=N skipped=N of T
# Work directory $CONFORMANCE_DIR (default /var/tmp/vflink-conformance), removed on success unless
# KEEP=1. SUITES selects (default "network identity"); REGEX narrows the network run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
D=${CONFORMANCE_DIR:-/var/tmp/vflink-conformance}
PORT=${CONFORMANCE_PORT:-19797}
SUITES=${SUITES:-network identity}
CONC=${CONCURRENCY:-4}
pid=

log() { echo "conformance: $*"; }
fail() { echo "conformance: FAIL $*"; exit 1; }
cleanup() {
  local rc=$?
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$pid" 2>/dev/null || true; fi
  if [ "$rc" != 0 ] || [ "${KEEP:-0}" = 1 ]; then log "work directory kept: $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT

if ! command -v tempest >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-tempest >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-tempest >/dev/null; } ||
    fail "apt-get install python3-tempest"
fi
go build -o bin/vflink ./cmd/vflink || fail "go build"
rm -rf "$D"; mkdir -p "$D"
head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$D/admin-password"
"$ROOT/bin/vflink" server --listen "127.0.0.1:$PORT" --data-dir "$D/data" \
  --bootstrap-password-file "$D/admin-password" --network-vlan-ranges sriov:100:3999 \
  >"$D/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { tail -n 20 "$D/server.log"; fail "server did not start"; }

# the extensions vflink lists are exactly what tempest may use
EXT=$(curl -sf "http://127.0.0.1:$PORT/v2.0/extensions" -H "X-Auth-Token: $(
  curl -si "http://127.0.0.1:$PORT/v3/auth/tokens" -H 'Content-Type: application/json' -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$(cat "$D/admin-password")\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" |
    awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\r')" | python3 -c 'import json,sys; print(",".join(e["alias"] for e in json.load(sys.stdin)["extensions"]))')
[ -n "$EXT" ] || fail "could not list the server's extensions"
has() { case ",$EXT," in *",$1,"*) echo true ;; *) echo false ;; esac; }

cd "$D"
# a workspace name of its own (tempest keeps a registry of them in ~/.tempest)
WSNAME=vflink-conformance-$PORT
tempest workspace remove --name "$WSNAME" >/dev/null 2>&1 || true
tempest init --name "$WSNAME" ws >"$D/tempest-init.log" 2>&1 || { cat "$D/tempest-init.log"; fail "tempest init"; }
cat >ws/etc/tempest.conf <<CONF
[DEFAULT]
log_dir = $D/ws/logs
log_file = tempest.log
[auth]
use_dynamic_credentials = true
admin_username = admin
admin_password = $(cat "$D/admin-password")
admin_project_name = admin
admin_domain_name = Default
default_credentials_domain_name = Default
create_isolated_networks = false
[identity]
uri_v3 = http://127.0.0.1:$PORT/v3
auth_version = v3
region = RegionOne
v3_endpoint_type = public
[identity-feature-enabled]
api_v3 = true
api_v2 = false
security_compliance = false
project_tags = true
application_credentials = true
access_rules = false
trust = true
domain_specific_drivers = false
# identity extensions the built-in Keystone has (not OS-EC2: its API shows EC2 secrets)
api_extensions = OS-EP-FILTER,OS-INHERIT
[network]
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
project_network_v6_cidr = 2001:db8::/48
project_network_v6_mask_bits = 64
shared_physical_network = false
[network-feature-enabled]
api_extensions = $EXT
ipv6 = ${IPV6:-true}
ipv6_subnet_attributes = ${IPV6:-true}
port_security = $(has port-security)
floating_ips = $(has router)
[service_available]
neutron = true
nova = false
glance = false
cinder = false
swift = false
heat = false
horizon = false
placement = false
[validation]
run_validation = false
CONF

pass_all=0; fail_all=0
for suite in $SUITES; do
  case $suite in
    network) re=${REGEX:-'^tempest\.api\.network'} ;;
    identity) re='^tempest\.api\.identity' ;;
    *) fail "unknown suite $suite" ;;
  esac
  excl=()
  [ "$suite" = network ] && excl=(--exclude-list "$ROOT/test/conformance/exclude-l3.txt")
  listed=$(cd ws && tempest run --list-tests --regex "$re" 2>/dev/null | grep -c '^tempest\.' || true)
  (cd ws && tempest run --regex "$re" "${excl[@]}" --concurrency "$CONC" >"$D/$suite.out" 2>&1) || true
  p=$(sed -n 's/^ - Passed: \([0-9]*\)/\1/p' "$D/$suite.out" | tail -1)
  f=$(sed -n 's/^ - Failed: \([0-9]*\)/\1/p' "$D/$suite.out" | tail -1)
  s=$(sed -n 's/^ - Skipped: \([0-9]*\)/\1/p' "$D/$suite.out" | tail -1)
  [ -n "$p" ] || { tail -n 30 "$D/$suite.out"; fail "tempest $suite did not run"; }
  grep -E '^\{[0-9]+\} .* \.\.\. FAILED' "$D/$suite.out" | sed 's/^/  /' || true
  # why the skipped ones were skipped (a class skipped in its setup counts once)
  grep -E '\.\.\. SKIPPED: ' "$D/$suite.out" | sed 's/.*SKIPPED: /  skipped: /' | sort | uniq -c | sort -rn || true
  # test_id,status per test (for test/conformance/neutron-peer.sh's comparison)
  (cd ws && stestr last --subunit | subunit2csv) | /usr/bin/python3 -c 'import csv, re, sys; w = csv.writer(sys.stdout); [w.writerow([re.sub(r"\[.*\]$", "", r[0]), r[1]]) for r in csv.reader(sys.stdin) if r and r[0].startswith("tempest.")]' >"${RESULTS_DIR:-$D}/vflink-$suite.csv" || true
  kept=$(cd ws && tempest run --list-tests --regex "$re" "${excl[@]}" 2>/dev/null | grep -c '^tempest\.' || true)
  note="a skipped class counts once"
  [ "$suite" = network ] && note="excluded, L3 without an extension check: $((listed - kept)); $note"
  echo "tempest $suite: passed=$p failed=$f skipped=$s of $listed ($note)"
  cp "$D/$suite.out" "$D/../vflink-conformance-$suite.last" 2>/dev/null || true
  fail_all=$((fail_all + f))
done
[ "$fail_all" = 0 ] || fail "$fail_all tempest tests failed (output kept in $D)"
