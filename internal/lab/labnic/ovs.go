package labnic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/vflink/vflink/internal/host/sriov"
)

// vsctl runs ovs-vsctl against the lab's database, waiting (up to 10 s) for ovs-vswitchd to
// apply a change, and returns its standard output.
func (n *NIC) vsctl(ctx context.Context, args ...string) (string, error) {
	argv := append([]string{"--db=" + n.cfg.Plan.OVSDB(), "--timeout=10"}, args...)
	return run(ctx, "", n.cfg.Vsctl, argv...)
}

// mgmt is ovs-vswitchd's OpenFlow management socket of a bridge.
func (n *NIC) mgmt(bridge string) string { return n.cfg.OVSRundir + "/" + bridge + ".mgmt" }

// ofctl runs `ovs-ofctl CMD unix:<rundir>/<bridge>.mgmt ARGS...` with stdin as its input.
func (n *NIC) ofctl(ctx context.Context, bridge, stdin, cmd string, args ...string) (string, error) {
	sock := n.mgmt(bridge)
	if _, err := os.Stat(sock); err != nil {
		return "", fmt.Errorf("bridge %s has no OpenFlow socket %s (does ovs-vswitchd run with OVS_RUNDIR=%s?): %w",
			bridge, sock, n.cfg.OVSRundir, err)
	}
	argv := append([]string{"--timeout=10", cmd, "unix:" + sock}, args...)
	return run(ctx, stdin, n.cfg.Ofctl, argv...)
}

// spoofFlows replaces the spoof-check rules of a VF port by those letting only mac through.
func (n *NIC) spoofFlows(ctx context.Context, bridge, port string, mac net.HardwareAddr) error {
	if err := n.delSpoofFlows(ctx, bridge, port); err != nil {
		return err
	}
	flows := fmt.Sprintf("cookie=%s,priority=200,in_port=%s,dl_src=%s,actions=NORMAL\n"+
		"cookie=%s,priority=199,in_port=%s,actions=drop\n", spoofCookie, port, mac, spoofCookie, port)
	_, err := n.ofctl(ctx, bridge, flows, "add-flows", "-")
	return err
}

// delSpoofFlows removes the spoof-check rules of a VF port (none is fine).
func (n *NIC) delSpoofFlows(ctx context.Context, bridge, port string) error {
	_, err := n.ofctl(ctx, bridge, "", "del-flows", "cookie="+spoofCookie+"/-1,in_port="+port)
	return err
}

// run runs a program with an argv (no shell); its error carries the command line and stderr.
func run(ctx context.Context, stdin, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// portRow is the part of an OVS Port row this package reads.
type portRow struct {
	Name        string
	VLANMode    string // "" (OVS's default), "access", "trunk", "native-tagged", "native-untagged"
	Tag         int    // -1: none
	ExternalIDs map[string]string
}

// state is what a real VF would report for this port and netdev MAC.
func (r portRow) state(mac net.HardwareAddr) sriov.VFState {
	s := sriov.VFState{
		MAC:        append(net.HardwareAddr(nil), mac...),
		SpoofCheck: r.ExternalIDs[KeySpoofCheck] == "on",
		Trust:      r.ExternalIDs[KeyTrust] == "on",
		LinkState:  r.ExternalIDs[KeyLinkState],
	}
	if s.LinkState == "" {
		s.LinkState = sriov.LinkStateAuto
	}
	// An access port (or a port with a tag and no mode, which OVS treats as access) puts the VF
	// in one VLAN; any other mode is a trunk VF: VLAN 0.
	if r.Tag >= 0 && (r.VLANMode == "access" || r.VLANMode == "") {
		s.VLAN = r.Tag
	}
	return s
}

// ports reads the named Port rows; a missing one is an error naming it.
func (n *NIC) ports(ctx context.Context, names ...string) (map[string]portRow, error) {
	out, err := n.vsctl(ctx, append([]string{"--format=json", "--", "--columns=name,vlan_mode,tag,external_ids", "list", "Port"}, names...)...)
	if err != nil {
		return nil, err
	}
	rows, err := parsePorts(out)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, ok := rows[name]; !ok {
			return nil, fmt.Errorf("ovs-vsctl list Port did not report port %s", name)
		}
	}
	return rows, nil
}

func (n *NIC) port(ctx context.Context, name string) (portRow, error) {
	rows, err := n.ports(ctx, name)
	if err != nil {
		return portRow{}, err
	}
	return rows[name], nil
}

// parsePorts decodes `ovs-vsctl --format=json -- --columns=name,vlan_mode,tag,external_ids list
// Port`: {"data": [[name, vlan_mode, tag, external_ids], ...], "headings": [...]}, where an empty
// column is ["set", []] and a map is ["map", [[k, v], ...]].
func parsePorts(out string) (map[string]portRow, error) {
	var t struct {
		Data     [][]json.RawMessage `json:"data"`
		Headings []string            `json:"headings"`
	}
	if err := json.Unmarshal([]byte(out), &t); err != nil {
		return nil, fmt.Errorf("decode ovs-vsctl output %q: %w", truncate(out, 200), err)
	}
	want := []string{"name", "vlan_mode", "tag", "external_ids"}
	if strings.Join(t.Headings, ",") != strings.Join(want, ",") {
		return nil, fmt.Errorf("ovs-vsctl reported columns %v, want %v", t.Headings, want)
	}
	rows := map[string]portRow{}
	for _, d := range t.Data {
		if len(d) != len(want) {
			return nil, fmt.Errorf("ovs-vsctl row %s has %d columns, want %d", d, len(d), len(want))
		}
		var r portRow
		var err error
		if err = json.Unmarshal(d[0], &r.Name); err != nil {
			return nil, fmt.Errorf("port name %s: %w", d[0], err)
		}
		if r.VLANMode, err = optString(d[1]); err != nil {
			return nil, fmt.Errorf("port %s vlan_mode: %w", r.Name, err)
		}
		if r.Tag, err = optInt(d[2]); err != nil {
			return nil, fmt.Errorf("port %s tag: %w", r.Name, err)
		}
		if r.ExternalIDs, err = ovsMap(d[3]); err != nil {
			return nil, fmt.Errorf("port %s external_ids: %w", r.Name, err)
		}
		rows[r.Name] = r
	}
	return rows, nil
}

// isEmptySet reports whether v is ["set", []], OVSDB's empty optional value.
func isEmptySet(v json.RawMessage) bool {
	var a []json.RawMessage
	if json.Unmarshal(v, &a) != nil || len(a) != 2 {
		return false
	}
	var tag string
	var elems []json.RawMessage
	return json.Unmarshal(a[0], &tag) == nil && tag == "set" && json.Unmarshal(a[1], &elems) == nil && len(elems) == 0
}

func optString(v json.RawMessage) (string, error) {
	if isEmptySet(v) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%s is not a string or an empty set", v)
	}
	return s, nil
}

func optInt(v json.RawMessage) (int, error) {
	if isEmptySet(v) {
		return -1, nil
	}
	var i int
	if err := json.Unmarshal(v, &i); err != nil {
		return 0, fmt.Errorf("%s is not an integer or an empty set", v)
	}
	return i, nil
}

func ovsMap(v json.RawMessage) (map[string]string, error) {
	var a []json.RawMessage
	if err := json.Unmarshal(v, &a); err != nil || len(a) != 2 {
		return nil, fmt.Errorf("%s is not an OVSDB map", v)
	}
	var tag string
	var pairs [][2]string
	if json.Unmarshal(a[0], &tag) != nil || tag != "map" || json.Unmarshal(a[1], &pairs) != nil {
		return nil, fmt.Errorf("%s is not an OVSDB map of strings", v)
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		m[p[0]] = p[1]
	}
	return m, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

var errNoNamespace = errors.New("no such network namespace")
