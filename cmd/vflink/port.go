package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
)

// newPortCmd returns `vflink port`: create, list, show, set and delete ports over the API.
func newPortCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "port",
		Short: "Manage ports through the Neutron-compatible API",
	}
	f := addAPIFlags(cmd)
	cmd.AddCommand(
		newPortCreateCmd(f),
		newPortListCmd(f),
		newPortShowCmd(f),
		newPortSetCmd(f),
		newPortDeleteCmd(f),
	)
	return cmd
}

func checkVNICType(v string) error {
	if !slices.Contains(api.VNICTypes, v) {
		return fmt.Errorf("invalid --vnic-type %q: want one of %s", v, strings.Join(api.VNICTypes, ", "))
	}
	return nil
}

// parseBindingProfile parses --binding-profile, which must be a JSON object.
func parseBindingProfile(v string) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil || m == nil {
		return nil, fmt.Errorf("invalid --binding-profile %q: want a JSON object like '{\"pci_slot\": \"0000:3b:02.5\"}'", v)
	}
	return m, nil
}

// parseFixedIP parses --fixed-ip subnet=S,ip-address=A (either key may be left out, not both).
func parseFixedIP(v string) (subnet, ip string, err error) {
	const want = "subnet=NAME|ID,ip-address=IP (one or both keys)"
	kv, err := parseKeyValues("fixed-ip", v, []string{"subnet", "ip-address"}, want)
	if err != nil {
		return "", "", err
	}
	subnet, ip = kv["subnet"], kv["ip-address"]
	if subnet == "" && ip == "" {
		return "", "", fmt.Errorf("invalid --fixed-ip %q: want %s", v, want)
	}
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return "", "", fmt.Errorf("invalid --fixed-ip %q: ip-address %q is not an IP address, want %s", v, ip, want)
		}
		ip = a.String()
	}
	return subnet, ip, nil
}

func newPortCreateCmd(f *apiFlags) *cobra.Command {
	var (
		network, vnicType, mac, host, profile, deviceID, deviceOwner, project, description string
		fixedIPs                                                                           []string
		noFixedIP                                                                          bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME --network NET",
		Short: "Create a port",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			fields := map[string]any{"name": args[0], "admin_state_up": true}
			if cmd.Flags().Changed("vnic-type") {
				if err := checkVNICType(vnicType); err != nil {
					return err
				}
				fields["binding:vnic_type"] = vnicType
			}
			if cmd.Flags().Changed("mac-address") {
				hw, err := net.ParseMAC(mac)
				if err != nil || len(hw) != 6 {
					return fmt.Errorf("invalid --mac-address %q: want a MAC address like fa:16:3e:26:e5:27", mac)
				}
				fields["mac_address"] = hw.String()
			}
			if noFixedIP && len(fixedIPs) > 0 {
				return fmt.Errorf("--no-fixed-ip and --fixed-ip exclude each other: give one")
			}
			type fixedIP struct{ subnet, ip string }
			var fips []fixedIP
			for _, v := range fixedIPs {
				s, ip, err := parseFixedIP(v)
				if err != nil {
					return err
				}
				fips = append(fips, fixedIP{s, ip})
			}
			if cmd.Flags().Changed("binding-profile") {
				m, err := parseBindingProfile(profile)
				if err != nil {
					return err
				}
				fields["binding:profile"] = m
			}
			if cmd.Flags().Changed("host") {
				fields["binding:host_id"] = host
			}
			if cmd.Flags().Changed("device-id") {
				fields["device_id"] = deviceID
			}
			if cmd.Flags().Changed("device-owner") {
				fields["device_owner"] = deviceOwner
			}
			if cmd.Flags().Changed("project") {
				fields["tenant_id"] = project
			}
			if cmd.Flags().Changed("description") {
				fields["description"] = description
			}

			n, err := c.FindNetwork(ctx, network)
			if err != nil {
				return fmt.Errorf("--network: %w", err)
			}
			fields["network_id"] = n.ID
			switch {
			case noFixedIP:
				fields["fixed_ips"] = []any{}
			case len(fips) > 0:
				out := make([]map[string]string, 0, len(fips))
				for _, fip := range fips {
					m := map[string]string{}
					if fip.subnet != "" {
						s, err := c.FindSubnet(ctx, fip.subnet)
						if err != nil {
							return fmt.Errorf("--fixed-ip subnet: %w", err)
						}
						m["subnet_id"] = s.ID
					}
					if fip.ip != "" {
						m["ip_address"] = fip.ip
					}
					out = append(out, m)
				}
				fields["fixed_ips"] = out
			}
			p, err := c.CreatePort(ctx, fields)
			if err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), f.json(), p)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&network, "network", "", "network (name or ID) of the port (required)")
	fl.StringVar(&vnicType, "vnic-type", "", "VNIC type: "+strings.Join(api.VNICTypes, ", "))
	fl.StringVar(&mac, "mac-address", "", "MAC address (default: the server picks one)")
	fl.StringArrayVar(&fixedIPs, "fixed-ip", nil, "fixed IP subnet=NAME|ID,ip-address=IP (repeatable)")
	fl.BoolVar(&noFixedIP, "no-fixed-ip", false, "create the port without any IP address")
	fl.StringVar(&host, "host", "", "host to bind the port to (binding:host_id)")
	fl.StringVar(&profile, "binding-profile", "", "binding:profile as a JSON object")
	fl.StringVar(&deviceID, "device-id", "", "device ID, e.g. the server (VM) UUID")
	fl.StringVar(&deviceOwner, "device-owner", "", "device owner, e.g. compute:nova")
	fl.StringVar(&project, "project", "", "owning project (sent as tenant_id)")
	fl.StringVar(&description, "description", "", "description")
	cmd.MarkFlagRequired("network")
	return cmd
}

// fixedIPsCell renders a port's addresses as "10.0.0.5 (subnet-name-or-id)".
func fixedIPsCell(p api.Port, subnetNames map[string]string) string {
	parts := make([]string, 0, len(p.FixedIPs))
	for _, fip := range p.FixedIPs {
		parts = append(parts, fmt.Sprintf("%s (%s)", fip.IPAddress, nameOr(subnetNames, fip.SubnetID)))
	}
	return strings.Join(parts, ", ")
}

func newPortListCmd(f *apiFlags) *cobra.Command {
	var network, deviceID, deviceOwner, name string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List ports",
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
			if cmd.Flags().Changed("device-id") {
				filters.Set("device_id", deviceID)
			}
			if cmd.Flags().Changed("device-owner") {
				filters.Set("device_owner", deviceOwner)
			}
			if cmd.Flags().Changed("name") {
				filters.Set("name", name)
			}
			ports, err := c.ListPorts(cmd.Context(), filters)
			if err != nil {
				return err
			}
			if f.json() {
				return printJSON(cmd.OutOrStdout(), ports)
			}
			var subNames map[string]string
			if slices.ContainsFunc(ports, func(p api.Port) bool { return len(p.FixedIPs) > 0 }) {
				subNames = subnetNames(cmd, c)
			}
			rows := make([][]string, 0, len(ports))
			for _, p := range ports {
				rows = append(rows, []string{p.ID, p.Name, p.MACAddress, fixedIPsCell(p, subNames), p.VNICType, p.Status})
			}
			return printTable(cmd.OutOrStdout(), []string{"ID", "Name", "MAC Address", "Fixed IPs", "VNIC Type", "Status"}, rows)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&network, "network", "", "list only ports of this network (name or ID)")
	fl.StringVar(&deviceID, "device-id", "", "list only ports with this device ID")
	fl.StringVar(&deviceOwner, "device-owner", "", "list only ports with this device owner")
	fl.StringVar(&name, "name", "", "list only ports with this name")
	return cmd
}

func newPortShowCmd(f *apiFlags) *cobra.Command {
	return newShowCmd(f, "port", (*client.Client).FindPort)
}

func newPortSetCmd(f *apiFlags) *cobra.Command {
	var (
		name, host, deviceID, deviceOwner, profile, vnicType, description string
		rev                                                               int64
	)
	cmd := &cobra.Command{
		Use:   "set NAME|ID",
		Short: "Change fields of a port; only the flags given are sent (prints the port with -o json)",
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
			if cmd.Flags().Changed("host") {
				fields["binding:host_id"] = host
			}
			if cmd.Flags().Changed("device-id") {
				fields["device_id"] = deviceID
			}
			if cmd.Flags().Changed("device-owner") {
				fields["device_owner"] = deviceOwner
			}
			if cmd.Flags().Changed("binding-profile") {
				m, err := parseBindingProfile(profile)
				if err != nil {
					return err
				}
				fields["binding:profile"] = m
			}
			if cmd.Flags().Changed("vnic-type") {
				if err := checkVNICType(vnicType); err != nil {
					return err
				}
				fields["binding:vnic_type"] = vnicType
			}
			if len(fields) == 0 {
				return nothingToSet(cmd, []string{"name", "description", "host", "device-id", "device-owner", "binding-profile", "vnic-type"})
			}
			p, err := c.FindPort(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			p, err = c.UpdatePort(cmd.Context(), p.ID, fields, ifRevision(cmd, rev)...)
			if err != nil {
				return err
			}
			if f.json() {
				return printJSON(cmd.OutOrStdout(), p)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "new name")
	fl.StringVar(&description, "description", "", "description")
	fl.StringVar(&host, "host", "", "host to bind the port to (binding:host_id); empty unbinds")
	fl.StringVar(&deviceID, "device-id", "", "device ID")
	fl.StringVar(&deviceOwner, "device-owner", "", "device owner")
	fl.StringVar(&profile, "binding-profile", "", "binding:profile as a JSON object (replaces the whole profile)")
	fl.StringVar(&vnicType, "vnic-type", "", "VNIC type: "+strings.Join(api.VNICTypes, ", "))
	fl.Int64Var(&rev, "if-revision", 0, "apply only if the port's revision_number is still N (If-Match)")
	return cmd
}

func newPortDeleteCmd(f *apiFlags) *cobra.Command {
	return newDeleteCmd(f, "port", func(ctx context.Context, c *client.Client, nameOrID string) error {
		x, err := c.FindPort(ctx, nameOrID)
		if err != nil {
			return err
		}
		return c.DeletePort(ctx, x.ID)
	})
}
