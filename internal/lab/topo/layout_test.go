package topo

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vflink/vflink/internal/lab"
)

func TestCablesBatch(t *testing.T) {
	p := lab.Plan{Hosts: 2, PFsPerHost: 2, VFsPerPF: 2, Leaves: 2, Dir: "/x"}
	got := strings.Split(strings.TrimSpace(cablesBatch(p)), "\n")
	want := []string{
		"link add ens1f0 address 02:76:6c:01:00:ff netns vfl-h1 type veth peer name pf-h1p0 netns vfl-fabric",
		"link add w-h1p0 netns vfl-fabric type veth peer name l1-xe1 netns vfl-fabric",
		"link add ens1f0v0 address 02:76:6c:01:00:00 netns vfl-h1 type veth peer name vf-h1p0v0 netns vfl-fabric",
		"link add ens1f0v1 address 02:76:6c:01:00:01 netns vfl-h1 type veth peer name vf-h1p0v1 netns vfl-fabric",
		"link add ens1f1 address 02:76:6c:01:01:ff netns vfl-h1 type veth peer name pf-h1p1 netns vfl-fabric",
		"link add w-h1p1 netns vfl-fabric type veth peer name l2-xe1 netns vfl-fabric",
	}
	if len(got) != 2*2*4 || !slices.Equal(got[:6], want) {
		t.Errorf("got\n%s\nwant 16 lines starting with\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Every command names a namespace for each end: nothing is ever created in the root namespace.
	for _, l := range got {
		if strings.Count(l, " netns ") != 2 {
			t.Errorf("%q does not place both ends in a lab namespace", l)
		}
	}
	// Interface names fit the kernel's 15 characters at the largest plan.
	big := lab.Plan{Hosts: 8, PFsPerHost: 4, VFsPerPF: 32, Leaves: 8, Dir: "/x"}
	for _, n := range fabricIfaces(big) {
		if len(n) > 15 {
			t.Errorf("interface name %q is longer than 15 characters", n)
		}
	}
}

func TestMACsAreUniqueAndLocal(t *testing.T) {
	seen := map[string]string{}
	for i := 1; i <= 8; i++ {
		for k := range 4 {
			macs := map[string]string{PFMAC(i, k): "pf"}
			for n := range 32 {
				macs[VFMAC(i, k, n)] = "vf"
			}
			for m := range macs {
				if prev, dup := seen[m]; dup {
					t.Fatalf("MAC %s given twice (%s)", m, prev)
				}
				seen[m] = m
				if !strings.HasPrefix(m, "02:") {
					t.Errorf("MAC %s is not a locally administered unicast address", m)
				}
			}
		}
	}
}

func TestBridgesTxn(t *testing.T) {
	p := lab.Plan{Hosts: 1, PFsPerHost: 1, VFsPerPF: 1, Leaves: 1, Dir: "/x"}
	got := strings.Join(bridgesTxn(p), " ")
	want := "-- add-br spine -- set Bridge spine datapath_type=netdev" +
		" -- add-br leaf1 -- set Bridge leaf1 datapath_type=netdev" +
		" -- add-port leaf1 up-l1 vlan_mode=trunk -- set Interface up-l1 type=patch options:peer=dn-l1" +
		" -- add-port spine dn-l1 vlan_mode=trunk -- set Interface dn-l1 type=patch options:peer=up-l1" +
		" -- add-br nic-h1p0 -- set Bridge nic-h1p0 datapath_type=netdev other_config:forward-bpdu=true" +
		" -- add-port nic-h1p0 pf-h1p0 vlan_mode=trunk -- add-port nic-h1p0 w-h1p0 vlan_mode=trunk" +
		" -- add-port nic-h1p0 vf-h1p0v0 vlan_mode=access tag=4095" +
		" -- add-port leaf1 l1-xe1 vlan_mode=access tag=4095"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got, want := strings.Join(Park("l1-xe1"), " "), "set Port l1-xe1 vlan_mode=access tag=4095 trunks=[]"; got != want {
		t.Errorf("Park: got %q, want %q", got, want)
	}
}

func TestCheckCabling(t *testing.T) {
	if err := checkCabling(lab.Default); err != nil {
		t.Errorf("default plan: %v", err)
	}
	err := checkCabling(lab.Plan{Hosts: 2, PFsPerHost: 2, VFsPerPF: 1, Leaves: 1, Dir: "/x"})
	if err == nil || !strings.Contains(err.Error(), "h1 ens1f0 and ens1f1 to the same port xe-0/0/1 of leaf1") {
		t.Errorf("got %v, want a refusal naming h1's two PFs on xe-0/0/1", err)
	}
}

func TestIsLabNS(t *testing.T) {
	for name, want := range map[string]bool{"vfl-fabric": true, "vfl-h1": true, "vfl-h12": true, "vfl-vm-1234abcd": true,
		"vfl-h": false, "vfl-hx": false, "vfl-fabric2": false, "vflt123-h1": false, "netns1": false, "vfl-pa": false} {
		if got := isLabNS(name); got != want {
			t.Errorf("isLabNS(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestLldpAgents(t *testing.T) {
	p := lab.Plan{Hosts: 2, PFsPerHost: 2, VFsPerPF: 1, Leaves: 3, Dir: "/x"}
	as := lldpAgents(p)
	var names []string
	for _, a := range as {
		names = append(names, a.Name+"@"+a.NS+":"+strings.Join(a.Ifaces, ","))
	}
	want := []string{"leaf1@vfl-fabric:l1-xe1", "leaf2@vfl-fabric:l2-xe1,l2-xe2", "leaf3@vfl-fabric:l3-xe2",
		"h1@vfl-h1:ens1f0,ens1f1", "h2@vfl-h2:ens1f0,ens1f1"}
	if !slices.Equal(names, want) {
		t.Errorf("got %q, want %q", names, want)
	}
	wantConf := "configure system hostname leaf2\nconfigure lldp tx-interval 1\n" +
		"configure ports l2-xe1 lldp portidsubtype local xe-0/0/1 description xe-0/0/1\n" +
		"configure ports l2-xe2 lldp portidsubtype local xe-0/0/2 description xe-0/0/2\nresume\n"
	if got := as[1].conf(); got != wantConf {
		t.Errorf("leaf2 conf:\n%s\nwant\n%s", got, wantConf)
	}
	if got := as[3].conf(); got != "configure system hostname h1\nconfigure lldp tx-interval 1\nresume\n" {
		t.Errorf("h1 conf:\n%s", got)
	}
	// A leaf without a cable gets no lldpd.
	if n := len(lldpAgents(lab.Plan{Hosts: 1, PFsPerHost: 1, VFsPerPF: 1, Leaves: 2, Dir: "/x"})); n != 2 {
		t.Errorf("1 host, 1 PF, 2 leaves: %d lldpd, want 2 (leaf1, h1)", n)
	}
}

func TestInterfaceErrors(t *testing.T) {
	out := `{"data":[["pf-h1p0",["set",[]]],["vf-h1p0v0","could not open network device vf-h1p0v0 (No such device)"],["leaf1",["set",[]]]],"headings":["name","error"]}`
	got, err := interfaceErrors([]byte(out))
	if err != nil || len(got) != 1 || got[0] != "vf-h1p0v0: could not open network device vf-h1p0v0 (No such device)" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestProcStat(t *testing.T) {
	state, start, err := procStat(os.Getpid())
	if err != nil || start == 0 || (state != 'R' && state != 'S') {
		t.Fatalf("procStat(self) = %c %d %v", state, start, err)
	}
	p := Proc{Role: "self", PID: os.Getpid(), Start: start}
	if !p.alive() {
		t.Error("this process is not alive by its own stat")
	}
	p.Start++
	if p.alive() {
		t.Error("a PID with another start time counts as the recorded process")
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := updateState(dir, false, func(*State) {}); err == nil {
		t.Error("updating a missing state without create succeeded")
	}
	p := lab.Plan{Hosts: 1, PFsPerHost: 1, VFsPerPF: 1, Leaves: 1, Dir: dir}
	if err := updateState(dir, true, func(s *State) { s.Plan = p; s.Namespaces = Namespaces(p) }); err != nil {
		t.Fatal(err)
	}
	if err := updateState(dir, false, func(s *State) { s.Procs = append(s.Procs, Proc{Role: "x", PID: 42}) }); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil || s.Plan != p || !slices.Equal(s.Namespaces, []string{"vfl-fabric", "vfl-h1"}) || len(s.Procs) != 1 || s.Procs[0].PID != 42 {
		t.Errorf("Load: %+v %v", s, err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not up") {
		t.Errorf("Open of an unfinished lab: %v, want an error saying it is not up", err)
	}
}

func TestRemoveLabFiles(t *testing.T) {
	dir := t.TempDir() + "/lab"
	for _, d := range []string{"ovs", "logs", "lldpd", "sys-h1/class/net"} {
		if err := os.MkdirAll(dir+"/"+d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"lldpd-h1.socket", "state.lock", "state.json.tmp"} {
		if err := os.WriteFile(dir+"/"+f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeLabFiles(dir); err != nil {
		t.Fatalf("removeLabFiles: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s remains: %v", dir, err)
	}
	if err := removeLabFiles(dir); err != nil {
		t.Errorf("a second time: %v", err)
	}
	// A directory that is not only the lab's is kept, and says so.
	if err := os.MkdirAll(dir+"/logs", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/notes.txt", []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := removeLabFiles(dir)
	if err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("got %v, want an error naming notes.txt", err)
	}
	if _, err := os.Stat(dir + "/notes.txt"); err != nil {
		t.Errorf("notes.txt was removed: %v", err)
	}
	if _, err := os.Stat(dir + "/logs"); !os.IsNotExist(err) {
		t.Errorf("logs/ remains: %v", err)
	}
}

func TestCheckDir(t *testing.T) {
	p := lab.Plan{Hosts: 2, PFsPerHost: 1, VFsPerPF: 1, Leaves: 2, Dir: "/run/vflink-lab"}
	if err := checkDir(p); err != nil {
		t.Errorf("%s: %v", p.Dir, err)
	}
	p.Dir = "/run/" + strings.Repeat("x", 90)
	if err := checkDir(p); err == nil || !strings.Contains(err.Error(), "lldpd-leaf1.socket would be 114 bytes") {
		t.Errorf("%s: got %v, want the leaf1 socket named as too long", p.Dir, err)
	}
	closed := t.TempDir() // 0700
	p.Dir = closed + "/lab"
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := checkDir(p); err == nil || !strings.Contains(err.Error(), "has mode 0700") {
		t.Errorf("%s: got %v, want a refusal naming the 0700 parent", p.Dir, err)
	}
}
