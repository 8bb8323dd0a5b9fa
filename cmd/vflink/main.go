// Command vflink is the one binary of vflink: the controller (`vflink server`), the admin verbs over
// the Neutron-compatible API (`vflink network|subnet|port ...`) and the benchmarks (`vflink bench`).
// main stays thin: each subcommand wires its parts explicitly in its own file.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vflink:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	root := &cobra.Command{
		Use:           "vflink",
		Short:         "SR-IOV virtual functions wired into the EVPN-VXLAN fabric",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServerCmd(),
		newNetworkCmd(),
		newSubnetCmd(),
		newPortCmd(),
		newBenchCmd(),
		newAgentCmd(),
		newDeviceCmd(),
		newDevsimCmd(),
		newLabCmd(),
	)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
