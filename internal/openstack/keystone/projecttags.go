package keystone

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// Project tags (/v3/projects/{id}/tags): at most 80 unique tags of 1..255 characters without ','
// or '/', kept in the project. Admins change them; an admin or a user with a role on the
// project reads them.

func checkTag(field, t string) error {
	if t == "" || len([]rune(t)) > 255 || strings.ContainsAny(t, ",/") {
		return invalid(field, "%q is not a tag: 1 to 255 characters without ',' or '/'.", clip([]byte(t)))
	}
	return nil
}

// canReadProject lets an admin or a user with a role on project id through.
func (s *Service) canReadProject(r *http.Request, id, action string) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	if c.IsAdmin() {
		return nil
	}
	ps, err := s.targetsOf(r.Context(), c.UserID, "project")
	if err != nil {
		return err
	}
	if !slices.Contains(ps, id) {
		return forbidden(action)
	}
	return nil
}

// changeTags applies fn to project id's tags in one optimistic write.
func (s *Service) changeTags(ctx context.Context, id string, fn func([]string) ([]string, error)) ([]string, error) {
	var tags []string
	err := retry(ctx, func() error {
		o, err := s.getProject(ctx, id)
		if err != nil {
			return err
		}
		p := o.Value
		if tags, err = fn(slices.Clone(p.Tags)); err != nil {
			return err
		}
		if len(tags) > 80 {
			return invalid("tags", "%d tags; the limit is 80.", len(tags))
		}
		p.Tags = tags
		t := s.st.Txn()
		t.Update(o.Key, p, o.ModRevision)
		_, err = t.Commit(ctx)
		return err
	})
	return orEmpty(tags), err
}

func (s *Service) listProjectTags(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.canReadProject(r, id, "list_project_tags"); err != nil {
		return err
	}
	o, err := s.getProject(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": orEmpty(o.Value.Tags), "links": s.listLinks(r, "projects/"+id+"/tags")})
	return nil
}

func (s *Service) checkProjectTag(w http.ResponseWriter, r *http.Request) error {
	id, tag := r.PathValue("id"), r.PathValue("tag")
	if err := s.canReadProject(r, id, "get_project_tag"); err != nil {
		return err
	}
	o, err := s.getProject(r.Context(), id)
	if err != nil {
		return err
	}
	if !slices.Contains(o.Value.Tags, tag) {
		return errf(http.StatusNotFound, "Could not find project tag: %s.", tag)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// putProjectTags is PUT /v3/projects/{id}/tags {"tags": [...]}: the whole list.
func (s *Service) putProjectTags(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "update_project_tags"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	var env map[string]json.RawMessage
	if json.Unmarshal(b, &env) != nil || env == nil {
		return errf(http.StatusBadRequest, "The request body must be {\"tags\": [...]}.")
	}
	a := &obj{path: "", m: env, seen: map[string]bool{}}
	tags, ok, err := parseTags(a, "tags")
	if err != nil {
		return err
	}
	if !ok {
		return invalid("tags", "'tags' is a required property: a list of strings.")
	}
	got, err := s.changeTags(r.Context(), r.PathValue("id"), func([]string) ([]string, error) { return tags, nil })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": got, "links": s.listLinks(r, "projects/"+r.PathValue("id")+"/tags")})
	return nil
}

// addProjectTag is PUT /v3/projects/{id}/tags/{tag}: 201 with an empty body.
func (s *Service) addProjectTag(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "create_project_tag"); err != nil {
		return err
	}
	id, tag := r.PathValue("id"), r.PathValue("tag")
	if err := checkTag("tag", tag); err != nil {
		return err
	}
	_, err := s.changeTags(r.Context(), id, func(l []string) ([]string, error) {
		if slices.Contains(l, tag) {
			return l, nil
		}
		return append(l, tag), nil
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", s.link("projects", id, "tags", tag))
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Service) deleteProjectTag(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "delete_project_tag"); err != nil {
		return err
	}
	tag := r.PathValue("tag")
	_, err := s.changeTags(r.Context(), r.PathValue("id"), func(l []string) ([]string, error) {
		i := slices.Index(l, tag)
		if i < 0 {
			return nil, errf(http.StatusNotFound, "Could not find project tag: %s.", tag)
		}
		return slices.Delete(l, i, i+1), nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) deleteProjectTags(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "delete_project_tags"); err != nil {
		return err
	}
	if _, err := s.changeTags(r.Context(), r.PathValue("id"), func([]string) ([]string, error) { return nil, nil }); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// tagsMatch applies Keystone's tag filters of a project list: tags (all of), tags-any,
// not-tags (not all of), not-tags-any (none of); each a comma-separated list.
func tagsMatch(q map[string][]string, tags []string) bool {
	list := func(k string) []string {
		if v, ok := q[k]; ok && len(v) > 0 && v[0] != "" {
			return strings.Split(v[0], ",")
		}
		return nil
	}
	has := func(l []string, all bool) bool {
		for _, t := range l {
			if slices.Contains(tags, t) != all {
				return !all
			}
		}
		return all
	}
	if l := list("tags"); l != nil && !has(l, true) {
		return false
	}
	if l := list("tags-any"); l != nil && !has(l, false) {
		return false
	}
	if l := list("not-tags"); l != nil && has(l, true) {
		return false
	}
	if l := list("not-tags-any"); l != nil && has(l, false) {
		return false
	}
	return true
}

func (s *Service) registerProjectTags(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("GET /v3/projects/{id}/tags", s.listProjectTags)
	h("PUT /v3/projects/{id}/tags", s.putProjectTags)
	h("DELETE /v3/projects/{id}/tags", s.deleteProjectTags)
	h("GET /v3/projects/{id}/tags/{tag}", s.checkProjectTag)
	h("PUT /v3/projects/{id}/tags/{tag}", s.addProjectTag)
	h("DELETE /v3/projects/{id}/tags/{tag}", s.deleteProjectTag)
}
