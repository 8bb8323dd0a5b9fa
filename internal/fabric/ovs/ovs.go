// Package ovs is vflink's device driver for an Open vSwitch bridge standing in for a switch, the
// way networking-generic-switch's OVS device type does (for labs and CI): a "switch port" is a
// Port of one bridge, a network's VLAN on it is an entry of the port's trunks, and an untagged
// network is the port's native VLAN (vlan_mode=native-untagged, tag).
//
// vflink marks the ports it configures with external_ids:vflink=managed and touches no other
// port. Apply sets every desired port and parks every managed port that is no longer desired
// (vlan_mode=access tag=4095 trunks=[]: VLAN 4095 carries nothing, so the port passes no
// traffic) in one ovs-vsctl transaction. OVS has no port groups, so LAG and ESI attachments are
// refused, and no commit revisions.
//
// The driver runs the ovs-vsctl program (with an argv, no shell) against the database named in
// Config.DB; no Go library speaks OVSDB here, and ovs-vsctl is what operators run by hand:
//
//	ovs-vsctl --db=unix:/run/openvswitch/db.sock --format=json -- --columns=name,ports list Bridge br0 \
//	    -- --columns=_uuid,name,vlan_mode,tag,trunks,external_ids list Port
//	ovs-vsctl --db=... -- set Port p1 vlan_mode=trunk tag=[] trunks=[10,20] external_ids:vflink=managed \
//	    -- set Port p2 vlan_mode=access tag=4095 trunks=[] -- remove Port p2 external_ids vflink
package ovs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vflink/vflink/api"
)

// Canonical lines (what Render writes and Running reads back):
//
//	port <if> vlan_mode=trunk trunks=<v1,v2,...>
//	port <if> vlan_mode=native-untagged tag=<native> trunks=<v1,v2,...>   (trunks include native)
//
// A managed port in any other state reads back as `port <if> vlan_mode=<mode> [tag=<t>]
// [trunks=<...>]` (mode "default" when the column is empty), which never equals a desired line,
// so the next Apply corrects it.

const (
	managedKey   = "vflink"
	managedValue = "managed"
	parkTag      = 4095
)

// portNameRE is an OVS port / Linux interface name: 1-15 characters.
var portNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

func checkPortName(name string) error {
	if !portNameRE.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("interface name %q is not an OVS port name: want 1-15 characters of A-Z a-z 0-9 _ . -", name)
	}
	return nil
}

// Config is how to reach one OVS bridge.
type Config struct {
	Name   string // the device's name in vflink, for errors and logs
	DB     string // ovs-vsctl --db value, e.g. unix:/run/openvswitch/db.sock or tcp:127.0.0.1:6640
	Bridge string // the bridge whose ports are the "switch ports"
	Vsctl  string // the ovs-vsctl program; default "ovs-vsctl" (looked up in PATH)
	// NoWait passes --no-wait: do not wait for ovs-vswitchd to apply a change (needed when no
	// ovs-vswitchd serves the database, as in tests).
	NoWait bool
	Log    *slog.Logger // default: discard
}

// Driver configures the VLANs of one OVS bridge's ports.
type Driver struct {
	cfg Config
	log *slog.Logger
}

// New returns a driver for the bridge.
func New(cfg Config) *Driver {
	if cfg.Vsctl == "" {
		cfg.Vsctl = "ovs-vsctl"
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Driver{cfg: cfg, log: log.With("component", "ovs", "device", cfg.Name)}
}

// port is the VLAN state of one port.
type port struct {
	name     string
	mode     string // vlan_mode; "" when unset
	tag      int    // 0 when unset
	trunks   []int  // sorted
	external map[string]string
}

func (p port) line() string {
	mode := p.mode
	if mode == "" {
		mode = "default"
	}
	s := "port " + p.name + " vlan_mode=" + mode
	if p.tag != 0 {
		s += " tag=" + strconv.Itoa(p.tag)
	}
	if len(p.trunks) > 0 || mode == "trunk" || mode == "native-untagged" {
		s += " trunks=" + joinInts(p.trunks)
	}
	return s
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// Render turns the attachments of device into its canonical lines, one per interface, sorted:
// the interface trunks every VLAN attached to it, and a Native attachment's VLAN is also its
// untagged VLAN. It refuses port groups, bad interface names, VLANs outside 1-4094 and two
// different native VLANs on one interface.
func Render(atts []api.Attachment, device string) ([]string, error) {
	type ifState struct {
		vlans  map[int]bool
		native int
	}
	ifs := map[string]*ifState{}
	for _, a := range atts {
		if a.Device != device {
			continue
		}
		if len(a.PortGroup) > 0 {
			return nil, fmt.Errorf("network %s on device %s: the ovs driver has no port groups (LAG/ESI)", a.NetworkID, device)
		}
		if a.Interface == "" {
			return nil, fmt.Errorf("network %s on device %s: the attachment names no interface", a.NetworkID, device)
		}
		if err := checkPortName(a.Interface); err != nil {
			return nil, fmt.Errorf("network %s on device %s: %w", a.NetworkID, device, err)
		}
		if a.VLAN < 1 || a.VLAN > 4094 {
			return nil, fmt.Errorf("network %s on device %s interface %s: VLAN %d is out of range 1-4094",
				a.NetworkID, device, a.Interface, a.VLAN)
		}
		st := ifs[a.Interface]
		if st == nil {
			st = &ifState{vlans: map[int]bool{}}
			ifs[a.Interface] = st
		}
		st.vlans[a.VLAN] = true
		if a.Native {
			if st.native != 0 && st.native != a.VLAN {
				return nil, fmt.Errorf("device %s interface %s: two untagged (native) VLANs, %d and %d: an interface has at most one",
					device, a.Interface, st.native, a.VLAN)
			}
			st.native = a.VLAN
		}
	}
	lines := make([]string, 0, len(ifs))
	for name, st := range ifs {
		p := port{name: name, mode: "trunk"}
		for v := range st.vlans {
			p.trunks = append(p.trunks, v)
		}
		slices.Sort(p.trunks)
		if st.native != 0 {
			p.mode, p.tag = "native-untagged", st.native
		}
		lines = append(lines, p.line())
	}
	slices.Sort(lines)
	return lines, nil
}

// parseLine reads one desired line (the forms Render writes).
func parseLine(line string) (port, error) {
	f := strings.Fields(line)
	bad := func(why string) (port, error) {
		return port{}, fmt.Errorf("line %q: %s; want `port <if> vlan_mode=trunk trunks=<v,...>` or "+
			"`port <if> vlan_mode=native-untagged tag=<v> trunks=<v,...>`", line, why)
	}
	if len(f) < 4 || f[0] != "port" {
		return bad("not a port statement")
	}
	p := port{name: f[1]}
	if err := checkPortName(p.name); err != nil {
		return port{}, fmt.Errorf("line %q: %w", line, err)
	}
	seen := map[string]bool{}
	for _, kv := range f[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return bad(fmt.Sprintf("%q is not a single key=value", kv))
		}
		seen[k] = true
		switch k {
		case "vlan_mode":
			if v != "trunk" && v != "native-untagged" {
				return bad(fmt.Sprintf("vlan_mode %q", v))
			}
			p.mode = v
		case "tag":
			n, err := vlanID(v)
			if err != nil {
				return bad(err.Error())
			}
			p.tag = n
		case "trunks":
			for s := range strings.SplitSeq(v, ",") {
				n, err := vlanID(s)
				if err != nil {
					return bad(err.Error())
				}
				p.trunks = append(p.trunks, n)
			}
			slices.Sort(p.trunks)
			p.trunks = slices.Compact(p.trunks)
		default:
			return bad(fmt.Sprintf("unknown key %q", k))
		}
	}
	switch {
	case p.mode == "" || len(p.trunks) == 0:
		return bad("vlan_mode and trunks are required")
	case p.mode == "trunk" && p.tag != 0:
		return bad("a trunk port has no tag")
	case p.mode == "native-untagged" && p.tag == 0:
		return bad("native-untagged needs tag")
	case p.mode == "native-untagged" && !slices.Contains(p.trunks, p.tag):
		return bad(fmt.Sprintf("the native VLAN %d must be among the trunks", p.tag))
	}
	return p, nil
}

func vlanID(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 4094 {
		return 0, fmt.Errorf("VLAN %q is not a number 1-4094", s)
	}
	return n, nil
}

// Running reads the managed ports of the bridge as canonical lines, sorted.
func (d *Driver) Running(ctx context.Context) ([]string, error) {
	ports, err := d.read(ctx)
	if err != nil {
		return nil, err
	}
	lines := []string{}
	for _, p := range ports {
		if p.external[managedKey] == managedValue {
			lines = append(lines, p.line())
		}
	}
	slices.Sort(lines)
	return lines, nil
}

// Apply makes the bridge's managed ports equal desired in one ovs-vsctl transaction: each desired
// port gets its VLANs and the managed mark, every other managed port is parked and unmarked. A
// desired port that is not on the bridge is an error, and nothing changes. OVS has no revisions:
// the revision is always "".
func (d *Driver) Apply(ctx context.Context, desired []string) (string, error) {
	want := map[string]port{}
	for _, l := range desired {
		p, err := parseLine(l)
		if err != nil {
			return "", fmt.Errorf("device %s: %w", d.cfg.Name, err)
		}
		if _, dup := want[p.name]; dup {
			return "", fmt.Errorf("device %s: port %s appears twice in the desired configuration", d.cfg.Name, p.name)
		}
		want[p.name] = p
	}
	ports, err := d.read(ctx)
	if err != nil {
		return "", err
	}
	on := map[string]port{}
	for _, p := range ports {
		on[p.name] = p
	}
	names := slices.Sorted(maps.Keys(want))
	var args []string
	for _, n := range names {
		if _, ok := on[n]; !ok {
			return "", fmt.Errorf("device %s: port %s is not on bridge %s (add it: ovs-vsctl add-port %s %s)",
				d.cfg.Name, n, d.cfg.Bridge, d.cfg.Bridge, n)
		}
		p := want[n]
		tag := "[]"
		if p.tag != 0 {
			tag = strconv.Itoa(p.tag)
		}
		args = append(args, "--", "set", "Port", n, "vlan_mode="+p.mode, "tag="+tag,
			"trunks=["+joinInts(p.trunks)+"]", "external_ids:"+managedKey+"="+managedValue)
	}
	var parked []string
	for _, p := range ports {
		if _, ok := want[p.name]; !ok && p.external[managedKey] == managedValue {
			parked = append(parked, p.name)
		}
	}
	slices.Sort(parked)
	for _, n := range parked {
		args = append(args, "--", "set", "Port", n, "vlan_mode=access", "tag="+strconv.Itoa(parkTag), "trunks=[]",
			"--", "remove", "Port", n, "external_ids", managedKey)
	}
	if len(args) == 0 {
		return "", nil
	}
	if _, err := d.vsctl(ctx, true, args...); err != nil {
		return "", err
	}
	d.log.Info("bridge configured", "bridge", d.cfg.Bridge, "ports", len(names), "parked", parked)
	return "", nil
}

// Close does nothing: every call runs its own ovs-vsctl.
func (d *Driver) Close() error { return nil }

// read returns the ports of the bridge, from one ovs-vsctl run (one database snapshot).
func (d *Driver) read(ctx context.Context) ([]port, error) {
	out, err := d.vsctl(ctx, false, "--format=json",
		"--", "--columns=name,ports", "list", "Bridge", d.cfg.Bridge,
		"--", "--columns=_uuid,name,vlan_mode,tag,trunks,external_ids", "list", "Port")
	if err != nil {
		return nil, err
	}
	ports, err := parseList(out)
	if err != nil {
		return nil, fmt.Errorf("device %s: read bridge %s: %w", d.cfg.Name, d.cfg.Bridge, err)
	}
	return ports, nil
}

// vsctl runs ovs-vsctl with the database option (and --no-wait for a change when configured).
func (d *Driver) vsctl(ctx context.Context, change bool, args ...string) ([]byte, error) {
	argv := []string{"--db=" + d.cfg.DB}
	if change && d.cfg.NoWait {
		argv = append(argv, "--no-wait")
	}
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, d.cfg.Vsctl, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	d.log.Debug("run", "argv", strings.Join(append([]string{d.cfg.Vsctl}, argv...), " "))
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return nil, fmt.Errorf("device %s: %s: %w", d.cfg.Name, d.cfg.Vsctl, err)
		}
		return nil, fmt.Errorf("device %s: %s: %s: %w", d.cfg.Name, d.cfg.Vsctl, msg, err)
	}
	return stdout.Bytes(), nil
}

// table is one table of ovs-vsctl --format=json output.
type table struct {
	Headings []string            `json:"headings"`
	Data     [][]json.RawMessage `json:"data"`
}

// parseList reads the two tables of read's ovs-vsctl run: the bridge (name, ports) and all ports
// (_uuid, name, vlan_mode, tag, trunks, external_ids). It returns the bridge's ports.
func parseList(out []byte) ([]port, error) {
	dec := json.NewDecoder(bytes.NewReader(out))
	var br, pt table
	if err := dec.Decode(&br); err != nil {
		return nil, fmt.Errorf("ovs-vsctl output (bridge): %w", err)
	}
	if err := dec.Decode(&pt); err != nil {
		return nil, fmt.Errorf("ovs-vsctl output (ports): %w", err)
	}
	if len(br.Data) != 1 {
		return nil, fmt.Errorf("ovs-vsctl output: %d bridge rows, want 1", len(br.Data))
	}
	bcol, err := columns(br.Headings, "name", "ports")
	if err != nil {
		return nil, err
	}
	row := br.Data[0]
	if len(row) != len(br.Headings) {
		return nil, fmt.Errorf("ovs-vsctl output: bridge row has %d values for %d headings", len(row), len(br.Headings))
	}
	members := map[string]bool{}
	uuids, err := atoms(row[bcol["ports"]])
	if err != nil {
		return nil, fmt.Errorf("bridge ports: %w", err)
	}
	for _, u := range uuids {
		s, ok := u.(string)
		if !ok {
			return nil, fmt.Errorf("bridge ports: %v is not a uuid", u)
		}
		members[s] = true
	}

	pcol, err := columns(pt.Headings, "_uuid", "name", "vlan_mode", "tag", "trunks", "external_ids")
	if err != nil {
		return nil, err
	}
	var ports []port
	for _, row := range pt.Data {
		if len(row) != len(pt.Headings) {
			return nil, fmt.Errorf("ovs-vsctl output: port row has %d values for %d headings", len(row), len(pt.Headings))
		}
		id, err := atom[string](row[pcol["_uuid"]], "_uuid")
		if err != nil {
			return nil, err
		}
		if !members[id] {
			continue
		}
		var p port
		if p.name, err = atom[string](row[pcol["name"]], "name"); err != nil {
			return nil, err
		}
		if p.mode, err = optional[string](row[pcol["vlan_mode"]], "vlan_mode"); err != nil {
			return nil, err
		}
		tag, err := optional[float64](row[pcol["tag"]], "tag")
		if err != nil {
			return nil, err
		}
		p.tag = int(tag)
		trunks, err := atoms(row[pcol["trunks"]])
		if err != nil {
			return nil, fmt.Errorf("port %s trunks: %w", p.name, err)
		}
		for _, t := range trunks {
			f, ok := t.(float64)
			if !ok || f != float64(int(f)) {
				return nil, fmt.Errorf("port %s trunks: %v is not an integer", p.name, t)
			}
			p.trunks = append(p.trunks, int(f))
		}
		slices.Sort(p.trunks)
		if p.external, err = ovsMap(row[pcol["external_ids"]]); err != nil {
			return nil, fmt.Errorf("port %s external_ids: %w", p.name, err)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

func columns(headings []string, want ...string) (map[string]int, error) {
	idx := map[string]int{}
	for i, h := range headings {
		idx[h] = i
	}
	for _, w := range want {
		if _, ok := idx[w]; !ok {
			return nil, fmt.Errorf("ovs-vsctl output has no %q column (headings %v)", w, headings)
		}
	}
	return idx, nil
}

// atoms decodes an OVSDB JSON value that is an atom, ["set", [atoms]] or ["uuid", "..."]; a
// uuid decodes to its string.
func atoms(raw json.RawMessage) ([]any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok {
		return []any{v}, nil
	}
	if len(arr) != 2 {
		return nil, fmt.Errorf("OVSDB value %s is not an atom, set or uuid", raw)
	}
	switch arr[0] {
	case "uuid", "named-uuid":
		return []any{arr[1]}, nil
	case "set":
		elems, ok := arr[1].([]any)
		if !ok {
			return nil, fmt.Errorf("OVSDB set %s has no element list", raw)
		}
		out := make([]any, 0, len(elems))
		for _, e := range elems {
			if pair, ok := e.([]any); ok {
				if len(pair) != 2 || (pair[0] != "uuid" && pair[0] != "named-uuid") {
					return nil, fmt.Errorf("OVSDB set %s has a non-atom element", raw)
				}
				e = pair[1]
			}
			out = append(out, e)
		}
		return out, nil
	}
	return nil, fmt.Errorf("OVSDB value %s is not an atom, set or uuid", raw)
}

// atom decodes a value that must be exactly one atom of type T.
func atom[T any](raw json.RawMessage, col string) (T, error) {
	var zero T
	as, err := atoms(raw)
	if err != nil {
		return zero, fmt.Errorf("column %s: %w", col, err)
	}
	if len(as) != 1 {
		return zero, fmt.Errorf("column %s: %s is not one value", col, raw)
	}
	t, ok := as[0].(T)
	if !ok {
		return zero, fmt.Errorf("column %s: %s has the wrong type", col, raw)
	}
	return t, nil
}

// optional decodes a value that is zero or one atom of type T (an optional column).
func optional[T any](raw json.RawMessage, col string) (T, error) {
	var zero T
	as, err := atoms(raw)
	if err != nil {
		return zero, fmt.Errorf("column %s: %w", col, err)
	}
	if len(as) == 0 {
		return zero, nil
	}
	return atom[T](raw, col)
}

// ovsMap decodes ["map", [[k, v], ...]] with string keys and values.
func ovsMap(raw json.RawMessage) (map[string]string, error) {
	var v []json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil || len(v) != 2 {
		return nil, fmt.Errorf("OVSDB value %s is not a map", raw)
	}
	var kind string
	if err := json.Unmarshal(v[0], &kind); err != nil || kind != "map" {
		return nil, fmt.Errorf("OVSDB value %s is not a map", raw)
	}
	var pairs [][]string
	if err := json.Unmarshal(v[1], &pairs); err != nil {
		return nil, fmt.Errorf("OVSDB map %s does not map strings to strings", raw)
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("OVSDB map %s has a pair that is not [key, value]", raw)
		}
		m[p[0]] = p[1]
	}
	return m, nil
}
