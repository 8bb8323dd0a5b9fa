// Package ipam is the pure IP address management logic of vflink's Neutron-compatible server: it
// validates subnet requests and fills in Neutron's defaults, and it picks free addresses from a
// subnet's allocation pools. It performs no I/O; the store holds the reservations and confirms
// every address the package proposes with a compare-and-swap.
//
// NewSubnet turns a SubnetSpec (what a user asked for) into a Subnet: a masked prefix, an optional
// gateway and sorted, non-overlapping allocation pools that never contain the network address,
// the IPv4 broadcast address or the gateway. User-input errors are *InputError values carrying a
// Neutron error type ("InvalidInput" or "GatewayConflictWithAllocationPools") and a message that
// names the offending value and what is allowed.
//
// NextFree finds the first free pool address after a given one, walking the pools and the sorted
// list of used addresses together, so its cost depends on the number of pools and used addresses,
// never on the size of the address space (a /64 pool is as cheap as a /24). Cursor is a
// goroutine-safe round-robin hint so that concurrent allocators in one process try different
// addresses first.
//
// Addresses are net/netip values throughout; addresses with an IPv6 zone are rejected.
package ipam
