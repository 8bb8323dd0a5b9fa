// Package neutron is vflink's Neutron v2.0 face: networks (with the provider extension and the
// VN ID / VLAN conventions of the seed), subnets and ports (with the binding extension), stored in
// etcd through internal/store.
//
// Every write is one store transaction whose compares make the invariants hold under concurrency
// and across servers: a port, its MAC reservation, its IP reservations and its index keys are
// created and deleted together; (physical network, VLAN) and VN IDs are unique keys; a network
// cannot be deleted while any port exists on it (an index prefix must be empty), nor its provider
// attributes changed while a port on it is bound. IP candidates come from an in-memory cursor per
// subnet (ipam.Cursor) so concurrent creates rarely collide; the store's compare-and-swap is what
// decides.
//
// Request bodies are decoded field by field (attrs.go) so that every bad input gets a 400 naming
// the field and value; every error leaves through writeError in Neutron's
// {"NeutronError": {"type", "message", "detail"}} shape.
//
// Key layout below the store prefix:
//
//	networks/<id>                 api.Network (subnets are joined at read time)
//	subnets/<id>                  api.Subnet
//	ports/<id>                    api.Port (with its inactive bindings, bindings.go)
//	idx/net-subnets/<net>/<sub>   ""   subnets of a network
//	idx/net-ports/<net>/<port>    ""   ports of a network (network delete needs it empty)
//	idx/net-bound/<net>/<port>    ""   bound ports (provider changes need it empty)
//	idx/project-ports/<p>/<port>  ""   ports of a project (quota usage; not the binder's device ports)
//	quotas/<project>              Quotas  a project's own limits (quota.go)
//	ipam/<subnet>/<ip>            port ID
//	mac/<net>/<mac>               port ID
//	vlan/<physnet>/<vlan>         network ID (flat networks use vlan "flat")
//	vnid/<n>                      network ID
//	counters/vnid                 last VN ID handed out
package neutron
