package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/bench"
)

// newBenchCmd returns `vflink bench`: load generators that measure a Neutron-compatible API from
// the outside.
func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a Neutron-compatible API (vflink or a real Neutron)",
	}
	cmd.AddCommand(newBenchPortsCmd())
	cmd.AddCommand(newBenchBindingCmd())
	cmd.AddCommand(newBenchFabricCmd())
	return cmd
}

func newBenchPortsCmd() *cobra.Command {
	var (
		apiURL, token, network, project string
		count, concurrency, bulk        int
		noIP, keep                      bool
		timeout                         time.Duration
	)
	u := os.Getenv("VFLINK_URL")
	if u == "" {
		u = defaultURL
	}
	cmd := &cobra.Command{
		Use:   "ports --network ID --count N --concurrency C",
		Short: "Create N ports with C concurrent workers, report ports/s and latency, delete them",
		Long: `Create N ports named bench-<i> (binding:vnic_type direct, tenant_id --project) on a network
with C workers that reuse keep-alive connections, time each successful create, then delete the
ports with the same concurrency (unless --keep; the delete phase is not timed). Works against any
Neutron-compatible server, including a real Neutron in noauth mode.

The last line on stdout is always:
  ports/s=<f> p50_ms=<f> p99_ms=<f> errors=<n>
where ports/s is successful creates per second of the create phase's wall time (with --bulk K,
" bulk=K" follows and the latencies are per bulk request).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if count <= 0 {
				return fmt.Errorf("invalid --count %d: want at least 1", count)
			}
			if concurrency <= 0 {
				return fmt.Errorf("invalid --concurrency %d: want at least 1", concurrency)
			}
			if timeout < 0 {
				return fmt.Errorf("invalid --timeout %s: want a positive duration like 10m, or 0 for none", timeout)
			}
			var opts []client.Option
			if token != "" {
				opts = append(opts, client.WithToken(token))
			}
			if bulk > 1 {
				// one request holds the whole bulk: a peer may take minutes (Neutron 21: ~110 s for 1000 ports)
				opts = append(opts, client.WithRequestTimeout(timeout))
			}
			c, err := client.New(apiURL, opts...)
			if err != nil {
				return fmt.Errorf("--url: %w", err)
			}
			n, err := c.FindNetwork(cmd.Context(), network)
			if err != nil {
				return fmt.Errorf("--network: %w", err)
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			fmt.Fprintf(out, "creating %d ports on network %s (%s) with %d workers at %s\n", count, n.ID, n.Name, concurrency, c.BaseURL())
			res, runErr := bench.Ports(cmd.Context(), c, bench.PortsOptions{
				NetworkID:   n.ID,
				Count:       count,
				Concurrency: concurrency,
				Project:     project,
				NoIP:        noIP,
				Keep:        keep,
				Timeout:     timeout,
				Bulk:        bulk,
			})
			for _, m := range res.ErrorSamples {
				fmt.Fprintln(errOut, "create error:", m)
			}
			for _, m := range res.DeleteSample {
				fmt.Fprintln(errOut, "delete error:", m)
			}
			fmt.Fprintf(out, "created %d of %d ports in %s (%d errors)\n", res.OK, res.Count, res.Elapsed.Round(time.Millisecond), res.Errors)
			if res.TimedOut {
				fmt.Fprintf(out, "stopped issuing creates after --timeout %s\n", timeout)
			}
			switch {
			case keep:
				fmt.Fprintf(out, "kept %d ports (--keep)\n", res.OK)
			case runErr == nil:
				fmt.Fprintf(out, "deleted %d ports (%d errors)\n", res.Deleted, res.DeleteErrors)
			}
			fmt.Fprintln(out, res.String())
			if runErr != nil {
				return runErr
			}
			if res.OK == 0 {
				return errors.New("bench ports: every create failed")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&apiURL, "url", u, "Neutron-compatible API URL (env VFLINK_URL)")
	fl.StringVar(&token, "token", os.Getenv("VFLINK_TOKEN"), "auth token sent as X-Auth-Token (env VFLINK_TOKEN)")
	fl.StringVar(&network, "network", "", "network (ID or name) to create the ports on (required)")
	fl.IntVar(&count, "count", 1000, "number of ports to create (N)")
	fl.IntVar(&concurrency, "concurrency", 16, "concurrent workers (C)")
	fl.StringVar(&project, "project", "demo", "project sent as tenant_id in each create")
	fl.BoolVar(&noIP, "no-ip", false, `create ports without addresses ("fixed_ips": [])`)
	fl.BoolVar(&keep, "keep", false, "keep the ports instead of deleting them")
	fl.IntVar(&bulk, "bulk", 0, `send the creates as native bulk requests of this many ports ({"ports": [...]}, one after another; latencies per request)`)
	fl.DurationVar(&timeout, "timeout", 10*time.Minute, "stop issuing creates after this long (0: no limit)")
	cmd.MarkFlagRequired("network")
	return cmd
}

func newBenchBindingCmd() *cobra.Command {
	var (
		ports, pfs, vfsPerPF, concurrency, workers int
		timeout                                    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "binding [--ports N] [--pfs P] [--vfs-per-pf V] [--concurrency C]",
		Short: "Bind N ports to a host at once and time each until the host agent reports it ACTIVE",
		Long: `Self-contained, on loopback only: start an embedded store (in a temporary directory, removed
afterwards) and the API (no auth), write a fake sysfs tree of P PFs with V VFs each on physical
network "sriov", and run the host agent of host ` + bench.BindingHost + ` over it with a fake NIC (an in-memory
stand-in for netlink: no kernel, no hardware). Create N direct ports on a VLAN 15 network, unbound
(not timed), then bind them all to the host with C workers and watch the store: a port's latency
runs from its bind request being sent to the first time the store shows it ACTIVE (or ERROR);
its "bound" latency runs from the binding itself (the write of binding:host_id, seen on the same
watch) to the same moment, leaving out the time the bind request waited in the API. The API is
the server's own, so while the agent is writing it holds the binds to a few at a time (the host
agents' writes come first): the burst is taken more slowly than it could be, and each port
settles sooner. Stops when every bound port is ACTIVE or ERROR, or after --timeout.

The last line on stdout is always:
  bindings=<n> active=<n> error=<n> p50_ms=<f> p99_ms=<f> max_ms=<f> bound_p50_ms=<f> bound_p99_ms=<f> total_s=<f>
where total_s runs from the first bind sent to the last port settled.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			fmt.Fprintf(out, "binding %d ports on %d PFs x %d VFs (%d VFs), %d bind workers, agent workers %d, NIC: %s\n",
				ports, pfs, vfsPerPF, pfs*vfsPerPF, concurrency, workers, bench.BindingNIC)
			res, runErr := bench.Binding(cmd.Context(), bench.BindingOptions{
				Ports:        ports,
				PFs:          pfs,
				VFsPerPF:     vfsPerPF,
				Concurrency:  concurrency,
				Timeout:      timeout,
				AgentWorkers: workers,
				Progress:     out,
			})
			if runErr != nil && res.VFs == 0 {
				return runErr // bad options: nothing ran
			}
			for _, m := range res.ErrorSamples {
				fmt.Fprintln(errOut, "bind error:", m)
			}
			fmt.Fprintf(out, "%d of %d bind requests succeeded; %d ports ACTIVE, %d ERROR in %s\n",
				res.Bindings, res.Ports, res.Active, res.Error, res.Elapsed.Round(time.Millisecond))
			if res.TimedOut {
				fmt.Fprintf(out, "stopped after --timeout %s with %d bound ports not yet ACTIVE or ERROR\n",
					timeout, res.Bindings-res.Active-res.Error)
			}
			fmt.Fprintln(out, res.String())
			if runErr != nil {
				return runErr
			}
			if res.Bindings == 0 {
				return errors.New("bench binding: every bind request failed")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&ports, "ports", 500, "ports to create and bind (N)")
	fl.IntVar(&pfs, "pfs", 8, "PFs in the fake sysfs tree (P)")
	fl.IntVar(&vfsPerPF, "vfs-per-pf", 64, "VFs of each PF (V)")
	fl.IntVar(&concurrency, "concurrency", 16, "workers sending the bind requests (C)")
	fl.IntVar(&workers, "agent-workers", 16, "the agent's workers (ports programmed at once)")
	fl.DurationVar(&timeout, "timeout", 2*time.Minute, "stop waiting for ports after this long (0: no limit)")
	return cmd
}

func newBenchFabricCmd() *cobra.Command {
	var o bench.FabricOptions
	cmd := &cobra.Command{
		Use:   "fabric [--devices N] [--ports P] [--commit-latency D] [--naive]",
		Short: "Time a burst of port attachments until N simulated Junos leaves run it",
		Long: `Self-contained, on loopback only: start N Junos-like simulated leaves (vflink devsim: NETCONF
over SSH, each commit taking --commit-latency), an embedded store (temporary directory) and the
device manager with the real junos driver. Then P port attachments arrive over --window in batches
every 100 ms, as the binder writes them (each batch rewrites every leaf's intent with the ports so
far), and the run waits until every leaf's committed configuration (read from the simulator) is
exactly what all its ports render to, and confirmed (a push is a commit confirmed and its
confirming commit: two commits). With --naive, each port change is instead pushed on its own
(one commit per port, as per-port drivers do).

The last line on stdout is always:
  converged_s=<f> commits=<n> commits_per_device_max=<n>
where converged_s runs from the first write of the burst to the last leaf running its final
configuration, and commits counts the commits the leaves made.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			mode := "device manager (coalescing)"
			if o.Naive {
				mode = "naive (one commit per port)"
			}
			fmt.Fprintf(out, "fabric: %d ports over %d leaves, %d networks, commit latency %s, burst window %s, %s\n",
				o.Ports, o.Devices, o.Networks, o.CommitLatency, o.Window, mode)
			o.Progress = out
			res, err := bench.Fabric(cmd.Context(), o)
			if err != nil && res.Converged == 0 {
				return err
			}
			if res.TimedOut {
				fmt.Fprintf(out, "stopped after --timeout %s: %d of %d ports had reached their leaf\n", o.Timeout, res.Configured, res.Ports)
			} else {
				if !o.Naive {
					fmt.Fprintf(out, "the burst was written to the store in %s; the last leaf's last push began %s after the burst started\n",
						res.BurstWritten.Round(time.Millisecond), res.LastPushStartMax.Round(time.Millisecond))
				}
				fmt.Fprintf(out, "all %d leaves run their final configuration after %s; %d commits (at most %d on one leaf); goal: <= 2x commit latency + 1 s = %s, <= 2 commits per leaf\n",
					res.Devices, res.Converged.Round(time.Millisecond), res.Commits, res.CommitsPerDeviceMax, (2*o.CommitLatency + time.Second))
			}
			fmt.Fprintln(out, res.String())
			return err
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Devices, "devices", 50, "simulated leaves (N)")
	fl.IntVar(&o.Ports, "ports", 5000, "port attachments in the burst (P)")
	fl.IntVar(&o.Networks, "networks", 20, "networks the ports spread over")
	fl.DurationVar(&o.CommitLatency, "commit-latency", 2*time.Second, "how long each simulated commit takes")
	fl.DurationVar(&o.Window, "window", 300*time.Millisecond, "how long the burst takes to arrive")
	fl.BoolVar(&o.Naive, "naive", false, "push every port change on its own (one commit per port)")
	fl.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "stop after this long (0: no limit)")
	return cmd
}
