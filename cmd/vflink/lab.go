package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vflink/vflink/internal/fabric/devsim"
	"github.com/vflink/vflink/internal/lab"
	"github.com/vflink/vflink/internal/lab/cloud"
	"github.com/vflink/vflink/internal/lab/demo"
	"github.com/vflink/vflink/internal/lab/leaf"
	"github.com/vflink/vflink/internal/lab/topo"
)

func newLabCmd() *cobra.Command {
	p := lab.Default
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "The whole fabric on one machine with real packets (root; Open vSwitch, lldpd, namespaces)",
		Long: `vflink lab builds, in network namespaces it creates, compute hosts whose SR-IOV NICs are
emulated by Open vSwitch (userspace datapath) and veth pairs, leaf switches simulated by vflink devsim
that drive their OVS bridges from the configuration vflink commits, lldpd announcing Junos port
names, and vflink's server and agents; then the real openstack CLI works against it (clouds.yaml in
the lab directory). Nothing is placed in the root namespace; the lab uses addresses from ` + lab.AddressRange + `
only inside its namespaces and refuses to start if that range overlaps this machine's addresses or routes.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&p.Dir, "dir", p.Dir, "the lab's state directory")
	cmd.AddCommand(newLabUpCmd(&p), newLabDownCmd(&p), newLabStatusCmd(&p), newLabExecCmd(&p), newLabDemoCmd(&p), newLabDevsimCmd())
	return cmd
}

func labSizeFlags(cmd *cobra.Command, p *lab.Plan) {
	f := cmd.Flags()
	f.IntVar(&p.Hosts, "hosts", p.Hosts, "compute hosts (1-8)")
	f.IntVar(&p.PFsPerHost, "pfs-per-host", p.PFsPerHost, "PFs per host (1-4); PF k of host i is cabled to leaf (i-1+k) mod leaves + 1")
	f.IntVar(&p.VFsPerPF, "vfs-per-pf", p.VFsPerPF, "VFs per PF (1-32)")
	f.IntVar(&p.Leaves, "leaves", p.Leaves, "leaf switches (1-8)")
}

// labUp builds the topology and starts the cloud; on failure it tears everything down.
func labUp(ctx context.Context, p lab.Plan, out *os.File) (*cloud.Cloud, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	t := time.Now()
	if _, err := topo.Up(ctx, p, log); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "lab: topology up in %.1fs (%d hosts x %d PFs x %d VFs, %d leaves, Open vSwitch userspace datapath)\n",
		time.Since(t).Seconds(), p.Hosts, p.PFsPerHost, p.VFsPerPF, p.Leaves)
	t = time.Now()
	c, err := cloud.Start(ctx, p, exe, log)
	if err != nil {
		labDown(context.Background(), p.Dir)
		return nil, fmt.Errorf("start vflink on the lab: %w (logs were in %s/logs)", err, p.Dir)
	}
	fmt.Fprintf(out, "lab: vflink server, %d agents and %d simulated leaves up in %.1fs; every PF hears its leaf over LLDP\n",
		p.Hosts, p.Leaves, time.Since(t).Seconds())
	return c, nil
}

func labDown(ctx context.Context, dir string) error {
	err1 := cloud.StopDir(dir)
	err2 := topo.Down(ctx, dir, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	return errors.Join(err1, err2)
}

func newLabUpCmd(p *lab.Plan) *cobra.Command {
	var topoOnly bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build the lab and start vflink on it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topoOnly {
				return labTopologyOnly(cmd.Context(), *p)
			}
			c, err := labUp(cmd.Context(), *p, os.Stdout)
			if err != nil {
				return err
			}
			fmt.Printf("lab: up. The openstack CLI: export OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=vflink\n", c.CloudsYAML)
			fmt.Printf("lab: vflink CLI: export VFLINK_URL=%s (admin password in %s); vflink lab down removes it all\n", c.URL, c.PasswordFile)
			return nil
		},
	}
	labSizeFlags(cmd, p)
	cmd.Flags().BoolVar(&topoOnly, "topology-only", false, "build the hosts, NICs, leaves' bridges and lldpd, and write the agents' configurations, but start no vflink process (run your own server and agents on it)")
	return cmd
}

// labTopologyOnly builds the topology and writes the agent configurations.
func labTopologyOnly(ctx context.Context, p lab.Plan) error {
	if err := p.Check(); err != nil {
		return err
	}
	t := time.Now()
	if _, err := topo.Up(ctx, p, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))); err != nil {
		return err
	}
	paths, err := cloud.WriteAgentConfigs(p)
	if err != nil {
		labDown(context.Background(), p.Dir)
		return err
	}
	fmt.Printf("lab: topology up in %.1fs (%d hosts x %d PFs x %d VFs, %d leaves); no vflink process started\n",
		time.Since(t).Seconds(), p.Hosts, p.PFsPerHost, p.VFsPerPF, p.Leaves)
	for i, path := range paths {
		fmt.Printf("lab: agent config of %s: %s\n", lab.HostName(i+1), path)
	}
	return nil
}

func newLabDownCmd(p *lab.Plan) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove the lab: processes, namespaces, state (idempotent; also after a crash)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := labDown(cmd.Context(), p.Dir); err != nil {
				return err
			}
			fmt.Println("lab: down")
			return nil
		},
	}
}

func newLabStatusCmd(p *lab.Plan) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the lab's processes, hosts and switches",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cloud.Load(p.Dir)
			if errors.Is(err, os.ErrNotExist) {
				fmt.Printf("lab: not up (no %s)\n", p.Dir)
				return nil
			}
			if err != nil {
				return err
			}
			for role, ok := range c.Alive() {
				st := "running"
				if !ok {
					st = "NOT RUNNING"
				}
				fmt.Printf("process %-10s %s\n", role, st)
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			hosts, err := cl.Hosts(cmd.Context())
			if err != nil {
				return fmt.Errorf("server at %s: %w", c.URL, err)
			}
			for _, h := range hosts {
				for _, pf := range h.PFs {
					link := "no LLDP neighbor"
					if pf.Link != nil {
						link = pf.Link.SwitchName + " " + pf.Link.PortID
					}
					fmt.Printf("host %s PF %s: %d VFs, cabled to %s\n", h.Name, pf.Name, pf.NumVFs, link)
				}
			}
			devs, err := cl.Devices(cmd.Context())
			if err != nil {
				return err
			}
			for _, d := range devs {
				fmt.Printf("switch %s: reachable %t, in sync %t, commits %d %s\n", d.Name, d.Status.Reachable, d.Status.InSync, d.Status.Commits, d.Status.LastError)
			}
			fmt.Printf("openstack CLI: export OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=vflink\n", c.CloudsYAML)
			return nil
		},
	}
}

func newLabExecCmd(p *lab.Plan) *cobra.Command {
	return &cobra.Command{
		Use:   "exec NAME -- CMD [ARGS...]",
		Short: "Run a command in a host (h1), the fabric (fabric) or a VM (its server name or ID) namespace",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, argv := args[0], args[1:]
			ns := ""
			switch {
			case name == "fabric":
				ns = lab.FabricNS
			case strings.HasPrefix(name, "h") && len(name) > 1 && strings.Trim(name[1:], "0123456789") == "":
				var i int
				fmt.Sscan(name[1:], &i)
				ns = lab.HostNS(i)
			default:
				c, err := cloud.Load(p.Dir)
				if err != nil {
					return fmt.Errorf("lab: not up: %w", err)
				}
				id, err := serverID(c, name)
				if err != nil {
					return err
				}
				ns = lab.VMNS(id)
			}
			x := exec.CommandContext(cmd.Context(), "ip", append([]string{"netns", "exec", ns}, argv...)...)
			x.Stdin, x.Stdout, x.Stderr = os.Stdin, os.Stdout, os.Stderr
			return x.Run()
		},
	}
}

// serverID finds a server's ID by name or ID through the openstack CLI's clouds.yaml.
func serverID(c *cloud.Cloud, name string) (string, error) {
	x := exec.Command("openstack", "server", "show", name, "-f", "value", "-c", "id")
	x.Env = append(os.Environ(), "OS_CLIENT_CONFIG_FILE="+c.CloudsYAML, "OS_CLOUD=vflink")
	out, err := x.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s is not fabric, a host (h1...) or a server: %s", name, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

func newLabDemoCmd(p *lab.Plan) *cobra.Command {
	var scenario string
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo [--scenario access|trunk|multihoming]",
		Short: "Run the seed's workflow on the lab with the openstack CLI and prove it with packets",
		Long: `Brings the lab up (unless it is up), runs the scenario, and takes the lab down again (unless
--keep). The last line is "demo: PASS <scenario> <seconds>s" or "demo: FAIL <step>: <reason>"; the
exit status is non-zero on failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			failf := func(step string, err error) error {
				fmt.Printf("demo: FAIL %s: %v\n", step, err)
				cmd.SilenceErrors = true
				return err
			}
			c, err := cloud.Load(p.Dir)
			up := false
			if err != nil {
				if c, err = labUp(ctx, *p, os.Stdout); err != nil {
					return failf("lab up", err)
				}
				up = true
			}
			if up && !keep {
				defer func() {
					if err := labDown(context.Background(), p.Dir); err != nil {
						fmt.Fprintf(os.Stderr, "lab down: %v\n", err)
					}
				}()
			}
			exe, _ := os.Executable()
			d := &demo.Demo{Plan: *p, Cloud: c, Exe: exe, Out: os.Stdout}
			if _, err := d.Run(ctx, scenario); err != nil {
				var f *demo.Failure
				if errors.As(err, &f) {
					return failf(f.Step, errors.New(f.Reason))
				}
				return failf("demo", err)
			}
			fmt.Printf("demo: PASS %s %.1fs\n", scenario, time.Since(start).Seconds())
			return nil
		},
	}
	labSizeFlags(cmd, p)
	cmd.Flags().StringVar(&scenario, "scenario", "access", "access, trunk or multihoming")
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the lab up afterwards")
	return cmd
}

// newLabDevsimCmd is the lab's leaves: devsim devices whose committed configuration drives the
// leaves' OVS bridges. Started by `vflink lab up`.
func newLabDevsimCmd() *cobra.Command {
	p := lab.Default
	var passwordFile string
	cmd := &cobra.Command{
		Use:    "devsim",
		Short:  "The lab's simulated leaves (started by vflink lab up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			b, err := os.ReadFile(passwordFile)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			cfgs := map[string]leaf.Config{}
			for j := 1; j <= p.Leaves; j++ {
				cfgs[lab.LeafName(j)] = leaf.Config{Plan: p, Leaf: j, Vsctl: "ovs-vsctl", Log: log}
			}
			sim := devsim.New(devsim.Options{Username: "vflink", Password: strings.TrimSpace(string(b)), Log: log,
				OnCommit: leaf.Hook(func(dev string) (leaf.Config, bool) { c, ok := cfgs[dev]; return c, ok })})
			defer sim.Close()
			var out []cloud.Leaf
			for j := 1; j <= p.Leaves; j++ {
				d, err := sim.Add(lab.LeafName(j), "127.0.0.1:0")
				if err != nil {
					return err
				}
				out = append(out, cloud.Leaf{Name: d.Name(), Address: d.Addr(), HostKey: d.HostKey()})
			}
			js, _ := json.MarshalIndent(out, "", "  ")
			tmp := filepath.Join(p.Dir, ".devsim.json.tmp")
			if err := os.WriteFile(tmp, js, 0o600); err != nil {
				return err
			}
			if err := os.Rename(tmp, cloud.DevsimFile(p.Dir)); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.Dir, "dir", p.Dir, "the lab's state directory")
	labSizeFlags(cmd, &p)
	f.StringVar(&passwordFile, "password-file", "", "the leaves' NETCONF password")
	return cmd
}
