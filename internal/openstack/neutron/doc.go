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
// Security groups (secgroup.go), allowed address pairs and extra DHCP options (portext.go) and
// tags (tags.go) are stored and reported as ML2 does, with its validation and errors. vflink
// enforces no security group: its ports are SR-IOV VFs (vnic_type direct and the like), whose
// traffic bypasses the host's kernel and so any firewall driver, exactly as Neutron's SR-IOV
// agent documents (binding:vif_details port_filter: false). The groups are the record of intent
// that Nova and the openstack CLI expect to read and write.
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
//	secgroups/<id>                api.SecurityGroup, its rules embedded (secgroup.go)
//	secgroups-default/<project>   the ID of the project's default group
//	idx/sgrule/<rule>             the group of a rule
//	idx/sg-ports/<sg>/<port>      ""   ports of a group (group delete needs it empty)
//	ipam/<subnet>/<ip>            port ID
//	mac/<net>/<mac>               port ID
//	vlan/<physnet>/<vlan>         network ID (flat networks use vlan "flat")
//	vnid/<n>                      network ID
//	counters/vnid                 last VN ID handed out
package neutron
