package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vflink/vflink/internal/openstack/keystoneclient"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/openstack/novanotify"
	"github.com/vflink/vflink/internal/store"
)

// External is vflink as the network service of a real OpenStack: tokens validated at its
// Keystone (with vflink's own service user, as keystonemiddleware does) and Nova told of port
// events (Neutron's [nova] notifier), with the same service user's session.
type External struct {
	// KeystoneURL is the real Keystone's v3 URL (e.g. http://controller:5000/v3); empty: the
	// built-in Keystone.
	KeystoneURL   string
	Username      string
	PasswordFile  string
	Project       string
	UserDomain    string
	ProjectDomain string
	Region        string
	TokenCacheTTL time.Duration
	NovaNotify    bool
	NovaEndpoint  string // override of the catalog's compute endpoint
	NovaInterface string // catalog interface (public, internal, admin)
}

// externalSession logs vflink's service user in at the external Keystone.
func externalSession(x External, log *slog.Logger) (*keystoneclient.Session, error) {
	u, err := url.Parse(x.KeystoneURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--keystone-url %q is not a URL like http://controller:5000/v3", x.KeystoneURL)
	}
	if x.PasswordFile == "" {
		return nil, errors.New("--keystone-url needs --keystone-password-file: the password of vflink's service user (--keystone-username)")
	}
	pw, err := os.ReadFile(x.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("--keystone-password-file: %w", err)
	}
	return keystoneclient.NewSession(keystoneclient.SessionConfig{
		AuthURL: strings.TrimRight(x.KeystoneURL, "/"), Username: x.Username, Password: strings.TrimSpace(string(pw)),
		ProjectName: x.Project, UserDomainName: x.UserDomain, ProjectDomainName: x.ProjectDomain, Region: x.Region, Logger: log,
	})
}

// runNotifier sends Neutron's Nova notifications until ctx ends (one server of a cluster leads).
func runNotifier(ctx context.Context, st *store.Store, net *neutron.Service, sess *keystoneclient.Session, x External, reg prometheus.Registerer, log *slog.Logger) {
	var s novanotify.Session
	if sess != nil {
		s = sess
	}
	n, err := novanotify.New(st, net, novanotify.Options{Session: s, Endpoint: x.NovaEndpoint, Interface: x.NovaInterface, Registry: reg, Log: log})
	if err != nil {
		log.Error("nova notifier not started", "err", err)
		return
	}
	n.Run(ctx)
}
