package main

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"

	"github.com/spf13/cobra"
	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
)

// newSubnetCmd returns `vflink subnet`: create, list, show, set and delete subnets over the API.
func newSubnetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subnet",
		Short: "Manage subnets through the Neutron-compatible API",
	}
	f := addAPIFlags(cmd)
	cmd.AddCommand(
		newSubnetCreateCmd(f),
		newSubnetListCmd(f),
		newSubnetShowCmd(f),
		newSubnetSetCmd(f),
		newSubnetDeleteCmd(f),
	)
	return cmd
}

// parseGateway turns --gateway into the gateway_ip value: nil (JSON null) for "none", else the
// address. ok is false for "auto": send nothing and let the server pick.
func parseGateway(v string) (value any, ok bool, err error) {
	switch v {
	case "none":
		return nil, true, nil
	case "auto":
		return nil, false, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return nil, false, fmt.Errorf("invalid --gateway %q: want an IP address, auto or none", v)
	}
	return a.String(), true, nil
}

// parseAllocationPool parses --allocation-pool start=A,end=B.
func parseAllocationPool(v string) (api.AllocationPool, error) {
	const want = "start=IP,end=IP like start=10.0.0.10,end=10.0.0.99"
	kv, err := parseKeyValues("allocation-pool", v, []string{"start", "end"}, want)
	if err != nil {
		return api.AllocationPool{}, err
	}
	var p api.AllocationPool
	for _, k := range []string{"start", "end"} {
		a, err := netip.ParseAddr(kv[k])
		if err != nil {
			return api.AllocationPool{}, fmt.Errorf("invalid --allocation-pool %q: %s %q is not an IP address, want %s", v, k, kv[k], want)
		}
		if k == "start" {
			p.Start = a.String()
		} else {
			p.End = a.String()
		}
	}
	return p, nil
}

func newSubnetCreateCmd(f *apiFlags) *cobra.Command {
	var (
		network, cidr, gateway, project, description string
		ipVersion                                    int
		pools                                        []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --network NET --subnet-range CIDR",
		Short: "Create a subnet",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			prefix, err := netip.ParsePrefix(cidr)
			if err != nil {
				return fmt.Errorf("invalid --subnet-range %q: want a CIDR like 10.0.0.0/24 or fd00::/64", cidr)
			}
			version := 4
			if prefix.Addr().Is6() {
				version = 6
			}
			if cmd.Flags().Changed("ip-version") {
				if ipVersion != 4 && ipVersion != 6 {
					return fmt.Errorf("invalid --ip-version %d: want 4 or 6", ipVersion)
				}
				if ipVersion != version {
					return fmt.Errorf("--ip-version %d does not match --subnet-range %s (an IPv%d range)", ipVersion, cidr, version)
				}
			}
			fields := map[string]any{"name": args[0], "cidr": prefix.String(), "ip_version": version}
			if cmd.Flags().Changed("gateway") {
				v, ok, err := parseGateway(gateway)
				if err != nil {
					return err
				}
				if ok {
					fields["gateway_ip"] = v
				}
			}
			if len(pools) > 0 {
				ps := make([]api.AllocationPool, 0, len(pools))
				for _, s := range pools {
					p, err := parseAllocationPool(s)
					if err != nil {
						return err
					}
					ps = append(ps, p)
				}
				fields["allocation_pools"] = ps
			}
			if cmd.Flags().Changed("project") {
				fields["tenant_id"] = project
			}
			if cmd.Flags().Changed("description") {
				fields["description"] = description
			}
			n, err := c.FindNetwork(cmd.Context(), network)
			if err != nil {
				return fmt.Errorf("--network: %w", err)
			}
			fields["network_id"] = n.ID
			s, err := c.CreateSubnet(cmd.Context(), fields)
			if err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), f.json(), s)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&network, "network", "", "network (name or ID) the subnet belongs to (required)")
	fl.StringVar(&cidr, "subnet-range", "", "subnet range in CIDR notation (required)")
	fl.IntVar(&ipVersion, "ip-version", 4, "IP version: 4 or 6 (default: that of --subnet-range)")
	fl.StringVar(&gateway, "gateway", "auto", "gateway address, auto (server picks) or none")
	fl.StringArrayVar(&pools, "allocation-pool", nil, "allocation pool start=IP,end=IP (repeatable)")
	fl.StringVar(&project, "project", "", "owning project (sent as tenant_id)")
	fl.StringVar(&description, "description", "", "description")
	cmd.MarkFlagRequired("network")
	cmd.MarkFlagRequired("subnet-range")
	return cmd
}

func newSubnetListCmd(f *apiFlags) *cobra.Command {
	var network, name string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List subnets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			filters := url.Values{}
			if cmd.Flags().Changed("network") {
				n, err := c.FindNetwork(cmd.Context(), network)
				if err != nil {
					return fmt.Errorf("--network: %w", err)
				}
				filters.Set("network_id", n.ID)
			}
			if cmd.Flags().Changed("name") {
				filters.Set("name", name)
			}
			subs, err := c.ListSubnets(cmd.Context(), filters)
			if err != nil {
				return err
			}
			if f.json() {
				return printJSON(cmd.OutOrStdout(), subs)
			}
			netNames := networkNames(cmd, c)
			rows := make([][]string, 0, len(subs))
			for _, s := range subs {
				rows = append(rows, []string{s.ID, s.Name, nameOr(netNames, s.NetworkID), s.CIDR, orEmpty(s.GatewayIP)})
			}
			return printTable(cmd.OutOrStdout(), []string{"ID", "Name", "Network", "CIDR", "Gateway"}, rows)
		},
	}
	cmd.Flags().StringVar(&network, "network", "", "list only subnets of this network (name or ID)")
	cmd.Flags().StringVar(&name, "name", "", "list only subnets with this name")
	return cmd
}

// networkNames maps network IDs to names for table output; on error it returns nil and tables
// show IDs.
func networkNames(cmd *cobra.Command, c *client.Client) map[string]string {
	nets, err := c.ListNetworks(cmd.Context(), nil)
	if err != nil {
		return nil
	}
	m := make(map[string]string, len(nets))
	for _, n := range nets {
		m[n.ID] = n.Name
	}
	return m
}

// subnetNames maps subnet IDs to names for table output; on error it returns nil and tables show
// IDs.
func subnetNames(cmd *cobra.Command, c *client.Client) map[string]string {
	subs, err := c.ListSubnets(cmd.Context(), nil)
	if err != nil {
		return nil
	}
	m := make(map[string]string, len(subs))
	for _, s := range subs {
		m[s.ID] = s.Name
	}
	return m
}

// nameOr returns the name of id in names, or id when it has none.
func nameOr(names map[string]string, id string) string {
	if n := names[id]; n != "" {
		return n
	}
	return id
}

func newSubnetShowCmd(f *apiFlags) *cobra.Command {
	return newShowCmd(f, "subnet", (*client.Client).FindSubnet)
}

func newSubnetSetCmd(f *apiFlags) *cobra.Command {
	var (
		name, description, gateway string
		rev                        int64
	)
	cmd := &cobra.Command{
		Use:   "set NAME|ID",
		Short: "Change fields of a subnet; only the flags given are sent (prints the subnet with -o json)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			fields := map[string]any{}
			if cmd.Flags().Changed("name") {
				fields["name"] = name
			}
			if cmd.Flags().Changed("description") {
				fields["description"] = description
			}
			if cmd.Flags().Changed("gateway") {
				if gateway == "auto" {
					return fmt.Errorf("invalid --gateway %q for set: want an IP address or none", gateway)
				}
				v, _, err := parseGateway(gateway)
				if err != nil {
					return err
				}
				fields["gateway_ip"] = v
			}
			if len(fields) == 0 {
				return nothingToSet(cmd, []string{"name", "description", "gateway"})
			}
			s, err := c.FindSubnet(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			s, err = c.UpdateSubnet(cmd.Context(), s.ID, fields, ifRevision(cmd, rev)...)
			if err != nil {
				return err
			}
			if f.json() {
				return printJSON(cmd.OutOrStdout(), s)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "new name")
	fl.StringVar(&description, "description", "", "description")
	fl.StringVar(&gateway, "gateway", "", "gateway address or none")
	fl.Int64Var(&rev, "if-revision", 0, "apply only if the subnet's revision_number is still N (If-Match)")
	return cmd
}

func newSubnetDeleteCmd(f *apiFlags) *cobra.Command {
	return newDeleteCmd(f, "subnet", func(ctx context.Context, c *client.Client, nameOrID string) error {
		x, err := c.FindSubnet(ctx, nameOrID)
		if err != nil {
			return err
		}
		return c.DeleteSubnet(ctx, x.ID)
	})
}
