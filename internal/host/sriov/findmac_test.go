package sriov

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFindMAC(t *testing.T) {
	fs := NewFS(testdataSys)
	f := NewFake(map[string]int{"ens1f1": 16})
	if err := Apply(f, "ens1f1", 13, seedState); err != nil {
		t.Fatal(err)
	}
	want := Match{PF: "ens1f1", PFPCIAddress: "0000:83:00.1", VFIndex: 13, VFPCIAddress: "0000:83:13.3",
		VLAN: 15, SpoofCheck: true, Trust: true, LinkState: LinkStateAuto}
	for _, in := range []string{"02:5a:0d:c4:39:77", "02:5A:0D:C4:39:77", "02-5a-0d-c4-39-77"} {
		got, err := FindMAC(fs, f, mustMAC(t, in))
		if err != nil {
			t.Fatalf("FindMAC(%s): %v", in, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("FindMAC(%s) (-want +got):\n%s", in, diff)
		}
	}
	// ens1f0 has no SR-IOV and must not be asked: the Fake does not know it and would fail.
	for _, c := range f.Calls() {
		if strings.HasPrefix(c, "ens1f0") {
			t.Errorf("FindMAC asked about ens1f0, which has no SR-IOV: %q", c)
		}
	}

	_, err := FindMAC(fs, f, mustMAC(t, "02:5a:0d:c4:39:78"))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("FindMAC of an unknown MAC: got %v, want ErrNotFound", err)
	}

	// The same MAC on two VFs is an error naming both.
	if err := f.SetMAC("ens1f1", 2, seedState.MAC); err != nil {
		t.Fatal(err)
	}
	_, err = FindMAC(fs, f, seedState.MAC)
	if err == nil || !strings.Contains(err.Error(), "ens1f1 vf 2, ens1f1 vf 13") {
		t.Errorf("FindMAC of a duplicated MAC: got %v, want an error naming both VFs", err)
	}
}

func TestFindMACUnreadablePF(t *testing.T) {
	// The programmer does not know ens1f1 (say, a netlink failure): the answer must not be
	// "not found", which would send an operator looking elsewhere.
	_, err := FindMAC(NewFS(testdataSys), NewFake(nil), seedState.MAC)
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "read vfs of ens1f1") {
		t.Errorf("got %v, want an error saying ens1f1 could not be read, not ErrNotFound", err)
	}
}
