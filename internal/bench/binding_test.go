package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestBindingSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	tmp := t.TempDir()
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Binding(ctx, BindingOptions{Ports: 40, PFs: 1, VFsPerPF: 64, Concurrency: 8, Timeout: time.Minute,
		TempDir: tmp, Progress: &progress})
	t.Log(progress.String())
	if err != nil {
		t.Fatalf("Binding: %v", err)
	}
	t.Log(res)
	if res.Bindings != 40 || res.Active != 40 || res.Error != 0 || res.BindErrors != 0 || res.TimedOut {
		t.Fatalf("result %+v, want 40 bindings, 40 ACTIVE, no errors, no timeout", res)
	}
	if res.VFs != 64 || res.PFs != 1 || res.AgentWorkers != 16 || res.NIC == "" {
		t.Errorf("inventory %d PFs %d VFs, %d workers, NIC %q; want 1, 64, 16 and a name", res.PFs, res.VFs, res.AgentWorkers, res.NIC)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 || res.Elapsed <= 0 || res.Max > res.Elapsed {
		t.Errorf("latencies p50=%s p99=%s max=%s total=%s, want 0 < p50 <= p99 <= max <= total", res.P50, res.P99, res.Max, res.Elapsed)
	}
	// the binding is written after its request is sent, so it starts later: never a longer wait
	if res.BoundP50 <= 0 || res.BoundP50 > res.P50 || res.BoundP99 < res.BoundP50 || res.BoundP99 > res.Max {
		t.Errorf("from the binding p50=%s p99=%s, want 0 < bound p50 <= p50 (%s), bound p50 <= bound p99 <= max (%s)", res.BoundP50, res.BoundP99, res.P50, res.Max)
	}
	if !strings.HasPrefix(res.String(), "bindings=40 active=40 error=0 p50_ms=") || !strings.Contains(res.String(), " total_s=") {
		t.Errorf("String() = %q", res.String())
	}
	// everything it started is gone: the temp dir is empty again
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind in the temp dir: %v", left)
	}
}

func TestBindingMoreThanVFs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	// 12 ports on 8 VFs: 8 ACTIVE, 4 ERROR (NoFreeVF); every port settles
	res, err := Binding(context.Background(), BindingOptions{Ports: 12, PFs: 2, VFsPerPF: 4, Concurrency: 4, Timeout: time.Minute,
		TempDir: t.TempDir(), AgentWorkers: 2})
	if err != nil {
		t.Fatalf("Binding: %v", err)
	}
	if res.Bindings != 12 || res.Active != 8 || res.Error != 4 || res.TimedOut || res.AgentWorkers != 2 {
		t.Fatalf("result %+v, want 12 bindings, 8 ACTIVE, 4 ERROR", res)
	}
}

func TestBindingRejectsBadOptions(t *testing.T) {
	good := BindingOptions{Ports: 1, PFs: 1, VFsPerPF: 1, Concurrency: 1}
	for i, mod := range []func(*BindingOptions){
		func(o *BindingOptions) { o.Ports = 0 },
		func(o *BindingOptions) { o.PFs = 0 },
		func(o *BindingOptions) { o.VFsPerPF = 0 },
		func(o *BindingOptions) { o.Concurrency = 0 },
		func(o *BindingOptions) { o.Timeout = -time.Second },
		func(o *BindingOptions) { o.PFs, o.VFsPerPF = 64, 256 }, // does not fit on buses 80-ff
	} {
		o := good
		mod(&o)
		if _, err := Binding(context.Background(), o); err == nil {
			t.Errorf("case %d: Binding(%+v) succeeded, want an error", i, o)
		}
	}
}

func TestBindingPFLayout(t *testing.T) {
	pfs, err := bindingPFs(8, 64)
	if err != nil {
		t.Fatal(err)
	}
	for i, pf := range pfs {
		if want := fmt.Sprintf("0000:8%d:00.0", i); pf.PCIAddress != want || pf.Name != fmt.Sprintf("ens1f%d", i) {
			t.Errorf("PF %d: %s at %s, want ens1f%d at %s", i, pf.Name, pf.PCIAddress, i, want)
		}
	}
}

func TestBindingResultString(t *testing.T) {
	r := BindingResult{Bindings: 500, Active: 498, Error: 2, P50: 12345 * time.Microsecond, P99: 80 * time.Millisecond,
		Max: 91 * time.Millisecond, BoundP50: 4560 * time.Microsecond, BoundP99: 17 * time.Millisecond, Elapsed: 1234 * time.Millisecond}
	if got, want := r.String(), "bindings=500 active=498 error=2 p50_ms=12.3 p99_ms=80.0 max_ms=91.0 bound_p50_ms=4.6 bound_p99_ms=17.0 total_s=1.23"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
