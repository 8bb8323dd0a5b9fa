package sriov

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDeviceSpecs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []DeviceSpec
	}{
		{"devname", `[{"devname": "ens1f1", "physical_network": "sriov"}]`,
			[]DeviceSpec{{DevName: "ens1f1", PhysicalNetwork: "sriov"}}},
		{"address glob and trusted string", `[{"address": "0000:83:00.*", "physical_network": "sriov", "trusted": "true"}]`,
			[]DeviceSpec{{Address: "0000:83:00.*", PhysicalNetwork: "sriov", Trusted: true}}},
		{"ids upper case and trusted bool", `[{"vendor_id": "8086", "product_id": "10ED", "physical_network": "sriov", "trusted": false}]`,
			[]DeviceSpec{{VendorID: "8086", ProductID: "10ed", PhysicalNetwork: "sriov"}}},
		{"address with ids", `[{"address": "*:83:13.*", "vendor_id": "8086", "product_id": "10ed", "physical_network": "p"}]`,
			[]DeviceSpec{{Address: "*:83:13.*", VendorID: "8086", ProductID: "10ed", PhysicalNetwork: "p"}}},
		{"single object, as one nova.conf line", `{"devname": "ens1f1", "physical_network": "sriov"}`,
			[]DeviceSpec{{DevName: "ens1f1", PhysicalNetwork: "sriov"}}},
		{"empty list", `[]`, []DeviceSpec{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDeviceSpecs([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseDeviceSpecs(%s) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseDeviceSpecsErrors(t *testing.T) {
	ok := `{"devname": "ens1f1", "physical_network": "sriov"}`
	tests := []struct {
		in, want string
	}{
		{`[` + ok + `, {"vendor_id": "80z6", "product_id": "10ed", "physical_network": "sriov"}]`,
			`device_spec[1]: vendor_id "80z6" is not 4 hex digits`},
		{`[{"vendor_id": "8086", "product_id": "10edd", "physical_network": "sriov"}]`,
			`device_spec[0]: product_id "10edd" is not 4 hex digits`},
		{`[{"devname": "ens1f1"}]`, `device_spec[0]: physical_network is required`},
		{`[{"devname": "ens1f1", "physical_network": "sriov", "remote_managed": "true"}]`,
			`device_spec[0]: unknown key "remote_managed"`},
		{`[{"vendor_id": "8086", "physical_network": "sriov"}]`,
			`device_spec[0]: selects nothing: give devname, address, or vendor_id and product_id (got vendor_id "8086", product_id "")`},
		{`[{"address": "0000:83:00", "physical_network": "sriov"}]`,
			`device_spec[0]: address "0000:83:00" is not a PCI address or glob`},
		{`[{"address": "0000:83:20.1", "physical_network": "sriov"}]`,
			`device_spec[0]: address "0000:83:20.1" is not a PCI address or glob like 0000:83:00.1, 0000:83:00.* or *:83:00.1: slot 0x20 is above 0x1f`},
		{`[{"address": "0000:8g:00.1", "physical_network": "sriov"}]`, `bus "8g" is not hex`},
		{`[{"address": "0000:83:00.8", "physical_network": "sriov"}]`, `function 0x8 is above 0x7`},
		{`[{"devname": "ens1f1", "address": "0000:83:00.1", "physical_network": "sriov"}]`,
			`device_spec[0]: devname "ens1f1" and address "0000:83:00.1" exclude each other`},
		{`[{"devname": "a/b", "physical_network": "sriov"}]`, `devname "a/b" is not a network interface name`},
		{`[{"devname": "ens1f1", "physical_network": "sriov", "trusted": "maybe"}]`,
			`device_spec[0]: trusted "maybe" is not a boolean`},
		{`[{"devname": 7, "physical_network": "sriov"}]`, `device_spec[0]: devname 7 is not a string`},
		{`[` + ok + `, "ens1f1"]`, `device_spec[1]: want an object, got "ens1f1"`},
		{`[` + ok + `, null]`, `device_spec[1]: want an object, got null`},
		{`"ens1f1"`, `device_spec: want a list of objects`},
		{`[` + ok + `] [`, `device_spec: unexpected data after the JSON value`},
		{``, `device_spec: not JSON`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := ParseDeviceSpecs([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseDeviceSpecs(%s): got error %v, want one containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestAddressGlob(t *testing.T) {
	tests := []struct {
		glob, addr string
		want       bool
	}{
		{"0000:83:00.1", "0000:83:00.1", true},
		{"0000:83:00.1", "0000:83:00.0", false},
		{"0000:83:00.*", "0000:83:00.0", true},
		{"0000:83:00.*", "0000:83:01.0", false},
		{"*:83:00.1", "0001:83:00.1", true},
		{"83:00.1", "0000:83:00.1", true}, // no domain: any
		{":83:00.", "0000:83:00.5", true}, // empty parts: any
		{"*:*:*.*", "0000:00:00.0", true},
		{"0:83:0.1", "0000:83:00.1", true}, // numbers, not strings
		{"0000:83:13.3", "0000:83:13.30", false},
		{"0000:83:13.3", "not-an-address", false},
	}
	for _, tt := range tests {
		g, err := parseAddressGlob(tt.glob)
		if err != nil {
			t.Errorf("parseAddressGlob(%q): %v", tt.glob, err)
			continue
		}
		if got := g.match(tt.addr); got != tt.want {
			t.Errorf("glob %q match %q: got %v, want %v", tt.glob, tt.addr, got, tt.want)
		}
	}
}

func FuzzParseDeviceSpecs(f *testing.F) {
	for _, s := range []string{
		`[{"devname": "ens1f1", "physical_network": "sriov"}]`,
		`[{"address": "*:83:00.*", "physical_network": "sriov", "trusted": "true"}]`,
		`[{"vendor_id": "8086", "product_id": "10ed", "physical_network": "sriov"}]`,
		`{"address": ":83:.", "physical_network": "x", "trusted": true}`,
		`[null, 1, "x", {}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := ParseDeviceSpecs(data)
		if err != nil {
			return
		}
		for i, s := range specs {
			if err := s.Validate(); err != nil {
				t.Fatalf("spec %d parsed but does not validate: %v", i, err)
			}
			s.matches("ens1f1", "0000:83:00.1", "8086", "10fb")
		}
	})
}
