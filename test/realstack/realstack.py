#!/usr/bin/python3
"""Helpers for stack.sh (test/realstack): free ports, Keystone users/catalog, PCI config, flavors.

Only loopback is ever contacted: every URL comes from stack.sh, which builds them on 127.0.0.1
(and VFLINK_URL, which the caller gives).
"""
import json
import os
import re
import socket
import sys

import requests


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))


class Keystone:
    def __init__(self, url, password):
        self.url = url.rstrip("/")
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        r = requests.post(self.url + "/auth/tokens", json=body, timeout=30)
        r.raise_for_status()
        self.h = {"X-Auth-Token": r.headers["X-Subject-Token"]}

    def _req(self, method, path, **kw):
        r = requests.request(method, self.url + path, headers=self.h, timeout=30, **kw)
        if r.status_code >= 400:
            raise SystemExit("keystone %s %s: %s %s" % (method, path, r.status_code, r.text))
        return r.json() if r.content else None

    def find(self, coll, **q):
        items = self._req("GET", "/" + coll, params=q)[coll]
        return items[0] if items else None

    def ensure(self, coll, key, body, **q):
        it = self.find(coll, **q)
        if it:
            return it
        return self._req("POST", "/" + coll, json={key: body})[key]

    def grant(self, project, user, role):
        self._req("PUT", "/projects/%s/users/%s/roles/%s" % (project["id"], user["id"], role["id"]))


def keystone_setup():
    e = os.environ
    ks = Keystone(e["KEYSTONE_URL"], e["ADMIN_PASSWORD"])
    roles = {n: ks.ensure("roles", "role", {"name": n}, name=n)
             for n in ("admin", "member", "reader", "service")}

    def project(name, desc):
        return ks.ensure("projects", "project", {"name": name, "domain_id": "default",
                                                 "description": desc}, name=name)

    def user(name, password, proj):
        return ks.ensure("users", "user", {"name": name, "domain_id": "default",
                                           "password": password,
                                           "default_project_id": proj["id"]}, name=name)

    service = project("service", "service users")
    for name in ("nova", "placement", "neutron"):
        u = user(name, e[name.upper() + "_PASSWORD"], service)
        ks.grant(service, u, roles["admin"])
        ks.grant(service, u, roles["service"])
    for name in ("demo", "other"):
        p = project(name, name + " project")
        u = user(name, e[name.upper() + "_PASSWORD"], p)
        ks.grant(p, u, roles["member"])
        ks.grant(p, u, roles["reader"])

    catalog = [("nova", "compute", e["NOVA_URL"]),
               ("placement", "placement", e["PLACEMENT_URL"]),
               ("neutron", "network", e["NETWORK_URL"]),
               ("glance", "image", e["IMAGE_URL"])]
    for name, typ, url in catalog:
        svc = ks.ensure("services", "service", {"name": name, "type": typ, "enabled": True},
                        type=typ)
        for iface in ("public", "internal", "admin"):
            if not ks.find("endpoints", service_id=svc["id"], interface=iface):
                ks._req("POST", "/endpoints", json={"endpoint": {
                    "service_id": svc["id"], "interface": iface, "url": url,
                    "region_id": "RegionOne", "enabled": True}})
    print("keystone: projects service/demo/other, users nova/placement/neutron/demo/other, "
          "catalog compute/placement/network/image")


def _devices(path, host):
    with open(path) as f:
        data = json.load(f)
    return data if isinstance(data, list) else data.get(host, [])


def pci_conf(path, host):
    """[pci] device_spec lines for one host: each device by its address, with its physnet."""
    for d in _devices(path, host):
        spec = {"address": d["address"], "vendor_id": d["vendor_id"],
                "product_id": d["product_id"]}
        if d.get("physical_network"):
            spec["physical_network"] = d["physical_network"]
        print("device_spec = " + json.dumps(spec))


def pci_alias(path, name):
    """[pci] alias lines: <name> for the VFs, <name>-pf for the PFs (first vendor/product seen)."""
    with open(path) as f:
        data = json.load(f)
    devs = data if isinstance(data, list) else [d for v in data.values() for d in v]
    seen = set()
    for d in devs:
        t = d.get("dev_type", "type-PCI")
        key = (d["vendor_id"], d["product_id"], t)
        if key in seen:
            continue
        seen.add(key)
        alias = {"vendor_id": d["vendor_id"], "product_id": d["product_id"],
                 "device_type": t, "name": name if t == "type-VF" else "%s-%s" % (name, t[5:].lower())}
        print("alias = " + json.dumps(alias))


def flavors(alias):
    e = os.environ
    ks = Keystone(e["KEYSTONE_URL"], e["ADMIN_PASSWORD"])
    h = dict(ks.h, **{"OpenStack-API-Version": "compute 2.55"})
    base = e["NOVA_URL"].rstrip("/")
    have = {f["name"] for f in requests.get(base + "/flavors", headers=h, timeout=30).json()["flavors"]}
    for name, fid, extra in (("m1.tiny", "1", {}),
                             ("m1.vf", "2", {"pci_passthrough:alias": alias + ":1"})):
        if name in have:
            continue
        r = requests.post(base + "/flavors", headers=h, timeout=30, json={"flavor": {
            "name": name, "id": fid, "ram": 512, "vcpus": 1, "disk": 1}})
        if r.status_code >= 400:
            raise SystemExit("nova POST /flavors: %s %s" % (r.status_code, r.text))
        if extra:
            r = requests.post(base + "/flavors/%s/os-extra_specs" % fid, headers=h, timeout=30,
                              json={"extra_specs": extra})
            if r.status_code >= 400:
                raise SystemExit("nova extra_specs: %s %s" % (r.status_code, r.text))
    print("nova: flavors m1.tiny (id 1), m1.vf (id 2, %s:1)" % alias)


_REQ = re.compile(r'^(\S+ \S+) (\d+) DEBUG keystoneauth\.session \[([^\]]*)\] REQ: curl -g -i -X (\S+) (\S+)(.*?)(?: -d \'(.*)\')? _http_log_request')
_RESP = re.compile(r'^(\S+ \S+) (\d+) DEBUG keystoneauth\.session \[([^\]]*)\] RESP: \[(\d+)\]')


def nova_requests(logdir, match=""):
    """Every request a Nova process made (keystoneauth's REQ/RESP debug lines), one per line:
    time process METHOD URL -> status [X-Auth-Token] [X-Service-Token] body; only URLs containing
    `match`."""
    out = []
    for name in sorted(os.listdir(logdir)):
        if not (name.startswith("nova-") and name.endswith(".log")) or name == "nova-manage.log":
            continue
        pending = {}
        for line in open(os.path.join(logdir, name), errors="replace"):
            m = _REQ.match(line)
            if m:
                t, pid, ctx, meth, url, hdrs, body = m.groups()
                rec = [t, name[:-4], meth, url, "?", "X-Auth-Token" in hdrs, "X-Service-Token" in hdrs, body or ""]
                pending[(pid, ctx)] = rec
                if match in url:
                    out.append(rec)
                continue
            m = _RESP.match(line)
            if m and (m.group(2), m.group(3)) in pending:
                pending.pop((m.group(2), m.group(3)))[4] = m.group(4)
    for t, proc, meth, url, st, tok, svc, body in sorted(out):
        print("%s %-16s %-6s %s -> %s%s%s%s" % (t, proc, meth, url, st, " X-Auth-Token" if tok else "",
                                               " X-Service-Token" if svc else "", " " + body if body else ""))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"ports": lambda: free_ports(int(args[0])),
     "keystone-setup": keystone_setup,
     "pci-conf": lambda: pci_conf(*args),
     "pci-alias": lambda: pci_alias(*args),
     "flavors": lambda: flavors(*args),
     "requests": lambda: nova_requests(*args)}[cmd]()
