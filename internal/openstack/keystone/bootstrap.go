package keystone

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"github.com/vflink/vflink/internal/store"
)

// DefaultDomainID is the ID of the bootstrap domain (named "Default").
const DefaultDomainID = "default"

// Bootstrap creates, idempotently, domain "default" (name "Default"), roles admin, member and
// reader, projects "admin" and "service", and user "admin" with role admin on project admin.
// It sets the admin password only when it creates the admin user, and reports whether it did.
// Several servers may bootstrap the same store at once: name keys decide who creates what.
func (s *Service) Bootstrap(ctx context.Context, adminPassword string) (bool, error) {
	if err := s.ensureDomain(ctx, DefaultDomainID, "Default"); err != nil {
		return false, err
	}
	roles := map[string]string{}
	for _, name := range []string{"admin", "member", "reader"} {
		id, _, err := s.ensure(ctx, roleNameKey(name), func(id string) (string, any) {
			return roleKey(id), role{ID: id, Name: name}
		})
		if err != nil {
			return false, fmt.Errorf("bootstrap role %s: %w", name, err)
		}
		roles[name] = id
	}
	var adminProject string
	for _, name := range []string{"admin", "service"} {
		id, _, err := s.ensure(ctx, projectNameKey(DefaultDomainID, name), func(id string) (string, any) {
			return projectKey(id), project{ID: id, Name: name, DomainID: DefaultDomainID, Enabled: true,
				Description: "Bootstrap project " + name}
		})
		if err != nil {
			return false, fmt.Errorf("bootstrap project %s: %w", name, err)
		}
		if name == "admin" {
			adminProject = id
		}
	}
	var hash []byte
	if uid, err := s.lookupName(ctx, userNameKey(DefaultDomainID, "admin")); err != nil {
		return false, err
	} else if uid == "" {
		if adminPassword == "" {
			return false, errors.New("bootstrap: the admin user does not exist yet and no admin password was given")
		}
		if len(adminPassword) > maxPasswordBytes {
			return false, fmt.Errorf("bootstrap: the admin password is %d bytes long; bcrypt allows at most %d", len(adminPassword), maxPasswordBytes)
		}
		if hash, err = bcrypt.GenerateFromPassword([]byte(adminPassword), s.cfg.PasswordCost); err != nil {
			return false, fmt.Errorf("bootstrap: hash the admin password: %w", err)
		}
	}
	uid, created, err := s.ensure(ctx, userNameKey(DefaultDomainID, "admin"), func(id string) (string, any) {
		return userKey(id), user{ID: id, Name: "admin", DomainID: DefaultDomainID, PasswordHash: string(hash),
			Enabled: true, DefaultProjectID: adminProject}
	})
	if err != nil {
		return false, fmt.Errorf("bootstrap user admin: %w", err)
	}
	if created && hash == nil {
		// another server created and deleted the admin between our look-up and ensure: not fatal,
		// but this admin has no password; say so instead of guessing one
		return false, errors.New("bootstrap: the admin user appeared and vanished concurrently; run bootstrap again")
	}
	if err := s.ensureAssignment(ctx, adminProject, uid, roles["admin"]); err != nil {
		return false, fmt.Errorf("bootstrap admin role assignment: %w", err)
	}
	if created {
		s.log.Info("bootstrap: created admin user", "user", uid, "project", adminProject)
	}
	return created, nil
}

func (s *Service) ensureDomain(ctx context.Context, id, name string) error {
	return retry(ctx, func() error {
		if _, err := store.Get[domain](ctx, s.st, domainKey(id)); err == nil || !errors.Is(err, store.ErrNotFound) {
			return err
		}
		t := s.st.Txn()
		t.Create(domainNameKey(name), id)
		t.Create(domainKey(id), domain{ID: id, Name: name, Enabled: true, Description: "The default domain"})
		_, err := t.Commit(ctx)
		return err
	})
}

// ensure returns the ID a name key points to, creating the name key and the object (from mk, given
// a new ID) in one Txn when it is absent.
func (s *Service) ensure(ctx context.Context, nameKey string, mk func(id string) (string, any)) (string, bool, error) {
	var id string
	var created bool
	err := retry(ctx, func() error {
		var err error
		if id, err = s.lookupName(ctx, nameKey); err != nil || id != "" {
			return err
		}
		id = newID()
		key, v := mk(id)
		t := s.st.Txn()
		t.Create(nameKey, id)
		t.Create(key, v)
		if _, err := t.Commit(ctx); err != nil {
			return err
		}
		created = true
		return nil
	})
	return id, created, err
}

func (s *Service) ensureAssignment(ctx context.Context, p, u, r string) error {
	return retry(ctx, func() error {
		if _, err := store.Get[string](ctx, s.st, assignmentKey(p, u, r)); err == nil || !errors.Is(err, store.ErrNotFound) {
			return err
		}
		t := s.st.Txn()
		t.Create(assignmentKey(p, u, r), "")
		t.Create(userAssignmentKey(u, p, r), "")
		_, err := t.Commit(ctx)
		return err
	})
}
