package neutron

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/store"
)

// Tags (Neutron's standard-attr-tag extension) on networks, subnets, ports, security groups and
// trunks: /v2.0/<collection>/<id>/tags lists and replaces them all, /tags/<tag> checks, adds and
// removes one. A tag is any string of at most 255 characters; the tags live in the resource's own
// object, so a tag change is one compare-and-swap on it and bumps its revision_number, as
// Neutron's does. Lists filter with tags (all of), tags-any (any of), not-tags (not all of) and
// not-tags-any (none of), each a comma-separated list or repeated.

// tagResource is how the tag API reaches one kind of resource.
type tagResource[T any] struct {
	collection string // in the URL, and in TagResourceNotFound as Neutron names it
	key        func(id string) string
	// visible reads the resource if the caller may see it; owner names its project.
	visible func(ctx context.Context, r *http.Request, id string) (store.Object[T], error)
	owner   func(*T) string
	fields  func(*T) (tags *[]string, rev *int64, updated *string)
}

func (s *Service) registerTags(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	registerTagsOf(s, h, tagResource[api.Network]{"networks", netKey,
		func(ctx context.Context, r *http.Request, id string) (store.Object[api.Network], error) {
			return s.visibleNetwork(ctx, caller(r), id)
		},
		func(n *api.Network) string { return n.ProjectID },
		func(n *api.Network) (*[]string, *int64, *string) { return &n.Tags, &n.RevisionNumber, &n.UpdatedAt }})
	registerTagsOf(s, h, tagResource[api.Subnet]{"subnets", subnetKey,
		func(ctx context.Context, r *http.Request, id string) (store.Object[api.Subnet], error) {
			return s.visibleSubnet(ctx, r, id)
		},
		func(n *api.Subnet) string { return n.ProjectID },
		func(n *api.Subnet) (*[]string, *int64, *string) { return &n.Tags, &n.RevisionNumber, &n.UpdatedAt }})
	registerTagsOf(s, h, tagResource[api.Port]{"ports", portKey,
		func(ctx context.Context, r *http.Request, id string) (store.Object[api.Port], error) {
			return s.visiblePort(ctx, caller(r), id)
		},
		func(n *api.Port) string { return n.ProjectID },
		func(n *api.Port) (*[]string, *int64, *string) { return &n.Tags, &n.RevisionNumber, &n.UpdatedAt }})
	registerTagsOf(s, h, tagResource[api.SecurityGroup]{"security-groups", secgroupKey,
		func(ctx context.Context, r *http.Request, id string) (store.Object[api.SecurityGroup], error) {
			return s.visibleSecGroup(ctx, caller(r), id)
		},
		func(n *api.SecurityGroup) string { return n.ProjectID },
		func(n *api.SecurityGroup) (*[]string, *int64, *string) {
			return &n.Tags, &n.RevisionNumber, &n.UpdatedAt
		}})
	registerTagsOf(s, h, tagResource[api.SubnetPool]{"subnetpools", poolKey,
		func(ctx context.Context, r *http.Request, id string) (store.Object[api.SubnetPool], error) {
			return s.visiblePool(ctx, caller(r), id)
		},
		func(n *api.SubnetPool) string { return n.ProjectID },
		func(n *api.SubnetPool) (*[]string, *int64, *string) {
			return &n.Tags, &n.RevisionNumber, &n.UpdatedAt
		}})
	registerTagsOf(s, h, tagResource[api.Trunk]{"trunks", trunkKey,
		func(ctx context.Context, r *http.Request, id string) (store.Object[api.Trunk], error) {
			return s.visibleTrunk(ctx, caller(r), id)
		},
		func(n *api.Trunk) string { return n.ProjectID },
		func(n *api.Trunk) (*[]string, *int64, *string) { return &n.Tags, &n.RevisionNumber, &n.UpdatedAt }})
}

func tagNotFound(tag string) *Error {
	return errf(http.StatusNotFound, "TagNotFound", "Tag %s could not be found.", tag)
}

// checkTag is validate_tag.
func checkTag(tag string) error {
	if len(tag) > maxStr {
		return invalidInput("'%s' exceeds maximum length of %d.", tag, maxStr)
	}
	return nil
}

func registerTagsOf[T any](s *Service, h func(string, func(http.ResponseWriter, *http.Request) error), tr tagResource[T]) {
	base := "/" + tr.collection + "/{id}/tags"
	// read finds the resource; a resource the caller cannot see is Neutron's TagResourceNotFound
	read := func(r *http.Request) (store.Object[T], error) {
		id := r.PathValue("id")
		o, err := tr.visible(r.Context(), r, id)
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			return o, errf(http.StatusNotFound, "TagResourceNotFound", "Resource %s %s could not be found.", tr.collection, id)
		}
		return o, err
	}
	// change applies fn to the resource's tags in one compare-and-swap
	change := func(r *http.Request, fn func(tags []string) ([]string, error)) ([]string, error) {
		var out []string
		err := retry(r.Context(), func(int) error {
			o, err := read(r)
			if err != nil {
				return err
			}
			if c := caller(r); !c.IsAdmin() && tr.owner(&o.Value) != c.ProjectID {
				return errf(http.StatusForbidden, "PolicyNotAuthorized", "Only the owner of %s %s (or an admin) may change its tags.", tr.collection, r.PathValue("id"))
			}
			v := o.Value
			tags, rev, updated := tr.fields(&v)
			next, err := fn(append([]string(nil), (*tags)...))
			if err != nil {
				return err
			}
			sort.Strings(next)
			if strings.Join(next, "\x00") == strings.Join(sortedCopy(*tags), "\x00") && len(next) == len(*tags) {
				out = next
				return nil
			}
			*tags = next
			*rev++
			*updated = s.now()
			if _, err := store.Update(r.Context(), s.st, o.Key, v, o.ModRevision); err != nil {
				return err
			}
			out = next
			return nil
		})
		return out, err
	}
	h("GET "+base, func(w http.ResponseWriter, r *http.Request) error {
		o, err := read(r)
		if err != nil {
			return err
		}
		tags, _, _ := tr.fields(&o.Value)
		writeJSON(w, http.StatusOK, map[string]any{"tags": nonNil(sortedCopy(*tags))})
		return nil
	})
	h("GET "+base+"/{tag}", func(w http.ResponseWriter, r *http.Request) error {
		tag := r.PathValue("tag")
		if err := checkTag(tag); err != nil {
			return err
		}
		o, err := read(r)
		if err != nil {
			return err
		}
		tags, _, _ := tr.fields(&o.Value)
		if !contains(*tags, tag) {
			return tagNotFound(tag)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("PUT "+base, func(w http.ResponseWriter, r *http.Request) error {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		var body map[string]any
		if json.Unmarshal(b, &body) != nil || body == nil || body["tags"] == nil && !hasKey(body, "tags") {
			return invalidInput("Invalid tags body.")
		}
		want, msg := checkTags(body["tags"])
		if msg != "" {
			return invalidInput("%s.", msg)
		}
		if _, err := change(r, func([]string) ([]string, error) { return append([]string{}, want...), nil }); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"tags": want})
		return nil
	})
	h("PUT "+base+"/{tag}", func(w http.ResponseWriter, r *http.Request) error {
		tag := r.PathValue("tag")
		if err := checkTag(tag); err != nil {
			return err
		}
		if _, err := change(r, func(tags []string) ([]string, error) {
			if contains(tags, tag) {
				return tags, nil
			}
			return append(tags, tag), nil
		}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	h("DELETE "+base, func(w http.ResponseWriter, r *http.Request) error {
		if _, err := change(r, func([]string) ([]string, error) { return []string{}, nil }); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("DELETE "+base+"/{tag}", func(w http.ResponseWriter, r *http.Request) error {
		tag := r.PathValue("tag")
		if err := checkTag(tag); err != nil {
			return err
		}
		if _, err := change(r, func(tags []string) ([]string, error) {
			if !contains(tags, tag) {
				return nil, tagNotFound(tag)
			}
			out := tags[:0:0]
			for _, t := range tags {
				if t != tag {
					out = append(out, t)
				}
			}
			return out, nil
		}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

func sortedCopy(ss []string) []string {
	out := append([]string(nil), ss...)
	sort.Strings(out)
	return out
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// tagParams are the list parameters filterTags reads (writeList leaves them alone).
var tagParams = map[string]bool{"tags": true, "tags-any": true, "not-tags": true, "not-tags-any": true}

// tagsOf is the tags of a listed item.
func tagsOf(v any) ([]string, bool) {
	switch t := v.(type) {
	case *api.Network:
		return t.Tags, true
	case *api.Subnet:
		return t.Tags, true
	case *api.Port:
		return t.Tags, true
	case *api.SecurityGroup:
		return t.Tags, true
	case *api.Trunk:
		return t.Tags, true
	case *api.SubnetPool:
		return t.Tags, true
	}
	return nil, false
}

// filterTags keeps the items that pass the query's tag filters (Neutron's _apply_tag_filters).
func filterTags[T any](items []T, q url.Values) ([]T, error) {
	sets := map[string]map[string]bool{}
	for k := range tagParams {
		for _, v := range q[k] {
			if sets[k] == nil {
				sets[k] = map[string]bool{}
			}
			for _, t := range strings.Split(v, ",") {
				sets[k][t] = true
			}
		}
	}
	if len(sets) == 0 {
		return items, nil
	}
	out := items[:0:0]
	for i := range items {
		tags, ok := tagsOf(&items[i])
		if !ok {
			for k := range sets {
				return nil, badRequest("%s is not a valid filter.", k)
			}
		}
		have := map[string]bool{}
		for _, t := range tags {
			have[t] = true
		}
		all := func(want map[string]bool) bool {
			for t := range want {
				if !have[t] {
					return false
				}
			}
			return true
		}
		anyOf := func(want map[string]bool) bool {
			for t := range want {
				if have[t] {
					return true
				}
			}
			return false
		}
		if w := sets["tags"]; w != nil && !all(w) {
			continue
		}
		if w := sets["tags-any"]; w != nil && !anyOf(w) {
			continue
		}
		if w := sets["not-tags"]; w != nil && all(w) {
			continue
		}
		if w := sets["not-tags-any"]; w != nil && anyOf(w) {
			continue
		}
		out = append(out, items[i])
	}
	return out, nil
}
