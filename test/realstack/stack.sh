#!/usr/bin/env bash
# A real OpenStack control plane from Debian 12's packages, on loopback, in one directory:
# Keystone 22 (uwsgi), placement (uwsgi), rabbitmq-server, Nova 26 (api under uwsgi, conductor,
# scheduler, N nova-compute with a fake driver that reports SR-IOV PFs/VFs), so that real Nova
# can be pointed at vflink as its Neutron and Glance.
#
#   stack.sh install        apt-get the packages; their own services are never started
#   stack.sh up DIR         configure and start everything under DIR, wait until it answers
#   stack.sh down DIR       stop what `up` started, by the PIDs it recorded
#   stack.sh status DIR     one line per process, and the endpoints
#
# Environment for `up` (all optional):
#   VFLINK_URL          Neutron and Glance base URL (default http://127.0.0.1:9696);
#                       network = $VFLINK_URL/network, image = $VFLINK_URL/image
#   COMPUTE_HOSTS       names of the nova-compute hosts (default "h1 h2")
#   PCI_DEVICES_FILE    JSON {"<host>": [{"address","vendor_id","product_id","dev_type",
#                       "parent_addr","physical_network"}, ...], ...} (default: example.json here)
#   PCI_ALIAS_NAME      name of the [pci] alias for the VFs (default "vf")
#   KEYSTONE_PORT PLACEMENT_PORT NOVA_PORT RABBIT_PORT RABBIT_DIST_PORT EPMD_PORT
#                       fixed ports (default: free ports chosen at `up`)
#   STACK_PASSWORD      one password for every user (default: random, written to DIR/env)
#   UP_TIMEOUT          seconds to wait for each service (default 120)
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

# ------------------------------------------------------------------------------------ main

case "${1:-}" in
  install) cmd_install ;;
  *) echo "usage: $0 install | up DIR | down DIR | status DIR" >&2; exit 2 ;;
esac
