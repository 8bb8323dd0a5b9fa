package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/host/agent"
	"github.com/vflink/vflink/internal/host/hypervisor"
)

// recorder is a Hypervisor fake at the seam; the libvirt implementation has its own tests against
// virsh and the libvirt test driver.
type recorder struct {
	mu      sync.Mutex
	running map[string]hypervisor.Server
	log     []string
}

func (h *recorder) Start(_ context.Context, s hypervisor.Server) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running[s.ID] = s
	h.log = append(h.log, "start "+s.ID)
	return nil
}

func (h *recorder) Stop(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.running, id)
	h.log = append(h.log, "stop "+id)
	return nil
}

func (h *recorder) Running(context.Context) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for id := range h.running {
		ids = append(ids, id)
	}
	return ids, nil
}

func post(t *testing.T, url string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, out)
	}
	return out
}

func TestVMAttachThroughHypervisor(t *testing.T) {
	r := newRig(t, 4)
	hv := &recorder{running: map[string]hypervisor.Server{}}
	a, err := agent.New(agent.Config{Host: "h1", Specs: r.specs, FS: r.fs, NIC: r.nic, Client: r.c, Hypervisor: hv, StateDir: r.state})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.c.RegisterHost(ctx, a.HostRecord()); err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSuffix(r.c.BaseURL(), "/v2.0")
	p, err := r.c.CreatePort(ctx, map[string]any{"network_id": r.net, "binding:vnic_type": "direct"})
	if err != nil {
		t.Fatal(err)
	}
	f := post(t, root+"/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{"name": "f", "vcpus": 2, "ram": 1024, "disk": 1}})
	img := post(t, root+"/image/v2/images", map[string]any{"name": "i", "disk_format": "raw", "container_format": "bare", "location": "/images/i.raw"})
	srv := post(t, root+"/compute/v2.1/servers", map[string]any{"server": map[string]any{"name": "vm", "imageRef": img["id"],
		"flavorRef": f["flavor"].(map[string]any)["id"], "networks": []any{map[string]any{"port": p.ID}}}})
	id := srv["server"].(map[string]any)["id"].(string)
	r.converge(t, a)
	s, ok := hv.running[id]
	if !ok {
		t.Fatalf("server %s not started: %v", id, hv.log)
	}
	if len(s.Interfaces) != 1 || s.Interfaces[0].MAC != p.MACAddress || s.Interfaces[0].VLAN != 15 || s.VCPUs != 2 || s.MemoryMiB != 1024 || s.ImageLocation != "/images/i.raw" {
		t.Fatalf("started with %+v", s)
	}
	if _, err := hypervisor.DomainXML(s, "kvm"); err != nil {
		t.Fatalf("the agent's server does not render: %v", err)
	}
	got, _ := r.c.GetPort(ctx, p.ID)
	if got.Status != api.StatusActive || got.Profile["pci_slot"] != s.Interfaces[0].PCIAddress {
		t.Fatalf("port after attach: %s %v", got.Status, got.Profile)
	}
	req, _ := http.NewRequest("DELETE", root+"/compute/v2.1/servers/"+id, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("delete server: %v %v", resp, err)
	}
	w := r.converge(t, a)
	if _, still := hv.running[id]; still || len(w.Allocations) != 0 {
		t.Fatalf("after delete: running %v, allocations %v", hv.log, w.Allocations)
	}
}
