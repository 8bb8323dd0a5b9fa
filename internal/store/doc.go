// Package store is vflink's only state: typed objects in etcd with optimistic concurrency.
//
// Every object is JSON under a key below one prefix (default "/vflink/"). Writes go through a Txn
// that pairs each put or delete with a compare — the key is absent (create), unchanged since it was
// read (ModRevision compare-and-swap), or a whole key range is empty or unchanged since a revision —
// and commits them atomically, so a port, its IP and MAC reservations and its index keys appear and
// disappear together and no two writers can both win the same reservation. When a compare fails,
// Commit reports which key and why (*ConflictError), so callers can map it to an API error
// (MacAddressInUse, IpAddressAlreadyAllocated, 412) or retry with fresh reads.
//
// The store runs on an embedded etcd member (go.etcd.io/etcd/server/v3/embed) in the server's data
// directory, its client and peer listeners on loopback only and the server's own client in-process,
// or on an external etcd cluster (client/v3, optional TLS). Watch streams changes from a revision so
// the agent-facing watch API and the device manager can resume after a disconnect.
//
// The store never stamps values of its own: timestamps, revision numbers and IDs are the caller's.
package store
