package keystoneclient

import (
	"fmt"
	"strings"
)

// catalog is the service catalog of a login answer (token.catalog):
//
//	[{"type": "compute", "name": "nova", "id": "…",
//	  "endpoints": [{"id": "…", "interface": "public", "region_id": "RegionOne",
//	                 "region": "RegionOne", "url": "http://…:8774/v2.1"}, …]}, …]
type catalog []catalogService

type catalogService struct {
	Type      string            `json:"type"`
	Name      string            `json:"name"`
	Endpoints []catalogEndpoint `json:"endpoints"`
}

type catalogEndpoint struct {
	Interface string `json:"interface"`
	RegionID  string `json:"region_id"`
	Region    string `json:"region"` // deprecated duplicate of region_id, still sent
	URL       string `json:"url"`
}

func (e catalogEndpoint) region() string {
	if e.RegionID != "" {
		return e.RegionID
	}
	return e.Region
}

// endpoint returns the URL of the first endpoint of a service of type typ with interface iface
// in region (any region when region is ""), in catalog order.
func (c catalog) endpoint(typ, iface, region string) (string, error) {
	for _, s := range c {
		if s.Type != typ {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Interface == iface && (region == "" || e.region() == region) && e.URL != "" {
				return e.URL, nil
			}
		}
	}
	where := "in any region"
	if region != "" {
		where = fmt.Sprintf("in region %q", region)
	}
	return "", fmt.Errorf("no %q endpoint with interface %q %s in the service catalog; %s", typ, iface, where, c.describe())
}

// describe lists what the catalog holds, e.g. `it holds identity (public/RegionOne,
// internal/RegionOne), network (public/RegionOne)`.
func (c catalog) describe() string {
	if len(c) == 0 {
		return "the catalog is empty (no endpoints are registered, or the service user's project has none)"
	}
	var b strings.Builder
	b.WriteString("it holds ")
	for i, s := range c {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.Type)
		if s.Type == "" {
			b.WriteString(`""`)
		}
		b.WriteString(" (")
		if len(s.Endpoints) == 0 {
			b.WriteString("no endpoints")
		}
		for j, e := range s.Endpoints {
			if j > 0 {
				b.WriteString(", ")
			}
			r := e.region()
			if r == "" {
				r = "no region"
			}
			b.WriteString(e.Interface + "/" + r)
		}
		b.WriteString(")")
	}
	return b.String()
}
