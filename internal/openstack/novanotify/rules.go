package novanotify

import (
	"hash/fnv"
	"strings"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
)

// Event names Nova's os-server-external-events API takes from Neutron.
const (
	VIFPlugged     = "network-vif-plugged"
	VIFUnplugged   = "network-vif-unplugged"
	VIFDeleted     = "network-vif-deleted"
	NetworkChanged = "network-changed"
)

// Event statuses.
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// computePrefix starts the device_owner of a server's port (Neutron's DEVICE_OWNER_COMPUTE_PREFIX).
const computePrefix = "compute:"

// Event is one external event as Nova's API takes it (and as Neutron sends it: network-changed
// and network-vif-deleted carry no status, which Nova reads as completed).
type Event struct {
	Name       string `json:"name"`
	ServerUUID string `json:"server_uuid"`
	Tag        string `json:"tag"`
	Status     string `json:"status,omitempty"`
}

// status is a port status in one byte.
type status uint8

const (
	statusNone  status = iota // a port not seen before (Neutron's NO_VALUE)
	statusOther               // a status Neutron's rules do not name
	statusDown
	statusBuild
	statusActive
	statusError
)

func statusOf(s string) status {
	switch s {
	case api.StatusDown:
		return statusDown
	case api.StatusBuild:
		return statusBuild
	case api.StatusActive:
		return statusActive
	case api.StatusError:
		return statusError
	}
	return statusOther
}

// portState is what the notifier keeps of a port between two of its changes: its status, its
// server when it is a compute port (for network-vif-deleted) and a digest of its fixed IPs (for
// network-changed). Small, so that 100k ports stay a few megabytes.
type portState struct {
	status status
	server string // device_id of a compute port, "" otherwise
	ips    uint64
}

func stateOf(p *api.Port) portState {
	return portState{status: statusOf(p.Status), server: serverOf(p), ips: ipsDigest(p.FixedIPs)}
}

// serverOf returns the server a port notifies about: its device_id when the port is a compute
// port (device_owner "compute:<zone>", device_id UUID-like), "" otherwise. Neutron's
// Notifier._is_compute_port.
func serverOf(p *api.Port) string {
	if p.DeviceID == "" || !strings.HasPrefix(p.DeviceOwner, computePrefix) {
		return ""
	}
	if _, err := uuid.Parse(p.DeviceID); err != nil { // oslo's is_uuid_like takes the same forms
		return ""
	}
	return p.DeviceID
}

// ipsDigest summarises fixed IPs independently of their order (a reorder is no change).
func ipsDigest(ips []api.FixedIP) uint64 {
	var sum uint64
	for _, ip := range ips {
		h := fnv.New64a()
		h.Write([]byte(ip.SubnetID))
		h.Write([]byte{0})
		h.Write([]byte(ip.IPAddress))
		sum += h.Sum64()
	}
	return sum
}

// transition returns the events one change of port id makes, in Neutron's order: prev is the
// port as last seen (nil: a new port), cur the port now (nil: deleted).
//
//   - deleted, and it was a compute port: network-vif-deleted to the server it belonged to
//     (Neutron: delete_port of a compute port, with the port as it was);
//   - otherwise only a compute port notifies, about the server it belongs to now (Neutron reads
//     the port's device_id as it is when its status is set):
//   - status ACTIVE → DOWN: network-vif-unplugged, completed;
//   - status new/DOWN/BUILD → ACTIVE or ERROR: network-vif-plugged, completed or failed;
//   - any other status pair (ACTIVE → ERROR, ERROR → ACTIVE, DOWN → DOWN on a rebind, …): nothing
//     (Notifier.record_port_status_changed);
//   - fixed IPs changed on an existing port: network-changed (Neutron sends it on every update of
//     a compute port through the API, and never on a create).
func transition(id string, prev *portState, cur *api.Port) []Event {
	if cur == nil {
		if prev != nil && prev.server != "" {
			return []Event{{Name: VIFDeleted, ServerUUID: prev.server, Tag: id}}
		}
		return nil
	}
	server := serverOf(cur)
	if server == "" {
		return nil
	}
	var out []Event
	was, now := statusNone, statusOf(cur.Status)
	if prev != nil {
		was = prev.status
	}
	switch {
	case was == statusActive && now == statusDown:
		out = append(out, Event{Name: VIFUnplugged, ServerUUID: server, Tag: id, Status: StatusCompleted})
	case (was == statusNone || was == statusDown || was == statusBuild) && now == statusActive:
		out = append(out, Event{Name: VIFPlugged, ServerUUID: server, Tag: id, Status: StatusCompleted})
	case (was == statusNone || was == statusDown || was == statusBuild) && now == statusError:
		out = append(out, Event{Name: VIFPlugged, ServerUUID: server, Tag: id, Status: StatusFailed})
	}
	if prev != nil && prev.ips != ipsDigest(cur.FixedIPs) {
		out = append(out, Event{Name: NetworkChanged, ServerUUID: server, Tag: id})
	}
	return out
}
