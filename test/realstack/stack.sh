#!/usr/bin/env bash
# A real OpenStack control plane from Debian 12's packages, on loopback, in one directory:
# Keystone 22 (uwsgi), placement (uwsgi), rabbitmq-server, Nova 26 (api (eventlet), conductor,
# scheduler, N nova-compute with a fake driver that reports SR-IOV PFs/VFs), so that real Nova
# can be pointed at vflink as its Neutron and Glance.
#
#   stack.sh install        apt-get the packages; their own services are never started
#   stack.sh up DIR         configure and start everything under DIR, wait until it answers
#   stack.sh down DIR       stop what `up` started, by the PIDs it recorded
#   stack.sh status DIR     one line per process, and the endpoints
#   stack.sh requests DIR [URL-SUBSTRING]
#                           every request Nova's processes made (e.g. to vflink: ":9696/"), from
#                           their logs: time, process, method, URL, status, token headers, body
#
# Environment for `up` (all optional):
#   VFLINK_URL          Neutron and Glance base URL (default http://127.0.0.1:9696);
#                       network = $VFLINK_URL/network, image = $VFLINK_URL/image
#   COMPUTE_HOSTS       names of the nova-compute hosts (default "h1 h2")
#   PCI_DEVICES_FILE    JSON {"<host>": [{"address","vendor_id","product_id","dev_type",
#                       "parent_addr","physical_network"}, ...], ...} (default: pci-devices.json here)
#   PCI_ALIAS_NAME      name of the [pci] alias for the VFs (default "vf")
#   KEYSTONE_PORT PLACEMENT_PORT NOVA_PORT RABBIT_PORT RABBIT_DIST_PORT EPMD_PORT
#                       fixed ports (default: free ports chosen at `up`)
#   STACK_PASSWORD      one password for every user (default: random, written to DIR/env)
#   UP_TIMEOUT          seconds to wait for each service (default 120)
#   STACK_DEBUG=1       Nova's debug logging (its requests to vflink are logged either way)
#   STACK_KEEP_ON_FAILURE=1  leave what started running when `up` fails
#   STACK_SQLITE_POOL=0 no SQLite connection pool (sqlite_pool.py): the packages' defaults, slow
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3 # never a pyenv/venv python: the packages' modules live in dist-packages

PACKAGES=(
  keystone python3-keystone
  placement-api python3-placement
  rabbitmq-server
  nova-api nova-conductor nova-scheduler nova-common python3-nova
  uwsgi-core uwsgi-plugin-python3
  python3-openstackclient python3-osc-placement
  curl sqlite3 iproute2 procps
)
# the services those packages would start (systemd units / init scripts)
SERVICES=(keystone placement-api rabbitmq-server epmd nova-api nova-conductor nova-scheduler
  nova-compute nova-api-metadata nova-novncproxy nova-serialproxy nova-spicehtml5proxy uwsgi)
# executables of those services, for the ones that got started anyway without an init system
SERVICE_EXES='/usr/bin/uwsgi-core|/usr/bin/uwsgi|beam.smp|/usr/bin/epmd|erts-[^/]*/bin/epmd|/usr/bin/nova-|/usr/bin/keystone|/usr/bin/placement'

log() { echo "stack: $*" >&2; }
die() { echo "stack: ERROR: $*" >&2; exit 1; }

# ------------------------------------------------------------------------------------ install

missing_packages() {
  local p st
  for p in "${PACKAGES[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ $st == ii* ]] || echo "$p"
  done
}

# PIDs of processes running one of the services' executables
service_pids() {
  local d exe
  for d in /proc/[0-9]*; do
    exe=$(readlink "$d/exe" 2>/dev/null || true)
    [ -n "$exe" ] || continue
    if [[ $exe =~ $SERVICE_EXES ]]; then echo "${d#/proc/}"; fi
  done
}

cmd_install() {
  export DEBIAN_FRONTEND=noninteractive
  local missing
  missing=$(missing_packages)
  if [ -z "$missing" ]; then
    log "install: all ${#PACKAGES[@]} packages already installed"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "install: run as root (apt-get)"
  log "install: missing: $(echo $missing)"
  local t0=$SECONDS before
  before=" $(service_pids | tr '\n' ' ') "
  # no service of the packages may start: policy-rc.d 101 for invoke-rc.d and deb-systemd-invoke
  local prc=/usr/sbin/policy-rc.d backup=""
  if [ -e "$prc" ]; then backup=$(mktemp /tmp/policy-rc.d.XXXXXX); cp -p "$prc" "$backup"; fi
  printf '#!/bin/sh\n# written by vflink test/realstack/stack.sh install\nexit 101\n' >"$prc"
  chmod 755 "$prc"
  restore_prc() { if [ -n "$backup" ]; then mv -f "$backup" "$prc"; else rm -f "$prc"; fi; }
  trap restore_prc EXIT
  local ok=0 try
  for try in 1 2; do
    if apt-get update -q && apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; then ok=1; break; fi
    [ "$try" = 1 ] && { log "install: apt-get failed, retrying in 10 s"; sleep 10; }
  done
  restore_prc; trap - EXIT
  [ "$ok" = 1 ] || die "install: apt-get install failed twice"
  # anything that got started anyway: stop it by its unit (systemd) or by its PID
  local s p
  if [ -d /run/systemd/system ]; then
    for s in "${SERVICES[@]}"; do
      systemctl list-unit-files "$s.service" >/dev/null 2>&1 || continue
      systemctl disable --now "$s.service" >/dev/null 2>&1 || true
    done
    systemctl disable --now epmd.socket >/dev/null 2>&1 || true
  fi
  # (only new processes of the packages' own system users: never a stack that `up` runs as root)
  local users=" $(for u in keystone placement nova rabbitmq epmd; do id -u "$u" 2>/dev/null; done | tr '\n' ' ') "
  for p in $(service_pids); do
    [[ $before == *" $p "* ]] && continue
    [[ $users == *" $(stat -c %u /proc/$p 2>/dev/null) "* ]] || continue
    log "install: stopping $(readlink /proc/$p/exe 2>/dev/null) (pid $p) that the install started"
    kill_pid "$p"
  done
  log "install: done in $((SECONDS - t0)) s"
}

kill_pid() { # kill_pid PID: TERM, wait up to 10 s, KILL
  local p=$1 i
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}

# ------------------------------------------------------------------------------------ up

# start_bg NAME CMD...: run CMD in its own session (so its children go with it), log to
# $D/logs/NAME.out, record "PID STARTTIME" in $D/pids/NAME (the start time guards against reuse)
start_bg() {
  local name=$1; shift
  setsid "$@" >>"$D/logs/$name.out" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $(proc_start "$pid")" >"$D/pids/$name"
  echo "$name" >>"$D/pids/ORDER"
  log "up: $name started (pid $pid)"
}

proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# fail NAME LOG...: the service did not come up: say which, show its logs' tails, stop all, exit 1
fail() {
  local name=$1 f; shift
  echo "stack: ERROR: $name did not come up" >&2
  for f in "$@"; do
    [ -f "$f" ] || continue
    echo "----- tail -n 40 $f" >&2
    tail -n 40 "$f" >&2
  done
  [ "${STACK_KEEP_ON_FAILURE:-0}" = 1 ] || cmd_down "$D" >&2 || true
  exit 1
}

alive() { # alive NAME: its recorded process still runs
  local pid st
  read -r pid st <"$D/pids/$1" 2>/dev/null || return 1
  kill -0 "$pid" 2>/dev/null && [ "$(proc_start "$pid")" = "$st" ]
}

# wait_for NAME TIMEOUT CHECK...: run CHECK every second until it succeeds; fail if NAME dies
wait_for() {
  local name=$1 timeout=$2 t0=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ -f "$D/pids/$name" ] && ! alive "$name"; then
      fail "$name (exited)" "$D/logs/$name.out" "$D/logs/$name.log"
    fi
    if (( SECONDS - t0 >= timeout )); then
      fail "$name (no answer in ${timeout} s)" "$D/logs/$name.out" "$D/logs/$name.log"
    fi
    sleep 1
  done
  log "up: $name answers ($((SECONDS - t0)) s)"
}

http_ok() { curl -sf -o /dev/null --max-time 5 "$@"; }
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

sqlite_wal() { # create an empty SQLite DB in WAL mode (persists in the file)
  sqlite3 "$1" 'PRAGMA journal_mode=WAL;' >/dev/null
}

rand_pw() { head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 20; }

# SQLite connection pooling (sqlite_pool.py; STACK_SQLITE_POOL=0 turns it off): the packages'
# own entry points, run with sqlite_pool imported first
pycmd() { # pycmd MODULE PROG ARGS...: PROG's main() from MODULE, as /usr/bin/PROG runs it
  local mod=$1 prog=$2; shift 2
  if [ "${STACK_SQLITE_POOL:-1}" = 1 ]; then
    $PY -c "import sys; sys.path.insert(0, '$HERE'); import sqlite_pool; sys.argv[0] = '$prog'; from $mod import main; sys.exit(main())" "$@"
  else
    "$prog" "$@"
  fi
}
UWSGI_POOL=()
[ "${STACK_SQLITE_POOL:-1}" = 1 ] && UWSGI_POOL=(--pythonpath "$HERE" --import sqlite_pool)
NOVA_CMD=("$PY" "$HERE/vflink_nova.py") # nova.cmd.NAME.main(), sqlite_pool unless STACK_SQLITE_POOL=0

cmd_up() {
  local t_up=$SECONDS
  [ -n "${1:-}" ] || die "usage: $0 up DIR"
  mkdir -p "$1"; D=$(cd "$1" && pwd)
  if [ -f "$D/pids/ORDER" ]; then
    local n
    for n in $(cat "$D/pids/ORDER"); do alive "$n" && die "up: $D already runs $n: '$0 down $D' first"; done
    rm -rf "$D/pids"
  fi
  [ -z "$(missing_packages)" ] || die "up: packages missing, run '$0 install' first: $(echo $(missing_packages))"
  mkdir -p "$D"/{logs,pids,keystone,placement,nova,rabbit}
  : >"$D/pids/ORDER"

  local VFLINK_URL=${VFLINK_URL:-http://127.0.0.1:9696}; VFLINK_URL=${VFLINK_URL%/}
  local COMPUTE_HOSTS=${COMPUTE_HOSTS:-h1 h2}
  local PCI_FILE=${PCI_DEVICES_FILE:-$HERE/pci-devices.json}
  PCI_FILE=$(cd "$(dirname "$PCI_FILE")" && pwd)/$(basename "$PCI_FILE")
  local ALIAS=${PCI_ALIAS_NAME:-vf}
  local TMO=${UP_TIMEOUT:-120}
  [ -f "$PCI_FILE" ] || die "up: PCI_DEVICES_FILE $PCI_FILE not found"
  cp "$PCI_FILE" "$D/pci-devices.json"

  # ports: the ones given, else free ones
  local free; free=($($PY "$HERE/realstack.py" ports 6))
  local KEYSTONE_PORT=${KEYSTONE_PORT:-${free[0]}} PLACEMENT_PORT=${PLACEMENT_PORT:-${free[1]}}
  local NOVA_PORT=${NOVA_PORT:-${free[2]}} RABBIT_PORT=${RABBIT_PORT:-${free[3]}}
  local RABBIT_DIST_PORT=${RABBIT_DIST_PORT:-${free[4]}} EPMD_PORT=${EPMD_PORT:-${free[5]}}
  local p
  for p in $KEYSTONE_PORT $PLACEMENT_PORT $NOVA_PORT $RABBIT_PORT $RABBIT_DIST_PORT $EPMD_PORT; do
    tcp_open "$p" && die "up: port $p on 127.0.0.1 is already in use"
  done

  local pw=${STACK_PASSWORD:-}
  local ADMIN_PASSWORD=${pw:-$(rand_pw)} DEMO_PASSWORD=${pw:-$(rand_pw)} OTHER_PASSWORD=${pw:-$(rand_pw)}
  local NOVA_PASSWORD=${pw:-$(rand_pw)} PLACEMENT_PASSWORD=${pw:-$(rand_pw)} NEUTRON_PASSWORD=${pw:-$(rand_pw)}
  local KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT/v3
  local PLACEMENT_URL=http://127.0.0.1:$PLACEMENT_PORT
  local NOVA_URL=http://127.0.0.1:$NOVA_PORT/v2.1
  local TRANSPORT_URL=rabbit://guest:guest@127.0.0.1:$RABBIT_PORT/

  cat >"$D/env" <<EOF
STACK_DIR=$D
VFLINK_URL=$VFLINK_URL
NETWORK_URL=$VFLINK_URL/network
IMAGE_URL=$VFLINK_URL/image
KEYSTONE_URL=$KEYSTONE_URL
AUTH_URL=$KEYSTONE_URL
NOVA_URL=$NOVA_URL
PLACEMENT_URL=$PLACEMENT_URL
TRANSPORT_URL=$TRANSPORT_URL
REGION=RegionOne
ADMIN_USER=admin
ADMIN_PASSWORD=$ADMIN_PASSWORD
DEMO_USER=demo
DEMO_PASSWORD=$DEMO_PASSWORD
OTHER_USER=other
OTHER_PASSWORD=$OTHER_PASSWORD
NOVA_USER=nova
NOVA_PASSWORD=$NOVA_PASSWORD
PLACEMENT_USER=placement
PLACEMENT_PASSWORD=$PLACEMENT_PASSWORD
NEUTRON_USER=neutron
NEUTRON_PASSWORD=$NEUTRON_PASSWORD
SERVICE_PROJECT=service
COMPUTE_HOSTS="$COMPUTE_HOSTS"
PCI_DEVICES_FILE=$D/pci-devices.json
PCI_ALIAS_NAME=$ALIAS
KEYSTONE_PORT=$KEYSTONE_PORT
PLACEMENT_PORT=$PLACEMENT_PORT
NOVA_PORT=$NOVA_PORT
RABBIT_PORT=$RABBIT_PORT
RABBIT_DIST_PORT=$RABBIT_DIST_PORT
EPMD_PORT=$EPMD_PORT
EOF
  chmod 600 "$D/env"
  local u
  for u in admin demo other; do
    local upw; eval "upw=\$${u^^}_PASSWORD"
    cat >"$D/openrc-$u" <<EOF
export OS_AUTH_URL=$KEYSTONE_URL
export OS_IDENTITY_API_VERSION=3
export OS_AUTH_TYPE=password
export OS_USERNAME=$u
export OS_PASSWORD=$upw
export OS_PROJECT_NAME=$u
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_INTERFACE=public
EOF
  done
  { echo "clouds:"
    for u in admin demo other; do
      local upw; eval "upw=\$${u^^}_PASSWORD"
      printf '  %s:\n    auth:\n      auth_url: %s\n      username: %s\n      password: "%s"\n      project_name: %s\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n' \
        "$u" "$KEYSTONE_URL" "$u" "$upw" "$u"
    done; } >"$D/clouds.yaml"
  chmod 600 "$D/clouds.yaml" "$D"/openrc-*

  # ------------------------------------------------------------------ rabbitmq (+ its own epmd)
  local R=$D/rabbit
  mkdir -p "$R/mnesia" "$R/home" "$D/logs/rabbit"
  cat >"$R/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
listeners.ssl = none
loopback_users.guest = true
disk_free_limit.absolute = 50MB
log.file.level = info
log.console = false
EOF
  echo '[].' >"$R/enabled_plugins"
  echo '[{kernel, [{inet_dist_use_interface, {127,0,0,1}}]}].' >"$R/advanced.config"
  : >"$R/rabbitmq-env.conf"
  local RENV=(env HOME="$R/home" ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$EPMD_PORT"
    RABBITMQ_CONF_ENV_FILE="$R/rabbitmq-env.conf" RABBITMQ_NODENAME=vflink@localhost
    RABBITMQ_USE_LONGNAME=false RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$RABBIT_PORT"
    RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT" RABBITMQ_MNESIA_BASE="$R/mnesia"
    RABBITMQ_LOG_BASE="$D/logs/rabbit" RABBITMQ_PID_FILE="$R/rabbit.pid"
    RABBITMQ_CONFIG_FILE="$R/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$R/advanced.config"
    RABBITMQ_ENABLED_PLUGINS_FILE="$R/enabled_plugins"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    ERL_CRASH_DUMP="$D/logs/rabbit/erl_crash.dump")
  # epmd first, by hand, so that it is ours, on loopback, on its own port (not 4369)
  start_bg epmd "${RENV[@]}" /usr/bin/epmd -port "$EPMD_PORT" -address 127.0.0.1
  wait_for epmd 10 tcp_open "$EPMD_PORT"
  start_bg rabbitmq "${RENV[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server
  printf '%s\n' "${RENV[@]:1}" | sed 's/^/export /; s/=\(.*\)/="\1"/' >"$R/rabbitmq-env.sh"

  # ------------------------------------------------------------------ keystone
  local K=$D/keystone
  mkdir -p "$K/fernet-keys" "$K/credential-keys"
  sqlite_wal "$K/keystone.sqlite"
  cat >"$K/keystone.conf" <<EOF
[DEFAULT]
log_file = $D/logs/keystone.log
use_stderr = false
[database]
connection = sqlite:///$K/keystone.sqlite
[token]
provider = fernet
expiration = 86400
[fernet_tokens]
key_repository = $K/fernet-keys
[credential]
key_repository = $K/credential-keys
# an in-process cache (one uwsgi process, so it is coherent: a revoked token is invalidated in
# the same process): uncached, validating one token took ~90 SQLite queries and 0.4-0.7 s of CPU
[cache]
enabled = true
backend = dogpile.cache.memory
[oslo_policy]
policy_file = $K/policy.yaml
EOF
  local KM=(pycmd keystone.cmd.manage keystone-manage --config-file "$K/keystone.conf")
  local t0=$SECONDS
  "${KM[@]}" db_sync >>"$D/logs/keystone-manage.log" 2>&1 || fail "keystone-manage db_sync" "$D/logs/keystone-manage.log" "$D/logs/keystone.log"
  "${KM[@]}" fernet_setup --keystone-user root --keystone-group root >>"$D/logs/keystone-manage.log" 2>&1 || fail "keystone-manage fernet_setup" "$D/logs/keystone-manage.log"
  "${KM[@]}" credential_setup --keystone-user root --keystone-group root >>"$D/logs/keystone-manage.log" 2>&1 || fail "keystone-manage credential_setup" "$D/logs/keystone-manage.log"
  "${KM[@]}" bootstrap --bootstrap-password "$ADMIN_PASSWORD" --bootstrap-username admin \
    --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
    --bootstrap-region-id RegionOne --bootstrap-admin-url "$KEYSTONE_URL" \
    --bootstrap-internal-url "$KEYSTONE_URL" --bootstrap-public-url "$KEYSTONE_URL" \
    >>"$D/logs/keystone-manage.log" 2>&1 || fail "keystone-manage bootstrap" "$D/logs/keystone-manage.log" "$D/logs/keystone.log"
  chmod -R go-rwx "$K/fernet-keys" "$K/credential-keys"
  log "up: keystone db_sync+bootstrap in $((SECONDS - t0)) s"
  start_bg keystone uwsgi --plugin python3 "${UWSGI_POOL[@]}" --wsgi-file /usr/bin/keystone-wsgi-public \
    --processes 1 --threads 1 --die-on-term --need-app --buffer-size 65535 --add-header "Connection: close" \
    --http-socket "127.0.0.1:$KEYSTONE_PORT" --env "OS_KEYSTONE_CONFIG_FILES=$K/keystone.conf"
  wait_for keystone "$TMO" http_ok "$KEYSTONE_URL"

  wait_for rabbitmq "$TMO" tcp_open "$RABBIT_PORT"

  # users, projects, roles, catalog
  ( export KEYSTONE_URL ADMIN_PASSWORD DEMO_PASSWORD OTHER_PASSWORD NOVA_PASSWORD PLACEMENT_PASSWORD \
      NEUTRON_PASSWORD NOVA_URL PLACEMENT_URL NETWORK_URL="$VFLINK_URL/network" IMAGE_URL="$VFLINK_URL/image"
    $PY "$HERE/realstack.py" keystone-setup ) >>"$D/logs/keystone-setup.log" 2>&1 \
    || fail "keystone setup (users, catalog)" "$D/logs/keystone-setup.log" "$D/logs/keystone.log"

  authtoken() { # authtoken USER PASSWORD
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
auth_type = password
username = $1
password = $2
user_domain_name = Default
project_name = service
project_domain_name = Default
region_name = RegionOne
interface = public
EOF
  }
  # ------------------------------------------------------------------ placement
  local P=$D/placement
  sqlite_wal "$P/placement.sqlite"
  { cat <<EOF
[DEFAULT]
log_file = $D/logs/placement.log
use_stderr = false
[api]
auth_strategy = keystone
[placement_database]
connection = sqlite:///$P/placement.sqlite
EOF
    authtoken placement "$PLACEMENT_PASSWORD"; } >"$P/placement.conf"
  pycmd placement.cmd.manage placement-manage --config-file "$P/placement.conf" db sync >>"$D/logs/placement-manage.log" 2>&1 \
    || fail "placement-manage db sync" "$D/logs/placement-manage.log"
  start_bg placement uwsgi --plugin python3 "${UWSGI_POOL[@]}" --wsgi-file /usr/bin/placement-api \
    --processes 1 --threads 1 --die-on-term --need-app --buffer-size 65535 --add-header "Connection: close" \
    --http-socket "127.0.0.1:$PLACEMENT_PORT" --env "OS_PLACEMENT_CONFIG_DIR=$P"
  wait_for placement "$TMO" http_ok "$PLACEMENT_URL/"

  # ------------------------------------------------------------------ nova
  local N=$D/nova
  mkdir -p "$N/state" "$N/instances" "$N/lock"
  sqlite_wal "$N/nova_api.sqlite"; sqlite_wal "$N/nova_cell0.sqlite"; sqlite_wal "$N/nova_cell1.sqlite"
  { cat <<EOF
[DEFAULT]
state_path = $N/state
instances_path = $N/instances
transport_url = $TRANSPORT_URL
my_ip = 127.0.0.1
use_stderr = false
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = $NOVA_PORT
osapi_compute_workers = 1
compute_driver = vflink_fake.VFlinkFakeDriver
# no periodic power-state sync surprises against a fake hypervisor
sync_power_state_interval = -1
debug = $( [ "${STACK_DEBUG:-0}" = 1 ] && echo true || echo false )
# keystoneauth at DEBUG even without debug: every request Nova makes to Keystone, placement and
# vflink (network, image) is logged as "REQ: curl -g -i -X METHOD URL -H ... -d BODY" + "RESP: ..."
default_log_levels = amqp=WARN,amqplib=WARN,sqlalchemy=WARN,oslo.messaging=INFO,oslo_messaging=INFO,iso8601=WARN,requests.packages.urllib3.connectionpool=WARN,urllib3.connectionpool=WARN,websocket=WARN,requests.packages.urllib3.util.retry=WARN,urllib3.util.retry=WARN,keystonemiddleware=WARN,routes.middleware=WARN,stevedore=WARN,taskflow=WARN,keystoneauth=DEBUG,oslo.cache=INFO,oslo_policy=INFO,dogpile.core.dogpile=INFO
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
[oslo_concurrency]
lock_path = $N/lock
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 5
[filter_scheduler]
enabled_filters = ComputeFilter,AvailabilityZoneFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,PciPassthroughFilter
[pci]
EOF
    $PY "$HERE/realstack.py" pci-alias "$D/pci-devices.json" "$ALIAS"
    authtoken nova "$NOVA_PASSWORD"
    cat <<EOF
[placement]
auth_type = password
auth_url = $KEYSTONE_URL
username = placement
password = $PLACEMENT_PASSWORD
user_domain_name = Default
project_name = service
project_domain_name = Default
region_name = RegionOne
valid_interfaces = internal,public
[neutron]
auth_type = password
auth_url = $KEYSTONE_URL
username = nova
password = $NOVA_PASSWORD
user_domain_name = Default
project_name = service
project_domain_name = Default
region_name = RegionOne
endpoint_override = $VFLINK_URL/network
[glance]
endpoint_override = $VFLINK_URL/image
region_name = RegionOne
[service_user]
send_service_user_token = true
auth_type = password
auth_url = $KEYSTONE_URL
username = nova
password = $NOVA_PASSWORD
user_domain_name = Default
project_name = service
project_domain_name = Default
[cinder]
os_region_name = RegionOne
[vnc]
enabled = false
[spice]
enabled = false
[serial_console]
enabled = false
[os_vif_linux_bridge]
[oslo_messaging_notifications]
driver = noop
EOF
  } >"$N/nova.conf"
  # the databases only for api, conductor, scheduler and nova-manage: a nova-compute that has
  # [api_database] set tries to read it ("No DB access allowed in nova-compute")
  cat >"$N/nova-db.conf" <<EOF
[api_database]
connection = sqlite:///$N/nova_api.sqlite?timeout=30
[database]
connection = sqlite:///$N/nova_cell1.sqlite?timeout=30
EOF
  local NM=("${NOVA_CMD[@]}" manage --config-file "$N/nova.conf" --config-file "$N/nova-db.conf")
  t0=$SECONDS
  { "${NM[@]}" api_db sync &&
    "${NM[@]}" cell_v2 map_cell0 --database_connection "sqlite:///$N/nova_cell0.sqlite?timeout=30" &&
    "${NM[@]}" cell_v2 create_cell --name cell1 --database_connection "sqlite:///$N/nova_cell1.sqlite?timeout=30" \
      --transport-url "$TRANSPORT_URL" &&
    "${NM[@]}" db sync; } >>"$D/logs/nova-manage.log" 2>&1 || fail "nova-manage db setup" "$D/logs/nova-manage.log"
  log "up: nova databases in $((SECONDS - t0)) s"

  start_bg nova-conductor "${NOVA_CMD[@]}" conductor --config-file "$N/nova.conf" --config-file "$N/nova-db.conf" --log-file "$D/logs/nova-conductor.log"
  start_bg nova-scheduler "${NOVA_CMD[@]}" scheduler --config-file "$N/nova.conf" --config-file "$N/nova-db.conf" --log-file "$D/logs/nova-scheduler.log"
  start_bg nova-api "${NOVA_CMD[@]}" api --config-file "$N/nova.conf" --config-file "$N/nova-db.conf" --log-file "$D/logs/nova-api.log"
  local h
  for h in $COMPUTE_HOSTS; do
    { echo "[DEFAULT]"; echo "host = $h"; echo "[pci]"
      $PY "$HERE/realstack.py" pci-conf "$D/pci-devices.json" "$h"; } >"$N/nova-$h.conf"
    start_bg "nova-compute-$h" env VFLINK_FAKE_PCI_FILE="$D/pci-devices.json" \
      $PY "$HERE/vflink_compute.py" --config-file "$N/nova.conf" --config-file "$N/nova-$h.conf" \
      --log-file "$D/logs/nova-compute-$h.log"
  done

  local token
  token=$(curl -sf --max-time 10 -D - -o /dev/null -H 'Content-Type: application/json' -d \
    '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"'"$ADMIN_PASSWORD"'"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}' \
    "$KEYSTONE_URL/auth/tokens" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r')
  [ -n "$token" ] || fail "keystone (admin token)" "$D/logs/keystone.log"
  wait_for nova-api "$TMO" http_ok -H "X-Auth-Token: $token" "$NOVA_URL/servers"
  ( set -a; . "$D/env"; set +a; $PY "$HERE/realstack.py" flavors "$ALIAS" ) >>"$D/logs/nova-setup.log" 2>&1 \
    || fail "nova flavors" "$D/logs/nova-setup.log" "$D/logs/nova-api.log"

  computes_up() { # every host's nova-compute is up, per the API
    local out
    out=$(curl -sf --max-time 10 -H "X-Auth-Token: $token" "$NOVA_URL/os-services?binary=nova-compute") || return 1
    for h in $COMPUTE_HOSTS; do
      echo "$out" | $PY -c 'import json,sys; h=sys.argv[1]; s=[x for x in json.load(sys.stdin)["services"] if x["host"]==h]; sys.exit(0 if s and s[0]["state"]=="up" else 1)' "$h" || return 1
    done
  }
  for h in $COMPUTE_HOSTS; do alive "nova-compute-$h" || fail "nova-compute-$h (exited)" "$D/logs/nova-compute-$h.out" "$D/logs/nova-compute-$h.log"; done
  local t1=$SECONDS
  until computes_up; do
    for h in $COMPUTE_HOSTS; do alive "nova-compute-$h" || fail "nova-compute-$h (exited)" "$D/logs/nova-compute-$h.out" "$D/logs/nova-compute-$h.log"; done
    (( SECONDS - t1 < TMO )) || fail "nova-compute (not up in ${TMO} s)" $(for h in $COMPUTE_HOSTS; do echo "$D/logs/nova-compute-$h.log"; done) "$D/logs/nova-conductor.log"
    sleep 2
  done
  "${NM[@]}" cell_v2 discover_hosts --verbose >>"$D/logs/nova-manage.log" 2>&1 || fail "nova-manage cell_v2 discover_hosts" "$D/logs/nova-manage.log"
  hypervisors_up() {
    local n
    n=$(curl -sf --max-time 10 -H "X-Auth-Token: $token" "$NOVA_URL/os-hypervisors" | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["hypervisors"]))') || return 1
    [ "$n" -ge "$(echo $COMPUTE_HOSTS | wc -w)" ]
  }
  wait_for nova-hypervisors "$TMO" hypervisors_up
  log "up: nova-compute up on: $COMPUTE_HOSTS ($((SECONDS - t1)) s)"
  log "up: done in $((SECONDS - t_up)) s; $D/env, $D/openrc-{admin,demo,other}, $D/clouds.yaml"
}

# ------------------------------------------------------------------------------------ down, status

cmd_down() {
  [ -n "${1:-}" ] || die "usage: $0 down DIR"
  [ -d "$1" ] || { log "down: no $1"; return 0; }
  D=$(cd "$1" && pwd)
  [ -f "$D/pids/ORDER" ] || { log "down: nothing recorded in $D"; return 0; }
  local names n pid st i left
  names=$(tac "$D/pids/ORDER")
  # TERM everything (in reverse start order; each in its own session: signal the whole group)
  for n in $names; do
    read -r pid st <"$D/pids/$n" 2>/dev/null || continue
    if kill -0 "$pid" 2>/dev/null && [ "$(proc_start "$pid")" = "$st" ]; then
      log "down: TERM $n (pid $pid)"
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for i in $(seq 150); do
    left=""
    for n in $names; do
      read -r pid st <"$D/pids/$n" 2>/dev/null || continue
      if kill -0 "$pid" 2>/dev/null && [ "$(proc_start "$pid")" = "$st" ]; then left="$left $n"
      elif kill -0 -- "-$pid" 2>/dev/null; then left="$left $n(children)"; fi
    done
    [ -z "$left" ] && break
    sleep 0.1
  done
  for n in $names; do
    read -r pid st <"$D/pids/$n" 2>/dev/null || continue
    if kill -0 -- "-$pid" 2>/dev/null; then
      log "down: KILL $n (pid $pid), still running after 15 s"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$D/pids/$n"
  done
  rm -f "$D/pids/ORDER"
  log "down: $D stopped"
}

cmd_status() {
  [ -n "${1:-}" ] || die "usage: $0 status DIR"
  D=$(cd "$1" 2>/dev/null && pwd) || die "status: no $1"
  [ -f "$D/pids/ORDER" ] || { echo "stack: $D: not running"; return 3; }
  local n pid st rc=0
  for n in $(cat "$D/pids/ORDER"); do
    read -r pid st <"$D/pids/$n" 2>/dev/null || { echo "$n: no pid"; rc=1; continue; }
    if alive "$n"; then printf '%-22s running  pid %s\n' "$n" "$pid"; else printf '%-22s DEAD     pid %s\n' "$n" "$pid"; rc=1; fi
  done
  grep -E '^(KEYSTONE_URL|NOVA_URL|PLACEMENT_URL|VFLINK_URL|RABBIT_PORT)=' "$D/env"
  return $rc
}

# ------------------------------------------------------------------------------------ main

# main is one function, called by the script's last line with `exit` on the same line: bash
# reads a script as it runs it, so a stack.sh edited while a long `up` runs would otherwise go on
# with whatever bytes now sit at its old offset
main() {
  case "${1:-}" in
    install) cmd_install ;;
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    status) shift; cmd_status "$@" ;;
    requests) # requests DIR [URL-SUBSTRING]: what Nova's processes asked of Keystone/placement/vflink
      [ -n "${2:-}" ] || die "usage: $0 requests DIR [URL-SUBSTRING]"
      $PY "$HERE/realstack.py" requests "$2/logs" "${3:-}" ;;
    *) echo "usage: $0 install | up DIR | down DIR | status DIR | requests DIR [URL-SUBSTRING]" >&2; exit 2 ;;
  esac
}

main "$@"; exit $?
