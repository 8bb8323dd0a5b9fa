package nova

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/uuid"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// Flavor is a Nova flavor as vflink stores it.
type Flavor struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	RAM        int     `json:"ram"`
	VCPUs      int     `json:"vcpus"`
	Disk       int     `json:"disk"`
	Swap       int     `json:"swap"`
	Ephemeral  int     `json:"ephemeral"`
	RxTxFactor float64 `json:"rxtx_factor"`
	IsPublic   bool    `json:"is_public"`
	CreatedAt  string  `json:"created_at"`
}

func flavorKey(id string) string       { return "flavors/" + id }
func flavorNameKey(name string) string { return "idx/flavor-names/" + url.PathEscape(name) }

// flavorIDPattern is Nova's rule for a flavor ID given by the caller.
var flavorIDPattern = regexp.MustCompile(`^[a-zA-Z0-9._-]([a-zA-Z0-9. _-]*[a-zA-Z0-9._-])?$`)

func (s *Service) flavorBody(r *http.Request, f Flavor) map[string]any {
	var swap any = f.Swap
	if f.Swap == 0 {
		swap = ""
	}
	return map[string]any{
		"id": f.ID, "name": f.Name, "ram": f.RAM, "vcpus": f.VCPUs, "disk": f.Disk, "swap": swap,
		"OS-FLV-EXT-DATA:ephemeral": f.Ephemeral, "OS-FLV-DISABLED:disabled": false,
		"rxtx_factor": f.RxTxFactor, "os-flavor-access:is_public": f.IsPublic,
		"links": s.links(r, "flavors", f.ID),
	}
}

func policyDenied(rule string) *Error {
	return errf(http.StatusForbidden, "Policy doesn't allow %s to be performed.", rule)
}

func decodeFlavor(f fields) (Flavor, error) {
	var fl Flavor
	name, ok, err := f.str("name")
	if err != nil {
		return fl, err
	}
	name = strings.TrimSpace(name)
	if !ok || name == "" || len(name) > 255 {
		return fl, badRequest("Invalid input for field/attribute name. Value: %q. A flavor name of 1 to 255 characters is required.", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fl, badRequest("Invalid input for field/attribute name. Value: %q. It contains a non-printable character.", name)
		}
	}
	fl.Name = name
	id, ok, err := f.strOrInt("id")
	if err != nil {
		return fl, err
	}
	if !ok || id == "auto" {
		id = uuid.NewString()
	} else if len(id) > 255 || !flavorIDPattern.MatchString(id) {
		return fl, badRequest("Invalid input for field/attribute id. Value: %q. Flavor IDs are 1 to 255 of letters, digits, '.', '_', '-' and inner spaces.", id)
	}
	fl.ID = id
	if fl.RAM, err = f.integer("ram", 1, -1); err != nil {
		return fl, err
	}
	if fl.VCPUs, err = f.integer("vcpus", 1, -1); err != nil {
		return fl, err
	}
	if fl.Disk, err = f.integer("disk", 0, -1); err != nil {
		return fl, err
	}
	for _, k := range []string{"ram", "vcpus", "disk"} {
		if f.null(k) {
			return fl, badRequest("Invalid input for field/attribute %s. The flavor needs %s.", k, k)
		}
	}
	if fl.Swap, err = f.integer("swap", 0, 0); err != nil {
		return fl, err
	}
	if fl.Ephemeral, err = f.integer("OS-FLV-EXT-DATA:ephemeral", 0, 0); err != nil {
		return fl, err
	}
	fl.RxTxFactor = 1.0
	if !f.null("rxtx_factor") {
		v, err := strconv.ParseFloat(strings.Trim(string(f["rxtx_factor"]), `" `), 64)
		if err != nil || v <= 0 {
			return fl, badRequest("Invalid input for field/attribute rxtx_factor. Value: %s. It must be a number > 0.", clip(f["rxtx_factor"]))
		}
		fl.RxTxFactor = v
	}
	if fl.IsPublic, err = f.boolean("os-flavor-access:is_public", true); err != nil {
		return fl, err
	}
	if desc, ok, _ := f.str("description"); ok && desc != "" {
		return fl, badRequest("Invalid input for field/attribute description: flavor descriptions need microversion 2.55; vflink serves %s.", Microversion)
	}
	return fl, nil
}

func (s *Service) createFlavor(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	if !c.IsAdmin() {
		return policyDenied("os_compute_api:os-flavor-manage:create")
	}
	f, err := decodeBody(r.Body, "flavor")
	if err != nil {
		return err
	}
	fl, err := decodeFlavor(f)
	if err != nil {
		return err
	}
	fl.CreatedAt = s.now()
	t := s.st.Txn()
	t.Create(flavorKey(fl.ID), fl)
	t.Create(flavorNameKey(fl.Name), fl.ID)
	_, err = t.Commit(r.Context())
	var ce *store.ConflictError
	if errors.As(err, &ce) {
		if ce.Key == flavorNameKey(fl.Name) {
			return errf(http.StatusConflict, "Flavor with name %s already exists.", fl.Name)
		}
		return errf(http.StatusConflict, "Flavor with ID %s already exists.", fl.ID)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": s.flavorBody(r, fl)})
	return nil
}

// flavor returns a flavor the caller may see: public ones, and private ones for an admin.
func (s *Service) flavor(ctx context.Context, c *auth.Context, id string) (store.Object[Flavor], error) {
	notFound := errf(http.StatusNotFound, "Flavor %s could not be found.", id)
	if id == "" || strings.Contains(id, "/") {
		return store.Object[Flavor]{}, notFound
	}
	o, err := store.Get[Flavor](ctx, s.st, flavorKey(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !o.Value.IsPublic && !c.IsAdmin()) {
		return store.Object[Flavor]{}, notFound
	}
	return o, err
}

func (s *Service) showFlavor(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	o, err := s.flavor(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": s.flavorBody(r, o.Value)})
	return nil
}

func (s *Service) flavorExtraSpecs(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	if _, err := s.flavor(r.Context(), c, r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"extra_specs": map[string]string{}})
	return nil
}

func (s *Service) deleteFlavor(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	if !c.IsAdmin() {
		return policyDenied("os_compute_api:os-flavor-manage:delete")
	}
	id := r.PathValue("id")
	err := retry(r.Context(), func() error {
		o, err := s.flavor(r.Context(), c, id)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Delete(flavorKey(id), o.ModRevision)
		t.Remove(flavorNameKey(o.Value.Name))
		_, err = t.Commit(r.Context())
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) listFlavors(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	return s.writeFlavors(w, r, c, false)
}

func (s *Service) listFlavorsDetail(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	return s.writeFlavors(w, r, c, true)
}

// writeFlavors lists flavors as Nova does: public ones by default; an admin may ask for private
// ones (is_public=false) or all (is_public=none). minRam, minDisk, marker and limit are honoured;
// other query parameters are ignored.
func (s *Service) writeFlavors(w http.ResponseWriter, r *http.Request, c *auth.Context, detail bool) error {
	q := r.URL.Query()
	public := func(f *Flavor) bool { return f.IsPublic }
	if c.IsAdmin() && q.Has("is_public") {
		v := q.Get("is_public")
		if strings.EqualFold(v, "none") {
			public = func(*Flavor) bool { return true }
		} else if b, ok := parseBool(v); ok {
			public = func(f *Flavor) bool { return f.IsPublic == b }
		} else {
			return badRequest("Invalid is_public filter [%s]", v)
		}
	}
	minRAM, minDisk := 0, 0
	for k, dst := range map[string]*int{"minRam": &minRAM, "minDisk": &minDisk} {
		if v := q.Get(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return badRequest("Invalid %s filter [%s]", k, v)
			}
			*dst = n
		}
	}
	objs, _, err := store.List[Flavor](r.Context(), s.st, "flavors/")
	if err != nil {
		return err
	}
	var out []Flavor
	for _, o := range objs {
		f := o.Value
		if public(&f) && f.RAM >= minRAM && f.Disk >= minDisk {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b Flavor) int { return strings.Compare(a.ID, b.ID) })
	out, err = page(q, out, func(f Flavor) string { return f.ID })
	if err != nil {
		return err
	}
	items := make([]map[string]any, len(out))
	for i, f := range out {
		if detail {
			items[i] = s.flavorBody(r, f)
		} else {
			items[i] = map[string]any{"id": f.ID, "name": f.Name, "links": s.links(r, "flavors", f.ID)}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavors": items})
	return nil
}

// page applies Nova's marker (start after this ID; unknown → 400) and limit.
func page[T any](q url.Values, items []T, id func(T) string) ([]T, error) {
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(items, func(t T) bool { return id(t) == m })
		if i < 0 {
			return nil, badRequest("marker [%s] not found", m)
		}
		items = items[i+1:]
	}
	if ls := q.Get("limit"); ls != "" {
		n, err := strconv.Atoi(ls)
		if err != nil || n < 0 {
			return nil, badRequest("Invalid input for query parameters limit. Value: %s. %s", ls, fmt.Sprintf("%q is not a non-negative integer.", ls))
		}
		if len(items) > n {
			items = items[:n]
		}
	}
	return items, nil
}
