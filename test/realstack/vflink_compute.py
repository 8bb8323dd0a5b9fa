#!/usr/bin/python3
"""nova-compute with test/realstack's fake driver importable (compute_driver = vflink_fake.VFlinkFakeDriver).

Run by stack.sh as: vflink_compute.py --config-file nova.conf --config-file nova-<host>.conf ...
The devices come from $VFLINK_FAKE_PCI_FILE (see vflink_fake.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nova.cmd.compute import main  # noqa: E402  (nova.cmd monkey-patches eventlet first)

# nova.virt.driver.load_compute_driver imports "nova.virt." + compute_driver: make the fake
# driver importable under that name
import vflink_fake  # noqa: E402
sys.modules["nova.virt.vflink_fake"] = vflink_fake

if __name__ == "__main__":
    sys.argv[0] = "nova-compute"
    sys.exit(main())
