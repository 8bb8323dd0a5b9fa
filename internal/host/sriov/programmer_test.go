package sriov

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFakeRules(t *testing.T) {
	tests := []struct {
		name string
		call func(f *Fake) error
		want string // "" for success
	}{
		{"vlan 4095", func(f *Fake) error { return f.SetVLAN("ens1f1", 13, 4095) }, ""},
		{"vlan 4096", func(f *Fake) error { return f.SetVLAN("ens1f1", 13, 4096) }, "vlan 4096 is out of range 0-4095"},
		{"vlan -1", func(f *Fake) error { return f.SetVLAN("ens1f1", 13, -1) }, "vlan -1 is out of range 0-4095"},
		{"multicast mac", func(f *Fake) error { return f.SetMAC("ens1f1", 13, mustMAC(t, "01:00:5e:00:00:01")) },
			"mac 01:00:5e:00:00:01 is a multicast address"},
		{"zero mac", func(f *Fake) error { return f.SetMAC("ens1f1", 13, mustMAC(t, "00:00:00:00:00:00")) },
			"mac 00:00:00:00:00:00 is the zero address"},
		{"short mac", func(f *Fake) error { return f.SetMAC("ens1f1", 13, net.HardwareAddr{2, 0}) }, "not a 6-byte"},
		{"vf 15 on a 16-VF PF", func(f *Fake) error { return f.SetTrust("ens1f1", 15, true) }, ""},
		{"vf 16 on a 16-VF PF", func(f *Fake) error { return f.SetMAC("ens1f1", 16, mustMAC(t, "02:5a:0d:c4:39:77")) },
			"vf 16 is out of range 0-15 on ens1f1"},
		{"vf -1", func(f *Fake) error { return f.SetSpoofCheck("ens1f1", -1, true) }, "vf -1 is out of range 0-15"},
		{"bad link state", func(f *Fake) error { return f.SetLinkState("ens1f1", 1, "up") },
			`link state "up" is not one of auto, enable, disable`},
		{"unknown PF", func(f *Fake) error { return f.SetVLAN("ens9", 0, 15) }, "ens9: link not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(map[string]int{"ens1f1": 16})
			err := tt.call(f)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got error %v, want success", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
	f := NewFake(map[string]int{"ens1f1": 16})
	if err := f.SetVLAN("ens1f1", 1, 5000); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("a refused value: got %v, want an error wrapping EINVAL as the kernel returns", err)
	}
	if _, err := f.VFs("ens9"); !errors.Is(err, ErrLinkNotFound) {
		t.Errorf("VFs of an unknown PF: got %v, want ErrLinkNotFound", err)
	}
}

func TestFakeCallLogAndFailures(t *testing.T) {
	f := NewFake(map[string]int{"ens1f1": 16})
	mac := mustMAC(t, "02:5a:0d:c4:39:77")
	if err := f.SetMAC("ens1f1", 13, mac); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	f.FailOn(OpVLAN, boom)
	if err := f.SetVLAN("ens1f1", 13, 15); !errors.Is(err, boom) {
		t.Errorf("SetVLAN with an injected failure: got %v, want boom", err)
	}
	f.FailOn(OpVLAN, nil)
	_ = f.SetVLAN("ens1f1", 13, 15)
	_ = f.SetVLAN("ens1f1", 16, 15)
	_, _ = f.VFs("ens1f1")
	want := []string{
		"ens1f1 vf 13 mac 02:5a:0d:c4:39:77",
		"ens1f1 vf 13 vlan 15",
		"ens1f1 vf 13 vlan 15",
		"ens1f1 vf 16 vlan 15",
		"ens1f1 show",
	}
	if diff := cmp.Diff(want, f.Calls()); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}
	got, err := Save(f, "ens1f1", 13)
	if err != nil {
		t.Fatal(err)
	}
	if want := (VFState{MAC: mac, VLAN: 15, SpoofCheck: true, LinkState: LinkStateAuto}); !cmp.Equal(want, got) {
		t.Errorf("state: got %v, want %v", got, want)
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake(map[string]int{"ens1f1": 16})
	var wg sync.WaitGroup
	for vf := range 16 {
		wg.Go(func() {
			want := VFState{MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(vf)}, VLAN: 100 + vf, Trust: vf%2 == 0, LinkState: LinkStateEnable}
			if err := Apply(f, "ens1f1", vf, want); err != nil {
				t.Errorf("vf %d: %v", vf, err)
			}
		})
	}
	wg.Wait()
	vfs, err := f.VFs("ens1f1")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vfs {
		if v.VLAN != 100+v.Index {
			t.Errorf("vf %d: got vlan %d, want %d", v.Index, v.VLAN, 100+v.Index)
		}
	}
}

var seedState = VFState{
	MAC: net.HardwareAddr{0x02, 0x5a, 0x0d, 0xc4, 0x39, 0x77}, VLAN: 15,
	SpoofCheck: true, Trust: true, LinkState: LinkStateAuto,
}

func TestApply(t *testing.T) {
	f := NewFake(map[string]int{"ens1f1": 16})
	if err := Apply(f, "ens1f1", 13, seedState); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ens1f1 vf 13 mac 02:5a:0d:c4:39:77",
		"ens1f1 vf 13 vlan 15",
		"ens1f1 vf 13 spoofchk on",
		"ens1f1 vf 13 trust on",
		"ens1f1 vf 13 state auto",
		"ens1f1 show",
	}
	if diff := cmp.Diff(want, f.Calls()); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}
}

func TestApplyWithReadLag(t *testing.T) {
	f := NewFake(map[string]int{"ens1f1": 16})
	f.SetReadLag(3)
	if err := Apply(f, "ens1f1", 13, seedState); err != nil {
		t.Fatalf("Apply with a read-back lag of 3: %v", err)
	}
	var reads int
	for _, c := range f.Calls() {
		if c == "ens1f1 show" {
			reads++
		}
	}
	if reads != 4 {
		t.Errorf("got %d reads, want 4 (3 stale, 1 current)", reads)
	}
}

func TestApplyPersistentMismatch(t *testing.T) {
	tests := []struct {
		op, field, want string
	}{
		{OpVLAN, "vlan", "vlan is 0 after setting it to 15"},
		{OpTrust, "trust", "trust is off after setting it to on"},
		{OpMAC, "mac", "mac is 02:"},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			f := NewFake(map[string]int{"ens1f1": 16})
			f.DropWrites(tt.op, true)
			err := Apply(f, "ens1f1", 13, seedState)
			var mm *MismatchError
			if !errors.As(err, &mm) || mm.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a *MismatchError for %s containing %q", err, tt.field, tt.want)
			}
			if !strings.Contains(err.Error(), "vf 13 on ens1f1") {
				t.Errorf("error %q does not name the PF and VF", err)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	f := NewFake(map[string]int{"ens1f1": 16})
	bad := seedState
	bad.VLAN = 4096
	if err := Apply(f, "ens1f1", 13, bad); err == nil || !strings.Contains(err.Error(), "program vf 13 on ens1f1: set vlan 4096") {
		t.Errorf("got %v, want an error naming vf, pf and the vlan", err)
	}
	bad = seedState
	bad.LinkState = "up"
	if err := Apply(f, "ens1f1", 13, bad); err == nil || !strings.Contains(err.Error(), `link state "up"`) {
		t.Errorf("got %v, want an error naming the link state", err)
	}
	f.FailOn(OpVFs, errors.New("netlink: message truncated"))
	if err := Apply(f, "ens1f1", 13, seedState); err == nil || !strings.Contains(err.Error(), "verify vf 13 on ens1f1") {
		t.Errorf("got %v, want a verify error", err)
	}
	if _, err := Save(NewFake(map[string]int{"ens1f1": 2}), "ens1f1", 5); err == nil || !strings.Contains(err.Error(), "reports no vf 5") {
		t.Errorf("Save of a missing VF: got %v", err)
	}
}

func TestSaveApplyRestores(t *testing.T) {
	f := NewFake(map[string]int{"ens1f1": 16})
	f.SetReadLag(2)
	orig, err := Save(f, "ens1f1", 13)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := f.VFs("ens1f1")
	if err := Apply(f, "ens1f1", 13, seedState); err != nil {
		t.Fatal(err)
	}
	if err := Apply(f, "ens1f1", 13, orig); err != nil {
		t.Fatal(err)
	}
	got, err := Save(f, "ens1f1", 13)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(orig, got); diff != "" {
		t.Errorf("restored state (-saved +got):\n%s", diff)
	}
	after, _ := f.VFs("ens1f1")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("all VFs after restore (-before +after):\n%s", diff)
	}
}

func ExampleApply() {
	f := NewFake(map[string]int{"ens1f1": 16})
	want := VFState{MAC: net.HardwareAddr{0x02, 0x5a, 0x0d, 0xc4, 0x39, 0x77}, VLAN: 15, SpoofCheck: true, Trust: true}
	if err := Apply(f, "ens1f1", 13, want); err != nil {
		fmt.Println(err)
	}
	s, _ := Save(f, "ens1f1", 13)
	fmt.Println("vf 13", s)
	// Output: vf 13 MAC 02:5a:0d:c4:39:77, vlan 15, spoof checking on, link-state auto, trust on
}
