package keystone

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/vflink/vflink/internal/store"
)

// Domain-specific configuration (/v3/domains/{id}/config), as Keystone's API keeps it: the
// "identity" and "ldap" groups with Keystone's allowed options. vflink stores it and serves it
// back; it does not load identity drivers from it. The sensitive ldap "password" is stored but
// never returned.
//
//	keystone/domain-configs/<domain>    map of group → option → value

func domainConfigKey(id string) string { return "keystone/domain-configs/" + id }

// domainConfigDefaults are Keystone 22's defaults of the allowed options.
const domainConfigDefaults = `{"identity": {"driver": "sql", "list_limit": null}, "ldap": {"alias_dereferencing": "default", "auth_pool_connection_lifetime": 60, "auth_pool_size": 100, "chase_referrals": null, "debug_level": null, "group_additional_attribute_mapping": [], "group_attribute_ignore": [], "group_desc_attribute": "description", "group_filter": null, "group_id_attribute": "cn", "group_member_attribute": "member", "group_members_are_ids": false, "group_name_attribute": "ou", "group_objectclass": "groupOfNames", "group_tree_dn": null, "page_size": 0, "pool_connection_lifetime": 600, "pool_connection_timeout": -1, "pool_retry_delay": 0.1, "pool_retry_max": 3, "pool_size": 10, "query_scope": "one", "suffix": "cn=example,cn=com", "tls_cacertdir": null, "tls_cacertfile": null, "tls_req_cert": "demand", "url": "ldap://localhost", "use_auth_pool": true, "use_pool": true, "use_tls": false, "user": null, "user_additional_attribute_mapping": [], "user_attribute_ignore": ["default_project_id"], "user_default_project_id_attribute": null, "user_description_attribute": "description", "user_enabled_attribute": "enabled", "user_enabled_default": "True", "user_enabled_emulation": false, "user_enabled_emulation_dn": null, "user_enabled_emulation_use_group_config": false, "user_enabled_invert": false, "user_enabled_mask": 0, "user_filter": null, "user_id_attribute": "cn", "user_mail_attribute": "mail", "user_name_attribute": "sn", "user_objectclass": "inetOrgPerson", "user_pass_attribute": "userPassword", "user_tree_dn": null}}`

type domainConfig = map[string]map[string]any

func configDefaults() domainConfig {
	var d domainConfig
	json.Unmarshal([]byte(domainConfigDefaults), &d)
	return d
}

// sensitiveOptions are stored but never shown.
var sensitiveOptions = map[string]map[string]bool{"ldap": {"password": true}}

func allowedOption(group, option string) bool {
	if sensitiveOptions[group][option] {
		return true
	}
	_, ok := configDefaults()[group][option]
	return ok
}

func invalidConfig(format string, args ...any) *Error {
	return errf(http.StatusForbidden, "Invalid domain specific configuration: "+format, args...)
}

// parseConfig decodes {"config": {...}} and checks its groups and options (403, as Keystone's
// InvalidDomainConfig).
func parseConfig(b []byte) (domainConfig, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil || env == nil {
		return nil, errf(http.StatusBadRequest, "The request body is not a JSON object like {\"config\": {...}}: %s", jsonErr(err, b))
	}
	raw, ok := env["config"]
	if !ok || len(env) != 1 {
		return nil, errf(http.StatusBadRequest, "The request body must hold exactly one key \"config\", got %s.", quoteKeys(env))
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil || c == nil {
		return nil, invalid("config", "%s is not an object.", clip(raw))
	}
	if len(c) == 0 {
		return nil, invalidConfig("no options specified.")
	}
	out := domainConfig{}
	for g, v := range c {
		opts, ok := v.(map[string]any)
		if !ok || len(opts) == 0 {
			return nil, invalidConfig("the value of group %s should be an object of options.", g)
		}
		if _, known := configDefaults()[g]; !known {
			return nil, invalidConfig("group %q is not supported; allowed: identity, ldap.", g)
		}
		for o := range opts {
			if !allowedOption(g, o) {
				return nil, invalidConfig("option %q in group %q is not supported.", o, g)
			}
		}
		out[g] = opts
	}
	return out, nil
}

// visible drops the sensitive options.
func visible(c domainConfig) domainConfig {
	out := domainConfig{}
	for g, opts := range c {
		o := map[string]any{}
		for k, v := range opts {
			if !sensitiveOptions[g][k] {
				o[k] = v
			}
		}
		if len(o) > 0 {
			out[g] = o
		}
	}
	return out
}

func configNotFound(domainID, what string) *Error {
	return errf(http.StatusNotFound, "Could not find %s in the configuration of domain %s.", what, domainID)
}

func (s *Service) readConfig(r *http.Request) (string, store.Object[domainConfig], error) {
	id := r.PathValue("id")
	if _, err := s.getDomain(r.Context(), id); err != nil {
		return id, store.Object[domainConfig]{}, err
	}
	o, err := store.Get[domainConfig](r.Context(), s.st, domainConfigKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return id, o, errf(http.StatusNotFound, "Could not find domain config for domain %s.", id)
	}
	return id, o, err
}

// putConfig is PUT /v3/domains/{id}/config: 201 with a new configuration, 200 when it replaced one.
func (s *Service) putConfig(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "create_domain_config"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	c, err := parseConfig(b)
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	status := http.StatusCreated
	err = retry(ctx, func() error {
		d, err := s.getDomain(ctx, id)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Unchanged(d.Key, d.ModRevision)
		old, err := store.Get[domainConfig](ctx, s.st, domainConfigKey(id))
		switch {
		case err == nil:
			status = http.StatusOK
			t.Update(old.Key, c, old.ModRevision)
		case errors.Is(err, store.ErrNotFound):
			t.Create(domainConfigKey(id), c)
		default:
			return err
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("domain config stored", "domain", id)
	writeJSON(w, status, map[string]any{"config": visible(c)})
	return nil
}

// showConfig is GET /v3/domains/{id}/config[/{group}[/{option}]].
func (s *Service) showConfig(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "get_domain_config"); err != nil {
		return err
	}
	id, o, err := s.readConfig(r)
	if err != nil {
		return err
	}
	c := visible(o.Value)
	g, opt := r.PathValue("group"), r.PathValue("option")
	switch {
	case g == "":
		writeJSON(w, http.StatusOK, map[string]any{"config": c})
	case opt == "":
		if _, ok := c[g]; !ok {
			return configNotFound(id, "group "+g)
		}
		writeJSON(w, http.StatusOK, map[string]any{"config": domainConfig{g: c[g]}})
	default:
		v, ok := c[g][opt]
		if !ok {
			return configNotFound(id, "option "+opt+" in group "+g)
		}
		writeJSON(w, http.StatusOK, map[string]any{"config": map[string]any{opt: v}})
	}
	return nil
}

// patchConfig is PATCH /v3/domains/{id}/config[/{group}[/{option}]]: the options given are set
// over the stored ones; the answer is the whole configuration.
func (s *Service) patchConfig(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "update_domain_config"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	g, opt := r.PathValue("group"), r.PathValue("option")
	var in domainConfig
	if opt != "" {
		// the body is {"config": {"<option>": value}}
		var env struct {
			Config map[string]any `json:"config"`
		}
		if err := json.Unmarshal(b, &env); err != nil || len(env.Config) != 1 {
			return errf(http.StatusBadRequest, "The request body must be {\"config\": {\"%s\": <value>}}.", opt)
		}
		if _, ok := env.Config[opt]; !ok {
			return invalidConfig("the body sets %s, not the option %q of the URL.", strings.Join(sortedKeys(env.Config), ", "), opt)
		}
		if !allowedOption(g, opt) {
			return invalidConfig("option %q in group %q is not supported.", opt, g)
		}
		in = domainConfig{g: env.Config}
	} else {
		if in, err = parseConfig(b); err != nil {
			return err
		}
		if g != "" {
			for k := range in {
				if k != g {
					return invalidConfig("the body sets group %q, not the group %q of the URL.", k, g)
				}
			}
		}
	}
	ctx := r.Context()
	var c domainConfig
	id := r.PathValue("id")
	err = retry(ctx, func() error {
		_, o, err := s.readConfig(r)
		if err != nil {
			return err
		}
		c = o.Value
		if g != "" {
			if _, ok := c[g]; !ok {
				return configNotFound(id, "group "+g)
			}
		}
		for grp, opts := range in {
			if c[grp] == nil {
				c[grp] = map[string]any{}
			}
			for k, v := range opts {
				c[grp][k] = v
			}
		}
		t := s.st.Txn()
		t.Update(o.Key, c, o.ModRevision)
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("domain config updated", "domain", id)
	writeJSON(w, http.StatusOK, map[string]any{"config": visible(c)})
	return nil
}

// deleteConfig is DELETE /v3/domains/{id}/config[/{group}[/{option}]].
func (s *Service) deleteConfig(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "delete_domain_config"); err != nil {
		return err
	}
	ctx := r.Context()
	g, opt := r.PathValue("group"), r.PathValue("option")
	id := r.PathValue("id")
	err := retry(ctx, func() error {
		_, o, err := s.readConfig(r)
		if err != nil {
			return err
		}
		c := o.Value
		t := s.st.Txn()
		switch {
		case g == "":
			t.Delete(o.Key, o.ModRevision)
		case opt == "":
			if _, ok := c[g]; !ok {
				return configNotFound(id, "group "+g)
			}
			delete(c, g)
		default:
			if _, ok := c[g][opt]; !ok {
				return configNotFound(id, "option "+opt+" in group "+g)
			}
			delete(c[g], opt)
			if len(c[g]) == 0 {
				delete(c, g)
			}
		}
		if g != "" {
			if len(c) == 0 {
				t.Delete(o.Key, o.ModRevision)
			} else {
				t.Update(o.Key, c, o.ModRevision)
			}
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("domain config deleted", "domain", id, "group", g, "option", opt)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// showConfigDefault is GET /v3/domains/config/default, .../{group}/default, .../{group}/{option}/default.
func (s *Service) showConfigDefault(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "get_domain_config_default"); err != nil {
		return err
	}
	d := configDefaults()
	g, opt := r.PathValue("group"), r.PathValue("option")
	switch {
	case g == "":
		writeJSON(w, http.StatusOK, map[string]any{"config": d})
	case opt == "":
		if _, ok := d[g]; !ok {
			return invalidConfig("group %q is not supported; allowed: identity, ldap.", g)
		}
		writeJSON(w, http.StatusOK, map[string]any{"config": domainConfig{g: d[g]}})
	default:
		v, ok := d[g][opt]
		if !ok {
			return invalidConfig("option %q in group %q is not supported.", opt, g)
		}
		writeJSON(w, http.StatusOK, map[string]any{"config": map[string]any{opt: v}})
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// registerDomainConfig mounts the configuration routes through one dispatcher: Go's mux cannot
// hold both /v3/domains/config/{group}/default and /v3/domains/{id}/config/{group}.
func (s *Service) registerDomainConfig(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	for _, m := range []string{"GET", "PATCH", "DELETE", "PUT"} { // GET answers HEAD too
		h(m+" /v3/domains/{rest...}", s.domainConfigRoute)
	}
}

func (s *Service) domainConfigRoute(w http.ResponseWriter, r *http.Request) error {
	seg := strings.Split(r.PathValue("rest"), "/")
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if n := len(seg); read && n >= 2 && n <= 4 && seg[0] == "config" && seg[n-1] == "default" {
		if n >= 3 {
			r.SetPathValue("group", seg[1])
		}
		if n == 4 {
			r.SetPathValue("option", seg[2])
		}
		return s.showConfigDefault(w, r)
	}
	if n := len(seg); n >= 2 && n <= 4 && seg[1] == "config" {
		r.SetPathValue("id", seg[0])
		if n >= 3 {
			r.SetPathValue("group", seg[2])
		}
		if n == 4 {
			r.SetPathValue("option", seg[3])
		}
		switch {
		case read:
			return s.showConfig(w, r)
		case r.Method == http.MethodPatch:
			return s.patchConfig(w, r)
		case r.Method == http.MethodDelete:
			return s.deleteConfig(w, r)
		case n == 2:
			return s.putConfig(w, r)
		}
		return errf(http.StatusMethodNotAllowed, "%s is not allowed on %s; use GET, PATCH or DELETE.", r.Method, r.URL.Path)
	}
	return errf(http.StatusNotFound, "The resource could not be found: %s %s.", r.Method, r.URL.Path)
}
