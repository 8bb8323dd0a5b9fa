package hosts_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/server"
	"github.com/vflink/vflink/internal/store"
)

func TestClaimsAreExclusiveBothWays(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(server.Handler(st, auth.NoAuth{DefaultProject: "p"}, neutron.Config{Logger: log}, log))
	defer func() { srv.Close(); st.Close() }()
	c, _ := client.New(srv.URL)
	if err := c.RegisterHost(ctx, api.Host{Name: "h1", PFs: []api.PF{{Name: "ens1f1", PhysicalNetwork: "sriov", TotalVFs: 4, NumVFs: 4}}}); err != nil {
		t.Fatal(err)
	}
	claim := func(pci, port string) error {
		return c.ClaimVF(ctx, "h1", api.VFAllocation{PF: "ens1f1", VFIndex: 0, PCIAddress: pci, PortID: port})
	}
	if err := claim("0000:83:10.1", "p1"); err != nil {
		t.Fatal(err)
	}
	if err := claim("0000:83:10.1", "p1"); err != nil {
		t.Fatalf("the same claim again: %v", err)
	}
	if err := claim("0000:83:10.1", "p2"); !client.IsConflict(err) {
		t.Fatalf("a VF claimed by a second port: got %v, want 409", err)
	}
	if err := claim("0000:83:10.3", "p1"); !client.IsConflict(err) {
		t.Fatalf("a second VF for one port: got %v, want 409", err)
	}
	if err := claim("bogus", "p3"); err == nil {
		t.Fatal("a malformed PCI address was accepted")
	}
	if err := c.ReleaseVF(ctx, "h1", "0000:83:10.1", "p2"); !client.IsConflict(err) {
		t.Fatalf("release by the wrong port: got %v, want 409", err)
	}
	if err := c.ReleaseVF(ctx, "h1", "0000:83:10.1", "p1"); err != nil {
		t.Fatal(err)
	}
	if err := claim("0000:83:10.3", "p1"); err != nil {
		t.Fatalf("after release the port may hold another VF: %v", err)
	}
	hs, err := c.Hosts(ctx)
	if err != nil || len(hs) != 1 || hs[0].Name != "h1" {
		t.Fatalf("hosts: %v %v", hs, err)
	}
}
