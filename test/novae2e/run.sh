#!/usr/bin/env bash
# Real Nova boots on vflink ports, real Keystone authenticates (issue 14's acceptance).
#
# Debian 12's Keystone 22, placement, rabbitmq and Nova 26 (api, conductor, scheduler, two
# nova-compute with a fake driver reporting the lab hosts' VFs) run on loopback
# (test/realstack/stack.sh); vflink is their Neutron and Glance with --keystone-url; the lab's
# emulated hosts (vflink lab up --topology-only: VFs on an emulated NIC switch in namespaces) run
# the real vflink agent, which logs in at the real Keystone. Then, with the real openstack CLI:
# a boot on a direct port, its VF checked on exactly the PCI address Nova chose, Nova's
# network-vif-plugged, quotas, a Nova-created port, tokens (revoked, unknown, another project),
# live migration h1 <-> h2, delete → port DOWN and VF restored.
#
# Root (namespaces, apt). Prints one line per check and ends with
#   nova-e2e: PASS <n> checks boot_to_active_s=<f> live_migration_s=<f> total_s=<f>
# or nova-e2e: FAIL <check>: <why>. Work directory: $NOVAE2E_DIR (default /var/tmp/vflink-novae2e),
# removed at the end unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
T0=$(date +%s.%N)
D=${NOVAE2E_DIR:-/var/tmp/vflink-novae2e}
LAB=$D/lab
STACK=$D/stack
checks=0
pids=()

log() { echo "nova-e2e: $*"; }
pass() { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail() { echo "nova-e2e: FAIL $1: $2"; exit 1; }

cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$p" 2>/dev/null || true; done
  bash test/realstack/stack.sh down "$STACK" >/dev/null 2>&1 || true
  "$ROOT/bin/vflink" lab down --dir "$LAB" >/dev/null 2>&1 || true
  if [ "$rc" != 0 ]; then
    log "logs kept in $D"
    for f in "$D"/vflink-server.log "$D"/agent-h1.log; do [ -f "$f" ] && { echo "--- tail $f"; tail -n 20 "$f"; }; done
  elif [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$D"
  fi
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail preflight "run as root (network namespaces, apt-get)"
bash test/realstack/stack.sh install >/dev/null || fail install "test/realstack/stack.sh install failed"
go build -o bin/vflink ./cmd/vflink || fail build "go build failed"
VFLINK=$ROOT/bin/vflink
rm -rf "$D"; mkdir -p "$D"
"$VFLINK" lab down --dir "$LAB" >/dev/null 2>&1 || true

# the lab hosts h1, h2: their VFs are what Nova's fake driver reports
"$VFLINK" lab up --topology-only --dir "$LAB" --hosts 2 --pfs-per-host 1 --vfs-per-pf 4 --leaves 1 >"$D/lab.log" 2>&1 ||
  fail lab "vflink lab up --topology-only: $(tail -n 2 "$D/lab.log")"
python3 - "$D/pci.json" "$VFLINK" "$LAB" <<'PY'
import json, subprocess, sys
out, vflink, lab = sys.argv[1:]
devs = {}
for h in ("h1", "h2"):
    devs[h] = json.loads(subprocess.check_output([vflink, "agent", "inventory", "--nova", "--config", f"{lab}/agent-{h}.json"]))
json.dump(devs, open(out, "w"), indent=1)
PY

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export VFLINK_URL=http://127.0.0.1:$port PCI_DEVICES_FILE=$D/pci.json COMPUTE_HOSTS="h1 h2"
t=$(date +%s)
bash test/realstack/stack.sh up "$STACK" >"$D/stack.log" 2>&1 || fail stack "stack.sh up: $(tail -n 5 "$D/stack.log")"
log "Keystone, placement, rabbitmq, Nova up in $(( $(date +%s) - t ))s"
# shellcheck disable=SC1091
source "$STACK/env"
printf '%s\n' "$NEUTRON_PASSWORD" >"$D/neutron-password"; chmod 600 "$D/neutron-password"

"$VFLINK" server --listen 127.0.0.1:$port --data-dir "$D/vflink" --keystone-url "$KEYSTONE_URL" \
  --keystone-username "$NEUTRON_USER" --keystone-password-file "$D/neutron-password" --keystone-project service \
  --token-cache-ttl 3s >"$D/vflink-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "$VFLINK_URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$VFLINK_URL/healthz" >/dev/null || fail server "vflink server did not start: $(tail -n 3 "$D/vflink-server.log")"
for h in h1 h2; do
  "$VFLINK" agent --server "$VFLINK_URL" --host $h --config "$LAB/agent-$h.json" --auth-url "$KEYSTONE_URL" \
    --username "$NEUTRON_USER" --password-file "$D/neutron-password" --project service >"$D/agent-$h.log" 2>&1 &
  pids+=($!)
done

as() { # as admin|demo|other -- openstack args...
  local who=$1; shift
  ( set +u; source "$STACK/openrc-$who"; openstack "$@" )
}
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }

ADMIN_TOKEN=$(as admin token issue -f value -c id)
for _ in $(seq 100); do
  hosts=$(curl -s -H "X-Auth-Token: $ADMIN_TOKEN" "$VFLINK_URL/v1/hosts" | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("hosts", [])))' 2>/dev/null || echo 0)
  [ "$hosts" = 2 ] && break; sleep 0.3
done
[ "$hosts" = 2 ] || fail agents "the two agents did not register through the real Keystone: $(tail -n 3 "$D/agent-h1.log")"
pass "two vflink agents registered, logged in at the real Keystone as $NEUTRON_USER"

# the seed's steps 1-2, as the real CLI sends them, through the real Keystone's catalog
as admin network create --share --provider-network-type vlan --provider-physical-network sriov --provider-segment 15 blue -f value -c id >"$D/net" ||
  fail network "network create"
NET=$(cat "$D/net")
as admin subnet create --network blue --subnet-range 10.0.0.0/24 sub -f value -c id >/dev/null || fail subnet "subnet create (admin: only the network's owner adds subnets, as in Neutron)"
PORT=$(as demo port create --network blue --vnic-type direct p1 -f value -c id) || fail port "port create as demo"
pass "network (VLAN 15), subnet and direct port created through the real Keystone's catalog"
as admin flavor create --vcpus 1 --ram 64 --disk 1 f1 >/dev/null || fail flavor "flavor create"
as admin image create --public --disk-format raw --container-format bare --property location=file:///images/vm.raw i1 >/dev/null ||
  fail image "image create"

# every VF's state before anything was bound: what each must be restored to
"$VFLINK" agent inventory --state --config "$LAB/agent-h1.json" >"$D/before-h1.json"
"$VFLINK" agent inventory --state --config "$LAB/agent-h2.json" >"$D/before-h2.json"
saved() { python3 -c 'import json,sys; d={}; [d.update(json.load(open(f))) for f in sys.argv[2:]]; print(d[sys.argv[1]])' "$1" "$D"/before-h1.json "$D"/before-h2.json; }
t=$(date +%s.%N)
as demo server create --flavor f1 --image i1 --port "$PORT" --wait vm1 -f json >"$D/vm1.json" 2>"$D/vm1.err" ||
  fail boot "server create: $(tail -n 3 "$D/vm1.err")"
BOOT=$(python3 -c "print(round($(date +%s.%N) - $t, 2))")
[ "$(jget 'd["status"]' <"$D/vm1.json")" = ACTIVE ] || fail boot "server status $(jget 'd["status"]' <"$D/vm1.json")"
VM1=$(jget 'd["id"]' <"$D/vm1.json")
pass "openstack server create --port: ACTIVE in ${BOOT}s"

as admin port show "$PORT" -f json >"$D/p1.json"
HOST=$(jget 'd["binding_host_id"]' <"$D/p1.json")
SLOT=$(jget 'd["binding_profile"]["pci_slot"]' <"$D/p1.json")
MAC=$(jget 'd["mac_address"]' <"$D/p1.json")
STATUS=$(jget 'd["status"]' <"$D/p1.json")
[ "$STATUS" = ACTIVE ] || fail port-active "port $STATUS after the boot"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["binding_profile"]; sys.exit(0 if set(p) <= {"pci_slot","pci_vendor_info","physical_network"} else 1)' "$D/p1.json" ||
  fail profile "binding:profile was rewritten: $(jget 'd["binding_profile"]' <"$D/p1.json")"
got=$("$VFLINK" agent inventory --state --config "$LAB/agent-$HOST.json" | jget "d['$SLOT']")
case "$got" in "MAC $MAC, vlan 15, spoof checking on"*) ;; *) fail vf "VF $SLOT of $HOST carries '$got', want MAC $MAC vlan 15";; esac
pass "port ACTIVE; VF $SLOT on $HOST (the one Nova's PCI tracker chose) carries MAC $MAC, vlan 15; binding:profile as Nova wrote it"
grep -q "network-vif-plugged.*$PORT\|$PORT.*network-vif-plugged" "$STACK"/logs/nova-api.log ||
  fail vif-plugged "nova-api's log shows no network-vif-plugged for $PORT"
pass "nova-api received network-vif-plugged for the port"

# quotas: Nova reads them before a boot; a limit of the port count stops the next port
as admin quota set --ports 2 demo >/dev/null || fail quota "quota set"
[ "$(as admin quota show demo -f json | jget 'd["ports"]')" = 2 ] || fail quota "quota show does not show ports=2"
as demo port create --network blue --vnic-type direct p2 >/dev/null || fail quota "second port under the quota"
if as demo port create --network blue p3 >"$D/p3.out" 2>&1; then fail quota "a third port was created over a quota of 2"; fi
grep -qi "quota" "$D/p3.out" || fail quota "over-quota error does not say so: $(cat "$D/p3.out")"
pass "quota set/show through the CLI; a port over the quota refused ($(tr -d '\n' <"$D/p3.out" | cut -c1-80))"
as admin quota set --ports -1 demo >/dev/null

# a port Nova creates itself (--nic net-id) is a normal port: vflink binds only SR-IOV VNIC types
# (like a Neutron whose only mechanism driver is sriovnicswitch), so Nova gets binding_failed,
# puts the server in ERROR with "Binding failed for port" and deletes the port it created
# (Debian 12's openstackclient exits 0 after "Error creating server": the status is what counts)
as demo server create --flavor f1 --image i1 --nic net-id="$NET" --wait vm2 >"$D/vm2.out" 2>&1 || true
as demo server show vm2 -f json >"$D/vm2.json" || fail nic-net "server show vm2"
[ "$(jget 'd["status"]' <"$D/vm2.json")" = ERROR ] || fail nic-net "vm2 is $(jget 'd["status"]' <"$D/vm2.json"), want ERROR"
FAULT=$(jget 'd.get("fault", {}).get("message", "")' <"$D/vm2.json")
case "$FAULT" in *"inding failed"*|*"Exceeded maximum number of retries"*) ;; *) fail nic-net "vm2's fault does not name the binding: $FAULT";; esac
left=""
for _ in $(seq 50); do
  left=$(as admin port list --network blue --device-owner compute:nova -f value -c ID | grep -v "$PORT" || true)
  [ -z "$left" ] && break; sleep 0.2
done
[ -z "$left" ] || fail nic-net "the port Nova created for vm2 was not deleted: $left"
as demo server delete --wait vm2 >/dev/null 2>&1 || true
pass "server create --nic net-id (a normal port): ERROR '$(echo "$FAULT" | cut -c1-70)', Nova's port deleted"

# tokens: unknown 401, another project's port 404, a revoked token refused within the cache bound
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Auth-Token: gAAAAABnot-a-token' "$VFLINK_URL/network/v2.0/ports")
[ "$code" = 401 ] || fail tokens "an unknown token got $code"
OTHER=$(as other token issue -f value -c id)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $OTHER" "$VFLINK_URL/network/v2.0/ports/$PORT")
[ "$code" = 404 ] || fail tokens "a member of another project got $code for demo's port"
DEMO=$(as demo token issue -f value -c id)
curl -sf -o /dev/null -H "X-Auth-Token: $DEMO" "$VFLINK_URL/network/v2.0/ports/$PORT" || fail tokens "demo's token refused"
as admin token revoke "$DEMO" >/dev/null 2>&1 || ( set +u; source "$STACK/openrc-demo"; openstack token revoke "$DEMO" ) || fail tokens "token revoke"
t=$(date +%s.%N); code=200
for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $DEMO" "$VFLINK_URL/network/v2.0/ports/$PORT")
  [ "$code" = 401 ] && break; sleep 0.1
done
[ "$code" = 401 ] || fail tokens "a revoked token still works after 10 s (cache bound 3 s)"
pass "unknown token 401; another project's member 404; a revoked token refused after $(python3 -c "print(round($(date +%s.%N) - $t, 1))")s (cache bound 3 s)"

# live migration between the two compute hosts (binding-extended): Nova binds the port on the
# destination with the VF its PCI tracker claimed there, activates that binding when the guest has
# moved, and deletes the source's; the destination's agent programs its VF, the source's restores
SRC=$HOST SRCSLOT=$SLOT
DST=h1; [ "$SRC" = h1 ] && DST=h2
t=$(date +%s.%N)
as admin --os-compute-api-version 2.30 server migrate --live-migration --host "$DST" --wait "$VM1" >"$D/migrate.out" 2>&1 ||
  fail migrate "server migrate --live-migration --host $DST: $(tail -n 3 "$D/migrate.out")"
[ "$(as admin server show "$VM1" -f value -c OS-EXT-SRV-ATTR:host)" = "$DST" ] ||
  fail migrate "vm1 is on $(as admin server show "$VM1" -f value -c OS-EXT-SRV-ATTR:host) after migrating to $DST: $(tail -n 3 "$D/migrate.out")"
for _ in $(seq 100); do
  as admin port show "$PORT" -f json >"$D/p1m.json"
  [ "$(jget 'd["status"]' <"$D/p1m.json")" = ACTIVE ] && [ "$(jget 'd["binding_host_id"]' <"$D/p1m.json")" = "$DST" ] && break
  sleep 0.2
done
MIGRATE=$(python3 -c "print(round($(date +%s.%N) - $t, 2))")
[ "$(jget 'd["binding_host_id"]' <"$D/p1m.json")" = "$DST" ] || fail migrate "the port's binding is on $(jget 'd["binding_host_id"]' <"$D/p1m.json"), want $DST"
[ "$(jget 'd["status"]' <"$D/p1m.json")" = ACTIVE ] || fail migrate "the port is $(jget 'd["status"]' <"$D/p1m.json") on $DST"
SLOT=$(jget 'd["binding_profile"]["pci_slot"]' <"$D/p1m.json")
HOST=$DST
got=$("$VFLINK" agent inventory --state --config "$LAB/agent-$DST.json" | jget "d['$SLOT']")
case "$got" in "MAC $MAC, vlan 15, spoof checking on"*) ;; *) fail migrate "VF $SLOT of $DST carries '$got', want MAC $MAC vlan 15";; esac
now=$("$VFLINK" agent inventory --state --config "$LAB/agent-$SRC.json" | jget "d['$SRCSLOT']")
[ "$now" = "$(saved "$SRCSLOT")" ] || fail migrate "the source's VF $SRCSLOT is '$now', not restored to '$(saved "$SRCSLOT")'"
ADMIN_TOKEN=$(as admin token issue -f value -c id)
hosts=$(curl -sf -H "X-Auth-Token: $ADMIN_TOKEN" "$VFLINK_URL/network/v2.0/ports/$PORT/bindings" | jget '" ".join(b["host"]+":"+b["status"] for b in d["bindings"])')
[ "$hosts" = "$DST:ACTIVE" ] || fail migrate "the port's bindings after the migration: $hosts, want $DST:ACTIVE only"
pass "live migration $SRC -> $DST: port ACTIVE on $DST in ${MIGRATE}s, VF $SLOT there carries MAC $MAC vlan 15, $SRC's VF $SRCSLOT restored, bindings: $hosts"

# delete: the port goes DOWN and its VF back to what it was
as demo server delete --wait vm1 || fail delete "server delete"
was=$(saved "$SLOT")
for _ in $(seq 100); do
  st=$(as admin port show "$PORT" -f value -c status)
  now=$("$VFLINK" agent inventory --state --config "$LAB/agent-$HOST.json" | jget "d['$SLOT']")
  [ "$st" = DOWN ] && [ "$now" = "$was" ] && break; sleep 0.2
done
[ "$st" = DOWN ] || fail delete "port $st after the server was deleted"
[ "$now" = "$was" ] || fail delete "VF $SLOT is '$now', not restored to '$was'"
pass "server delete: port DOWN, VF $SLOT restored ($was)"

TOTAL=$(python3 -c "print(round($(date +%s.%N) - $T0, 1))")
echo "nova-e2e: PASS $checks checks boot_to_active_s=$BOOT live_migration_s=$MIGRATE total_s=$TOTAL"
