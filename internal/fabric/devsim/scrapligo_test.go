package devsim

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scrapli/scrapligo/driver/netconf"
	"github.com/scrapli/scrapligo/driver/opoptions"
	"github.com/scrapli/scrapligo/driver/options"
	"github.com/scrapli/scrapligo/transport"

	"github.com/vflink/vflink/internal/fabric/junosconf"
)

// TestScrapligoInterop drives a device with scrapligo's netconf driver (standard transport), as
// vflink's Junos driver does: open, lock, load-configuration, commit, get-configuration, unlock,
// close — in both NETCONF 1.1 (negotiated) and 1.0 (the client's preference).
func TestScrapligoInterop(t *testing.T) {
	s := newSim(t, Options{})
	d := addDevice(t, s, "leaf1")
	host, portStr, _ := net.SplitHostPort(d.Addr())
	port, _ := strconv.Atoi(portStr)

	for i, version := range []string{netconf.V1Dot1, netconf.V1Dot0} {
		t.Run("netconf "+version, func(t *testing.T) {
			drv, err := netconf.NewDriver(host,
				options.WithTransportType(transport.StandardTransport),
				options.WithPort(port),
				options.WithAuthUsername(testUser),
				options.WithAuthPassword(testPass),
				options.WithAuthNoStrictKey(),
				options.WithTimeoutOps(30*time.Second),
				options.WithNetconfPreferredVersion(version),
			)
			if err != nil {
				t.Fatal(err)
			}
			if err := drv.Open(); err != nil {
				t.Fatalf("Open: %v", err)
			}
			if drv.SelectedVersion != version || drv.SessionID() == 0 ||
				!drv.ServerHasCapability("http://xml.juniper.net/netconf/junos/1.0") {
				t.Errorf("version %s, session-id %d, capabilities %q", drv.SelectedVersion, drv.SessionID(), drv.ServerCapabilities())
			}
			must := func(what string, failed error, err error) {
				t.Helper()
				if err != nil || failed != nil {
					t.Fatalf("%s: %v %v", what, err, failed)
				}
			}
			r, err := drv.Lock("candidate")
			must("Lock", r.Failed, err)
			d.mu.Lock()
			locked := d.lockOwner != 0
			d.mu.Unlock()
			if !locked {
				t.Errorf("no lock after scrapligo's Lock")
			}
			desc := `x"; delete interfaces; set system host-name pwned`
			lines := fmt.Sprintf("set vlans bd-%d vlan-id %d\nset vlans bd-%d description %s", i, i+10, i, junosconf.Quote(desc))
			r, err = drv.RPC(opoptions.WithFilter(`<load-configuration action="set" format="text"><configuration-set>` +
				xmlEscape(lines) + `</configuration-set></load-configuration>`))
			must("load-configuration", r.Failed, err)
			r, err = drv.RPC(opoptions.WithFilter(`<load-configuration action="set" format="text"><configuration-set>set vlans bd-1 vlan-idd 1</configuration-set></load-configuration>`))
			if err != nil || r.Failed == nil || len(r.ErrorMessages) != 1 || !strings.Contains(r.ErrorMessages[0], "line 1: syntax error") {
				t.Errorf("bad load: err %v, failed %v, errors %q; want one syntax error", err, r.Failed, r.ErrorMessages)
			}
			r, err = drv.RPC(opoptions.WithFilter(`<commit-configuration/>`))
			must("commit-configuration", r.Failed, err)
			if !strings.Contains(r.Result, "<commit-success/>") {
				t.Errorf("commit result %s lacks commit-success", r.Result)
			}
			r, err = drv.RPC(opoptions.WithFilter(`<get-configuration format="set" database="committed"/>`))
			must("get-configuration", r.Failed, err)
			for _, l := range d.Committed() {
				if !strings.Contains(r.Result, xmlEscape(l)) {
					t.Errorf("get-configuration result %s lacks %s", r.Result, l)
				}
			}
			r, err = drv.Unlock("candidate")
			must("Unlock", r.Failed, err)
			if err := drv.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			eventually(t, "the session to end", func() bool { return d.Sessions() == 0 })
			want := fmt.Sprintf("set vlans bd-%d description %s", i, junosconf.Quote(desc))
			if !slices.Contains(d.Committed(), want) {
				t.Errorf("committed %q lacks %s", d.Committed(), want)
			}
		})
	}
	if diff := cmp.Diff(2, d.Commits()); diff != "" {
		t.Errorf("Commits() (-want +got):\n%s", diff)
	}
}
