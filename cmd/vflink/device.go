package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
)

func newDeviceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Switches vflink configures (fabric API /v1/devices)"}
	f := addAPIFlags(cmd)
	cmd.AddCommand(newDeviceCreateCmd(f), newDeviceListCmd(f),
		newShowCmd(f, "device", func(c *client.Client, ctx context.Context, name string) (*api.Device, error) {
			return c.Device(ctx, name)
		}),
		newDeleteCmd(f, "device", func(ctx context.Context, c *client.Client, name string) error { return c.DeleteDevice(ctx, name) }))
	return cmd
}

func newDeviceCreateCmd(f *apiFlags) *cobra.Command {
	var driver, address, chassis, rewrite, user, passwordFile, hostKey, desc string
	var asn int64
	cmd := &cobra.Command{
		Use:   "create NAME --driver junos|ovs --address HOST:PORT",
		Short: "Register a switch (credentials are write-only: never shown again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fields := map[string]any{"name": args[0], "driver": driver, "management_address": address}
			if chassis != "" {
				fields["chassis_mac"] = chassis
			}
			if cmd.Flags().Changed("asn") {
				fields["asn"] = asn
			}
			if desc != "" {
				fields["description"] = desc
			}
			if rewrite != "" {
				re, repl, ok := strings.Cut(rewrite, "=")
				if !ok {
					return fmt.Errorf("--port-rewrite %q: want REGEX=REPLACEMENT, e.g. '^(\\d+)$=xe-0/0/$1'", rewrite)
				}
				fields["port_name_rewrite"] = map[string]string{"regex": re, "replacement": repl}
			}
			if user != "" {
				creds := map[string]string{"username": user}
				if passwordFile != "" {
					b, err := os.ReadFile(passwordFile)
					if err != nil {
						return fmt.Errorf("--password-file: %w", err)
					}
					creds["password"] = strings.TrimSpace(string(b))
				}
				if hostKey != "" {
					creds["host_key"] = hostKey
				}
				fields["credentials"] = creds
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			d, err := c.CreateDevice(cmd.Context(), fields)
			if err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), f.json(), d)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&driver, "driver", "junos", "junos (NETCONF over SSH) or ovs")
	fl.StringVar(&address, "address", "", "management address HOST:PORT")
	fl.StringVar(&chassis, "chassis-mac", "", "chassis MAC (matches the LLDP chassis ID)")
	fl.Int64Var(&asn, "asn", 0, "fabric ASN (route targets)")
	fl.StringVar(&rewrite, "port-rewrite", "", "REGEX=REPLACEMENT applied to LLDP port names")
	fl.StringVar(&user, "username", "", "login user")
	fl.StringVar(&passwordFile, "password-file", "", "file holding the login password")
	fl.StringVar(&hostKey, "host-key", "", "pinned SSH host key (authorized_keys form)")
	fl.StringVar(&desc, "description", "", "free text")
	return cmd
}

func newDeviceListCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List switches",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ds, err := c.Devices(cmd.Context())
			if err != nil {
				return err
			}
			if f.json() {
				return printJSON(cmd.OutOrStdout(), ds)
			}
			rows := make([][]string, 0, len(ds))
			for _, d := range ds {
				asn := ""
				if d.ASN != 0 {
					asn = strconv.FormatUint(uint64(d.ASN), 10)
				}
				rows = append(rows, []string{d.Name, d.Driver, d.ManagementAddress, d.ChassisMAC, asn,
					strconv.FormatBool(d.Status.Reachable), strconv.FormatBool(d.Status.InSync)})
			}
			return printTable(cmd.OutOrStdout(), []string{"Name", "Driver", "Address", "Chassis MAC", "ASN", "Reachable", "In sync"}, rows)
		},
	}
}
