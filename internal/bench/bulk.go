package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vflink/vflink/client"
)

// bulkPorts is Ports with native bulk creates: ceil(Count/Bulk) requests of up to Bulk ports,
// one after another (a bulk request is one transaction on the server; its latency is the figure),
// then one delete per port.
func bulkPorts(ctx context.Context, c *client.Client, opts PortsOptions) (PortsResult, error) {
	var (
		errs    errorLog
		lat     []time.Duration
		created []string
		res     = PortsResult{Bulk: opts.Bulk}
	)
	start := time.Now()
	for first := 0; first < opts.Count && ctx.Err() == nil; first += opts.Bulk {
		if opts.Timeout > 0 && time.Since(start) > opts.Timeout {
			res.TimedOut = true
			break
		}
		n := min(opts.Bulk, opts.Count-first)
		items := make([]map[string]any, n)
		for i := range items {
			items[i] = map[string]any{
				"name": fmt.Sprintf("bench-%d", first+i+1), "network_id": opts.NetworkID, "tenant_id": opts.Project,
				"admin_state_up": true, "binding:vnic_type": "direct",
			}
			if opts.NoIP {
				items[i]["fixed_ips"] = []any{}
			}
		}
		t0 := time.Now()
		ps, err := c.CreatePorts(ctx, items)
		d := time.Since(t0)
		res.Count += n
		if err != nil {
			errs.add(err)
			res.Errors += n
			continue
		}
		lat = append(lat, d)
		res.OK += n
		for _, p := range ps {
			created = append(created, p.ID)
		}
	}
	res.Elapsed = time.Since(start)
	slices.Sort(lat)
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	res.ErrorSamples = errs.samples
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench ports: stopped after %d creates, %d ports left in place: %w", res.Count, len(created), err)
	}
	if opts.Keep {
		return res, nil
	}
	var delErrs errorLog
	for _, id := range created {
		if err := c.DeletePort(ctx, id); err != nil {
			delErrs.add(err)
			continue
		}
		res.Deleted++
	}
	res.DeleteErrors, res.DeleteSample = delErrs.n, delErrs.samples
	return res, ctx.Err()
}
