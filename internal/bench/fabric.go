package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/fabric/devicemgr"
	"github.com/vflink/vflink/internal/fabric/devsim"
	"github.com/vflink/vflink/internal/fabric/junos"
	"github.com/vflink/vflink/internal/fabric/render"
	"github.com/vflink/vflink/internal/store"
)

// FabricOptions configures Fabric.
type FabricOptions struct {
	Devices       int           // simulated leaves (1-500)
	Ports         int           // port attachments in the burst (> 0)
	Networks      int           // networks the ports spread over (default 20)
	CommitLatency time.Duration // the simulator's commit time
	// Window is how long the burst takes to arrive; it arrives in batches every 100 ms (the
	// binder's debounce), each batch rewriting every device's intent with the ports so far.
	Window   time.Duration
	Naive    bool          // one push per port change instead of the device manager
	Timeout  time.Duration // bound on the run after the burst starts (0: none)
	TempDir  string
	Logger   *slog.Logger
	Progress io.Writer
}

// FabricResult holds the figures of one Fabric run.
type FabricResult struct {
	Devices, Ports      int
	Converged           time.Duration // first write of the burst → every device runs the final configuration, confirmed
	Commits             int           // commits over all devices during the run
	CommitsPerDeviceMax int
	TimedOut            bool
	// LastPushStartMax is when the last leaf's last push began (its commit confirmed ended minus
	// the commit latency), from the start of the burst: what coalescing waited before pushing.
	LastPushStartMax time.Duration
	// BurstWritten is when the last intent write of the burst was done.
	BurstWritten time.Duration
	Configured   int // ports whose configuration reached their device (naive runs that timed out)
}

// String is the one machine-readable line of a run.
func (r FabricResult) String() string {
	return fmt.Sprintf("converged_s=%.2f commits=%d commits_per_device_max=%d", r.Converged.Seconds(), r.Commits, r.CommitsPerDeviceMax)
}

const fabricUser, fabricPassword = "vflink", "bench-password"

// Fabric measures how fast a burst of port attachments reaches the switches: it starts N
// Junos-like simulated leaves (NETCONF over SSH on loopback, each commit taking CommitLatency),
// an embedded store and the device manager with the real junos driver, then writes the burst as
// the binder would and waits until every leaf runs the configuration of all its ports (read from
// the simulator). With Naive, each port change is pushed on its own (one commit per port, as
// per-port drivers do) instead.
func Fabric(ctx context.Context, o FabricOptions) (FabricResult, error) {
	res := FabricResult{Devices: o.Devices, Ports: o.Ports}
	if o.Networks == 0 {
		o.Networks = 20
	}
	switch {
	case o.Devices < 1 || o.Devices > 500:
		return res, fmt.Errorf("--devices %d is out of range 1-500", o.Devices)
	case o.Ports < 1:
		return res, fmt.Errorf("--ports %d: want at least 1", o.Ports)
	case o.Networks < 1 || o.Networks > 4000:
		return res, fmt.Errorf("--networks %d is out of range 1-4000", o.Networks)
	case o.CommitLatency < 0 || o.Window < 0:
		return res, errors.New("--commit-latency and --window cannot be negative")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	progress := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	dir, err := os.MkdirTemp(o.TempDir, "vflink-bench-fabric-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	sim := devsim.New(devsim.Options{Username: fabricUser, Password: fabricPassword, CommitLatency: o.CommitLatency, Log: log})
	defer sim.Close()
	var leaves []*devsim.Device
	for i := 1; i <= o.Devices; i++ {
		d, err := sim.Add(fmt.Sprintf("leaf%d", i), "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		leaves = append(leaves, d)
	}
	progress("started %d simulated leaves (commit latency %s)", len(leaves), o.CommitLatency)

	// the burst: port i lands on leaf i%D, on one of 48 interfaces, in one of the networks
	final := make([][]api.Attachment, o.Devices)
	for i := 0; i < o.Ports; i++ {
		d, k := i%o.Devices, i/o.Devices
		vni := 1 + k%o.Networks
		final[d] = append(final[d], api.Attachment{Device: leaves[d].Name(), Interface: fmt.Sprintf("xe-0/0/%d", k%48),
			NetworkID: fmt.Sprintf("net-%d", vni), NetworkName: fmt.Sprintf("bench-%d", vni), VNI: vni, VLAN: 100 + vni,
			Ports: []string{fmt.Sprintf("port-%d", i)}})
	}
	want := make([][]string, o.Devices)
	for d := range final {
		if want[d], err = render.Junos(render.Input{Device: api.Device{Name: leaves[d].Name()}, Attachments: final[d]}); err != nil {
			return res, err
		}
	}
	batches := int(o.Window/(100*time.Millisecond)) + 1
	arrived := func(d, b int) []api.Attachment { // device d's attachments after batch b
		n := len(final[d]) * (b + 1) / batches
		return final[d][:n]
	}

	base := make([]int, o.Devices)
	for i, l := range leaves {
		base[i] = l.Commits()
	}
	runCtx := ctx
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	var start time.Time
	var configured atomic.Int64
	if o.Naive {
		progress("naive: every port change is its own commit (%d ports, %d batches over %s)", o.Ports, batches, o.Window)
		start = time.Now()
		var wg sync.WaitGroup
		for d := range leaves {
			wg.Add(1)
			go func() {
				defer wg.Done()
				drv := junos.New(junos.Config{Name: leaves[d].Name(), Address: leaves[d].Addr(), Username: fabricUser,
					Password: fabricPassword, HostKey: leaves[d].HostKey(), Log: log})
				defer drv.Close()
				for k := range final[d] {
					// port k arrives with batch b: the first whose prefix holds it
					for b := 0; b < batches; b++ {
						if len(arrived(d, b)) > k {
							if wait := time.Until(start.Add(time.Duration(b) * 100 * time.Millisecond)); wait > 0 {
								time.Sleep(wait)
							}
							break
						}
					}
					lines, err := render.Junos(render.Input{Device: api.Device{Name: leaves[d].Name()}, Attachments: final[d][:k+1]})
					if err == nil {
						_, err = drv.Apply(runCtx, lines)
					}
					if err != nil {
						if runCtx.Err() == nil {
							log.Warn("naive push", "device", leaves[d].Name(), "err", err)
						}
						return
					}
					configured.Add(1)
				}
			}()
		}
		wg.Wait()
		res.Converged = time.Since(start)
		res.TimedOut = runCtx.Err() != nil
	} else {
		st, err := store.Open(ctx, store.Options{DataDir: dir, Logger: log})
		if err != nil {
			return res, err
		}
		defer st.Close()
		for _, l := range leaves { // one Txn per device: etcd caps the operations of one Txn
			t := st.Txn()
			t.Put("devices/"+l.Name(), api.Device{Name: l.Name(), Driver: "junos", ManagementAddress: l.Addr(), HasCredentials: true})
			t.Put("device-secrets/"+l.Name(), api.DeviceCredentials{Username: fabricUser, Password: fabricPassword, HostKey: l.HostKey()})
			t.Put("fabric-intent/"+l.Name(), api.DeviceIntent{Device: l.Name(), Attachments: []api.Attachment{}})
			if _, err := t.Commit(ctx); err != nil {
				return res, err
			}
		}
		mctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			devicemgr.New(st, devicemgr.Options{Dial: devicemgr.DialWithLog(log), Resync: time.Hour, Log: log}).Run(mctx)
		}()
		defer func() { stop(); <-done }()
		// wait until every reconciler has read its (empty) device once
		for {
			sts, _, err := store.List[api.DeviceStatus](ctx, st, "device-status/")
			if err != nil {
				return res, err
			}
			n := 0
			for _, s := range sts {
				if s.Value.InSync {
					n++
				}
			}
			if n == o.Devices {
				break
			}
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			time.Sleep(20 * time.Millisecond)
		}
		progress("device manager ready on %d devices; burst of %d ports in %d batches over %s", o.Devices, o.Ports, batches, o.Window)
		start = time.Now()
		written := make(chan time.Duration, 1)
		go func() {
			defer func() { written <- time.Since(start) }()
			for b := 0; b < batches; b++ {
				if wait := time.Until(start.Add(time.Duration(b) * 100 * time.Millisecond)); wait > 0 {
					time.Sleep(wait)
				}
				var wg sync.WaitGroup
				for d, l := range leaves {
					wg.Add(1)
					go func() {
						defer wg.Done()
						t := st.Txn()
						t.Put("fabric-intent/"+l.Name(), api.DeviceIntent{Device: l.Name(), Attachments: arrived(d, b)})
						if _, err := t.Commit(runCtx); err != nil && runCtx.Err() == nil {
							log.Warn("write intent", "device", l.Name(), "err", err)
						}
					}()
				}
				wg.Wait()
			}
		}()
		for {
			ok := 0
			for d, l := range leaves {
				if settled(l, want[d]) {
					ok++
				}
			}
			if ok == o.Devices {
				res.Converged = time.Since(start)
				res.BurstWritten = <-written
				configured.Store(int64(o.Ports))
				break
			}
			if runCtx.Err() != nil {
				res.Converged, res.TimedOut = time.Since(start), true
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	res.Configured = int(configured.Load())
	for i, l := range leaves {
		h := l.History()
		for j := len(h) - 1; j >= 0; j-- {
			if h[j].Confirmed {
				res.LastPushStartMax = max(res.LastPushStartMax, h[j].Time.Sub(start)-o.CommitLatency)
				break
			}
		}
		n := l.Commits() - base[i]
		res.Commits += n
		res.CommitsPerDeviceMax = max(res.CommitsPerDeviceMax, n)
	}
	if res.TimedOut && ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// settled reports whether a leaf runs want and its last commit is not a commit confirmed still
// waiting for its confirmation (which could roll back).
func settled(l *devsim.Device, want []string) bool {
	h := l.History()
	if len(h) == 0 {
		return len(want) == 0
	}
	last := h[len(h)-1]
	return !last.Confirmed && !last.Rollback && slices.Equal(vflinkLines(last.Lines), want)
}

// vflinkLines keeps a device's vflink configuration, sorted.
func vflinkLines(all []string) []string {
	var out []string
	for _, l := range all {
		if strings.HasPrefix(l, "set groups __vflink_") || strings.HasPrefix(l, "set apply-groups __vflink_") {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}
