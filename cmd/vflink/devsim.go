package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vflink/vflink/internal/fabric/devsim"
)

// devsimDevice is one line of `vflink devsim` output.
type devsimDevice struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	HostKey string `json:"host_key"`
}

func newDevsimCmd() *cobra.Command {
	var (
		devices                            int
		prefix, listen, username, passFile string
		interfaces, output, logLevel       string
		basePort                           int
		latency, confirmUnit               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "devsim",
		Short: "Run simulated Junos leaf switches (NETCONF over SSH) on loopback",
		Long: `Run N simulated Junos-like leaf switches named <prefix>1..<prefix>N, each speaking NETCONF over
SSH on its own loopback port. Prints one line per device: name, address, SSH host key (or a JSON
list with -o json), then runs until interrupted.

The password is read from --password-file, else from the environment variable
VFLINK_DEVSIM_PASSWORD, else it is "vflink".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != outputTable && output != outputJSON {
				return fmt.Errorf("invalid --output %q: want table or json", output)
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			addrs, err := devsim.ListenAddrs(listen, basePort, devices)
			if err != nil {
				return fmt.Errorf("--listen/--base-port/--devices: %w", err)
			}
			ports, err := devsim.ParseInterfaces(interfaces)
			if err != nil {
				return fmt.Errorf("--interfaces: %w", err)
			}
			password := os.Getenv("VFLINK_DEVSIM_PASSWORD")
			if passFile != "" {
				b, err := os.ReadFile(passFile)
				if err != nil {
					return fmt.Errorf("--password-file: %w", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
				if password == "" {
					return fmt.Errorf("--password-file %s is empty", passFile)
				}
			}
			if password == "" {
				password = "vflink"
			}
			if username == "" {
				return fmt.Errorf("--username is empty")
			}
			sim := devsim.New(devsim.Options{
				Username:      username,
				Password:      password,
				CommitLatency: latency,
				ConfirmUnit:   confirmUnit,
				Interfaces:    ports,
				Log:           slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl})),
			})
			defer sim.Close()
			var out []devsimDevice
			for i, addr := range addrs {
				d, err := sim.Add(fmt.Sprintf("%s%d", prefix, i+1), addr)
				if err != nil {
					return err
				}
				out = append(out, devsimDevice{Name: d.Name(), Address: d.Addr(), HostKey: d.HostKey()})
			}
			w := cmd.OutOrStdout()
			if output == outputJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				for _, d := range out {
					fmt.Fprintf(w, "%s %s %s\n", d.Name, d.Address, d.HostKey)
				}
			}
			<-cmd.Context().Done()
			return sim.Close()
		},
	}
	f := cmd.Flags()
	f.IntVar(&devices, "devices", 2, "number of devices")
	f.StringVar(&prefix, "name-prefix", "leaf", "device names are <prefix>1, <prefix>2, ...")
	f.StringVar(&listen, "listen", "127.0.0.1", "loopback address to listen on")
	f.IntVar(&basePort, "base-port", 0, "port of the first device, the others on the next ports (0: an ephemeral port each)")
	f.StringVar(&username, "username", "vflink", "SSH user name the devices accept")
	f.StringVar(&passFile, "password-file", "", "file holding the SSH password (default: env VFLINK_DEVSIM_PASSWORD, else \"vflink\")")
	f.DurationVar(&latency, "commit-latency", 0, "how long each commit takes")
	f.DurationVar(&confirmUnit, "confirm-unit", time.Minute, "unit of <confirm-timeout> (minutes on Junos)")
	f.StringVar(&interfaces, "interfaces", "xe-0/0/0-47", "physical ports of each device: names or ranges, comma-separated")
	f.StringVarP(&output, "output", "o", outputTable, "output format: table or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
