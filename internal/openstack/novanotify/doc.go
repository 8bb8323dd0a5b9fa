// Package novanotify sends Neutron's notifications to Nova: the external events
// (POST {compute endpoint}/os-server-external-events, {"events": [...]}) that Nova waits for
// before it finishes booting a server (network-vif-plugged) and that keep its view of a server's
// ports current. It does what neutron/notifiers/nova.py does in Neutron, from a watch of the
// store instead of from the API's request handlers, so no API request ever waits on it.
//
// # What is sent when
//
// Only a compute port notifies: device_owner starting with "compute:" and a UUID-like device_id,
// the server (server_uuid = device_id, tag = port ID). Status changes are Neutron's
// record_port_status_changed, on the port as it is after the change:
//
//	ACTIVE → DOWN                      network-vif-unplugged  completed
//	new, DOWN or BUILD → ACTIVE        network-vif-plugged    completed
//	new, DOWN or BUILD → ERROR         network-vif-plugged    failed
//	any other pair (ACTIVE → ERROR, ERROR → ACTIVE, DOWN → DOWN on a rebind, …)   nothing
//
// A port deleted while it was a compute port: network-vif-deleted to the server it belonged to.
// A compute port whose fixed IPs change: network-changed (to the server it belongs to after the
// change). Neutron sends network-changed on every update of a compute port through its API
// (whatever changed); the store's watch cannot tell a user's update from an agent's status
// report, and Nova only needs the refresh when what it caches changed, so here it is the fixed
// IPs. A port that stops being a compute port in the same write that changes its status (an
// unbind that makes it DOWN) notifies nothing, as in Neutron, where the status then arrives
// after the device_id is gone. Creating a port notifies nothing.
//
// # Batching and retries
//
// Events wait BatchWindow (default 150 ms) after the first of a quiet spell, then go in one POST
// (at most MaxBatch, default 200, per request; Nova refuses bodies over about 112 KiB). Neutron
// sends the first event at once and batches the following ones for 2 s; Nova waits on these, so
// the window is short and configurable. A request that fails on the network, times out or gets
// 5xx, 408 or 429 is sent again after a jittered exponential backoff (BackoffMin, BackoffMax),
// topped up with what arrived meanwhile; 401 invalidates the session's token and goes again at
// once with a new one; 404 (Nova knows none of the servers) drops the events with a log line;
// a 207 carries a code per event: the refused ones (404 unknown server, 422 no host yet) are
// logged and not retried. Waiting events are bounded (QueueSize): when full, the oldest are
// dropped. Metrics: vflink_nova_events_{sent,failed,dropped}_total by event name and
// vflink_nova_events_queued.
//
// # One sender per cluster, and failovers
//
// Every vflink server runs a notifier; the one that leads the store's election nova-notifier
// (a lease of LeaseTTL, default 10 s) sends. On gaining leadership it reads every port once, as
// of the checkpoint below, as the baseline (no events for it), then follows the ports' changes
// from that revision, deriving each transition by comparing a port with what it kept of it
// (status, server, a digest of the fixed IPs: a few dozen bytes a port). A watch that breaks
// (outage, compaction) is handled the same way: the ports are read again, as of the last
// revision followed (or the latest, when that one was compacted), and taken as the new baseline.
//
// The leader records in the store (novanotify/checkpoint, every CheckpointInterval, default
// 1 s, while it moves, and once more when it stops leading) the revision up to which every change
// has been notified or given up on. A new leader starts from there, so the transitions of a
// failover window (the old leader died and its lease had not run out yet; or no server ran) and
// the events the old leader had not sent yet are sent by the new one: delivery is at least once,
// not at most once. After a clean stop (resign) nothing is repeated; after a crash the new leader
// repeats what the old one sent since its last checkpoint (about a second), which Nova takes (an
// event nobody waits for is logged and ignored, network-changed only refreshes a cache). What is
// still lost: changes behind a checkpoint older than the store's compaction (an hour in the
// embedded member), which a new leader cannot read any more (it then starts from the latest
// state and logs it), and events dropped from a full queue.
//
// Keys below the store prefix: novanotify/checkpoint ({"revision": N}) and the election under
// elections/nova-notifier. Ports are read only through neutron.Service.WatchPorts.
package novanotify
