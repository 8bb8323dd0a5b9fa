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
	return cmd
}

func newBenchPortsCmd() *cobra.Command {
	var (
		apiURL, token, network, project string
		count, concurrency              int
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
where ports/s is successful creates per second of the create phase's wall time.`,
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
	fl.DurationVar(&timeout, "timeout", 10*time.Minute, "stop issuing creates after this long (0: no limit)")
	cmd.MarkFlagRequired("network")
	return cmd
}
