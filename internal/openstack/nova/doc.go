// Package nova is vflink's Compute v2.1 face: the flavors and servers that
// `openstack server create --image I --flavor F --port P VM` needs, and the scheduler that places a
// server on a host with a free SR-IOV VF on every physical network its ports need.
//
// vflink does not run guests itself. Creating a server validates the image (through the glance
// face), the flavor and the ports (through the neutron face), stores the server in BUILD, asks the
// Scheduler for a host, and binds every port to it (binding:host_id, device_id = the server,
// device_owner compute:nova). The host agent watches its bound ports, programs the VFs, starts the
// guest and sets each port ACTIVE. The server's status is level-triggered at read time: a BUILD
// server with a host whose every port is ACTIVE is shown ACTIVE. No host, or a failed binding,
// leaves the server in ERROR with a fault and its ports unbound. Deleting a server unbinds its
// ports.
//
// Only microversion 2.1 is served: every response says so in OpenStack-API-Version and
// X-OpenStack-Nova-API-Version, and a request for another version gets 406.
//
// Errors leave through writeError in Nova's shape, {"itemNotFound": {"code": 404, "message": ...}}
// (badRequest, forbidden, conflictingRequest, computeFault, ...).
//
// Key layout below the store prefix:
//
//	flavors/<id>               Flavor
//	idx/flavor-names/<name>    flavor ID (names are unique: the key is created in the flavor's Txn)
//	servers/<id>               the server record (ports, host, status, fault)
//	hosts/<name>               api.Host, written by the host agent; read by the store scheduler
package nova
