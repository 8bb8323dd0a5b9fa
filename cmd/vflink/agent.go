package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/host/agent"
	"github.com/vflink/vflink/internal/host/hypervisor"
	"github.com/vflink/vflink/internal/host/lldp"
	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
	"github.com/vflink/vflink/internal/lab/labnic"
	"github.com/vflink/vflink/internal/lab/netnshv"
)

// agentConfig is the agent's --config file.
type agentConfig struct {
	DeviceSpec json.RawMessage `json:"device_spec"`
	SysfsRoot  string          `json:"sysfs_root"` // default "/sys"; with "lab": the lab host's tree
	NIC        string          `json:"nic"`        // "netlink" or "lab"
	Hypervisor string          `json:"hypervisor"` // "none", "libvirt" or "netns" (the lab's)
	LibvirtURI string          `json:"libvirt_uri"`
	// LLDP: "auto" (lldpd when it runs, else native), "none", or "lldpd:<socket>" (auto with the
	// lldpd whose control socket is <socket>, e.g. the lab host's).
	LLDP string `json:"lldp"`
	// Lab says which lab host this agent is; needed by nic "lab" and hypervisor "netns".
	Lab *agentLabConfig `json:"lab"`
	// StateDir holds the agent's VF journal; default /var/lib/vflink/agent/<host>.
	StateDir string `json:"state_dir"`
}

// agentLabConfig is the agent config's "lab" object: the lab's plan and this host's index.
type agentLabConfig struct {
	Dir        string `json:"dir"`
	Host       int    `json:"host"`
	Hosts      int    `json:"hosts"`
	PFsPerHost int    `json:"pfs_per_host"`
	VFsPerPF   int    `json:"vfs_per_pf"`
	Leaves     int    `json:"leaves"`
}

func (c *agentLabConfig) plan() lab.Plan {
	return lab.Plan{Hosts: c.Hosts, PFsPerHost: c.PFsPerHost, VFsPerPF: c.VFsPerPF, Leaves: c.Leaves, Dir: c.Dir}
}

func loadAgentConfig(path string) (agentConfig, []sriov.DeviceSpec, error) {
	cfg := agentConfig{NIC: "netlink", Hypervisor: "none", LibvirtURI: "qemu:///system", LLDP: "auto"}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, nil, fmt.Errorf("read agent config: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, nil, fmt.Errorf("agent config %s: %w (want {\"device_spec\": [...], \"sysfs_root\", \"nic\", \"hypervisor\", \"libvirt_uri\", \"lldp\", \"lab\", \"state_dir\"})", path, err)
	}
	specs, err := sriov.ParseDeviceSpecs(cfg.DeviceSpec)
	if err != nil {
		return cfg, nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	if sock, ok := strings.CutPrefix(cfg.LLDP, "lldpd:"); (!ok || sock == "") && cfg.LLDP != "auto" && cfg.LLDP != "none" {
		return cfg, nil, fmt.Errorf("agent config %s: lldp %q is not known; allowed: auto, none, lldpd:<control socket>", path, cfg.LLDP)
	}
	switch cfg.NIC {
	case "netlink", "lab":
	default:
		return cfg, nil, fmt.Errorf("agent config %s: nic %q is not known; allowed: netlink, lab", path, cfg.NIC)
	}
	switch cfg.Hypervisor {
	case "none", "", "libvirt", "netns":
	default:
		return cfg, nil, fmt.Errorf("agent config %s: hypervisor %q is not known; allowed: none, libvirt, netns", path, cfg.Hypervisor)
	}
	if cfg.NIC == "lab" || cfg.Hypervisor == "netns" {
		if cfg.Lab == nil {
			return cfg, nil, fmt.Errorf("agent config %s: nic \"lab\" and hypervisor \"netns\" need \"lab\": {\"dir\", \"host\", \"hosts\", \"pfs_per_host\", \"vfs_per_pf\", \"leaves\"}", path)
		}
		if err := cfg.Lab.plan().Check(); err != nil {
			return cfg, nil, fmt.Errorf("agent config %s: lab: %w", path, err)
		}
		if cfg.Lab.Host < 1 || cfg.Lab.Host > cfg.Lab.Hosts {
			return cfg, nil, fmt.Errorf("agent config %s: lab host %d is out of range 1-%d", path, cfg.Lab.Host, cfg.Lab.Hosts)
		}
	}
	if cfg.SysfsRoot == "" {
		cfg.SysfsRoot = "/sys"
		if cfg.NIC == "lab" {
			cfg.SysfsRoot = cfg.Lab.plan().SysfsRoot(cfg.Lab.Host)
		}
	}
	return cfg, specs, nil
}

func newAgentCmd() *cobra.Command {
	var serverURL, host, configPath, user, passwordFile, project, token, logLevel, authURL string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent: SR-IOV inventory, VF allocation and programming, VM attach",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			cfg, specs, err := loadAgentConfig(configPath)
			if err != nil {
				return err
			}
			if host == "" {
				if host, err = os.Hostname(); err != nil {
					return err
				}
			}
			opts := []client.Option{client.WithToken(token)}
			if token == "" {
				pw, err := os.ReadFile(passwordFile)
				if err != nil {
					return fmt.Errorf("the agent needs --token or --password-file: %w", err)
				}
				if authURL == "" {
					authURL = strings.TrimRight(serverURL, "/") + "/v3" // the server's built-in Keystone
				}
				opts = []client.Option{client.WithLogin(client.Credentials{AuthURL: authURL,
					Username: user, Password: strings.TrimSpace(string(pw)), Project: project})}
			}
			c, err := client.New(serverURL, opts...)
			if err != nil {
				return err
			}
			var hv hypervisor.Hypervisor
			switch cfg.Hypervisor {
			case "none", "":
			case "libvirt":
				hv = &hypervisor.Libvirt{URI: cfg.LibvirtURI}
			case "netns":
				hv = netnshv.New(netnshv.Config{Plan: cfg.Lab.plan(), Host: cfg.Lab.Host, Log: log})
			default:
				return fmt.Errorf("agent config: hypervisor %q is not known; allowed: none, libvirt, netns", cfg.Hypervisor)
			}
			nic := agentNIC(cfg, log)
			fs := sriov.NewFS(cfg.SysfsRoot)
			var src lldp.Runner
			if cfg.LLDP != "none" {
				inv, err := fs.Scan(specs)
				if err != nil {
					return err
				}
				var pfs []string
				for _, pf := range inv.PFs {
					pfs = append(pfs, pf.Name)
				}
				lld := &lldp.Lldpd{}
				if sock, ok := strings.CutPrefix(cfg.LLDP, "lldpd:"); ok {
					lld.Socket = sock
				}
				if src, err = lldp.Auto(cmd.Context(), lld, pfs, log); err != nil {
					return fmt.Errorf("lldp: %w (set \"lldp\": \"none\" in the config to run without)", err)
				}
			}
			stateDir := cfg.StateDir
			if stateDir == "" {
				stateDir = filepath.Join("/var/lib/vflink/agent", host)
			}
			a, err := agent.New(agent.Config{Host: host, Specs: specs, FS: fs, NIC: nic,
				Client: c, Hypervisor: hv, LLDP: src, Logger: log, StateDir: stateDir})
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&serverURL, "server", "http://127.0.0.1:9696", "URL of the vflink server")
	f.StringVar(&host, "host", "", "this host's name (default: the hostname)")
	f.StringVar(&configPath, "config", "/etc/vflink/agent.json", "agent config: device_spec (Nova's JSON form), sysfs_root, nic, hypervisor, state_dir")
	f.StringVar(&user, "username", "vflink-agent", "service user")
	f.StringVar(&passwordFile, "password-file", "/etc/vflink/agent-password", "file holding the service user's password")
	f.StringVar(&project, "project", "service", "project of the service user")
	f.StringVar(&token, "token", "", "a token instead of a login")
	f.StringVar(&authURL, "auth-url", "", "Keystone v3 URL to log in at, when the server validates tokens at an external Keystone (default: <server>/v3)")
	f.StringVar(&logLevel, "log-level", "info", "log level")
	cmd.AddCommand(newFindMACCmd(), newInventoryCmd())
	return cmd
}

// agentNIC is the VF programming backend an agent config names.
func agentNIC(cfg agentConfig, log *slog.Logger) sriov.Programmer {
	if cfg.NIC == "lab" {
		return labnic.New(labnic.Config{Plan: cfg.Lab.plan(), Host: cfg.Lab.Host, Log: log})
	}
	return sriov.NewNetlink(nil)
}

func newInventoryCmd() *cobra.Command {
	var configPath string
	var nova, state bool
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Print the SR-IOV PFs and VFs the agent's device_spec selects on this host (JSON)",
		Long: `Prints the inventory the agent would register: each PF its device_spec selects, with its VFs
(PCI address, vendor and product IDs, driver, netdev). --nova prints the same as the PCI devices
Nova's PCI tracker reports (address, vendor_id, product_id, dev_type, parent_addr,
physical_network), to check a compute host's [pci] device_spec against what vflink sees.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, specs, err := loadAgentConfig(configPath)
			if err != nil {
				return err
			}
			inv, err := sriov.NewFS(cfg.SysfsRoot).Scan(specs)
			if err != nil {
				return err
			}
			e := json.NewEncoder(cmd.OutOrStdout())
			e.SetIndent("", "  ")
			if state {
				nic := agentNIC(cfg, nil)
				out := map[string]string{}
				for _, pf := range inv.PFs {
					for _, vf := range pf.VFs {
						st, err := sriov.Save(nic, pf.Name, vf.Index)
						if err != nil {
							return fmt.Errorf("read VF %d of %s: %w", vf.Index, pf.Name, err)
						}
						out[vf.PCIAddress] = st.String()
					}
				}
				return e.Encode(out)
			}
			if !nova {
				return e.Encode(inv)
			}
			devs := []map[string]string{}
			for _, pf := range inv.PFs {
				devs = append(devs, map[string]string{"address": pf.PCIAddress, "vendor_id": pf.Vendor, "product_id": pf.Device,
					"dev_type": "type-PF", "physical_network": pf.PhysicalNetwork})
				for _, vf := range pf.VFs {
					devs = append(devs, map[string]string{"address": vf.PCIAddress, "vendor_id": vf.Vendor, "product_id": vf.Device,
						"dev_type": "type-VF", "parent_addr": pf.PCIAddress, "physical_network": pf.PhysicalNetwork})
				}
			}
			return e.Encode(devs)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "/etc/vflink/agent.json", "agent config (device_spec, sysfs_root)")
	cmd.Flags().BoolVar(&nova, "nova", false, "print Nova's PCI device form")
	cmd.Flags().BoolVar(&state, "state", false, "print each VF's programmed state (MAC, VLAN, spoof check, link state, trust) by PCI address, read from the NIC")
	return cmd
}

func newFindMACCmd() *cobra.Command {
	var sysfs, host, configPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "find-mac MAC",
		Short: "Find the VF whose MAC is MAC on any PF of this host (the seed's step-4 script)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mac, err := net.ParseMAC(args[0])
			if err != nil {
				return fmt.Errorf("%q is not a MAC address like 02:5a:0d:c4:39:77", args[0])
			}
			if host == "" {
				host, _ = os.Hostname()
			}
			var nic sriov.Programmer = sriov.NewNetlink(nil)
			lld := &lldp.Lldpd{}
			if configPath != "" { // the agent's own view: its sysfs root, NIC backend and lldpd
				cfg, _, err := loadAgentConfig(configPath)
				if err != nil {
					return err
				}
				if !cmd.Flags().Changed("sysfs-root") {
					sysfs = cfg.SysfsRoot
				}
				if cfg.NIC == "lab" {
					nic = labnic.New(labnic.Config{Plan: cfg.Lab.plan(), Host: cfg.Lab.Host})
					if !cmd.Flags().Changed("host") {
						host = lab.HostName(cfg.Lab.Host)
					}
				}
				if sock, ok := strings.CutPrefix(cfg.LLDP, "lldpd:"); ok {
					lld.Socket = sock
				}
			}
			m, err := sriov.FindMAC(sriov.NewFS(sysfs), nic, mac)
			if err != nil {
				return fmt.Errorf("find %s: %w", mac, err)
			}
			sw, sport := "", ""
			if lld.Running(cmd.Context()) {
				if ns, err := lld.Neighbors(cmd.Context()); err == nil {
					for _, n := range ns {
						if n.Interface == m.PF {
							sw, sport = n.SystemName, n.SwitchPort()
						}
					}
				}
			}
			out := map[string]any{"host": host, "switch": sw, "switch_port": sport, "pf": m.PF, "pf_pci_address": m.PFPCIAddress, "vf": m.VFIndex,
				"vf_pci_address": m.VFPCIAddress, "mac": mac.String(), "vlan": m.VLAN, "spoof_check": m.SpoofCheck, "trust": m.Trust, "link_state": m.LinkState}
			w := cmd.OutOrStdout()
			if asJSON {
				e := json.NewEncoder(w)
				e.SetIndent("", "  ")
				return e.Encode(out)
			}
			onoff := map[bool]string{true: "on", false: "off"}
			fmt.Fprintf(w, "host %s pf %s (%s) vf %d (%s): MAC %s, vlan %d, spoof checking %s, trust %s, link-state %s\n",
				host, m.PF, m.PFPCIAddress, m.VFIndex, m.VFPCIAddress, mac, m.VLAN, onoff[m.SpoofCheck], onoff[m.Trust], m.LinkState)
			if sw == "" {
				fmt.Fprintf(w, "switch: unknown (lldpd is not running or hears no neighbor on %s)\n", m.PF)
			} else {
				fmt.Fprintf(w, "switch %s port %s\n", sw, sport)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sysfs, "sysfs-root", "/sys", "root of sysfs")
	cmd.Flags().StringVar(&host, "host", "", "host name to print (default: the hostname)")
	cmd.Flags().StringVar(&configPath, "config", "", "an agent config: use its sysfs root, NIC backend (e.g. the lab's) and lldpd socket")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
