#!/usr/bin/env bash
# The same Tempest 33 network suite against the real Neutron 21 (Debian 12's neutron-server: ML2
# with sriovnicswitch, port_security, service_plugins = router, SQLite) behind a real Debian
# Keystone 22, then a test-by-test comparison with vflink's run (test/conformance/run.sh).
# Not part of CI: it takes ~30 minutes. Root; loopback only. Prints
#   tempest network (neutron 21): passed=N failed=N skipped=N
#   same tests: vflink passes N, Neutron 21 passes M; both K; only Neutron: ...; only vflink: ...
# Work directory $PEER_DIR (default /var/tmp/vflink-neutron-peer), kept. VFLINK_RESULTS: a
# vflink results CSV (test_id,status) from run.sh (default: run.sh is run first, ~12 minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PEERS=$ROOT/../shared/peers/neutron
D=${PEER_DIR:-/var/tmp/vflink-neutron-peer}
KPORT=${KEYSTONE_PORT:-19710}
NPORT=${NEUTRON_PORT:-19711}
pids=()
log() { echo "neutron-peer: $*"; }
fail() { echo "neutron-peer: FAIL $*"; exit 1; }
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
[ "$(id -u)" = 0 ] || fail "run as root (apt-get)"
for p in $KPORT $NPORT; do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && fail "port $p on 127.0.0.1 is in use"; done

if [ -z "${VFLINK_RESULTS:-}" ]; then
  log "running the vflink suite first (test/conformance/run.sh)"
  RESULTS_DIR=$D SUITES=network bash test/conformance/run.sh || true
  VFLINK_RESULTS=$D/vflink-network.csv
fi
[ -s "$VFLINK_RESULTS" ] || fail "no vflink results in $VFLINK_RESULTS"

bash "$PEERS/install.sh" >/dev/null || fail "install neutron-server ($PEERS/install.sh)"
bash test/realstack/stack.sh install >/dev/null || fail "install keystone (test/realstack/stack.sh install)"
command -v tempest >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-tempest >/dev/null
PY=/usr/bin/python3
rm -rf "$D/keystone" "$D/neutron" "$D/ws"; mkdir -p "$D/keystone" "$D/neutron"/{log,state,lock,etc}
pw() { head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 20; }
ADMIN_PW=$(pw); NEUTRON_PW=$(pw)
KURL=http://127.0.0.1:$KPORT/v3

# ---------------------------------------------------------------- Keystone 22 (as the issue measured it)
K=$D/keystone
$PY - "$K/keystone.sqlite" <<'PY'
import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA journal_mode=WAL"); c.close()
PY
cat >"$K/keystone.conf" <<CONF
[DEFAULT]
log_file = $K/keystone.log
use_stderr = false
[database]
connection = sqlite:///$K/keystone.sqlite
[token]
provider = fernet
[fernet_tokens]
key_repository = $K/fernet-keys
[credential]
key_repository = $K/credential-keys
[cache]
enabled = true
backend = dogpile.cache.memory
CONF
KM="keystone-manage --config-file $K/keystone.conf"
$KM db_sync >"$K/manage.log" 2>&1 || fail "keystone-manage db_sync ($K/manage.log)"
$KM fernet_setup --keystone-user root --keystone-group root >>"$K/manage.log" 2>&1
$KM credential_setup --keystone-user root --keystone-group root >>"$K/manage.log" 2>&1
$KM bootstrap --bootstrap-password "$ADMIN_PW" --bootstrap-username admin --bootstrap-project-name admin \
  --bootstrap-role-name admin --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
  --bootstrap-admin-url "$KURL" --bootstrap-internal-url "$KURL" --bootstrap-public-url "$KURL" >>"$K/manage.log" 2>&1 ||
  fail "keystone-manage bootstrap ($K/manage.log)"
# as test/realstack/stack.sh runs it (its SQLite pool; one connection per request)
uwsgi --plugin python3 --pythonpath "$ROOT/test/realstack" --import sqlite_pool \
  --wsgi-file /usr/bin/keystone-wsgi-public --processes 1 --threads 1 --die-on-term \
  --need-app --buffer-size 65535 --add-header "Connection: close" --http-socket "127.0.0.1:$KPORT" --env "OS_KEYSTONE_CONFIG_FILES=$K/keystone.conf" \
  >"$K/uwsgi.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do curl -sf -o /dev/null "$KURL" && break; sleep 0.5; done
curl -sf -o /dev/null "$KURL" || fail "keystone did not start ($K/uwsgi.log)"
export OS_AUTH_URL=$KURL OS_USERNAME=admin OS_PASSWORD=$ADMIN_PW OS_PROJECT_NAME=admin \
  OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_IDENTITY_API_VERSION=3
openstack project create --domain default service >/dev/null
openstack user create --domain default --password "$NEUTRON_PW" neutron >/dev/null
openstack role add --project service --user neutron admin
openstack service create --name neutron network >/dev/null
for i in public internal admin; do openstack endpoint create --region RegionOne network "$i" "http://127.0.0.1:$NPORT" >/dev/null; done
log "keystone up on $KURL"

# ---------------------------------------------------------------- Neutron 21
N=$D/neutron
sed "s#@DIR@#$N#g" "$PEERS/etc/api-paste.ini" >"$N/etc/api-paste.ini"
cat >"$N/etc/neutron.conf" <<CONF
[DEFAULT]
auth_strategy = keystone
core_plugin = ml2
service_plugins = router
transport_url = fake://
bind_host = 127.0.0.1
bind_port = $NPORT
api_paste_config = $N/etc/api-paste.ini
state_path = $N/state
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
log_dir = $N/log
use_stderr = false
[database]
connection = sqlite:///$N/neutron.db
[oslo_concurrency]
lock_path = $N/lock
[ml2]
type_drivers = flat,vlan
tenant_network_types = vlan
mechanism_drivers = sriovnicswitch
extension_drivers = port_security
[ml2_type_vlan]
network_vlan_ranges = sriov:100:3999
[ml2_type_flat]
flat_networks = *
[keystone_authtoken]
www_authenticate_uri = $KURL
auth_url = $KURL
auth_type = password
username = neutron
password = $NEUTRON_PW
user_domain_name = Default
project_name = service
project_domain_name = Default
CONF
$PY "$PEERS/create_schema.py" "sqlite:///$N/neutron.db" >"$N/log/schema.log" 2>&1 || fail "neutron schema ($N/log/schema.log)"
neutron-db-manage --config-file "$N/etc/neutron.conf" stamp heads >>"$N/log/schema.log" 2>&1 || true
neutron-server --config-file "$N/etc/neutron.conf" >"$N/log/stdout.log" 2>&1 &
pids+=($!)
for _ in $(seq 60); do curl -sf -o /dev/null "http://127.0.0.1:$NPORT/" && break; sleep 1; done
curl -sf -o /dev/null "http://127.0.0.1:$NPORT/" || fail "neutron-server did not start ($N/log)"
EXT=$(openstack extension list --network -f value -c Alias | paste -sd, -)
log "neutron up on 127.0.0.1:$NPORT with $(echo "$EXT" | tr , '\n' | wc -l) extensions"

# ---------------------------------------------------------------- Tempest
cd "$D"
WSNAME=vflink-neutron-peer
tempest workspace remove --name "$WSNAME" >/dev/null 2>&1 || true
tempest init --name "$WSNAME" ws >/dev/null 2>&1 || fail "tempest init"
cat >ws/etc/tempest.conf <<CONF
[DEFAULT]
log_dir = $D/ws/logs
log_file = tempest.log
[auth]
use_dynamic_credentials = true
admin_username = admin
admin_password = $ADMIN_PW
admin_project_name = admin
admin_domain_name = Default
default_credentials_domain_name = Default
create_isolated_networks = false
[identity]
uri_v3 = $KURL
auth_version = v3
region = RegionOne
[network]
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
project_network_v6_cidr = 2001:db8::/48
project_network_v6_mask_bits = 64
[network-feature-enabled]
api_extensions = $EXT
ipv6 = true
ipv6_subnet_attributes = true
port_security = true
[service_available]
neutron = true
nova = false
glance = false
cinder = false
swift = false
[validation]
run_validation = false
CONF
T0=$SECONDS
(cd ws && tempest run --regex '^tempest\.api\.network' --concurrency "${CONCURRENCY:-2}" >"$D/neutron-network.out" 2>&1) || true
(cd ws && stestr last --subunit | subunit2csv) | $PY -c 'import csv, re, sys; w = csv.writer(sys.stdout); [w.writerow([re.sub(r"\[.*\]$", "", r[0]), r[1]]) for r in csv.reader(sys.stdin) if r and r[0].startswith("tempest.")]' >"$D/neutron-network.csv" || true
p=$(sed -n 's/^ - Passed: \([0-9]*\)/\1/p' "$D/neutron-network.out" | tail -1)
f=$(sed -n 's/^ - Failed: \([0-9]*\)/\1/p' "$D/neutron-network.out" | tail -1)
s=$(sed -n 's/^ - Skipped: \([0-9]*\)/\1/p' "$D/neutron-network.out" | tail -1)
echo "tempest network (neutron 21): passed=$p failed=$f skipped=$s in $(((SECONDS - T0) / 60)) min"
$PY - "$VFLINK_RESULTS" "$D/neutron-network.csv" <<'PY'
import csv, sys
def load(p):
    out = {}
    for row in csv.reader(open(p)):
        if len(row) >= 2 and row[0].startswith("tempest."):
            out[row[0]] = row[1]
    return out
v, n = load(sys.argv[1]), load(sys.argv[2])
vp = {t for t, s in v.items() if s == "success"}
np_ = {t for t, s in n.items() if s == "success"}
l3 = ("router", "floating", "metering", "dvr", "external_network")
print(f"same tests: vflink passes {len(vp)}, Neutron 21 passes {len(np_)}; both {len(vp & np_)}; "
      f"Neutron's outside L3: {len({t for t in np_ if not any(k in t.lower() for k in l3)})}")
for t in sorted(np_ - vp):
    print("  only Neutron:", t, "(vflink:", v.get(t, "not run") + ")")
for t in sorted(vp - np_):
    print("  only vflink: ", t, "(neutron:", n.get(t, "not run") + ")")
PY
