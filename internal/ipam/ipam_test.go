package ipam

import (
	"errors"
	"math"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var netipCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func pool(start, end string) Pool { return Pool{ip(start), ip(end)} }

func strp(s string) *string { return &s }

func TestNewSubnet(t *testing.T) {
	tests := []struct {
		name string
		spec SubnetSpec
		want Subnet
		size uint64
	}{
		{
			name: "v4 /24 defaults",
			spec: SubnetSpec{CIDR: "10.0.0.0/24"},
			want: Subnet{netip.MustParsePrefix("10.0.0.0/24"), ip("10.0.0.1"), []Pool{pool("10.0.0.2", "10.0.0.254")}},
			size: 253,
		},
		{
			name: "v4 /26 defaults",
			spec: SubnetSpec{CIDR: "192.168.1.64/26", IPVersion: 4},
			want: Subnet{netip.MustParsePrefix("192.168.1.64/26"), ip("192.168.1.65"), []Pool{pool("192.168.1.66", "192.168.1.126")}},
			size: 61,
		},
		{
			name: "v4 /30 defaults",
			spec: SubnetSpec{CIDR: "10.0.0.0/30"},
			want: Subnet{netip.MustParsePrefix("10.0.0.0/30"), ip("10.0.0.1"), []Pool{pool("10.0.0.2", "10.0.0.2")}},
			size: 1,
		},
		{
			name: "gateway in the middle splits the pool",
			spec: SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("10.0.0.100")},
			want: Subnet{netip.MustParsePrefix("10.0.0.0/24"), ip("10.0.0.100"),
				[]Pool{pool("10.0.0.1", "10.0.0.99"), pool("10.0.0.101", "10.0.0.254")}},
			size: 253,
		},
		{
			name: "gateway at the last host address",
			spec: SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("10.0.0.254")},
			want: Subnet{netip.MustParsePrefix("10.0.0.0/24"), ip("10.0.0.254"), []Pool{pool("10.0.0.1", "10.0.0.253")}},
			size: 253,
		},
		{
			name: "GatewayNone gives the full pool",
			spec: SubnetSpec{CIDR: "10.0.0.0/24", GatewayNone: true},
			want: Subnet{netip.MustParsePrefix("10.0.0.0/24"), netip.Addr{}, []Pool{pool("10.0.0.1", "10.0.0.254")}},
			size: 254,
		},
		{
			name: "empty gateway string means no gateway",
			spec: SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("")},
			want: Subnet{netip.MustParsePrefix("10.0.0.0/24"), netip.Addr{}, []Pool{pool("10.0.0.1", "10.0.0.254")}},
			size: 254,
		},
		{
			name: "GatewayNone with empty gateway string",
			spec: SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp(""), GatewayNone: true},
			want: Subnet{netip.MustParsePrefix("10.0.0.0/24"), netip.Addr{}, []Pool{pool("10.0.0.1", "10.0.0.254")}},
			size: 254,
		},
		{
			name: "v6 /64 defaults",
			spec: SubnetSpec{CIDR: "2001:db8::/64"},
			want: Subnet{netip.MustParsePrefix("2001:db8::/64"), ip("2001:db8::1"),
				[]Pool{pool("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")}},
			size: math.MaxUint64 - 1, // exactly 2^64-2
		},
		{
			name: "v6 /64 without gateway",
			spec: SubnetSpec{CIDR: "2001:db8::/64", IPVersion: 6, GatewayNone: true},
			want: Subnet{netip.MustParsePrefix("2001:db8::/64"), netip.Addr{},
				[]Pool{pool("2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff")}},
			size: math.MaxUint64, // exactly 2^64-1
		},
		{
			name: "v6 /126 defaults",
			spec: SubnetSpec{CIDR: "2001:db8::/126"},
			want: Subnet{netip.MustParsePrefix("2001:db8::/126"), ip("2001:db8::1"), []Pool{pool("2001:db8::2", "2001:db8::3")}},
			size: 2,
		},
		{
			name: "v6 gateway may be the subnet-router anycast address",
			spec: SubnetSpec{CIDR: "2001:db8::/120", Gateway: strp("2001:db8::")},
			want: Subnet{netip.MustParsePrefix("2001:db8::/120"), ip("2001:db8::"), []Pool{pool("2001:db8::1", "2001:db8::ff")}},
			size: 255,
		},
		{
			name: "v6 gateway at the last address",
			spec: SubnetSpec{CIDR: "2001:db8::/120", Gateway: strp("2001:db8::ff")},
			want: Subnet{netip.MustParsePrefix("2001:db8::/120"), ip("2001:db8::ff"), []Pool{pool("2001:db8::1", "2001:db8::fe")}},
			size: 254,
		},
		{
			name: "explicit pools are sorted",
			spec: SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.200", "10.0.0.254"), pool("10.0.0.10", "10.0.0.19")}},
			want: Subnet{netip.MustParsePrefix("10.0.0.0/24"), ip("10.0.0.1"),
				[]Pool{pool("10.0.0.10", "10.0.0.19"), pool("10.0.0.200", "10.0.0.254")}},
			size: 65,
		},
		{
			name: "explicit adjacent pools",
			spec: SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("10.0.0.254"), Pools: []Pool{pool("10.0.0.6", "10.0.0.9"), pool("10.0.0.1", "10.0.0.5")}},
			want: Subnet{netip.MustParsePrefix("10.0.0.0/24"), ip("10.0.0.254"),
				[]Pool{pool("10.0.0.1", "10.0.0.5"), pool("10.0.0.6", "10.0.0.9")}},
			size: 9,
		},
		{
			name: "explicit empty pools",
			spec: SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{}},
			want: Subnet{netip.MustParsePrefix("10.0.0.0/24"), ip("10.0.0.1"), []Pool{}},
			size: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewSubnet(tt.spec)
			if err != nil {
				t.Fatalf("NewSubnet(%+v): got error %v, want nil", tt.spec, err)
			}
			if diff := cmp.Diff(tt.want, got, netipCmp); diff != "" {
				t.Errorf("NewSubnet(%+v) mismatch (-want +got):\n%s", tt.spec, diff)
			}
			if got, want := got.Size(), tt.size; got != want {
				t.Errorf("Size(): got %d, want %d", got, want)
			}
		})
	}
}

func TestNewSubnetErrors(t *testing.T) {
	tests := []struct {
		name     string
		spec     SubnetSpec
		wantType string
		want     []string // substrings of the message
	}{
		{"unparsable CIDR", SubnetSpec{CIDR: "bogus"}, typeInvalidInput, []string{`"bogus"`}},
		{"CIDR without length", SubnetSpec{CIDR: "10.0.0.0"}, typeInvalidInput, []string{`"10.0.0.0"`}},
		{"empty CIDR", SubnetSpec{}, typeInvalidInput, []string{`""`}},
		{"host bits set", SubnetSpec{CIDR: "10.0.0.5/24"}, typeInvalidInput,
			[]string{"10.0.0.5/24 is not a network address; did you mean 10.0.0.0/24?"}},
		{"v6 host bits set", SubnetSpec{CIDR: "2001:db8::1/64"}, typeInvalidInput,
			[]string{"2001:db8::1/64", "did you mean 2001:db8::/64?"}},
		{"bad ip_version", SubnetSpec{CIDR: "10.0.0.0/24", IPVersion: 5}, typeInvalidInput, []string{"ip_version 5", "4 or 6"}},
		{"ip_version 6 for v4 CIDR", SubnetSpec{CIDR: "10.0.0.0/24", IPVersion: 6}, typeInvalidInput, []string{"ip_version 6", "10.0.0.0/24"}},
		{"ip_version 4 for v6 CIDR", SubnetSpec{CIDR: "2001:db8::/64", IPVersion: 4}, typeInvalidInput, []string{"ip_version 4", "2001:db8::/64"}},
		{"v4 /31", SubnetSpec{CIDR: "10.0.0.0/31"}, typeInvalidInput, []string{"10.0.0.0/31", "at most 30"}},
		{"v4 /32", SubnetSpec{CIDR: "10.0.0.0/32"}, typeInvalidInput, []string{"10.0.0.0/32", "at most 30"}},
		{"v6 /127", SubnetSpec{CIDR: "2001:db8::/127"}, typeInvalidInput, []string{"2001:db8::/127", "at most 126"}},
		{"v6 /128", SubnetSpec{CIDR: "2001:db8::/128"}, typeInvalidInput, []string{"2001:db8::/128", "at most 126"}},
		{"unparsable gateway", SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("nope")}, typeInvalidInput, []string{`"nope"`}},
		{"gateway with zone", SubnetSpec{CIDR: "fe80::/64", Gateway: strp("fe80::1%eth0")}, typeInvalidInput, []string{"fe80::1%eth0", "zone"}},
		{"gateway of the wrong family", SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("2001:db8::1")}, typeInvalidInput,
			[]string{"2001:db8::1", "IPv4", "10.0.0.0/24"}},
		{"v4-mapped gateway for v4 CIDR", SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("::ffff:10.0.0.1")}, typeInvalidInput,
			[]string{"::ffff:10.0.0.1", "IPv4"}},
		{"gateway outside CIDR", SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("10.0.1.1")}, typeInvalidInput,
			[]string{"10.0.1.1", "outside", "10.0.0.0/24"}},
		{"gateway is the network address", SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("10.0.0.0")}, typeInvalidInput,
			[]string{"10.0.0.0 is the network address", "10.0.0.0/24"}},
		{"gateway is the broadcast address", SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("10.0.0.255")}, typeInvalidInput,
			[]string{"10.0.0.255 is the broadcast address", "10.0.0.0/24"}},
		{"GatewayNone with a gateway", SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("10.0.0.1"), GatewayNone: true}, typeInvalidInput,
			[]string{"10.0.0.1"}},
		{"pool start after end", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.20", "10.0.0.10")}}, typeInvalidInput,
			[]string{"10.0.0.20-10.0.0.10", "start must not be after end"}},
		{"pool of the wrong family", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("2001:db8::2", "2001:db8::9")}}, typeInvalidInput,
			[]string{"2001:db8::2-2001:db8::9", "IPv4"}},
		{"pool of mixed families", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.2", "2001:db8::9")}}, typeInvalidInput,
			[]string{"10.0.0.2-2001:db8::9", "IPv4"}},
		{"pool outside CIDR", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.200", "10.0.1.10")}}, typeInvalidInput,
			[]string{"10.0.0.200-10.0.1.10", "10.0.0.0/24"}},
		{"pool contains the network address", SubnetSpec{CIDR: "10.0.0.0/24", GatewayNone: true, Pools: []Pool{pool("10.0.0.0", "10.0.0.10")}}, typeInvalidInput,
			[]string{"10.0.0.0-10.0.0.10", "network address"}},
		{"v6 pool contains the network address", SubnetSpec{CIDR: "2001:db8::/64", GatewayNone: true, Pools: []Pool{pool("2001:db8::", "2001:db8::10")}}, typeInvalidInput,
			[]string{"2001:db8::-2001:db8::10", "network address"}},
		{"pool contains the broadcast address", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.200", "10.0.0.255")}}, typeInvalidInput,
			[]string{"10.0.0.200-10.0.0.255", "broadcast address"}},
		{"pool with a missing address", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{{Start: ip("10.0.0.2")}}}, typeInvalidInput,
			[]string{"10.0.0.2-invalid IP"}},
		{"pool with a zone", SubnetSpec{CIDR: "fe80::/64", Pools: []Pool{pool("fe80::10%eth0", "fe80::20%eth0")}}, typeInvalidInput,
			[]string{"fe80::10%eth0", "zone"}},
		{"pools overlap", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.50", "10.0.0.60"), pool("10.0.0.10", "10.0.0.50")}}, typeInvalidInput,
			[]string{"10.0.0.10-10.0.0.50", "10.0.0.50-10.0.0.60", "overlap"}},
		{"pool inside another", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.2", "10.0.0.100"), pool("10.0.0.120", "10.0.0.130"), pool("10.0.0.10", "10.0.0.20")}},
			typeInvalidInput, []string{"10.0.0.2-10.0.0.100", "10.0.0.10-10.0.0.20", "overlap"}},
		{"explicit gateway in a pool", SubnetSpec{CIDR: "10.0.0.0/24", Gateway: strp("10.0.0.5"), Pools: []Pool{pool("10.0.0.2", "10.0.0.254")}}, typeGatewayConflict,
			[]string{"Gateway ip 10.0.0.5 conflicts with allocation pool 10.0.0.2-10.0.0.254"}},
		{"default gateway in a pool", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.1", "10.0.0.10")}}, typeGatewayConflict,
			[]string{"Gateway ip 10.0.0.1 conflicts with allocation pool 10.0.0.1-10.0.0.10"}},
		{"v6 gateway in a pool", SubnetSpec{CIDR: "2001:db8::/64", Pools: []Pool{pool("2001:db8::1", "2001:db8::ff")}}, typeGatewayConflict,
			[]string{"Gateway ip 2001:db8::1 conflicts with allocation pool 2001:db8::1-2001:db8::ff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewSubnet(tt.spec)
			if err == nil {
				t.Fatalf("NewSubnet(%+v): got %+v, want error", tt.spec, got)
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("NewSubnet(%+v): got error %T %v, want *InputError", tt.spec, err, err)
			}
			if ie.Type != tt.wantType {
				t.Errorf("error type: got %q, want %q (message %q)", ie.Type, tt.wantType, ie.Message)
			}
			if err.Error() != ie.Message {
				t.Errorf("Error(): got %q, want the message %q", err.Error(), ie.Message)
			}
			for _, w := range tt.want {
				if !strings.Contains(ie.Message, w) {
					t.Errorf("message: got %q, want it to contain %q", ie.Message, w)
				}
			}
		})
	}
}

func TestParsePool(t *testing.T) {
	got, err := ParsePool("10.0.0.2", "10.0.0.9")
	if err != nil {
		t.Fatalf("ParsePool: got error %v, want nil", err)
	}
	if diff := cmp.Diff(pool("10.0.0.2", "10.0.0.9"), got, netipCmp); diff != "" {
		t.Errorf("ParsePool mismatch (-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ start, end, bad string }{
		{"x", "10.0.0.9", `"x"`},
		{"10.0.0.2", "10.0.0.300", `"10.0.0.300"`},
		{"", "10.0.0.9", `start ""`},
		{"fe80::1", "fe80::9%eth0", `"fe80::9%eth0"`},
	} {
		_, err := ParsePool(tt.start, tt.end)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("ParsePool(%q, %q): got error %v, want *InputError", tt.start, tt.end, err)
			continue
		}
		if ie.Type != typeInvalidInput || !strings.Contains(ie.Message, tt.bad) {
			t.Errorf("ParsePool(%q, %q): got %s %q, want InvalidInput containing %q", tt.start, tt.end, ie.Type, ie.Message, tt.bad)
		}
	}
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"10.0.0.0/24", "10.0.0.0/24", true},
		{"10.0.0.0/24", "10.0.0.128/25", true},
		{"10.0.0.0/8", "10.200.0.0/16", true},
		{"10.0.0.0/24", "10.0.1.0/24", false},
		{"10.0.0.0/25", "10.0.0.128/25", false},
		{"2001:db8::/64", "2001:db8::/48", true},
		{"2001:db8::/64", "2001:db8:0:1::/64", false},
		{"10.0.0.0/24", "::ffff:10.0.0.0/120", false},
		{"0.0.0.0/0", "::/0", false},
	}
	for _, tt := range tests {
		a, b := netip.MustParsePrefix(tt.a), netip.MustParsePrefix(tt.b)
		if got := Overlaps(a, b); got != tt.want {
			t.Errorf("Overlaps(%s, %s): got %v, want %v", a, b, got, tt.want)
		}
		if got := Overlaps(b, a); got != tt.want {
			t.Errorf("Overlaps(%s, %s): got %v, want %v", b, a, got, tt.want)
		}
	}
}

func mustSubnet(t testing.TB, spec SubnetSpec) Subnet {
	t.Helper()
	s, err := NewSubnet(spec)
	if err != nil {
		t.Fatalf("NewSubnet(%+v): %v", spec, err)
	}
	return s
}

func TestInPools(t *testing.T) {
	s := mustSubnet(t, SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.10", "10.0.0.19"), pool("10.0.0.30", "10.0.0.30")}})
	for addr, want := range map[string]bool{
		"10.0.0.9": false, "10.0.0.10": true, "10.0.0.15": true, "10.0.0.19": true, "10.0.0.20": false,
		"10.0.0.29": false, "10.0.0.30": true, "10.0.0.31": false, "10.0.1.15": false, "::ffff:10.0.0.15": false,
	} {
		if got := s.InPools(ip(addr)); got != want {
			t.Errorf("InPools(%s): got %v, want %v", addr, got, want)
		}
	}
	if s.InPools(netip.Addr{}) {
		t.Errorf("InPools(zero): got true, want false")
	}
}

func TestCheckFixed(t *testing.T) {
	v4 := mustSubnet(t, SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.100", "10.0.0.200")}})
	v6 := mustSubnet(t, SubnetSpec{CIDR: "2001:db8::/64"})
	noGW := mustSubnet(t, SubnetSpec{CIDR: "10.0.0.0/24", GatewayNone: true})
	tests := []struct {
		name string
		s    Subnet
		addr netip.Addr
		want []string // nil: valid
	}{
		{"in pool", v4, ip("10.0.0.150"), nil},
		{"outside pools is allowed", v4, ip("10.0.0.5"), nil},
		{"last host", v4, ip("10.0.0.254"), nil},
		{"outside prefix", v4, ip("10.0.1.5"), []string{"10.0.1.5", "10.0.0.0/24"}},
		{"wrong family", v4, ip("2001:db8::5"), []string{"2001:db8::5", "10.0.0.0/24"}},
		{"network address", v4, ip("10.0.0.0"), []string{"10.0.0.0 is the network address", "10.0.0.0/24"}},
		{"broadcast address", v4, ip("10.0.0.255"), []string{"10.0.0.255 is the broadcast address", "10.0.0.0/24"}},
		{"gateway", v4, ip("10.0.0.1"), []string{"10.0.0.1 is the gateway", "10.0.0.0/24"}},
		{"no gateway: .1 is fine", noGW, ip("10.0.0.1"), nil},
		{"zero address", v4, netip.Addr{}, []string{"10.0.0.0/24"}},
		{"v6 in pool", v6, ip("2001:db8::abcd"), nil},
		{"v6 last address", v6, ip("2001:db8::ffff:ffff:ffff:ffff"), nil},
		{"v6 network address", v6, ip("2001:db8::"), []string{"2001:db8:: is the network address", "2001:db8::/64"}},
		{"v6 gateway", v6, ip("2001:db8::1"), []string{"2001:db8::1 is the gateway", "2001:db8::/64"}},
		{"v6 zone", v6, ip("2001:db8::5%eth0"), []string{"2001:db8::5%eth0", "2001:db8::/64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.CheckFixed(tt.addr)
			if tt.want == nil {
				if err != nil {
					t.Errorf("CheckFixed(%s): got error %v, want nil", tt.addr, err)
				}
				return
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("CheckFixed(%s): got error %v, want *InputError", tt.addr, err)
			}
			if ie.Type != typeInvalidInput {
				t.Errorf("CheckFixed(%s) type: got %q, want %q", tt.addr, ie.Type, typeInvalidInput)
			}
			for _, w := range tt.want {
				if !strings.Contains(ie.Message, w) {
					t.Errorf("CheckFixed(%s) message: got %q, want it to contain %q", tt.addr, ie.Message, w)
				}
			}
		})
	}
}

// TestSize covers pool sizes near 2^64: a /64's default pool holds exactly 2^64-2 addresses and is
// reported exactly; anything above math.MaxUint64 saturates.
func TestSize(t *testing.T) {
	tests := []struct {
		name string
		spec SubnetSpec
		want uint64
	}{
		{"v4 /24", SubnetSpec{CIDR: "10.0.0.0/24"}, 253},
		{"v4 /26", SubnetSpec{CIDR: "10.0.0.0/26"}, 61},
		{"v4 /8", SubnetSpec{CIDR: "10.0.0.0/8"}, 1<<24 - 3},
		{"v4 /0", SubnetSpec{CIDR: "0.0.0.0/0"}, 1<<32 - 3},
		{"two pools", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.10", "10.0.0.19"), pool("10.0.0.30", "10.0.0.30")}}, 11},
		{"no pools", SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{}}, 0},
		{"v6 /64 exact 2^64-2", SubnetSpec{CIDR: "2001:db8::/64"}, math.MaxUint64 - 1},
		{"v6 /64 no gateway exact 2^64-1", SubnetSpec{CIDR: "2001:db8::/64", GatewayNone: true}, math.MaxUint64},
		{"v6 /63 saturates", SubnetSpec{CIDR: "2001:db8::/63"}, math.MaxUint64},
		{"v6 /0 saturates", SubnetSpec{CIDR: "::/0"}, math.MaxUint64},
		{"v6 pools whose sum saturates", SubnetSpec{CIDR: "2001:db8::/63", GatewayNone: true, Pools: []Pool{
			pool("2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff"),
			pool("2001:db8:0:1::", "2001:db8:0:1::1"),
		}}, math.MaxUint64},
		{"v6 pools whose sum is exactly 2^64-1", SubnetSpec{CIDR: "2001:db8::/63", GatewayNone: true, Pools: []Pool{
			pool("2001:db8::1", "2001:db8::ffff:ffff:ffff:fffe"),
			pool("2001:db8:0:1::", "2001:db8:0:1::1"),
		}}, math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustSubnet(t, tt.spec).Size(); got != tt.want {
				t.Errorf("Size(): got %d, want %d", got, tt.want)
			}
		})
	}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = ip(s)
	}
	return out
}

// v4Range returns the addresses from start to end inclusive.
func v4Range(start, end string) []netip.Addr {
	var out []netip.Addr
	for a := ip(start); a.Compare(ip(end)) <= 0; a = a.Next() {
		out = append(out, a)
	}
	return out
}

func TestNextFree(t *testing.T) {
	def := mustSubnet(t, SubnetSpec{CIDR: "10.0.0.0/24"}) // pool .2-.254
	multi := mustSubnet(t, SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.20", "10.0.0.22"), pool("10.0.0.10", "10.0.0.12")}})
	none := mustSubnet(t, SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{}})
	allButFifty := slices.Concat(v4Range("10.0.0.2", "10.0.0.49"), v4Range("10.0.0.51", "10.0.0.254"))
	tests := []struct {
		name   string
		s      Subnet
		used   []netip.Addr
		after  netip.Addr
		want   netip.Addr
		wantOK bool
	}{
		{"empty used", def, nil, netip.Addr{}, ip("10.0.0.2"), true},
		{"used holes", def, addrs("10.0.0.2", "10.0.0.3", "10.0.0.5"), netip.Addr{}, ip("10.0.0.4"), true},
		{"used holes after", def, addrs("10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6", "10.0.0.8"), ip("10.0.0.4"), ip("10.0.0.7"), true},
		{"after skips a free address", def, addrs("10.0.0.3"), ip("10.0.0.2"), ip("10.0.0.4"), true},
		{"duplicates and outside addresses in used", def,
			addrs("10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.3", "10.0.0.255", "10.0.1.1"), netip.Addr{}, ip("10.0.0.4"), true},
		{"after the last pool address wraps", def, addrs("10.0.0.2"), ip("10.0.0.254"), ip("10.0.0.3"), true},
		{"tail used wraps", def, append(addrs("10.0.0.2"), v4Range("10.0.0.101", "10.0.0.254")...), ip("10.0.0.100"), ip("10.0.0.3"), true},
		{"wrap reaches after itself", def, allButFifty, ip("10.0.0.50"), ip("10.0.0.50"), true},
		{"wrap stops at after", def, allButFifty, ip("10.0.0.49"), ip("10.0.0.50"), true},
		{"after is the gateway", def, nil, ip("10.0.0.1"), ip("10.0.0.2"), true},
		{"after in another subnet below", def, nil, ip("9.9.9.9"), ip("10.0.0.2"), true},
		{"after in another subnet above", def, nil, ip("10.0.1.5"), ip("10.0.0.2"), true},
		{"after of another family", def, nil, ip("2001:db8::1"), ip("10.0.0.2"), true},
		{"all used", def, v4Range("10.0.0.0", "10.0.0.255"), netip.Addr{}, netip.Addr{}, false},
		{"all used with after", def, v4Range("10.0.0.2", "10.0.0.254"), ip("10.0.0.77"), netip.Addr{}, false},
		{"no pools", none, nil, netip.Addr{}, netip.Addr{}, false},
		{"multi: first pool full", multi, v4Range("10.0.0.10", "10.0.0.12"), netip.Addr{}, ip("10.0.0.20"), true},
		{"multi: after end of first pool", multi, nil, ip("10.0.0.12"), ip("10.0.0.20"), true},
		{"multi: after between pools", multi, nil, ip("10.0.0.15"), ip("10.0.0.20"), true},
		{"multi: wrap to first pool", multi, addrs("10.0.0.10"), ip("10.0.0.22"), ip("10.0.0.11"), true},
		{"multi: wrap over both pools to after", multi, addrs("10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.21", "10.0.0.22"), ip("10.0.0.20"), ip("10.0.0.20"), true},
		{"multi: all used", multi, addrs("10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.20", "10.0.0.21", "10.0.0.22"), ip("10.0.0.11"), netip.Addr{}, false},
		{"multi: wrap into second pool", multi, addrs("10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.22"), ip("10.0.0.21"), ip("10.0.0.20"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.s.NextFree(tt.used, tt.after)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("NextFree(after %s): got %s, %v, want %s, %v", tt.after, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestNextFreeLargeV6(t *testing.T) {
	s := mustSubnet(t, SubnetSpec{CIDR: "2001:db8::/64"}) // pool ::2 - ::ffff:ffff:ffff:ffff
	const n = 100_000
	used := make([]netip.Addr, 0, n+2)
	a := ip("2001:db8::2")
	for range n {
		used = append(used, a)
		a = a.Next()
	}
	firstFree := a // 2001:db8::2 + n
	last := ip("2001:db8::ffff:ffff:ffff:ffff")
	used = append(used, last.Prev(), last)

	tests := []struct {
		name  string
		after netip.Addr
		want  netip.Addr
	}{
		{"from the beginning", netip.Addr{}, firstFree},
		{"from inside the used run", ip("2001:db8::5"), firstFree},
		{"from a free address", firstFree, firstFree.Next()},
		{"from the end wraps", last.Prev().Prev(), firstFree},
		{"from the middle", ip("2001:db8::8000:0:0:0"), ip("2001:db8::8000:0:0:1")},
	}
	for _, tt := range tests {
		if got, ok := s.NextFree(used, tt.after); !ok || got != tt.want {
			t.Errorf("%s: NextFree(after %s): got %s, %v, want %s, true", tt.name, tt.after, got, ok, tt.want)
		}
	}
}

func TestCursor(t *testing.T) {
	s := mustSubnet(t, SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{pool("10.0.0.20", "10.0.0.21"), pool("10.0.0.10", "10.0.0.11")}})
	c := NewCursor(s, netip.Addr{})
	var got []netip.Addr
	for range 9 {
		got = append(got, c.Next())
	}
	want := addrs("10.0.0.10", "10.0.0.11", "10.0.0.20", "10.0.0.21", "10.0.0.10", "10.0.0.11", "10.0.0.20", "10.0.0.21", "10.0.0.10")
	if diff := cmp.Diff(want, got, netipCmp); diff != "" {
		t.Errorf("Next sequence mismatch (-want +got):\n%s", diff)
	}

	tests := []struct {
		seek, want netip.Addr
	}{
		{ip("10.0.0.11"), ip("10.0.0.20")},
		{ip("10.0.0.20"), ip("10.0.0.21")},
		{ip("10.0.0.15"), ip("10.0.0.20")},
		{ip("10.0.0.21"), ip("10.0.0.10")},
		{ip("10.0.0.200"), ip("10.0.0.10")},
		{ip("10.0.0.1"), ip("10.0.0.10")},
		{netip.Addr{}, ip("10.0.0.10")},
	}
	for _, tt := range tests {
		c.Seek(tt.seek)
		if got := c.Next(); got != tt.want {
			t.Errorf("Seek(%s); Next(): got %s, want %s", tt.seek, got, tt.want)
		}
		if got := NewCursor(s, tt.seek).Next(); got != tt.want {
			t.Errorf("NewCursor(after %s).Next(): got %s, want %s", tt.seek, got, tt.want)
		}
	}

	if got := NewCursor(mustSubnet(t, SubnetSpec{CIDR: "10.0.0.0/24", Pools: []Pool{}}), netip.Addr{}).Next(); got.IsValid() {
		t.Errorf("Next() without pools: got %s, want the zero Addr", got)
	}

	v6 := NewCursor(mustSubnet(t, SubnetSpec{CIDR: "2001:db8::/64"}), ip("2001:db8::ffff:ffff:ffff:fffe"))
	for _, want := range addrs("2001:db8::ffff:ffff:ffff:ffff", "2001:db8::2", "2001:db8::3") {
		if got := v6.Next(); got != want {
			t.Errorf("v6 Next(): got %s, want %s", got, want)
		}
	}
}

// TestCursorConcurrent runs many goroutines on one cursor (run with -race). Next calls are
// serialized, so the handed-out addresses are an exact round-robin over the pool.
func TestCursorConcurrent(t *testing.T) {
	s := mustSubnet(t, SubnetSpec{CIDR: "10.0.0.0/24"}) // 253 addresses
	c := NewCursor(s, netip.Addr{})
	const goroutines, perG = 16, 1000
	var (
		mu     sync.Mutex
		counts = map[netip.Addr]int{}
		wg     sync.WaitGroup
	)
	for range goroutines {
		wg.Go(func() {
			local := map[netip.Addr]int{}
			for range perG {
				local[c.Next()]++
			}
			mu.Lock()
			defer mu.Unlock()
			for a, n := range local {
				counts[a] += n
			}
		})
	}
	// A second cursor with concurrent Seek and Next, for the race detector.
	c2 := NewCursor(s, netip.Addr{})
	for i := range 4 {
		wg.Go(func() {
			for j := range perG {
				if j%10 == i {
					c2.Seek(ip("10.0.0.100"))
				}
				if a := c2.Next(); !s.InPools(a) {
					t.Errorf("Next(): got %s, not in pools", a)
					return
				}
			}
		})
	}
	wg.Wait()

	total := goroutines * perG
	size := int(s.Size())
	if got, want := len(counts), size; got != want {
		t.Errorf("distinct addresses: got %d, want %d", got, want)
	}
	lo, hi := total/size, (total+size-1)/size
	for a, n := range counts {
		if !s.InPools(a) {
			t.Errorf("address %s handed out: not in pools", a)
		}
		if n < lo || n > hi {
			t.Errorf("address %s handed out %d times, want %d or %d", a, n, lo, hi)
		}
	}
}

func FuzzNewSubnet(f *testing.F) {
	f.Add("10.0.0.0/24", 0, uint8(0), "", uint8(0), "", "", "", "")
	f.Add("10.0.0.0/24", 4, uint8(1), "10.0.0.100", uint8(3), "10.0.0.2", "10.0.0.50", "10.0.0.150", "10.0.0.254")
	f.Add("10.0.0.0/24", 0, uint8(1), "10.0.0.5", uint8(2), "10.0.0.2", "10.0.0.254", "", "")
	f.Add("10.0.0.5/24", 0, uint8(2), "", uint8(1), "", "", "", "")
	f.Add("2001:db8::/64", 6, uint8(1), "2001:db8::", uint8(3), "2001:db8::1", "2001:db8::ff", "2001:db8::1:0", "2001:db8::ffff:ffff:ffff:ffff")
	f.Add("::/0", 0, uint8(2), "", uint8(2), "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "", "")
	f.Add("0.0.0.0/0", 0, uint8(0), "", uint8(0), "", "", "", "")
	f.Add("::ffff:10.0.0.0/120", 0, uint8(1), "::ffff:10.0.0.1", uint8(2), "::ffff:10.0.0.2", "::ffff:10.0.0.9", "", "")
	f.Add("fe80::/64", 0, uint8(1), "fe80::1%eth0", uint8(2), "fe80::2%eth0", "fe80::9", "", "")
	f.Fuzz(func(t *testing.T, cidr string, ipVersion int, gwMode uint8, gw string, poolMode uint8, p1s, p1e, p2s, p2e string) {
		spec := SubnetSpec{CIDR: cidr, IPVersion: ipVersion}
		switch gwMode % 4 {
		case 1:
			spec.Gateway = &gw
		case 2:
			spec.GatewayNone = true
		case 3:
			spec.Gateway, spec.GatewayNone = &gw, true
		}
		parse := func(s string) netip.Addr { a, _ := netip.ParseAddr(s); return a }
		switch poolMode % 4 {
		case 1:
			spec.Pools = []Pool{}
		case 2:
			spec.Pools = []Pool{{parse(p1s), parse(p1e)}}
		case 3:
			spec.Pools = []Pool{{parse(p1s), parse(p1e)}, {parse(p2s), parse(p2e)}}
		}
		if _, err := ParsePool(p1s, p1e); err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Type != typeInvalidInput || ie.Message == "" {
				t.Fatalf("ParsePool(%q, %q): got error %#v, want a non-empty InvalidInput", p1s, p1e, err)
			}
		}

		s, err := NewSubnet(spec)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || (ie.Type != typeInvalidInput && ie.Type != typeGatewayConflict) || ie.Message == "" {
				t.Fatalf("NewSubnet(%+v): got error %#v, want a non-empty *InputError", spec, err)
			}
			return
		}
		p := s.Prefix
		if p != p.Masked() || !p.IsValid() {
			t.Fatalf("Prefix %s: not a valid masked prefix", p)
		}
		network, last := p.Addr(), lastAddr(p)
		if s.Gateway.IsValid() {
			if !p.Contains(s.Gateway) {
				t.Fatalf("gateway %s outside %s", s.Gateway, p)
			}
			if s.InPools(s.Gateway) {
				t.Fatalf("gateway %s in pools %v", s.Gateway, s.Pools)
			}
		}
		want := new(big.Int)
		for i, pl := range s.Pools {
			if !p.Contains(pl.Start) || !p.Contains(pl.End) || pl.Start.Compare(pl.End) > 0 {
				t.Fatalf("pool %s: not an ordered range inside %s", poolString(pl), p)
			}
			if pl.contains(network) || (network.Is4() && pl.contains(last)) {
				t.Fatalf("pool %s contains the network or broadcast address of %s", poolString(pl), p)
			}
			if s.Gateway.IsValid() && pl.contains(s.Gateway) {
				t.Fatalf("pool %s contains the gateway %s", poolString(pl), s.Gateway)
			}
			if i > 0 && s.Pools[i-1].End.Compare(pl.Start) >= 0 {
				t.Fatalf("pools %s and %s: not sorted and disjoint", poolString(s.Pools[i-1]), poolString(pl))
			}
			if !s.InPools(pl.Start) || !s.InPools(pl.End) {
				t.Fatalf("InPools(%s): false for a pool end", poolString(pl))
			}
			if err := s.CheckFixed(pl.Start); err != nil {
				t.Fatalf("CheckFixed(%s): got %v for a pool address", pl.Start, err)
			}
			a, b := pl.Start.As16(), pl.End.As16()
			n := new(big.Int).Sub(new(big.Int).SetBytes(b[:]), new(big.Int).SetBytes(a[:]))
			want.Add(want, n.Add(n, big.NewInt(1)))
		}
		if !want.IsUint64() {
			want.SetUint64(math.MaxUint64)
		}
		if got := s.Size(); got != want.Uint64() {
			t.Fatalf("Size(): got %d, want %s", got, want)
		}
		if len(s.Pools) > 0 {
			if got, ok := s.NextFree(nil, netip.Addr{}); !ok || got != s.Pools[0].Start {
				t.Fatalf("NextFree(nil, zero): got %s, %v, want %s, true", got, ok, s.Pools[0].Start)
			}
			if got, want := NewCursor(s, last).Next(), s.Pools[0].Start; got != want {
				t.Fatalf("NewCursor(after %s).Next(): got %s, want %s", last, got, want)
			}
		}
	})
}

func FuzzNextFree(f *testing.F) {
	f.Add(uint32(0x0a000000), uint8(0), uint8(1), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), []byte{}, uint8(0), uint8(0))
	f.Add(uint32(0x0a000000), uint8(2), uint8(7), uint8(6), uint8(10), uint8(20), uint8(30), uint8(40), []byte{10, 11, 12, 30, 31, 255}, uint8(35), uint8(1))
	f.Add(uint32(0xc0a80140), uint8(6), uint8(1), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), []byte{2, 3}, uint8(2), uint8(1))
	f.Add(uint32(0xffffff00), uint8(0), uint8(0), uint8(1), uint8(0), uint8(0), uint8(0), uint8(0), []byte{1, 2, 254}, uint8(253), uint8(2))
	f.Fuzz(func(t *testing.T, base uint32, bitsSel, gwOff, mode, p1s, p1e, p2s, p2e uint8, usedOff []byte, afterOff, afterMode uint8) {
		bits := 24 + int(bitsSel%7) // /24 .. /30
		n := uint32(1) << (32 - bits)
		base &^= n - 1
		at := func(off uint32) netip.Addr { // base+off, wrapping in the IPv4 space
			v := base + off
			return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		}
		spec := SubnetSpec{CIDR: netip.PrefixFrom(at(0), bits).String()}
		if mode&1 != 0 {
			spec.GatewayNone = true
		} else {
			g := at(uint32(gwOff) % n).String()
			spec.Gateway = &g
		}
		if mode&2 != 0 {
			spec.Pools = []Pool{{at(uint32(p1s) % n), at(uint32(p1e) % n)}}
			if mode&4 != 0 {
				spec.Pools = append(spec.Pools, Pool{at(uint32(p2s) % n), at(uint32(p2e) % n)})
			}
		}
		s, err := NewSubnet(spec)
		if err != nil {
			return
		}
		used := make([]netip.Addr, 0, len(usedOff))
		usedSet := map[netip.Addr]bool{}
		for _, o := range usedOff {
			a := at(uint32(o) % (2 * n)) // half of them outside the subnet
			used = append(used, a)
			usedSet[a] = true
		}
		slices.SortFunc(used, netip.Addr.Compare)
		var after netip.Addr
		switch afterMode % 3 {
		case 1:
			after = at(uint32(afterOff) % n)
		case 2:
			after = at(uint32(afterOff)) // anywhere nearby, possibly outside
		}

		// Brute force: the pool addresses in order, rotated to start after after.
		var all []netip.Addr
		for _, pl := range s.Pools {
			for a := pl.Start; a.Compare(pl.End) <= 0; a = a.Next() {
				all = append(all, a)
			}
		}
		start := 0
		if after.IsValid() {
			start = len(all)
			for i, a := range all {
				if a.Compare(after) > 0 {
					start = i
					break
				}
			}
		}
		order := slices.Concat(all[start:], all[:start])
		var want netip.Addr
		for _, a := range order {
			if !usedSet[a] {
				want = a
				break
			}
		}
		got, ok := s.NextFree(used, after)
		if ok != want.IsValid() || got != want {
			t.Fatalf("subnet %+v: NextFree(%v, after %s): got %s, %v, want %s, %v", s, used, after, got, ok, want, want.IsValid())
		}
		if ok && (!s.InPools(got) || usedSet[got]) {
			t.Fatalf("NextFree: got %s, which is outside the pools or used", got)
		}

		if len(order) > 0 {
			c := NewCursor(s, after)
			for i := range len(order) + 2 {
				if got, want := c.Next(), order[i%len(order)]; got != want {
					t.Fatalf("subnet %+v: cursor after %s, Next #%d: got %s, want %s", s, after, i, got, want)
				}
			}
		}
	})
}

func TestEUI64(t *testing.T) {
	// netaddr: EUI('fa:16:3e:12:34:56').ipv6(IPNetwork('2001:db8::/64').first) == 2001:db8::f816:3eff:fe12:3456
	got, err := EUI64(netip.MustParsePrefix("2001:db8::/64"), "fa:16:3e:12:34:56")
	if err != nil || got.String() != "2001:db8::f816:3eff:fe12:3456" {
		t.Fatalf("EUI64 = %v, %v", got, err)
	}
	got, _ = EUI64(netip.MustParsePrefix("2001:db8:0:1::/64"), "00:00:00:00:00:01")
	if got.String() != "2001:db8:0:1:200:ff:fe00:1" {
		t.Errorf("EUI64 = %v", got)
	}
	if _, err := EUI64(netip.MustParsePrefix("10.0.0.0/24"), "fa:16:3e:12:34:56"); err == nil {
		t.Error("IPv4 prefix accepted")
	}
	if _, err := EUI64(netip.MustParsePrefix("2001:db8::/64"), "nope"); err == nil {
		t.Error("bad MAC accepted")
	}
}

func TestSubnetPoolPrefixes(t *testing.T) {
	pp := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	got := CompactPrefixes(pp("10.0.1.0/24", "10.0.0.0/24", "10.0.0.0/16", "192.168.0.0/25", "192.168.0.128/25"))
	if len(got) != 2 || got[0].String() != "10.0.0.0/16" || got[1].String() != "192.168.0.0/24" {
		t.Errorf("CompactPrefixes = %v", got)
	}
	pool := pp("10.10.0.0/16")
	p, err := AllocatePrefix(pool, nil, 24)
	if err != nil || p.String() != "10.10.0.0/24" {
		t.Fatalf("first /24 = %v, %v", p, err)
	}
	p, _ = AllocatePrefix(pool, pp("10.10.0.0/24", "10.10.1.0/26"), 24)
	if p.String() != "10.10.2.0/24" {
		t.Errorf("next /24 = %v", p)
	}
	p, _ = AllocatePrefix(pool, pp("10.10.0.0/17"), 24)
	if p.String() != "10.10.128.0/24" {
		t.Errorf("past a /17 = %v", p)
	}
	if _, err := AllocatePrefix(pp("10.10.0.0/24"), pp("10.10.0.0/25", "10.10.0.128/25"), 25); err == nil {
		t.Error("a full pool gave a prefix")
	}
	if _, err := AllocatePrefix(pool, nil, 8); err == nil {
		t.Error("a /8 from a /16 pool")
	}
	if !Within(pool, netip.MustParsePrefix("10.10.5.0/24")) || Within(pool, netip.MustParsePrefix("10.0.0.0/8")) {
		t.Error("Within")
	}
	p, _ = AllocatePrefix(pp("2001:db8::/48"), pp("2001:db8::/64"), 64)
	if p.String() != "2001:db8:0:1::/64" {
		t.Errorf("v6 = %v", p)
	}
}
