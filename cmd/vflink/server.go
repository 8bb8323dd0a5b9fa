package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vflink/vflink/internal/server"
)

func newServerCmd() *cobra.Command {
	var cfg server.Config
	var endpoints, logLevel string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the vflink controller: Neutron-compatible API over etcd",
		Long: `Run the vflink controller. By default it keeps its state in an embedded etcd member in
--data-dir (listeners on loopback only); --etcd-endpoints selects an external etcd cluster instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				// a server holds large, short-lived lists (10,000 ports decoded per list): collect
				// more often; measured here: RSS after 10,000 ports and three full lists 139 MB
				// instead of 193 MB, at the same ports/s
				debug.SetGCPercent(50)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			for _, e := range strings.Split(endpoints, ",") {
				if e = strings.TrimSpace(e); e != "" {
					cfg.EtcdEndpoints = append(cfg.EtcdEndpoints, e)
				}
			}
			return server.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:9696", "address to serve the API on")
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/vflink", "directory of the embedded etcd member and server state")
	f.StringVar(&endpoints, "etcd-endpoints", "", "comma-separated URLs of an external etcd cluster (instead of the embedded member)")
	f.StringVar(&cfg.EtcdCert, "etcd-cert", "", "client certificate for the external etcd (TLS)")
	f.StringVar(&cfg.EtcdKey, "etcd-key", "", "client key for the external etcd (TLS)")
	f.StringVar(&cfg.EtcdCA, "etcd-ca", "", "CA bundle to verify the external etcd (TLS)")
	f.StringVar(&cfg.Auth, "auth", "keystone", "authentication: keystone (built-in Keystone v3 subset) or none (Neutron noauth; loopback only)")
	f.StringVar(&cfg.PublicURL, "public-url", "", "URL clients use to reach this server, for the Keystone catalog (default http://<listen>)")
	f.StringVar(&cfg.BootstrapPasswordFile, "bootstrap-password-file", "", "admin password for the first start (default: generated into <data-dir>/admin-password)")
	f.StringVar(&cfg.VLANRanges, "network-vlan-ranges", "sriov:1:4094", "physical networks and the VLANs handed out automatically: NAME[:MIN:MAX],...")
	f.StringVar(&cfg.BaseMAC, "base-mac", "fa:16:3e:00:00:00", "base of generated port MAC addresses")
	f.StringVar(&cfg.DefaultQuotas, "default-quotas", "", "limits of a project without its own quota: network=N,subnet=N,port=N,security_group=N,security_group_rule=N (-1 or unnamed: unlimited; Neutron's defaults are network=100,subnet=100,port=500,security_group=10,security_group_rule=100)")
	f.DurationVar(&cfg.DeviceResync, "device-resync", 30*time.Second, "how often the device manager reads each switch to find drift")
	f.StringVar(&cfg.External.KeystoneURL, "keystone-url", "", "validate tokens at this external Keystone v3 (e.g. http://controller:5000/v3) instead of the built-in one")
	f.StringVar(&cfg.External.Username, "keystone-username", "neutron", "vflink's service user at the external Keystone (needs the admin or service role)")
	f.StringVar(&cfg.External.PasswordFile, "keystone-password-file", "", "file holding that service user's password")
	f.StringVar(&cfg.External.Project, "keystone-project", "service", "project of the service user")
	f.StringVar(&cfg.External.UserDomain, "keystone-user-domain", "Default", "domain of the service user")
	f.StringVar(&cfg.External.ProjectDomain, "keystone-project-domain", "Default", "domain of the service user's project")
	f.StringVar(&cfg.External.Region, "keystone-region", "", "region of the catalog's endpoints (default: any)")
	f.DurationVar(&cfg.External.TokenCacheTTL, "token-cache-ttl", 60*time.Second, "how long a validated token is trusted without asking Keystone again (a revoked token is refused within it)")
	f.BoolVar(&cfg.External.NovaNotify, "nova-notify", true, "with --keystone-url: send Nova network-vif-plugged/unplugged/deleted and network-changed, as Neutron's [nova] notifier")
	f.StringVar(&cfg.External.NovaEndpoint, "nova-endpoint", "", "Nova's compute URL (default: from the Keystone catalog)")
	f.StringVar(&cfg.External.NovaInterface, "nova-interface", "public", "catalog interface of Nova's endpoint: public, internal or admin")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.AddCommand(newOpenrcCmd())
	return cmd
}

func newOpenrcCmd() *cobra.Command {
	var dataDir string
	var clouds bool
	cmd := &cobra.Command{
		Use:   "openrc",
		Short: "Print the admin's openrc (or clouds.yaml) written by the server's first start",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name := server.OpenrcFile
			if clouds {
				name = server.CloudsFile
			}
			b, err := os.ReadFile(filepath.Join(dataDir, name))
			if err != nil {
				return fmt.Errorf("%w (it is written when the server first starts with --auth keystone on --data-dir %s)", err, dataDir)
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/vflink", "the server's data directory")
	cmd.Flags().BoolVar(&clouds, "clouds", false, "print clouds.yaml (cloud name vflink) instead of an openrc")
	return cmd
}
