package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vflink/vflink/internal/openstack/keystone"
)

// Files the first start writes into the data dir for the admin (mode 0600).
const (
	PasswordFile = "admin-password"
	CloudsFile   = "clouds.yaml"
	OpenrcFile   = "openrc"
)

// bootstrap creates the admin on the first start and writes the admin's credentials files.
func bootstrap(ctx context.Context, ks *keystone.Service, cfg Config, log *slog.Logger) error {
	pwPath := filepath.Join(cfg.DataDir, PasswordFile)
	var pw string
	switch {
	case cfg.BootstrapPasswordFile != "":
		b, err := os.ReadFile(cfg.BootstrapPasswordFile)
		if err != nil {
			return fmt.Errorf("read --bootstrap-password-file: %w", err)
		}
		pw = strings.TrimSpace(string(b))
		if len(pw) < 8 {
			return fmt.Errorf("the password in %s is %d characters long; at least 8 are needed", cfg.BootstrapPasswordFile, len(pw))
		}
	default:
		if b, err := os.ReadFile(pwPath); err == nil {
			pw = strings.TrimSpace(string(b))
		} else if errors.Is(err, os.ErrNotExist) {
			raw := make([]byte, 18)
			rand.Read(raw)
			pw = base64.RawURLEncoding.EncodeToString(raw)
		} else {
			return err
		}
	}
	created, err := ks.Bootstrap(ctx, pw)
	if err != nil {
		return fmt.Errorf("bootstrap the identity service: %w", err)
	}
	if !created {
		return nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(pwPath, []byte(pw+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the admin password: %w", err)
	}
	clouds := fmt.Sprintf(`clouds:
  vflink:
    auth:
      auth_url: %s/v3
      username: admin
      password: %q
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
`, cfg.PublicURL, pw)
	openrc := fmt.Sprintf(`export OS_AUTH_URL=%s/v3
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=admin
export OS_PASSWORD="$(cat %s)"
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
`, cfg.PublicURL, pwPath)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, CloudsFile), []byte(clouds), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, OpenrcFile), []byte(openrc), 0o600); err != nil {
		return err
	}
	log.Info("bootstrap: created domain Default, project admin and user admin",
		"password_file", pwPath, "openrc", filepath.Join(cfg.DataDir, OpenrcFile), "clouds_yaml", filepath.Join(cfg.DataDir, CloudsFile))
	return nil
}
