package neutron

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// Security groups (Neutron's security-group extension, with stateful-security-group and
// security-groups-normalized-cidr), as ML2 keeps them: every project gets a group named
// "default" the first time it lists groups or rules, creates a group or creates a port (egress
// IPv4 and IPv6 to anywhere, ingress IPv4 and IPv6 from members of the group itself); a new group
// gets the two egress rules. Ports on networks with port security get their project's default
// group unless they name groups.
//
// vflink stores and reports a port's groups but enforces none of them: a VF port (vnic_type
// direct, macvtap, direct-physical) bypasses the host's kernel, so no firewall driver sees its
// traffic, exactly as with Neutron's SR-IOV agent (whose vif_details say port_filter: false).
//
// Keys: secgroups/<id> (api.SecurityGroup, its rules embedded, so a rule create is one compare
// on the group and duplicate rules can never be created concurrently), idx/sgrule/<rule> (the
// group of a rule), secgroups-default/<project> (the default group's ID, created with it: the
// create-only compare makes the default group unique per project), idx/sg-ports/<sg>/<port>
// (written with the port; a group is deleted only while its prefix is empty).

func secgroupKey(id string) string       { return "secgroups/" + id }
func sgDefaultKey(project string) string { return "secgroups-default/" + project }
func sgRuleKey(id string) string         { return "idx/sgrule/" + id }
func sgPortKey(sg, port string) string   { return "idx/sg-ports/" + sg + "/" + port }
func sgPortsPrefix(sg string) string     { return "idx/sg-ports/" + sg + "/" }
func sgNotFound(id string) *Error {
	return errf(http.StatusNotFound, "SecurityGroupNotFound", "Security group %s does not exist", id)
}
func sgRuleNotFound(id string) *Error {
	return errf(http.StatusNotFound, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
}
func sgInUse(id string) *Error {
	return errf(http.StatusConflict, "SecurityGroupInUse", "Security Group %s in use.", id)
}
func sgInvalid(typ, f string, a ...any) *Error { return errf(http.StatusBadRequest, typ, f, a...) }

const defaultSGDescription = "Default security group"

func (s *Service) registerSecurityGroups(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /security-groups", s.createSecurityGroup)
	h("GET /security-groups", s.listSecurityGroups)
	h("GET /security-groups/{id}", s.showSecurityGroup)
	h("PUT /security-groups/{id}", s.updateSecurityGroup)
	h("DELETE /security-groups/{id}", s.deleteSecurityGroup)
	h("POST /security-group-rules", s.createSecurityGroupRule)
	h("GET /security-group-rules", s.listSecurityGroupRules)
	h("GET /security-group-rules/{id}", s.showSecurityGroupRule)
	h("DELETE /security-group-rules/{id}", s.deleteSecurityGroupRule)
	s.registerTags(h)
}

// egressRules are the rules every new group starts with; the default group also lets in its own
// members (remote_group_id: itself).
func (s *Service) newGroupRules(g *api.SecurityGroup, isDefault bool) {
	for _, eth := range []string{"IPv4", "IPv6"} {
		if isDefault {
			self := g.ID
			g.Rules = append(g.Rules, s.newRule(g, "ingress", eth, &self))
		}
		g.Rules = append(g.Rules, s.newRule(g, "egress", eth, nil))
	}
}

func (s *Service) newRule(g *api.SecurityGroup, dir, eth string, remote *string) api.SecurityGroupRule {
	now := s.now()
	return api.SecurityGroupRule{ID: uuid.NewString(), TenantID: g.ProjectID, ProjectID: g.ProjectID, SecurityGroupID: g.ID,
		Direction: dir, Ethertype: eth, RemoteGroupID: remote, CreatedAt: now, UpdatedAt: now, RevisionNumber: 0}
}

// ensureDefaultSG creates the project's default group unless it has one, and returns its ID ("" when
// the caller may not create it: a non-admin for another project, as Neutron refuses).
func (s *Service) ensureDefaultSG(ctx context.Context, c *auth.Context, project string) (string, error) {
	if project == "" || (project != c.ProjectID && !c.IsAdmin()) {
		return "", nil
	}
	var id string
	err := retry(ctx, func(int) error {
		o, err := store.Get[string](ctx, s.st, sgDefaultKey(project))
		if err == nil {
			id = o.Value
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		now := s.now()
		g := api.SecurityGroup{ID: uuid.NewString(), Name: "default", Description: defaultSGDescription, TenantID: project,
			ProjectID: project, Stateful: true, Tags: []string{}, CreatedAt: now, UpdatedAt: now, RevisionNumber: 1}
		s.newGroupRules(&g, true)
		t := s.st.Txn()
		if err := s.checkQuotaN(ctx, s.st, t, project, "security_group_rule", len(g.Rules)); err != nil {
			return err
		}
		t.Create(sgDefaultKey(project), g.ID)
		t.Create(secgroupKey(g.ID), g)
		for _, r := range g.Rules {
			t.Create(sgRuleKey(r.ID), g.ID)
		}
		if _, err := t.Commit(ctx); err != nil {
			return err // another request created it meanwhile: the retry reads it
		}
		s.log.Info("default security group created", "security_group", g.ID, "project", project)
		id = g.ID
		return nil
	})
	return id, err
}

func (s *Service) visibleSecGroup(ctx context.Context, c *auth.Context, id string) (store.Object[api.SecurityGroup], error) {
	o, err := store.Get[api.SecurityGroup](ctx, s.st, secgroupKey(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.IsAdmin() && o.Value.ProjectID != c.ProjectID) {
		return o, sgNotFound(id)
	}
	return o, err
}

func normSecGroup(g api.SecurityGroup) api.SecurityGroup {
	if g.Rules == nil {
		g.Rules = []api.SecurityGroupRule{}
	}
	if g.Tags == nil {
		g.Tags = []string{}
	}
	return g
}

// sgFields are a group's writable attributes.
type sgFields struct {
	name, desc                 string
	stateful                   bool
	nameOK, descOK, statefulOK bool
}

func decodeSGFields(a *attrs) (f sgFields, err error) {
	if f.name, f.nameOK, err = a.str("name", maxStr); err != nil {
		return f, err
	}
	if f.nameOK && strings.EqualFold(f.name, "default") {
		return f, errf(http.StatusConflict, "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
	}
	if f.desc, f.descOK, err = a.str("description", maxStr); err != nil {
		return f, err
	}
	f.stateful, f.statefulOK, err = a.boolean("stateful")
	return f, err
}

func (s *Service) createSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	ctx, c := r.Context(), caller(r)
	a, err := decodeBody(r.Body, "security_group")
	if err != nil {
		return err
	}
	if err := a.readOnly("POST", "id", "security_group_rules", "created_at", "updated_at", "revision_number"); err != nil {
		return err
	}
	proj, err := owner(c, a)
	if err != nil {
		return err
	}
	f, err := decodeSGFields(a)
	if err != nil {
		return err
	}
	tags, _, err := decodeTagList(a)
	if err != nil {
		return err
	}
	if err := a.rest(); err != nil {
		return err
	}
	if _, err := s.ensureDefaultSG(ctx, c, proj); err != nil {
		return err
	}
	now := s.now()
	g := api.SecurityGroup{ID: uuid.NewString(), Name: f.name, Description: f.desc, TenantID: proj, ProjectID: proj,
		Stateful: !f.statefulOK || f.stateful, Tags: tags, CreatedAt: now, UpdatedAt: now, RevisionNumber: 1}
	s.newGroupRules(&g, false)
	err = retry(ctx, func(int) error {
		t := s.st.Txn()
		if err := s.checkQuota(ctx, s.st, t, proj, "security_group"); err != nil {
			return err
		}
		if err := s.checkQuotaN(ctx, s.st, t, proj, "security_group_rule", len(g.Rules)); err != nil {
			return err
		}
		t.Create(secgroupKey(g.ID), g)
		for _, r := range g.Rules {
			t.Create(sgRuleKey(r.ID), g.ID)
		}
		_, err := t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("security group created", "security_group", g.ID, "project", proj)
	writeJSON(w, http.StatusCreated, map[string]any{"security_group": normSecGroup(g)})
	return nil
}

// sgUsage counts a project's groups or rules (quota.go): the prefix a create compares is all
// groups, since the rules live in them.
func (s *Service) sgUsage(ctx context.Context, project, resource string) (int, string, int64, error) {
	all, rev, err := store.List[api.SecurityGroup](ctx, s.st, "secgroups/")
	n := 0
	for _, o := range all {
		if resource == "security_group" && o.Value.ProjectID == project {
			n++
		}
		for _, r := range o.Value.Rules {
			if resource == "security_group_rule" && r.ProjectID == project {
				n++
			}
		}
	}
	return n, "secgroups/", rev, err
}

// listProject is the project a list request is about: its project_id/tenant_id filter, else the
// caller's (Neutron ensures that project's default group before it lists).
func listProject(r *http.Request, c *auth.Context) string {
	q := r.URL.Query()
	for _, k := range []string{"project_id", "tenant_id"} {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
	}
	return c.ProjectID
}

func (s *Service) listSecurityGroups(w http.ResponseWriter, r *http.Request) error {
	ctx, c := r.Context(), caller(r)
	if _, err := s.ensureDefaultSG(ctx, c, listProject(r, c)); err != nil {
		return err
	}
	objs, _, err := store.List[api.SecurityGroup](ctx, s.st, "secgroups/")
	if err != nil {
		return err
	}
	items := make([]api.SecurityGroup, 0, len(objs))
	for _, o := range objs {
		if c.IsAdmin() || o.Value.ProjectID == c.ProjectID {
			items = append(items, normSecGroup(o.Value))
		}
	}
	return writeList(w, r, "security_groups", items, sgField)
}

func sgField(g *api.SecurityGroup, f string) ([]string, bool) {
	switch f {
	case "id":
		return []string{g.ID}, true
	case "name":
		return []string{g.Name}, true
	case "tenant_id", "project_id":
		return []string{g.ProjectID}, true
	case "description":
		return []string{g.Description}, true
	case "stateful":
		return []string{strconv.FormatBool(g.Stateful)}, true
	case "revision_number":
		return []string{strconv.FormatInt(g.RevisionNumber, 10)}, true
	case "tags":
		return g.Tags, true
	}
	return nil, false
}

func (s *Service) showSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	o, err := s.visibleSecGroup(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeOne(w, r, "security_group", normSecGroup(o.Value))
}

func (s *Service) updateSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	ctx, c := r.Context(), caller(r)
	want, wantOK, err := ifMatch(r)
	if err != nil {
		return err
	}
	a, err := decodeBody(r.Body, "security_group")
	if err != nil {
		return err
	}
	for _, k := range []string{"id", "tenant_id", "project_id", "security_group_rules", "created_at", "updated_at", "revision_number", "tags"} {
		if a.has(k) {
			return badRequest("Cannot update read-only attribute %s", k)
		}
	}
	f, err := decodeSGFields(a)
	if err != nil {
		return err
	}
	if err := a.rest(); err != nil {
		return err
	}
	id := r.PathValue("id")
	var out api.SecurityGroup
	err = retry(ctx, func(int) error {
		o, err := s.visibleSecGroup(ctx, c, id)
		if err != nil {
			return err
		}
		g := o.Value
		if err := checkRevision(want, wantOK, g.RevisionNumber); err != nil {
			return err
		}
		if g.Name == "default" && f.nameOK {
			return errf(http.StatusConflict, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
		}
		t := s.st.Txn()
		if f.statefulOK && f.stateful != g.Stateful {
			keys, _, err := s.st.Keys(ctx, sgPortsPrefix(id))
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				return sgInUse(id)
			}
			t.PrefixEmpty(sgPortsPrefix(id))
			g.Stateful = f.stateful
		}
		if f.nameOK {
			g.Name = f.name
		}
		if f.descOK {
			g.Description = f.desc
		}
		g.RevisionNumber++
		g.UpdatedAt = s.now()
		t.Update(secgroupKey(id), g, o.ModRevision)
		if _, err := t.Commit(ctx); err != nil {
			return err
		}
		out = g
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"security_group": normSecGroup(out)})
	return nil
}

func (s *Service) deleteSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	ctx, c := r.Context(), caller(r)
	id := r.PathValue("id")
	err := retry(ctx, func(int) error {
		o, err := s.visibleSecGroup(ctx, c, id)
		if err != nil {
			return err
		}
		ports, _, err := s.st.Keys(ctx, sgPortsPrefix(id))
		if err != nil {
			return err
		}
		if len(ports) > 0 {
			return sgInUse(id)
		}
		g := o.Value
		if g.Name == "default" && !c.IsAdmin() {
			return errf(http.StatusConflict, "SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
		}
		t := s.st.Txn()
		t.Delete(secgroupKey(id), o.ModRevision)
		t.PrefixEmpty(sgPortsPrefix(id))
		for _, r := range g.Rules {
			t.Remove(sgRuleKey(r.ID))
		}
		if g.Name == "default" {
			t.Remove(sgDefaultKey(g.ProjectID))
		}
		// rules of other groups naming this one as their remote group go with it (Neutron's
		// foreign key cascades); a rule created meanwhile compared this group's revision
		all, _, err := store.List[api.SecurityGroup](ctx, s.st, "secgroups/")
		if err != nil {
			return err
		}
		for _, og := range all {
			if og.Value.ID == id {
				continue
			}
			keep := og.Value.Rules[:0:0]
			for _, rule := range og.Value.Rules {
				if rule.RemoteGroupID != nil && *rule.RemoteGroupID == id {
					t.Remove(sgRuleKey(rule.ID))
					continue
				}
				keep = append(keep, rule)
			}
			if len(keep) != len(og.Value.Rules) {
				ng := og.Value
				ng.Rules = keep
				ng.RevisionNumber++
				ng.UpdatedAt = s.now()
				t.Update(og.Key, ng, og.ModRevision)
			}
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("security group deleted", "security_group", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
