package sriov

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// DeviceSpec is one entry of Nova's `[pci] device_spec` (formerly passthrough_whitelist): it selects
// PCI network devices and tags them with a physical network.
//
//	[{"devname": "ens1f1", "physical_network": "sriov"},
//	 {"address": "0000:83:00.*", "physical_network": "sriov", "trusted": "true"},
//	 {"vendor_id": "8086", "product_id": "10ed", "physical_network": "sriov"}]
//
// An entry selects by DevName (a netdev name), by Address (a PCI address or glob: "0000:83:00.*",
// "*:83:00.1", ":83:00."; an empty or "*" part matches anything) or by VendorID and ProductID; the
// address may be combined with the IDs. DevName and Address exclude each other, as in Nova.
type DeviceSpec struct {
	DevName         string `json:"devname,omitempty"`
	Address         string `json:"address,omitempty"`
	VendorID        string `json:"vendor_id,omitempty"`
	ProductID       string `json:"product_id,omitempty"`
	PhysicalNetwork string `json:"physical_network"`
	Trusted         bool   `json:"trusted,omitempty"`
}

// String renders the spec as its JSON form, for messages.
func (s DeviceSpec) String() string {
	b, _ := json.Marshal(s)
	return string(b)
}

var specKeys = []string{"address", "devname", "physical_network", "product_id", "trusted", "vendor_id"}

// ParseDeviceSpecs parses a JSON list of device spec objects (a single object is accepted too, as
// one line of nova.conf would give it). Errors name the entry and the offending key or value:
//
//	device_spec[1]: vendor_id "80z6" is not 4 hex digits
func ParseDeviceSpecs(data []byte) ([]DeviceSpec, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("device_spec: not JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("device_spec: unexpected data after the JSON value")
	}
	var entries []json.RawMessage
	switch t := bytes.TrimLeft(raw, " \t\r\n"); {
	case len(t) > 0 && t[0] == '[':
		if err := json.Unmarshal(raw, &entries); err != nil {
			return nil, fmt.Errorf("device_spec: want a list of objects: %w", err)
		}
	case len(t) > 0 && t[0] == '{':
		entries = []json.RawMessage{raw}
	default:
		return nil, fmt.Errorf("device_spec: want a list of objects, got %s", truncate(string(t), 40))
	}
	specs := make([]DeviceSpec, 0, len(entries))
	for i, e := range entries {
		s, err := parseDeviceSpec(e)
		if err != nil {
			return nil, fmt.Errorf("device_spec[%d]: %w", i, err)
		}
		specs = append(specs, s)
	}
	return specs, nil
}

func parseDeviceSpec(data json.RawMessage) (DeviceSpec, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return DeviceSpec{}, fmt.Errorf("want an object, got %s", truncate(string(data), 40))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s DeviceSpec
	for _, k := range keys {
		v := m[k]
		var dst *string
		switch k {
		case "devname":
			dst = &s.DevName
		case "address":
			dst = &s.Address
		case "vendor_id":
			dst = &s.VendorID
		case "product_id":
			dst = &s.ProductID
		case "physical_network":
			dst = &s.PhysicalNetwork
		case "trusted":
			t, err := parseTrusted(v)
			if err != nil {
				return DeviceSpec{}, err
			}
			s.Trusted = t
			continue
		default:
			return DeviceSpec{}, fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(specKeys, ", "))
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return DeviceSpec{}, fmt.Errorf("%s %s is not a string", k, truncate(string(v), 40))
		}
	}
	if err := s.Validate(); err != nil {
		return DeviceSpec{}, err
	}
	s.VendorID = strings.ToLower(s.VendorID)
	s.ProductID = strings.ToLower(s.ProductID)
	s.Address = strings.ToLower(s.Address)
	return s, nil
}

// parseTrusted accepts true/false as a JSON bool or as a string, as Nova does ("true", "yes", "1"...).
func parseTrusted(v json.RawMessage) (bool, error) {
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		switch strings.ToLower(s) {
		case "true", "yes", "on", "1":
			return true, nil
		case "false", "no", "off", "0":
			return false, nil
		}
	}
	return false, fmt.Errorf("trusted %s is not a boolean (want true or false)", truncate(string(v), 40))
}

// Validate checks one spec as ParseDeviceSpecs does (without the entry index). Scan validates
// every spec it is given, so hand-built specs get the same checks.
func (s DeviceSpec) Validate() error {
	if s.PhysicalNetwork == "" {
		return errors.New("physical_network is required")
	}
	if strings.TrimSpace(s.PhysicalNetwork) != s.PhysicalNetwork {
		return fmt.Errorf("physical_network %q has leading or trailing spaces", s.PhysicalNetwork)
	}
	if s.DevName != "" {
		if len(s.DevName) > 15 || strings.ContainsAny(s.DevName, "/: \t\n") || s.DevName == "." || s.DevName == ".." {
			return fmt.Errorf("devname %q is not a network interface name (at most 15 characters, no '/', ':' or spaces)", s.DevName)
		}
		if s.Address != "" {
			return fmt.Errorf("devname %q and address %q exclude each other; give one", s.DevName, s.Address)
		}
	}
	if s.Address != "" {
		if _, err := parseAddressGlob(s.Address); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, v string }{{"vendor_id", s.VendorID}, {"product_id", s.ProductID}} {
		if f.v != "" && !isHexID(strings.ToLower(f.v)) {
			return fmt.Errorf("%s %q is not 4 hex digits", f.name, f.v)
		}
	}
	if s.DevName == "" && s.Address == "" && (s.VendorID == "" || s.ProductID == "") {
		return fmt.Errorf("selects nothing: give devname, address, or vendor_id and product_id (got vendor_id %q, product_id %q)", s.VendorID, s.ProductID)
	}
	return nil
}

// matches reports whether the spec selects a device; ifname may be "" (a VF without a netdev on
// the host), which devname never matches. The spec must be valid.
func (s DeviceSpec) matches(ifname, addr, vendor, product string) bool {
	if s.DevName != "" && s.DevName != ifname {
		return false
	}
	if s.Address != "" {
		g, err := parseAddressGlob(s.Address)
		if err != nil || !g.match(addr) {
			return false
		}
	}
	if s.VendorID != "" && !strings.EqualFold(s.VendorID, vendor) {
		return false
	}
	if s.ProductID != "" && !strings.EqualFold(s.ProductID, product) {
		return false
	}
	return true
}

// addressGlob is a parsed PCI address pattern; -1 in a part is a wildcard.
type addressGlob struct{ domain, bus, slot, function int }

// parseAddressGlob parses Nova's PCI address glob form: [[domain]:][bus]:[slot].[function], each
// part hex or "*" or empty (= "*"). "0000:83:00.1", "0000:83:00.*", "*:83:00.1", ":83:00.".
func parseAddressGlob(a string) (addressGlob, error) {
	bad := func(why string) (addressGlob, error) {
		return addressGlob{}, fmt.Errorf("address %q is not a PCI address or glob like 0000:83:00.1, 0000:83:00.* or *:83:00.1: %s", a, why)
	}
	dbs, fn, ok := strings.Cut(a, ".")
	if !ok {
		return bad("no '.' before the function")
	}
	parts := strings.Split(dbs, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return bad("want domain:bus:slot or bus:slot before the '.'")
	}
	if len(parts) == 2 {
		parts = append([]string{"*"}, parts...)
	}
	g := addressGlob{}
	for _, p := range []struct {
		s    string
		name string
		max  int64
		dst  *int
	}{
		{parts[0], "domain", 0xffff, &g.domain},
		{parts[1], "bus", 0xff, &g.bus},
		{parts[2], "slot", 0x1f, &g.slot},
		{fn, "function", 7, &g.function},
	} {
		if p.s == "" || p.s == "*" {
			*p.dst = -1
			continue
		}
		if len(p.s) > 4 {
			return bad(p.name + " " + strconv.Quote(p.s) + " is too long")
		}
		n, err := strconv.ParseInt(p.s, 16, 32)
		if err != nil || n < 0 {
			return bad(p.name + " " + strconv.Quote(p.s) + " is not hex")
		}
		if n > p.max {
			return bad(fmt.Sprintf("%s %#x is above %#x", p.name, n, p.max))
		}
		*p.dst = int(n)
	}
	return g, nil
}

func (g addressGlob) match(addr string) bool {
	if !IsPCIAddress(addr) {
		return false
	}
	var d, b, s, f int
	if _, err := fmt.Sscanf(addr, "%4x:%2x:%2x.%1x", &d, &b, &s, &f); err != nil {
		return false
	}
	ok := func(want, got int) bool { return want < 0 || want == got }
	return ok(g.domain, d) && ok(g.bus, b) && ok(g.slot, s) && ok(g.function, f)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
