// Package demo runs the seed's workflow on a lab with the real openstack CLI (`vflink lab demo`):
// networks with a physical network and VLAN = VN ID, subnets, direct ports, servers on hosts
// behind different leaves; then it shows what vflink did (VF programming, the LLDP-discovered
// switch port, the derived device port, the switch configuration) and proves it with packets:
// VMs on one network reach each other, a VM on another network does not, a VLAN an operator
// removes by hand drops the traffic until the device manager repairs it; finally it deletes the
// servers and checks the switch and the VFs are clean again.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/fabric/junos"
	"github.com/vflink/vflink/internal/lab"
	"github.com/vflink/vflink/internal/lab/cloud"
)

// Scenarios the demo knows.
var Scenarios = []string{"access", "trunk", "multihoming"}

// Demo is one run.
type Demo struct {
	Plan  lab.Plan
	Cloud *cloud.Cloud
	Exe   string // the vflink binary
	Out   io.Writer
	start time.Time
	step  int
	osc   *osc
	token string // the admin's, for the vflink CLI
}

// Failure is a failed step.
type Failure struct {
	Step, Reason string
}

func (f *Failure) Error() string { return fmt.Sprintf("%s: %s", f.Step, f.Reason) }

func fail(step, format string, a ...any) error {
	return &Failure{Step: step, Reason: fmt.Sprintf(format, a...)}
}

func (d *Demo) printf(format string, a ...any) { fmt.Fprintf(d.Out, format, a...) }

// run runs one command, printing it, its time and (indented, at most max lines) its output.
func (d *Demo) run(show int, env []string, name string, args ...string) (string, error) {
	d.step++
	t := time.Now()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	shown := name
	if name == d.Exe {
		shown = "vflink"
	}
	d.printf("[%5.1fs] $ %s %s  (%.2fs)\n", time.Since(d.start).Seconds(), shown, strings.Join(args, " "), time.Since(t).Seconds())
	d.show(out.String(), show)
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.String(), fmt.Errorf("%s %s: %v: %s", shown, strings.Join(args, " "), err, msg)
	}
	return out.String(), nil
}

// openstack runs one openstack CLI command. The commands run in one long-lived Python process
// that runs the real CLI's shell (openstackclient.shell.OpenStackShell, what /usr/bin/openstack
// runs) once per command, so the demo does not pay the CLI's ~2 s start-up on every command.
func (d *Demo) openstack(show int, args ...string) (string, error) {
	d.step++
	t := time.Now()
	out, errText, err := d.osc.run(args)
	d.printf("[%5.1fs] $ openstack %s  (%.2fs)\n", time.Since(d.start).Seconds(), strings.Join(quoteArgs(args), " "), time.Since(t).Seconds())
	d.show(out, show)
	if err != nil {
		return out, fmt.Errorf("openstack %s: %v", strings.Join(args, " "), err)
	}
	if errText != "" {
		return out, fmt.Errorf("openstack %s: %s", strings.Join(args, " "), strings.TrimSpace(errText))
	}
	return out, nil
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if strings.ContainsAny(a, " {}\"'") {
			out[i] = "'" + a + "'"
		}
	}
	return out
}

func (d *Demo) show(out string, show int) {
	if strings.TrimSpace(out) == "" {
		return
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, l := range lines {
		if i == show {
			d.printf("          ... (%d more lines)\n", len(lines)-show)
			break
		}
		if l != "" {
			d.printf("          %s\n", l)
		}
	}
}

func (d *Demo) vflink(show int, args ...string) (string, error) {
	return d.run(show, []string{"VFLINK_URL=" + d.Cloud.URL, "VFLINK_TOKEN=" + d.token}, d.Exe, args...)
}

func (d *Demo) netns(show int, ns string, args ...string) (string, error) {
	return d.run(show, nil, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// wait polls cond every 200 ms up to limit.
func (d *Demo) wait(step string, limit time.Duration, cond func() (bool, string)) error {
	t := time.Now()
	for {
		ok, why := cond()
		if ok {
			d.printf("[%5.1fs]   %s  (%.2fs)\n", time.Since(d.start).Seconds(), step, time.Since(t).Seconds())
			return nil
		}
		if time.Since(t) > limit {
			return fail(step, "not after %s: %s", limit, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Run runs a scenario and returns its duration, or the failed step.
func (d *Demo) Run(ctx context.Context, scenario string) (time.Duration, error) {
	d.start = time.Now()
	if !slices.Contains(Scenarios, scenario) {
		return 0, fail("scenario", "%q is not known; allowed: %s", scenario, strings.Join(Scenarios, ", "))
	}
	var err error
	if d.osc, err = startOSC(ctx, []string{"OS_CLIENT_CONFIG_FILE=" + d.Cloud.CloudsYAML, "OS_CLOUD=vflink"}); err != nil {
		return 0, fail("openstack CLI", "%v", err)
	}
	defer d.osc.close()
	if d.token, err = client.Login(ctx, http.DefaultClient, client.Credentials{AuthURL: d.Cloud.URL + "/v3", Username: "admin",
		Password: readFile(d.Cloud.PasswordFile), Project: "admin", Domain: "Default"}); err != nil {
		return 0, fail("login", "%v", err)
	}
	err = d.scenario(ctx, scenario)
	return time.Since(d.start), err
}

type vm struct {
	name, id, ns string
	ports        []port
}

type port struct {
	name, id, mac, ip string
}

func (d *Demo) scenario(ctx context.Context, scenario string) error {
	d.printf("== scenario %s: the seed's workflow with the openstack CLI ==\n", scenario)
	if _, err := d.openstack(1, "flavor", "create", "--vcpus", "1", "--ram", "128", "--disk", "1", "demo-flavor", "-f", "value", "-c", "id"); err != nil {
		return fail("flavor", "%v", err)
	}
	if _, err := d.openstack(1, "image", "create", "--disk-format", "raw", "--container-format", "bare", "demo-image", "-f", "value", "-c", "id"); err != nil {
		return fail("image", "%v", err)
	}
	// step 1: networks with physnet sriov; the VLAN defaults to the network's VN ID
	red, redVLAN, err := d.network("demo-red", "10.247.1.0/24", "10.247.1.10", "10.247.1.99")
	if err != nil {
		return err
	}
	// the isolation network has the same subnet range (other addresses): only the VLAN keeps
	// them apart
	_, blueVLAN, err := d.network("demo-blue", "10.247.1.0/24", "10.247.1.100", "10.247.1.199")
	if err != nil {
		return err
	}
	_ = red
	// step 2: direct ports; step 3: servers on hosts behind different leaves
	var vms []*vm
	switch scenario {
	case "access":
		vms, err = d.servers([]serverSpec{{"demo-vm1", "h1", []string{"demo-red"}}, {"demo-vm2", "h2", []string{"demo-red"}}, {"demo-vm3", "h1", []string{"demo-blue"}}})
	case "trunk":
		// the trunk's parent is on demo-red, so demo-red is the VM's untagged network and the
		// switch port carries it as native VLAN; demo-blue rides tagged as a subport
		if _, err = d.openstack(1, "port", "create", "--network", "demo-red", "--vnic-type", "direct", "demo-vm1-p0", "-f", "value", "-c", "id"); err != nil {
			return fail("port", "%v", err)
		}
		if _, err = d.openstack(1, "port", "create", "--network", "demo-blue", "demo-vm1-sub", "-f", "value", "-c", "id"); err != nil {
			return fail("port", "%v", err)
		}
		if _, err = d.openstack(3, "network", "trunk", "create", "--parent-port", "demo-vm1-p0", "--subport",
			"port=demo-vm1-sub,segmentation-type=inherit", "demo-trunk", "-f", "value", "-c", "id"); err != nil {
			return fail("trunk", "%v", err)
		}
		vms, err = d.servers([]serverSpec{{"demo-vm1", "h1", nil}, {"demo-vm2", "h2", []string{"demo-red"}}, {"demo-vm3", "h2", []string{"demo-blue"}}})
	case "multihoming":
		// two ports of one server on one network: the agent puts them on PFs cabled to two leaves,
		// and the binder makes an ESI-LAG of the two switch ports
		vms, err = d.servers([]serverSpec{{"demo-vm1", "h1", []string{"demo-red", "demo-red"}}, {"demo-vm2", "h2", []string{"demo-red"}}, {"demo-vm3", "h2", []string{"demo-blue"}}})
	}
	if err != nil {
		return err
	}
	if err := d.waitActive(vms); err != nil {
		return err
	}
	// what vflink did: the VF, the switch port from LLDP, the device port, the switch config
	p1 := vms[0].ports[0]
	if _, err := d.vflink(3, "agent", "find-mac", "--config", cloud.AgentConfig(d.Plan.Dir, 1), p1.mac); err != nil {
		return fail("find-mac", "%v", err)
	}
	if out, err := d.vflink(0, "port", "show", p1.id, "-o", "json"); err != nil {
		return fail("port show", "%v", err)
	} else {
		var pj struct {
			Conditions []api.Condition `json:"vflink:conditions"`
		}
		json.Unmarshal([]byte(out), &pj)
		for _, c := range pj.Conditions {
			d.printf("          %s %s (%s): %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	if _, err := d.openstack(8, "port", "list", "--device-owner", "vflink:device-port", "-c", "Name", "-c", "Status"); err != nil {
		return fail("device ports", "%v", err)
	}
	leaves := []string{lab.LeafName(1), lab.LeafName(2)}
	if d.Plan.Leaves < 2 {
		leaves = leaves[:1]
	}
	want := map[string][]string{}
	for _, l := range leaves {
		want[l] = []string{fmt.Sprintf("vlans bd-%d vlan-id %d", redVLAN, redVLAN)}
	}
	switch scenario {
	case "trunk":
		want[lab.LeafName(1)] = append(want[lab.LeafName(1)], fmt.Sprintf("native-vlan-id %d", redVLAN), fmt.Sprintf("vlan members bd-%d", blueVLAN))
	case "multihoming":
		for _, l := range leaves {
			want[l] = append(want[l], "esi all-active", "802.3ad ae")
		}
	}
	if err := d.waitConfig(want, nil); err != nil {
		return err
	}
	for _, l := range leaves {
		if _, err := d.vflink(14, "device", "config", l); err != nil {
			return fail("device config", "%v", err)
		}
	}
	// packets: the guest configures its address (as cloud-init would)
	for _, v := range vms {
		if len(v.ports) > 1 {
			// two interfaces in one subnet: each answers ARP for its own address only, so a reply
			// comes back on the interface that asked (as a multi-homed guest is set up)
			for _, kv := range []string{"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"} {
				if _, err := d.netns(0, v.ns, "sysctl", "-q", "-w", kv); err != nil {
					return fail("guest address", "%v", err)
				}
			}
		}
		for i, p := range v.ports {
			if p.ip == "" {
				continue
			}
			if _, err := d.netns(0, v.ns, "ip", "addr", "add", fmt.Sprintf("%s/24", p.ip), "dev", fmt.Sprintf("eth%d", i)); err != nil {
				return fail("guest address", "%v", err)
			}
		}
	}
	vm1, vm2, vm3 := vms[0], vms[1], vms[2]
	if err := d.ping(vm1, 0, vm2.ports[0].ip, true); err != nil {
		return err
	}
	if scenario == "multihoming" {
		if err := d.ping(vm1, 1, vm2.ports[0].ip, true); err != nil {
			return err
		}
	}
	if err := d.ping(vm1, 0, vm3.ports[0].ip, false); err != nil {
		return err
	}
	if scenario == "access" {
		if err := d.drift(ctx, vm1, vm2, redVLAN); err != nil {
			return err
		}
	}
	// delete: the VLAN leaves the switches, the VFs get their state back
	args := []string{"server", "delete", "--wait"}
	for _, v := range vms {
		args = append(args, v.name)
	}
	if _, err := d.openstack(0, args...); err != nil {
		return fail("server delete", "%v", err)
	}
	gone := map[string][]string{}
	for _, l := range leaves {
		gone[l] = []string{fmt.Sprintf("bd-%d", redVLAN), fmt.Sprintf("bd-%d", blueVLAN)}
	}
	if err := d.waitConfig(nil, gone); err != nil {
		return err
	}
	if out, err := d.vflink(3, "agent", "find-mac", "--config", cloud.AgentConfig(d.Plan.Dir, 1), p1.mac); err == nil {
		return fail("VF restored", "port %s's MAC %s is still on a VF after its server was deleted: %s", p1.name, p1.mac, strings.TrimSpace(out))
	}
	d.printf("[%5.1fs]   VF of %s restored: MAC %s is on no VF any more\n", time.Since(d.start).Seconds(), p1.name, p1.mac)
	return nil
}

func (d *Demo) network(name, cidr, poolStart, poolEnd string) (string, int, error) {
	out, err := d.openstack(1, "network", "create", name, "-f", "value", "-c", "id")
	if err != nil {
		return "", 0, fail("network create", "%v", err)
	}
	id := strings.TrimSpace(out)
	if _, err := d.openstack(0, "network", "set", "--provider-network-type", "vlan", "--provider-physical-network", "sriov", name); err != nil {
		return "", 0, fail("network set", "%v", err)
	}
	out, err = d.openstack(1, "network", "show", name, "-f", "value", "-c", "provider:segmentation_id")
	if err != nil {
		return "", 0, fail("network show", "%v", err)
	}
	var vlan int
	if _, err := fmt.Sscan(strings.TrimSpace(out), &vlan); err != nil || vlan < 1 {
		return "", 0, fail("network show", "network %s has VLAN %q after network set", name, strings.TrimSpace(out))
	}
	if _, err := d.openstack(0, "subnet", "create", "--network", name, "--subnet-range", cidr, "--gateway", "none",
		"--allocation-pool", "start="+poolStart+",end="+poolEnd, name+"-sub", "-f", "value", "-c", "id"); err != nil {
		return "", 0, fail("subnet create", "%v", err)
	}
	return id, vlan, nil
}

type serverSpec struct {
	name, host string
	networks   []string // a direct port on each; nil: a port named <name>-p0 exists already
}

func (d *Demo) servers(specs []serverSpec) ([]*vm, error) {
	var out []*vm
	for _, s := range specs {
		v := &vm{name: s.name}
		names := []string{s.name + "-p0"}
		if s.networks != nil {
			names = nil
			for i, n := range s.networks {
				pn := fmt.Sprintf("%s-p%d", s.name, i)
				if _, err := d.openstack(0, "port", "create", "--network", n, "--vnic-type", "direct", pn, "-f", "value", "-c", "id"); err != nil {
					return nil, fail("port create", "%v", err)
				}
				names = append(names, pn)
			}
		}
		args := []string{"server", "create", "--flavor", "demo-flavor", "--image", "demo-image", "--availability-zone", "nova:" + s.host}
		for _, pn := range names {
			args = append(args, "--port", pn)
		}
		out1, err := d.openstack(0, append(args, s.name, "-f", "value", "-c", "id")...)
		if err != nil {
			return nil, fail("server create", "%v", err)
		}
		v.id = strings.TrimSpace(out1)
		v.ns = lab.VMNS(v.id)
		for _, pn := range names {
			o, err := d.openstack(0, "port", "show", pn, "-f", "json", "-c", "id", "-c", "mac_address", "-c", "fixed_ips")
			if err != nil {
				return nil, fail("port show", "%v", err)
			}
			var ps struct {
				ID       string `json:"id"`
				MAC      string `json:"mac_address"`
				FixedIPs []struct {
					IP string `json:"ip_address"`
				} `json:"fixed_ips"`
			}
			if err := json.Unmarshal([]byte(o), &ps); err != nil {
				return nil, fail("port show", "%v: %s", err, o)
			}
			p := port{name: pn, id: ps.ID, mac: ps.MAC}
			if len(ps.FixedIPs) > 0 {
				p.ip = ps.FixedIPs[0].IP
			}
			v.ports = append(v.ports, p)
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *Demo) waitActive(vms []*vm) error {
	for _, v := range vms {
		err := d.wait("server "+v.name+" ACTIVE", 40*time.Second, func() (bool, string) {
			out, errText, err := d.osc.run([]string{"server", "show", v.name, "-f", "value", "-c", "status", "-c", "fault"})
			if err != nil || errText != "" {
				return false, fmt.Sprint(err, errText)
			}
			st := strings.TrimSpace(out)
			if strings.HasPrefix(st, "ERROR") {
				return false, st
			}
			return strings.HasPrefix(st, "ACTIVE"), "status " + st
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// waitConfig waits until each leaf's running vflink configuration has every want substring and
// none of the gone substrings.
func (d *Demo) waitConfig(want, gone map[string][]string) error {
	c, err := d.Cloud.Client()
	if err != nil {
		return fail("switch configuration", "%v", err)
	}
	check := func(leaf string, subs []string, present bool) error {
		what := "has"
		if !present {
			what = "no longer has"
		}
		return d.wait(fmt.Sprintf("%s %s %s", leaf, what, strings.Join(subs, ", ")), 20*time.Second, func() (bool, string) {
			lines, err := c.DeviceConfig(context.Background(), leaf)
			if err != nil {
				return false, err.Error()
			}
			all := strings.Join(lines, "\n")
			for _, s := range subs {
				if strings.Contains(all, s) != present {
					return false, fmt.Sprintf("%q present=%t", s, !present)
				}
			}
			return true, ""
		})
	}
	for leaf, subs := range want {
		if err := check(leaf, subs, true); err != nil {
			return err
		}
	}
	for leaf, subs := range gone {
		if err := check(leaf, subs, false); err != nil {
			return err
		}
	}
	return nil
}

func (d *Demo) ping(from *vm, iface int, to string, must bool) error {
	_, err := d.netns(2, from.ns, "ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", fmt.Sprintf("eth%d", iface), to)
	switch {
	case must && err != nil:
		return fail("ping", "%s (eth%d) cannot reach %s: %v", from.name, iface, to, err)
	case !must && err == nil:
		return fail("isolation", "%s reaches %s on another network", from.name, to)
	}
	if must {
		d.printf("          ok: %s reaches %s\n", from.name, to)
	} else {
		d.printf("          ok: %s does not reach %s (another network: isolated)\n", from.name, to)
	}
	return nil
}

// drift removes the network's VLAN from vm1's leaf port by hand (as an operator would, over
// NETCONF), shows the ping fail, and waits for the device manager to repair it.
func (d *Demo) drift(ctx context.Context, vm1, vm2 *vm, vlan int) error {
	leaves, err := cloud.LoadLeaves(d.Plan.Dir)
	if err != nil {
		return fail("drift", "%v", err)
	}
	_, junosPort := d.Plan.Cable(1, 0)
	leaf := leaves[lab.LeafName(1)]
	drv := junos.New(junos.Config{Name: leaf.Name, Address: leaf.Address, Username: "vflink", Password: readFile(d.Cloud.PasswordFile), HostKey: leaf.HostKey})
	defer drv.Close()
	running, err := drv.Running(ctx)
	if err != nil {
		return fail("drift", "read %s: %v", leaf.Name, err)
	}
	member := fmt.Sprintf("set groups __vflink_access__ interfaces %s unit 0 family ethernet-switching vlan members bd-%d", junosPort, vlan)
	var without []string
	for _, l := range running {
		if l != member {
			without = append(without, l)
		}
	}
	if len(without) == len(running) {
		return fail("drift", "%s does not run %q", leaf.Name, member)
	}
	pingOnce := func() bool {
		return exec.Command("ip", "netns", "exec", vm1.ns, "ping", "-c", "1", "-W", "0.3", vm2.ports[0].ip).Run() == nil
	}
	// the device manager reads the switch every few seconds: if it repairs the change before a
	// ping sees the drop, make the change again (at most 3 times)
	seen := false
	for attempt := 1; attempt <= 3 && !seen; attempt++ {
		t := time.Now()
		if _, err := drv.Apply(ctx, without); err != nil {
			return fail("drift", "commit by hand on %s: %v", leaf.Name, err)
		}
		d.printf("[%5.1fs] by hand on %s: delete %s  (%.2fs)\n", time.Since(d.start).Seconds(), leaf.Name, strings.TrimPrefix(member, "set "), time.Since(t).Seconds())
		for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
			if !pingOnce() {
				seen = true
				break
			}
		}
	}
	if !seen {
		return fail("drift", "no ping to %s failed after the VLAN was removed by hand from %s %s", vm2.ports[0].ip, leaf.Name, junosPort)
	}
	d.printf("          ok: the wrong configuration drops %s → %s\n", vm1.name, vm2.ports[0].ip)
	return d.wait("the device manager repairs the drift and the ping passes again", 20*time.Second, func() (bool, string) {
		cmd := exec.Command("ip", "netns", "exec", vm1.ns, "ping", "-c", "1", "-W", "1", vm2.ports[0].ip)
		if err := cmd.Run(); err != nil {
			return false, "ping fails"
		}
		return true, ""
	})
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}
