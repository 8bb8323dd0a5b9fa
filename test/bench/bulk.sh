#!/usr/bin/env bash
# One native bulk create of N ports (default 1000), side by side: the real Neutron 21 peer
# (../shared/peers/neutron: Debian neutron-server, noauth, SQLite, fresh database) and vflink
# (vflink server --auth none, embedded etcd), the same client (vflink bench ports --bulk N) on a
# /16 subnet. Loopback only. Prints
#   bulk N ports: neutron <s> s (<f> ports/s), vflink <s> s (<f> ports/s): <ratio>x
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
N=${COUNT:-1000}
PEER=$ROOT/../shared/peers/neutron
D=$(mktemp -d /var/tmp/vflink-bench-bulk.XXXX)
PORT=${VFLINK_PORT:-19803}
pid=
export NEUTRONPEER_DIR=$D/neutron
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; "$PEER/stop.sh" >/dev/null 2>&1 || true; rm -rf "$D"; }
trap cleanup EXIT
go build -o "$D/vflink" ./cmd/vflink
bash "$PEER/install.sh" >/dev/null
"$PEER/start.sh" --reset >/dev/null
mknet() { # URL -> network ID with a /16 subnet
  local id
  id=$(curl -sf -XPOST "$1/v2.0/networks" -H 'Content-Type: application/json' -d '{"network":{"name":"bulk","tenant_id":"demo"}}' | /usr/bin/python3 -c 'import json,sys;print(json.load(sys.stdin)["network"]["id"])')
  curl -sf -o /dev/null -XPOST "$1/v2.0/subnets" -H 'Content-Type: application/json' -d '{"subnet":{"network_id":"'"$id"'","tenant_id":"demo","ip_version":4,"cidr":"10.0.0.0/16"}}'
  echo "$id"
}
NU=http://127.0.0.1:19696
nline=$("$D/vflink" bench ports --url $NU --network "$(mknet $NU)" --count "$N" --bulk "$N" --timeout 10m 2>&1 | tail -n 1)
"$D/vflink" server --auth none --listen "127.0.0.1:$PORT" --data-dir "$D/data" >"$D/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
VU=http://127.0.0.1:$PORT
vline=$("$D/vflink" bench ports --url "$VU" --network "$(mknet "$VU")" --count "$N" --bulk "$N" 2>&1 | tail -n 1)
/usr/bin/python3 - "$N" "$nline" "$vline" <<'PY'
import re, sys
n, nl, vl = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def f(line, k):
    m = re.search(k + r'=([0-9.]+)', line)
    return float(m.group(1)) if m else None
nr, vr = f(nl, 'ports/s'), f(vl, 'ports/s')
if not nr or not vr:
    sys.exit(f"no figures: neutron: {nl[:100]} | vflink: {vl[:100]}")
print(f"bulk {n} ports: neutron {f(nl, 'p50_ms') / 1000:.2f} s ({nr:.1f} ports/s), "
      f"vflink {f(vl, 'p50_ms') / 1000:.3f} s ({vr:.1f} ports/s): {vr / nr:.0f}x")
PY
