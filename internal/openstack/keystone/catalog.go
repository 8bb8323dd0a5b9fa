package keystone

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"

	"github.com/vflink/vflink/internal/store"
)

// The catalog: regions, services and endpoints that admins manage (Keystone's catalog API), and
// endpoint groups (OS-EP-FILTER). A token's catalog is vflink's own services followed by the
// stored services with their enabled endpoints.

func (s *Service) regionSpec() *docSpec {
	sp := &docSpec{member: "region", collection: "regions", path: "regions", prefix: "keystone/regions/",
		readAnyone: true, filters: []string{"parent_region_id"}}
	sp.prepare = func(ctx context.Context, in, old doc) (doc, error) {
		if err := docString(in, "region", "description", 255, true); err != nil {
			return nil, err
		}
		if err := docString(in, "region", "id", 255, false); err != nil {
			return nil, err
		}
		if err := docString(in, "region", "parent_region_id", 255, true); err != nil {
			return nil, err
		}
		d := merge(old, in)
		if old == nil {
			if _, ok := d["description"]; !ok {
				d["description"] = ""
			}
		}
		if d["description"] == nil {
			d["description"] = ""
		}
		parent := str(d, "parent_region_id")
		if parent == "" {
			d["parent_region_id"] = nil
			return d, nil
		}
		// the parent must exist, and the hierarchy must stay a tree
		for p, hops := parent, 0; p != ""; hops++ {
			if p == str(d, "id") || hops > 64 {
				return nil, invalid("region.parent_region_id", "%q would make the region hierarchy circular.", parent)
			}
			o, err := s.getDoc(ctx, sp, p)
			if isNotFound(err) {
				return nil, invalid("region.parent_region_id", "region %q does not exist.", p)
			} else if err != nil {
				return nil, err
			}
			p = str(o.Value, "parent_region_id")
		}
		return d, nil
	}
	sp.deleted = func(ctx context.Context, t *store.Txn, d doc) error {
		regions, err := s.listDocs(ctx, sp)
		if err != nil {
			return err
		}
		for _, c := range regions {
			if str(c, "parent_region_id") == str(d, "id") {
				return errf(http.StatusForbidden, "Unable to delete region %s because it has child regions (%s); delete them first.", str(d, "id"), str(c, "id"))
			}
		}
		eps, err := s.listDocs(ctx, s.endpointSpec())
		if err != nil {
			return err
		}
		for _, e := range eps {
			if str(e, "region_id") == str(d, "id") {
				return errf(http.StatusForbidden, "Unable to delete region %s because endpoint %s is in it; delete or move the endpoint first.", str(d, "id"), str(e, "id"))
			}
		}
		return nil
	}
	return sp
}

func isNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

func (s *Service) serviceSpec() *docSpec {
	sp := &docSpec{member: "service", collection: "services", path: "services", prefix: "keystone/services/",
		filters: []string{"type", "name"}}
	sp.prepare = func(ctx context.Context, in, old doc) (doc, error) {
		if old == nil {
			if err := docRequire(in, "service", "type"); err != nil {
				return nil, err
			}
		}
		if err := docName(in, "service", "name"); err != nil {
			return nil, err
		}
		if err := docString(in, "service", "type", 255, false); err != nil {
			return nil, err
		}
		if t, ok := in["type"].(string); ok && t == "" {
			return nil, invalid("service.type", "\"\" is empty; a service type has 1 to 255 characters.")
		}
		if err := docBool(in, "service", "enabled"); err != nil {
			return nil, err
		}
		d := merge(old, in)
		if _, ok := d["enabled"]; !ok {
			d["enabled"] = true
		}
		return d, nil
	}
	sp.deleted = func(ctx context.Context, t *store.Txn, d doc) error {
		eps, err := s.listDocs(ctx, s.endpointSpec())
		if err != nil {
			return err
		}
		for _, e := range eps { // Keystone deletes a service's endpoints with it
			if str(e, "service_id") == str(d, "id") {
				t.Remove(s.endpointSpec().key(str(e, "id")))
			}
		}
		return nil
	}
	return sp
}

func (s *Service) endpointSpec() *docSpec {
	sp := &docSpec{member: "endpoint", collection: "endpoints", path: "endpoints", prefix: "keystone/endpoints/",
		filters: []string{"interface", "service_id", "region_id"}}
	sp.prepare = func(ctx context.Context, in, old doc) (doc, error) {
		if old == nil {
			if err := docRequire(in, "endpoint", "interface", "service_id", "url"); err != nil {
				return nil, err
			}
		}
		for _, k := range []string{"region_id", "region", "service_id"} {
			if err := docString(in, "endpoint", k, 255, false); err != nil {
				return nil, err
			}
		}
		if err := docBool(in, "endpoint", "enabled"); err != nil {
			return nil, err
		}
		if v, ok := in["interface"]; ok {
			if i, _ := v.(string); i != "admin" && i != "internal" && i != "public" {
				return nil, invalid("endpoint.interface", "%s is not an interface; want \"public\", \"internal\" or \"admin\".", jsonClip(v))
			}
		}
		if v, ok := in["url"]; ok {
			u, _ := v.(string)
			if p, err := url.Parse(u); err != nil || p.Scheme == "" || p.Host == "" || len(u) > 225 {
				return nil, invalid("endpoint.url", "%s is not an absolute URL (like https://host:port/path, at most 225 characters).", jsonClip(v))
			}
		}
		if sid, ok := in["service_id"].(string); ok {
			if _, err := s.getDoc(ctx, s.serviceSpec(), sid); isNotFound(err) {
				return nil, invalid("endpoint.service_id", "service %q does not exist.", sid)
			} else if err != nil {
				return nil, err
			}
		}
		d := merge(old, in)
		// the legacy "region" names the region, which is created when it does not exist
		if rg, ok := in["region"].(string); ok && in["region_id"] == nil {
			d["region_id"] = rg
			if err := s.ensureRegion(ctx, rg); err != nil {
				return nil, err
			}
		} else if rid, ok := in["region_id"].(string); ok {
			if _, err := s.getDoc(ctx, s.regionSpec(), rid); isNotFound(err) {
				return nil, invalid("endpoint.region_id", "region %q does not exist.", rid)
			} else if err != nil {
				return nil, err
			}
		}
		if _, ok := d["region_id"]; !ok {
			d["region_id"] = nil
		}
		d["region"] = d["region_id"]
		if _, ok := d["enabled"]; !ok {
			d["enabled"] = true
		}
		return d, nil
	}
	return sp
}

// ensureRegion creates region id when it does not exist.
func (s *Service) ensureRegion(ctx context.Context, id string) error {
	sp := s.regionSpec()
	if !validID(id) {
		return invalid("endpoint.region", "%q is not a usable region ID: 1 to 64 characters without '/'.", clip([]byte(id)))
	}
	if _, err := s.getDoc(ctx, sp, id); err == nil || !isNotFound(err) {
		return err
	}
	t := s.st.Txn()
	t.Create(sp.key(id), doc{"id": id, "description": "", "parent_region_id": nil})
	_, err := t.Commit(ctx)
	if errors.Is(err, store.ErrConflict) {
		return nil // created meanwhile
	}
	return err
}

func (s *Service) endpointGroupSpec() *docSpec {
	sp := &docSpec{member: "endpoint_group", collection: "endpoint_groups", path: "OS-EP-FILTER/endpoint_groups",
		prefix: "keystone/endpoint-groups/", filters: []string{"name"}}
	sp.prepare = func(ctx context.Context, in, old doc) (doc, error) {
		if old == nil {
			if err := docRequire(in, "endpoint_group", "name", "filters"); err != nil {
				return nil, err
			}
		}
		if err := docName(in, "endpoint_group", "name"); err != nil {
			return nil, err
		}
		if err := docString(in, "endpoint_group", "description", 255, true); err != nil {
			return nil, err
		}
		if v, ok := in["filters"]; ok {
			f, isObj := v.(map[string]any)
			if !isObj {
				return nil, invalid("endpoint_group.filters", "%s is not an object.", jsonClip(v))
			}
			for k := range f {
				if k != "interface" && k != "service_id" && k != "region_id" {
					return nil, invalid("endpoint_group.filters", "%q is not a filter; allowed: interface, region_id, service_id.", k)
				}
			}
		}
		for k := range in {
			if k != "name" && k != "description" && k != "filters" && k != "id" {
				return nil, invalid("endpoint_group", "unknown attribute %q; allowed: description, filters, name.", k)
			}
		}
		d := merge(old, in)
		if d["description"] == nil {
			d["description"] = ""
		}
		return d, nil
	}
	return sp
}

// registerCatalog mounts the catalog routes.
func (s *Service) registerCatalog(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	for _, sp := range []*docSpec{s.regionSpec(), s.serviceSpec(), s.endpointSpec(), s.endpointGroupSpec()} {
		s.registerDocs(h, sp)
	}
	// PUT /v3/regions/{id} creates a region with that ID
	rs := s.regionSpec()
	h("PUT /v3/regions/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.createDoc(w, r, rs) })
}

// storedCatalog is the catalog entries of the stored services, with their enabled endpoints.
func (s *Service) storedCatalog(ctx context.Context) ([]map[string]any, error) {
	svcs, err := s.listDocs(ctx, s.serviceSpec())
	if err != nil {
		return nil, err
	}
	eps, err := s.listDocs(ctx, s.endpointSpec())
	if err != nil {
		return nil, err
	}
	sort.Slice(svcs, func(i, j int) bool { return str(svcs[i], "id") < str(svcs[j], "id") })
	out := make([]map[string]any, 0, len(svcs))
	for _, sv := range svcs {
		if en, _ := sv["enabled"].(bool); !en {
			continue
		}
		l := []map[string]any{}
		for _, e := range eps {
			if en, _ := e["enabled"].(bool); !en || str(e, "service_id") != str(sv, "id") {
				continue
			}
			l = append(l, map[string]any{"id": e["id"], "interface": e["interface"], "region_id": e["region_id"],
				"region": e["region_id"], "url": e["url"]})
		}
		out = append(out, map[string]any{"id": sv["id"], "type": sv["type"], "name": str(sv, "name"), "endpoints": l})
	}
	return out, nil
}
