package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
)

func newDeviceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Switches vflink configures (fabric API /v1/devices)"}
	f := addAPIFlags(cmd)
	cmd.AddCommand(newDeviceCreateCmd(f), newDeviceListCmd(f), newDeviceSetCmd(f), newDeviceConfigCmd(f),
		newShowCmd(f, "device", func(c *client.Client, ctx context.Context, name string) (*api.Device, error) {
			return c.Device(ctx, name)
		}),
		newDeleteCmd(f, "device", func(ctx context.Context, c *client.Client, name string) error { return c.DeleteDevice(ctx, name) }))
	return cmd
}

// deviceFields are the flags of device create and device set; only flags given are sent.
type deviceFields struct {
	driver, address, chassis, rewrite, user, passwordFile, hostKey, desc string
	asn                                                                  int64
}

func (d *deviceFields) register(fl *pflag.FlagSet) {
	fl.StringVar(&d.driver, "driver", "junos", "junos (NETCONF over SSH) or ovs")
	fl.StringVar(&d.address, "address", "", "management address HOST:PORT")
	fl.StringVar(&d.chassis, "chassis-mac", "", "chassis MAC (matches the LLDP chassis ID)")
	fl.Int64Var(&d.asn, "asn", 0, "fabric ASN (route targets)")
	fl.StringVar(&d.rewrite, "port-rewrite", "", "REGEX=REPLACEMENT applied to LLDP port names")
	fl.StringVar(&d.user, "username", "", "login user")
	fl.StringVar(&d.passwordFile, "password-file", "", "file holding the login password")
	fl.StringVar(&d.hostKey, "host-key", "", "pinned SSH host key (authorized_keys form)")
	fl.StringVar(&d.desc, "description", "", "free text")
}

func (d *deviceFields) fields(fl *pflag.FlagSet) (map[string]any, error) {
	fields := map[string]any{}
	for flag, field := range map[string]string{"driver": "driver", "address": "management_address",
		"chassis-mac": "chassis_mac", "description": "description"} {
		if fl.Changed(flag) {
			fields[field] = fl.Lookup(flag).Value.String()
		}
	}
	if fl.Changed("asn") {
		fields["asn"] = d.asn
	}
	if fl.Changed("port-rewrite") {
		re, repl, ok := strings.Cut(d.rewrite, "=")
		if !ok && d.rewrite != "" {
			return nil, fmt.Errorf("--port-rewrite %q: want REGEX=REPLACEMENT, e.g. '^(\\d+)$=xe-0/0/$1'", d.rewrite)
		}
		fields["port_name_rewrite"] = map[string]string{"regex": re, "replacement": repl}
	}
	if d.user != "" {
		creds := map[string]string{"username": d.user}
		if d.passwordFile != "" {
			b, err := os.ReadFile(d.passwordFile)
			if err != nil {
				return nil, fmt.Errorf("--password-file: %w", err)
			}
			creds["password"] = strings.TrimSpace(string(b))
		}
		if d.hostKey != "" {
			creds["host_key"] = d.hostKey
		}
		fields["credentials"] = creds
	} else if d.passwordFile != "" || d.hostKey != "" {
		return nil, fmt.Errorf("--password-file and --host-key need --username (credentials are replaced as a whole)")
	}
	return fields, nil
}

func newDeviceCreateCmd(f *apiFlags) *cobra.Command {
	var d deviceFields
	cmd := &cobra.Command{
		Use:   "create NAME --driver junos|ovs --address HOST:PORT",
		Short: "Register a switch (credentials are write-only: never shown again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fields, err := d.fields(cmd.Flags())
			if err != nil {
				return err
			}
			fields["name"], fields["driver"], fields["management_address"] = args[0], d.driver, d.address
			c, err := f.client()
			if err != nil {
				return err
			}
			dev, err := c.CreateDevice(cmd.Context(), fields)
			if err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), f.json(), dev)
		},
	}
	d.register(cmd.Flags())
	return cmd
}

func newDeviceSetCmd(f *apiFlags) *cobra.Command {
	var d deviceFields
	cmd := &cobra.Command{
		Use:   "set NAME [flags]",
		Short: "Change a switch (only the flags given; credentials are replaced as a whole)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fields, err := d.fields(cmd.Flags())
			if err != nil {
				return err
			}
			if len(fields) == 0 {
				return fmt.Errorf("nothing to change: give at least one flag (see --help)")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			dev, err := c.UpdateDevice(cmd.Context(), args[0], fields)
			if err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), f.json(), dev)
		},
	}
	d.register(cmd.Flags())
	return cmd
}

func newDeviceConfigCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "config NAME",
		Short: "Print the vflink configuration the switch runs, read from the switch now (set format for junos)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			lines, err := c.DeviceConfig(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.json() {
				return printJSON(cmd.OutOrStdout(), lines)
			}
			for _, l := range lines {
				fmt.Fprintln(cmd.OutOrStdout(), l)
			}
			return nil
		},
	}
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
