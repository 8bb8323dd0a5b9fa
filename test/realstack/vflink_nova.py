#!/usr/bin/python3
"""Run a Nova command (api, conductor, scheduler, manage) with sqlite_pool applied (test/realstack).

    vflink_nova.py conductor --config-file nova.conf ...   is   nova-conductor --config-file ...

with SQLite connections pooled (see sqlite_pool.py; not with STACK_SQLITE_POOL=0); otherwise exactly the package's entry point
(/usr/bin/nova-NAME calls nova.cmd.NAME.main()).
"""
import nova.cmd  # noqa: F401  (first: eventlet's monkey patching, as /usr/bin/nova-* do)

import importlib  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if os.environ.get("STACK_SQLITE_POOL", "1") == "1":
    import sqlite_pool  # noqa: E402,F401

if __name__ == "__main__":
    name = sys.argv.pop(1)
    if name not in ("api", "conductor", "scheduler", "manage"):
        raise SystemExit("vflink_nova.py: unknown command %r" % name)
    sys.argv[0] = "nova-" + name
    sys.exit(importlib.import_module("nova.cmd." + name).main())
