package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
)

// newNetworkCmd returns `vflink network`: create, list, show, set and delete networks over the API.
func newNetworkCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Manage networks through the Neutron-compatible API",
	}
	f := addAPIFlags(cmd)
	cmd.AddCommand(
		newNetworkCreateCmd(f),
		newNetworkListCmd(f),
		newNetworkShowCmd(f),
		newNetworkSetCmd(f),
		newNetworkDeleteCmd(f),
	)
	return cmd
}

func newNetworkCreateCmd(f *apiFlags) *cobra.Command {
	var (
		netType, physnet, project, description string
		segment, mtu                           int
		shared                                 bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			fields := map[string]any{"name": args[0], "admin_state_up": true}
			if cmd.Flags().Changed("provider-network-type") {
				if netType != api.NetworkTypeVLAN && netType != api.NetworkTypeFlat {
					return fmt.Errorf("invalid --provider-network-type %q: want vlan or flat", netType)
				}
				fields["provider:network_type"] = netType
			}
			if cmd.Flags().Changed("provider-physical-network") {
				fields["provider:physical_network"] = physnet
			}
			if cmd.Flags().Changed("provider-segment") {
				fields["provider:segmentation_id"] = segment
			}
			if cmd.Flags().Changed("project") {
				fields["tenant_id"] = project
			}
			if cmd.Flags().Changed("shared") {
				fields["shared"] = shared
			}
			if cmd.Flags().Changed("mtu") {
				if mtu <= 0 {
					return fmt.Errorf("invalid --mtu %d: want a positive number of bytes, like 1500 or 9000", mtu)
				}
				fields["mtu"] = mtu
			}
			if cmd.Flags().Changed("description") {
				fields["description"] = description
			}
			n, err := c.CreateNetwork(cmd.Context(), fields)
			if err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), f.json(), n)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&netType, "provider-network-type", "", "provider network type: vlan or flat")
	fl.StringVar(&physnet, "provider-physical-network", "", "provider physical network (physnet) name")
	fl.IntVar(&segment, "provider-segment", 0, "VLAN ID of the network (sent as provider:segmentation_id)")
	fl.StringVar(&project, "project", "", "owning project (sent as tenant_id)")
	fl.BoolVar(&shared, "shared", false, "share the network with all projects")
	fl.IntVar(&mtu, "mtu", 0, "MTU of the network")
	fl.StringVar(&description, "description", "", "description")
	return cmd
}

func newNetworkListCmd(f *apiFlags) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			filters := url.Values{}
			if cmd.Flags().Changed("name") {
				filters["name"] = []string{name}
			}
			nets, err := c.ListNetworks(cmd.Context(), filters)
			if err != nil {
				return err
			}
			if f.json() {
				return printJSON(cmd.OutOrStdout(), nets)
			}
			rows := make([][]string, 0, len(nets))
			for _, n := range nets {
				vnid := ""
				if n.VNID != 0 {
					vnid = strconv.Itoa(n.VNID)
				}
				rows = append(rows, []string{n.ID, n.Name, orEmpty(n.NetworkType), orEmpty(n.PhysicalNetwork),
					orEmpty(n.SegmentationID), vnid, strings.Join(n.Subnets, ",")})
			}
			return printTable(cmd.OutOrStdout(), []string{"ID", "Name", "Type", "Physnet", "Segment", "VN ID", "Subnets"}, rows)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "list only networks with this name")
	return cmd
}

func newNetworkShowCmd(f *apiFlags) *cobra.Command {
	return newShowCmd(f, "network", (*client.Client).FindNetwork)
}

func newNetworkSetCmd(f *apiFlags) *cobra.Command {
	var (
		name, physnet, description string
		segment                    int
		rev                        int64
	)
	cmd := &cobra.Command{
		Use:   "set NAME|ID",
		Short: "Change fields of a network; only the flags given are sent (prints the network with -o json)",
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
			if cmd.Flags().Changed("provider-physical-network") {
				fields["provider:physical_network"] = physnet
			}
			if cmd.Flags().Changed("provider-segment") {
				fields["provider:segmentation_id"] = segment
			}
			if cmd.Flags().Changed("description") {
				fields["description"] = description
			}
			if len(fields) == 0 {
				return nothingToSet(cmd, []string{"name", "provider-physical-network", "provider-segment", "description"})
			}
			n, err := c.FindNetwork(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			n, err = c.UpdateNetwork(cmd.Context(), n.ID, fields, ifRevision(cmd, rev)...)
			if err != nil {
				return err
			}
			if f.json() {
				return printJSON(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "new name")
	fl.StringVar(&physnet, "provider-physical-network", "", "provider physical network (physnet) name")
	fl.IntVar(&segment, "provider-segment", 0, "VLAN ID of the network (sent as provider:segmentation_id)")
	fl.StringVar(&description, "description", "", "description")
	fl.Int64Var(&rev, "if-revision", 0, "apply only if the network's revision_number is still N (If-Match)")
	return cmd
}

func newNetworkDeleteCmd(f *apiFlags) *cobra.Command {
	return newDeleteCmd(f, "network", func(ctx context.Context, c *client.Client, nameOrID string) error {
		x, err := c.FindNetwork(ctx, nameOrID)
		if err != nil {
			return err
		}
		return c.DeleteNetwork(ctx, x.ID)
	})
}
