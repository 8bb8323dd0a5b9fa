package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/host/agent"
	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/server"
	"github.com/vflink/vflink/internal/store"
)

// BindingHost is the host name the Binding benchmark's agent serves.
const BindingHost = "h1"

// BindingNIC names the VF programming backend Binding uses: the in-memory sriov.Fake, which
// stands in for netlink (no kernel, no hardware; every call is a map update under one mutex).
const BindingNIC = "fake netlink (sriov.Fake, in memory)"

// BindingOptions configures Binding.
type BindingOptions struct {
	Ports       int           // direct ports to create and bind (> 0)
	PFs         int           // PFs in the fake sysfs tree (1-64)
	VFsPerPF    int           // VFs of each PF (1-256)
	Concurrency int           // workers sending the bind requests (> 0); capped at Ports
	Timeout     time.Duration // bound on the bind phase (binds sent and ports settling); 0: none
	// AgentWorkers is the agent's Workers (ports programmed at once); 0: the agent's default.
	AgentWorkers int
	// TempDir is where the store and the fake sysfs tree go (in a fresh directory that is removed
	// afterwards); "": os.TempDir().
	TempDir string
	// Logger receives the server's and the agent's logs; nil: discarded.
	Logger *slog.Logger
	// Progress, when set, gets a line per setup step.
	Progress io.Writer
}

// BindingResult holds the figures of one Binding run. A port is settled when the store first
// shows it ACTIVE or ERROR after its bind request was sent; latencies cover settled ports.
type BindingResult struct {
	Ports        int    // ports created (and bind requests attempted)
	PFs, VFs     int    // PFs and VFs in the fake inventory
	AgentWorkers int    // the agent's Workers
	NIC          string // the VF programming backend
	Bindings     int    // bind requests that succeeded
	BindErrors   int    // bind requests that failed
	ErrorSamples []string
	Active       int           // ports seen ACTIVE
	Error        int           // ports seen ERROR
	P50, P99     time.Duration // bind request sent → ACTIVE/ERROR seen in the store
	Max          time.Duration
	// BoundP50 and BoundP99 run from the binding itself (the store's write of binding:host_id,
	// seen on the same watch) → ACTIVE/ERROR: what the host side takes, without the time the
	// bind request waited in the API.
	BoundP50, BoundP99 time.Duration
	Elapsed            time.Duration // first bind sent → last port settled (or the timeout)
	TimedOut           bool          // Timeout ended the run before every bound port settled
}

// String is the one machine-readable line of a run: "bindings=<n> active=<n> error=<n>
// p50_ms=<f> p99_ms=<f> max_ms=<f> bound_p50_ms=<f> bound_p99_ms=<f> total_s=<f>".
func (r BindingResult) String() string {
	return fmt.Sprintf("bindings=%d active=%d error=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f bound_p50_ms=%.1f bound_p99_ms=%.1f total_s=%.2f",
		r.Bindings, r.Active, r.Error, ms(r.P50), ms(r.P99), ms(r.Max), ms(r.BoundP50), ms(r.BoundP99), r.Elapsed.Seconds())
}

func (o BindingOptions) check() error {
	switch {
	case o.Ports <= 0:
		return fmt.Errorf("bench binding: ports %d: want at least 1", o.Ports)
	case o.PFs <= 0 || o.PFs > 64:
		return fmt.Errorf("bench binding: pfs %d: want 1-64", o.PFs)
	case o.VFsPerPF <= 0 || o.VFsPerPF > 256:
		return fmt.Errorf("bench binding: vfs per PF %d: want 1-256", o.VFsPerPF)
	case o.Concurrency <= 0:
		return fmt.Errorf("bench binding: concurrency %d: want at least 1", o.Concurrency)
	case o.Timeout < 0:
		return fmt.Errorf("bench binding: timeout %s: want 0 (none) or more", o.Timeout)
	case o.AgentWorkers < 0:
		return fmt.Errorf("bench binding: agent workers %d: want 0 (default) or more", o.AgentWorkers)
	}
	return nil
}

// bindingPFs lays out the fake PFs: ens1f0, ens1f1, ... at functions 0 of buses 0x80, 0x80+k, ...
// where k buses hold a PF's VFs (VF n sits at routing ID PF + 128 + 2n, as on an 82599).
func bindingPFs(n, vfs int) ([]sriov.FakePF, error) {
	busesPerPF := (128 + 2*vfs + 255) / 256
	if 0x80+n*busesPerPF > 0x100 {
		return nil, fmt.Errorf("bench binding: %d PFs of %d VFs do not fit on PCI buses 80-ff", n, vfs)
	}
	pfs := make([]sriov.FakePF, n)
	for i := range pfs {
		pfs[i] = sriov.FakePF{Name: fmt.Sprintf("ens1f%d", i), PCIAddress: fmt.Sprintf("0000:%02x:00.0", 0x80+i*busesPerPF),
			TotalVFs: vfs, NumVFs: vfs, NUMANode: i % 2}
	}
	return pfs, nil
}

// Binding measures how long the host agent takes to serve a port from the moment it is bound to
// its host. Everything runs in this process on loopback: an embedded store in a temporary
// directory, the API (server.Handler, no auth), a fake sysfs tree of opts.PFs PFs with
// opts.VFsPerPF VFs each on physical network "sriov", a fake NIC (BindingNIC) and the agent of
// host BindingHost. It creates opts.Ports direct ports on a VLAN network, unbound (not timed),
// then binds them all to the host with opts.Concurrency workers and watches "ports/" in the store
// for each port's first ACTIVE or ERROR. Everything it started is stopped and removed before it
// returns. Failed bind requests are counted in the result; the error is for bad options, a
// setup failure or a cancelled ctx.
func Binding(ctx context.Context, opts BindingOptions) (res BindingResult, err error) {
	if err := opts.check(); err != nil {
		return BindingResult{}, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, format+"\n", args...)
		}
	}
	fakePFs, err := bindingPFs(opts.PFs, opts.VFsPerPF)
	if err != nil {
		return BindingResult{}, err
	}
	res = BindingResult{Ports: opts.Ports, PFs: opts.PFs, VFs: opts.PFs * opts.VFsPerPF, AgentWorkers: opts.AgentWorkers, NIC: BindingNIC}
	if res.AgentWorkers == 0 {
		res.AgentWorkers = 16 // agent.Config's default
	}

	// cleanups run in reverse order whatever happens
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	dir, err := os.MkdirTemp(opts.TempDir, "vflink-bench-binding-")
	if err != nil {
		return res, fmt.Errorf("bench binding: %w", err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })

	st, err := store.Open(ctx, store.Options{DataDir: filepath.Join(dir, "data"), Logger: log})
	if err != nil {
		return res, fmt.Errorf("bench binding: %w", err)
	}
	cleanups = append(cleanups, func() { st.Close() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, fmt.Errorf("bench binding: listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: server.Handler(st, auth.NoAuth{DefaultProject: "bench"}, neutron.Config{Logger: log}, log),
		ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	cleanups = append(cleanups, func() { srv.Close() })
	base := "http://" + ln.Addr().String()
	progress("store: embedded etcd in %s; API at %s (no auth)", dir, base)

	// the benchmark and the agent each get their own client (and connection pool)
	c, err := client.New(base)
	if err != nil {
		return res, fmt.Errorf("bench binding: %w", err)
	}
	agentClient, err := client.New(base)
	if err != nil {
		return res, fmt.Errorf("bench binding: %w", err)
	}

	n, err := c.CreateNetwork(ctx, map[string]any{"name": "bench-sriov", "provider:network_type": "vlan",
		"provider:physical_network": "sriov", "provider:segmentation_id": 15})
	if err != nil {
		return res, fmt.Errorf("bench binding: create network: %w", err)
	}
	if _, err := c.CreateSubnet(ctx, map[string]any{"network_id": n.ID, "cidr": "10.20.0.0/16", "ip_version": 4}); err != nil {
		return res, fmt.Errorf("bench binding: create subnet: %w", err)
	}

	root := filepath.Join(dir, "sys")
	if err := sriov.WriteFakeSysfs(root, fakePFs); err != nil {
		return res, fmt.Errorf("bench binding: %w", err)
	}
	specs := make([]sriov.DeviceSpec, len(fakePFs))
	counts := make(map[string]int, len(fakePFs))
	for i, pf := range fakePFs {
		specs[i] = sriov.DeviceSpec{DevName: pf.Name, PhysicalNetwork: "sriov"}
		counts[pf.Name] = pf.NumVFs
	}
	a, err := agent.New(agent.Config{Host: BindingHost, Specs: specs, FS: sriov.NewFS(root), NIC: sriov.NewFake(counts),
		Client: agentClient, Logger: log, Workers: opts.AgentWorkers, StateDir: filepath.Join(dir, "agent")})
	if err != nil {
		return res, fmt.Errorf("bench binding: %w", err)
	}
	if got := len(a.HostRecord().PFs); got != opts.PFs {
		return res, fmt.Errorf("bench binding: the agent found %d PFs in the fake sysfs tree, want %d", got, opts.PFs)
	}
	actx, stopAgent := context.WithCancel(context.WithoutCancel(ctx))
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(actx) }()
	cleanups = append(cleanups, func() {
		stopAgent()
		<-agentDone
	})
	if err := waitHost(ctx, c, BindingHost, agentDone); err != nil {
		return res, err
	}
	progress("agent: host %s registered: %d PFs x %d VFs on physnet sriov, %d workers, NIC: %s",
		BindingHost, opts.PFs, opts.VFsPerPF, res.AgentWorkers, BindingNIC)

	ids, err := createUnbound(ctx, c, n.ID, opts.Ports, opts.Concurrency)
	if err != nil {
		return res, err
	}
	progress("ports: %d direct ports created unbound on network %s (VLAN 15); binding them to %s with %d workers",
		len(ids), n.ID, BindingHost, min(opts.Concurrency, len(ids)))

	// the watch starts at the revision after the creates, before any bind is sent
	_, rev, err := st.Keys(ctx, "ports/")
	if err != nil {
		return res, fmt.Errorf("bench binding: %w", err)
	}
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	sent := make([]atomic.Int64, len(ids))    // UnixNano a bind was sent; 0: not (yet)
	settled := make([]atomic.Int64, len(ids)) // UnixNano the port was first seen settled; 0: not
	boundAt := make([]int64, len(ids))        // UnixNano the watch showed the binding (watch loop only)
	bound := make([]atomic.Bool, len(ids))    // the bind request succeeded

	phaseCtx, cancelPhase := context.WithCancel(ctx)
	defer cancelPhase()
	if opts.Timeout > 0 {
		var cancelTimeout context.CancelFunc
		phaseCtx, cancelTimeout = context.WithTimeout(phaseCtx, opts.Timeout)
		defer cancelTimeout()
	}
	wctx, stopWatch := context.WithCancel(phaseCtx)
	defer stopWatch()
	events := st.Watch(wctx, "ports/", rev+1)

	binder := newBindClient(c.BaseURL(), BindingHost)
	cleanups = append(cleanups, binder.hc.CloseIdleConnections)
	start := time.Now()
	var (
		errs     errorLog
		bindsOut = make(chan struct{}) // closed when every bind request has been answered
	)
	go func() {
		defer close(bindsOut)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(opts.Concurrency, len(ids)) {
			wg.Go(func() {
				for phaseCtx.Err() == nil {
					i := int(next.Add(1)) - 1
					if i >= len(ids) {
						return
					}
					sent[i].Store(time.Now().UnixNano())
					if err := binder.bind(phaseCtx, ids[i]); err != nil {
						if phaseCtx.Err() == nil {
							errs.add(fmt.Errorf("bind port %s: %w", ids[i], err))
						}
						continue
					}
					bound[i].Store(true)
				}
			})
		}
		wg.Wait()
	}()

	// watch until every port whose bind succeeded has settled
	var last time.Time
	nSettled, active, errored := 0, 0, 0
	bindsDone := bindsOut
	allSettled := func() bool {
		if bindsDone != nil {
			return false
		}
		for i := range ids {
			if bound[i].Load() && settled[i].Load() == 0 {
				return false
			}
		}
		return true
	}
	var watchErr error
loop:
	for {
		select {
		case <-bindsDone:
			bindsDone = nil
			if allSettled() {
				break loop
			}
		case e, ok := <-events:
			now := time.Now()
			if !ok {
				break loop // phaseCtx ended
			}
			if e.Err != nil {
				watchErr = fmt.Errorf("bench binding: watch ports/: %w", e.Err)
				break loop
			}
			// the observer does as little as it can, so as not to slow what it measures: the port's
			// ID is in the key, and only a write that may say ACTIVE or ERROR is decoded
			if e.Type != store.Put {
				continue
			}
			i, ok := index[strings.TrimPrefix(e.Key, "ports/")]
			if ok && boundAt[i] == 0 {
				boundAt[i] = now.UnixNano() // nothing writes the ports between their creation and their binding
			}
			if !ok || sent[i].Load() == 0 || settled[i].Load() != 0 ||
				!bytes.Contains(e.Value, []byte(`"`+api.StatusActive+`"`)) && !bytes.Contains(e.Value, []byte(`"`+api.StatusError+`"`)) {
				continue
			}
			var p struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			}
			if err := json.Unmarshal(e.Value, &p); err != nil {
				watchErr = fmt.Errorf("bench binding: decode %s: %w", e.Key, err)
				break loop
			}
			switch p.Status {
			case api.StatusActive:
				active++
			case api.StatusError:
				errored++
			default:
				continue
			}
			settled[i].Store(now.UnixNano())
			nSettled++
			last = now
			if nSettled == len(ids) || (bindsDone == nil && allSettled()) {
				break loop
			}
		}
	}
	timedOut := phaseCtx.Err() != nil && ctx.Err() == nil
	stopWatch()
	if watchErr == nil && phaseCtx.Err() == nil {
		// every port settled: the answers of the last binds are on their way (a port can show
		// ACTIVE before its bind's answer arrives), so let them count
		<-bindsOut
	}
	cancelPhase()
	<-bindsOut

	res.BindErrors, res.ErrorSamples = errs.n, errs.samples
	for i := range ids {
		if bound[i].Load() {
			res.Bindings++
		}
	}
	res.Active, res.Error = active, errored
	var lat, fromBound []time.Duration
	for i := range ids {
		if s := settled[i].Load(); s != 0 {
			lat = append(lat, time.Duration(s-sent[i].Load()))
			fromBound = append(fromBound, time.Duration(s-boundAt[i]))
		}
	}
	slices.Sort(lat)
	slices.Sort(fromBound)
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	res.BoundP50, res.BoundP99 = percentile(fromBound, 0.50), percentile(fromBound, 0.99)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	res.TimedOut = timedOut && nSettled < res.Bindings
	switch {
	case res.TimedOut || last.IsZero():
		res.Elapsed = time.Since(start)
	default:
		res.Elapsed = last.Sub(start)
	}
	if watchErr != nil {
		return res, watchErr
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench binding: stopped with %d of %d ports settled: %w", nSettled, res.Bindings, err)
	}
	return res, nil
}

// bindClient sends the bind requests of the Binding benchmark: PUT /v2.0/ports/<id> with
// binding:host_id, as client.UpdatePort does, but it does not decode the port it gets back (the
// benchmark needs only the status code), so the 16 workers spend less of the machine the
// measured system runs on.
type bindClient struct {
	hc   *http.Client
	base string
	body []byte
}

func newBindClient(base, host string) *bindClient {
	body, _ := json.Marshal(map[string]any{"port": map[string]any{"binding:host_id": host}})
	t := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	return &bindClient{hc: &http.Client{Transport: t, Timeout: 2 * time.Minute}, base: base, body: body}
}

func (b *bindClient) bind(ctx context.Context, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, b.base+"/ports/"+id, bytes.NewReader(b.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("PUT ports/%s: %s: %s", id, resp.Status, bytes.TrimSpace(msg))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// waitHost waits until host is registered with the API (or the agent gives up).
func waitHost(ctx context.Context, c *client.Client, host string, agentDone <-chan error) error {
	deadline := time.After(30 * time.Second)
	for {
		hosts, err := c.Hosts(ctx)
		if err == nil {
			for _, h := range hosts {
				if h.Name == host {
					return nil
				}
			}
		}
		select {
		case err := <-agentDone:
			return fmt.Errorf("bench binding: the agent stopped before host %s was registered: %v", host, err)
		case <-ctx.Done():
			return fmt.Errorf("bench binding: waiting for host %s: %w", host, ctx.Err())
		case <-deadline:
			return fmt.Errorf("bench binding: host %s not registered after 30s (last error: %v)", host, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// createUnbound creates n direct ports on network, with no host, using workers concurrent creates.
func createUnbound(ctx context.Context, c *client.Client, network string, n, workers int) ([]string, error) {
	ids := make([]string, n)
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p, err := c.CreatePort(ctx, map[string]any{"network_id": network, "name": fmt.Sprintf("bench-bind-%d", i),
					"binding:vnic_type": api.VNICDirect})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				ids[i] = p.ID
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bench binding: creating ports: %w", err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("bench binding: create ports: %w", errors.Join(errs...))
	}
	return ids, nil
}
