package devsim

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseInterfaces(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []string
		err  string
	}{
		{spec: "xe-0/0/0-3", want: []string{"xe-0/0/0", "xe-0/0/1", "xe-0/0/2", "xe-0/0/3"}},
		{spec: "xe-0/0/5, ge-0/0/0-1,xe-0/0/5", want: []string{"xe-0/0/5", "ge-0/0/0", "ge-0/0/1"}},
		{spec: "et-0/0/48:1", want: []string{"et-0/0/48:1"}},
		{spec: "xe-0/0/7-7", want: []string{"xe-0/0/7"}},
		{spec: "xe-0/0/9-3", err: "first <= last"},
		{spec: "eth0", err: `port "eth0": want a physical interface`},
		{spec: "ae0", err: `port "ae0"`},
		{spec: "xe-0/0/0-99999", err: "at most 4096 ports"},
		{spec: " , ", err: "names no port"},
	} {
		got, err := ParseInterfaces(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseInterfaces(%q) = %q, %v; want an error containing %q", tc.spec, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseInterfaces(%q): %v", tc.spec, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseInterfaces(%q) (-want +got):\n%s", tc.spec, diff)
		}
	}
	if got, _ := ParseInterfaces("xe-0/0/0-47"); !cmp.Equal(got, DefaultInterfaces(48)) {
		t.Errorf("xe-0/0/0-47 = %q, want DefaultInterfaces(48)", got)
	}
}

func TestListenAddrs(t *testing.T) {
	for _, tc := range []struct {
		host       string
		base, n    int
		want       []string
		errContain string
	}{
		{host: "127.0.0.1", base: 0, n: 2, want: []string{"127.0.0.1:0", "127.0.0.1:0"}},
		{host: "127.0.0.2", base: 8300, n: 3, want: []string{"127.0.0.2:8300", "127.0.0.2:8301", "127.0.0.2:8302"}},
		{host: "localhost", base: 830, n: 1, want: []string{"127.0.0.1:830"}},
		{host: "::1", base: 0, n: 1, want: []string{"[::1]:0"}},
		{host: "0.0.0.0", n: 1, errContain: "not a loopback address"},
		{host: "10.0.0.1", n: 1, errContain: "not a loopback address"},
		{host: "example.com", n: 1, errContain: "not a loopback address"},
		{host: "127.0.0.1", base: 65535, n: 2, errContain: "base port 65535 for 2 devices"},
		{host: "127.0.0.1", n: 0, errContain: "want at least 1"},
	} {
		got, err := ListenAddrs(tc.host, tc.base, tc.n)
		if tc.errContain != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errContain) {
				t.Errorf("ListenAddrs(%q, %d, %d) = %q, %v; want an error containing %q", tc.host, tc.base, tc.n, got, err, tc.errContain)
			}
			continue
		}
		if diff := cmp.Diff(tc.want, got); err != nil || diff != "" {
			t.Errorf("ListenAddrs(%q, %d, %d): %v (-want +got):\n%s", tc.host, tc.base, tc.n, err, diff)
		}
	}
}
