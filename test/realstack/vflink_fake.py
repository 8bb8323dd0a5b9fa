"""A fake Nova compute driver that reports given SR-IOV PFs and VFs (test/realstack).

compute_driver = vflink_fake.VFlinkFakeDriver, with this directory on sys.path (vflink_compute.py
puts it there). The devices come from the JSON file named by the environment variable
VFLINK_FAKE_PCI_FILE:

    {"h1": [{"address": "0000:81:00.0", "vendor_id": "8086", "product_id": "10fb",
             "dev_type": "type-PF", "physical_network": "sriov"},
            {"address": "0000:81:10.0", "vendor_id": "8086", "product_id": "10ed",
             "dev_type": "type-VF", "parent_addr": "0000:81:00.0", "physical_network": "sriov"}],
     "h2": [...]}

keyed by the compute's [DEFAULT] host (a bare list means: the same devices on every host). This is
the form `vflink agent inventory --nova` prints, so the devices Nova tracks are the ones a vflink
host agent serves. physical_network is not the driver's to report: Nova takes it from
[pci] device_spec, which stack.sh writes from the same file.

Differences from nova.virt.fake.FakeDriver:
- the PCI devices above (FakeDriverWithPciResources reports fixed, identical ones on every host);
- spawn waits for network-vif-plugged of every VIF that is not yet active, exactly as the libvirt
  driver does (vif_plugging_timeout, vif_plugging_is_fatal), so a Neutron that never reports the
  port up makes the boot fail as it would on a real host;
- live migration completes at once (FakeDriver's), and the source forgets the instance
  (post_live_migration), so `openstack server migrate --live-migration` moves it between hosts;
- nova.pci.utils' sysfs reads of a VF's or PF's netdev (MAC, VF number) answer from the address,
  since these PCI addresses do not exist on this machine.
"""

import json
import os

import eventlet
from oslo_log import log as logging

import nova.conf
from nova import exception
from nova.network import model as network_model
from nova.pci import utils as pci_utils
from nova.virt import fake

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

_FIELDS = ("address", "vendor_id", "product_id", "dev_type", "parent_addr", "numa_node", "label",
           "parent_ifname", "capabilities")


def _load_devices(host):
    path = os.environ.get("VFLINK_FAKE_PCI_FILE", "")
    if not path:
        LOG.warning("VFLINK_FAKE_PCI_FILE is not set: no PCI devices on %s", host)
        return []
    with open(path) as f:
        data = json.load(f)
    devs = data if isinstance(data, list) else data.get(host, [])
    out = []
    for d in devs:
        dev = {k: d[k] for k in _FIELDS if d.get(k) not in (None, "")}
        dev.setdefault("dev_type", "type-PCI")
        dev.setdefault("numa_node", None)
        dev.setdefault("label", "label_%s_%s" % (dev["vendor_id"], dev["product_id"]))
        dev.setdefault("parent_addr", None)
        dev["status"] = "available"
        out.append(dev)
    return out


def _fake_mac(pci_addr, pf_interface=False):
    # a stable locally administered MAC derived from the PCI address (0000:81:10.2 -> fa:16:81:10:02:..)
    dom, bus, rest = pci_addr.split(":")
    slot, fn = rest.split(".")
    return "fa:%02x:%02x:%02x:%02x:%02x" % (int(dom, 16) & 0xff, int(bus, 16), int(slot, 16),
                                            int(fn, 16), 1 if pf_interface else 0)


def _fake_vf_num(pci_addr):
    slot, fn = pci_addr.split(":")[2].split(".")
    return int(slot, 16) * 8 + int(fn, 16)


pci_utils.get_mac_by_pci_address = _fake_mac
pci_utils.get_vf_num_by_pci_address = _fake_vf_num


class VFlinkFakeDriver(fake.FakeDriver):

    def init_host(self, host):
        super().init_host(host)
        self._pci_devices = _load_devices(host)
        LOG.info("vflink fake driver on %s: %d PCI devices (%s)", host, len(self._pci_devices),
                 ", ".join("%s %s" % (d["address"], d["dev_type"]) for d in self._pci_devices))

    def get_available_resource(self, nodename):
        status = super().get_available_resource(nodename)
        if status:
            status["pci_passthrough_devices"] = json.dumps(getattr(self, "_pci_devices", []))
        return status

    # --- network-vif-plugged, as nova.virt.libvirt.driver._create_guest_with_network waits for it

    @staticmethod
    def _neutron_events(network_info):
        return [("network-vif-plugged", vif["id"]) for vif in network_info or []
                if vif.get("active", True) is False and
                vif["vnic_type"] != network_model.VNIC_TYPE_REMOTE_MANAGED]

    def _neutron_failed_callback(self, event_name, instance):
        LOG.error("Neutron reported failure on event %s for instance %s", event_name, instance.uuid,
                  instance=instance)
        if CONF.vif_plugging_is_fatal:
            raise exception.VirtualInterfaceCreateException()

    def spawn(self, context, instance, image_meta, injected_files, admin_password, allocations,
              network_info=None, block_device_info=None, power_on=True, accel_info=None):
        timeout = CONF.vif_plugging_timeout
        events = self._neutron_events(network_info) if (power_on and timeout) else []
        if events:
            LOG.info("waiting up to %ss for %s", timeout, events, instance=instance)
        try:
            with self.virtapi.wait_for_instance_event(instance, events, deadline=timeout,
                                                      error_callback=self._neutron_failed_callback):
                super().spawn(context, instance, image_meta, injected_files, admin_password,
                              allocations, network_info=network_info,
                              block_device_info=block_device_info, power_on=power_on,
                              accel_info=accel_info)
        except eventlet.timeout.Timeout:
            LOG.warning("timeout waiting for %s", events, instance=instance)
            if CONF.vif_plugging_is_fatal:
                self.destroy(context, instance, network_info, block_device_info)
                raise exception.VirtualInterfaceCreateException()

    # --- live migration: FakeDriver's completes at once; the source then forgets the instance

    def post_live_migration(self, context, instance, block_device_info, migrate_data=None):
        self.destroy(context, instance, network_info=None, block_device_info=block_device_info)
