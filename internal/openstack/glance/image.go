package glance

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// Image is a Glance image as vflink stores it. Extra properties (such as "location", the path the
// host agent boots from) are kept apart from the core attributes and flattened on the wire.
type Image struct {
	ID              string            `json:"id"`
	Name            *string           `json:"name"`
	Status          string            `json:"status"`
	DiskFormat      *string           `json:"disk_format"`
	ContainerFormat *string           `json:"container_format"`
	Visibility      string            `json:"visibility"`
	Owner           string            `json:"owner"`
	MinDisk         int               `json:"min_disk"`
	MinRAM          int               `json:"min_ram"`
	Protected       bool              `json:"protected"`
	Hidden          bool              `json:"os_hidden"`
	Tags            []string          `json:"tags"`
	Size            *int64            `json:"size"`
	Checksum        *string           `json:"checksum"`
	OSHashAlgo      *string           `json:"os_hash_algo"`
	OSHashValue     *string           `json:"os_hash_value"`
	CreatedAt       string            `json:"created_at"`
	UpdatedAt       string            `json:"updated_at"`
	Properties      map[string]string `json:"properties"`
}

// Image statuses and visibilities.
const (
	StatusActive = "active"

	VisibilityPublic    = "public"
	VisibilityPrivate   = "private"
	VisibilityShared    = "shared"
	VisibilityCommunity = "community"
)

var (
	diskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	containerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
	visibilities     = []string{VisibilityPublic, VisibilityPrivate, VisibilityShared, VisibilityCommunity}
)

// readOnly attributes are computed by the service; a request that sets one is refused with 403.
var readOnly = map[string]bool{
	"status": true, "size": true, "virtual_size": true, "checksum": true, "os_hash_algo": true,
	"os_hash_value": true, "created_at": true, "updated_at": true, "self": true, "file": true,
	"schema": true, "direct_url": true, "locations": true,
}

// reserved attribute names are not available as extra properties.
var reserved = map[string]bool{"deleted": true, "deleted_at": true}

func imageKey(id string) string { return "images/" + id }

// wire is the image as Glance shows it: core attributes, links, and every extra property at the
// top level.
func (img Image) wire() map[string]any {
	m := make(map[string]any, 24+len(img.Properties))
	for k, v := range img.Properties {
		m[k] = v
	}
	tags := img.Tags
	if tags == nil {
		tags = []string{}
	}
	m["id"] = img.ID
	m["name"] = img.Name
	m["status"] = img.Status
	m["disk_format"] = img.DiskFormat
	m["container_format"] = img.ContainerFormat
	m["visibility"] = img.Visibility
	m["owner"] = img.Owner
	m["min_disk"] = img.MinDisk
	m["min_ram"] = img.MinRAM
	m["protected"] = img.Protected
	m["os_hidden"] = img.Hidden
	m["tags"] = tags
	m["size"] = img.Size
	m["virtual_size"] = nil
	m["checksum"] = img.Checksum
	m["os_hash_algo"] = img.OSHashAlgo
	m["os_hash_value"] = img.OSHashValue
	m["created_at"] = img.CreatedAt
	m["updated_at"] = img.UpdatedAt
	m["self"] = "/v2/images/" + img.ID
	m["file"] = "/v2/images/" + img.ID + "/file"
	m["schema"] = "/v2/schemas/image"
	return m
}

func canSee(c *auth.Context, img *Image) bool {
	return c.IsAdmin() || img.Owner == c.ProjectID ||
		img.Visibility == VisibilityPublic || img.Visibility == VisibilityCommunity
}

func canModify(c *auth.Context, img *Image) bool {
	return c.IsAdmin() || img.Owner == c.ProjectID
}

// Image returns an image the caller may see. A missing or invisible image is an error wrapping
// ErrNotFound.
func (s *Service) Image(ctx context.Context, c *auth.Context, id string) (Image, error) {
	o, err := s.visible(ctx, c, id)
	return o.Value, err
}

func (s *Service) visible(ctx context.Context, c *auth.Context, id string) (store.Object[Image], error) {
	if strings.Contains(id, "/") || id == "" {
		return store.Object[Image]{}, notFound(id)
	}
	o, err := store.Get[Image](ctx, s.st, imageKey(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !canSee(c, &o.Value)) {
		return store.Object[Image]{}, notFound(id)
	}
	return o, err
}

func (s *Service) createImage(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(b, &body); err != nil || body == nil {
		return badRequest("The request body must be a JSON object of image attributes, e.g. {\"name\": \"cirros\", \"disk_format\": \"qcow2\", \"container_format\": \"bare\"}.")
	}
	now := s.now()
	img := Image{
		ID: uuid.NewString(), Status: StatusActive, Visibility: VisibilityPrivate, Owner: c.ProjectID,
		Tags: []string{}, CreatedAt: now, UpdatedAt: now, Properties: map[string]string{},
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "id" {
			var id string
			if err := json.Unmarshal(body[k], &id); err != nil {
				return badRequest("Invalid value for id: %s is not a string.", clip(body[k]))
			}
			u, err := uuid.Parse(id)
			if err != nil {
				return badRequest("Invalid value for id: %q is not a UUID like 8a2ea42d-06b5-42c2-a54d-97105420f2bb.", id)
			}
			img.ID = u.String()
			continue
		}
		if err := setAttr(c, &img, k, body[k]); err != nil {
			return err
		}
	}
	_, err = store.Create(r.Context(), s.st, imageKey(img.ID), img)
	if errors.Is(err, store.ErrConflict) {
		return errf(http.StatusConflict, "Image with identifier %s already exists!", img.ID)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", baseURL(r)+strings.TrimSuffix(r.URL.Path, "/")+"/"+img.ID)
	writeJSON(w, http.StatusCreated, img.wire())
	return nil
}

func clip(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// setAttr validates one attribute of a create or a patch and applies it to img.
func setAttr(c *auth.Context, img *Image, key string, raw json.RawMessage) error {
	if readOnly[key] {
		return errf(http.StatusForbidden, "Attribute '%s' is read-only.", key)
	}
	if reserved[key] {
		return errf(http.StatusForbidden, "Attribute '%s' is reserved.", key)
	}
	isNull := string(bytes.TrimSpace(raw)) == "null"
	optString := func(enum []string) (*string, error) {
		if isNull {
			return nil, nil
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, badRequest("Invalid value for %s: %s is not a string.", key, clip(raw))
		}
		if enum != nil && !slices.Contains(enum, v) {
			return nil, badRequest("Invalid value for %s: %q is not one of %s.", key, v, strings.Join(enum, ", "))
		}
		if len(v) > 255 {
			return nil, badRequest("Invalid value for %s: %q is longer than 255 characters.", key, v[:40]+"...")
		}
		return &v, nil
	}
	nonNegInt := func() (int, error) {
		var f json.Number
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&f); err == nil && !bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
			if n, err := strconv.Atoi(f.String()); err == nil && n >= 0 {
				return n, nil
			}
		}
		return 0, badRequest("Invalid value for %s: %s is not an integer >= 0.", key, clip(raw))
	}
	boolean := func() (bool, error) {
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil || isNull {
			return false, badRequest("Invalid value for %s: %s is not a boolean (true or false).", key, clip(raw))
		}
		return v, nil
	}
	var err error
	switch key {
	case "id":
		return errf(http.StatusForbidden, "Attribute 'id' is read-only.")
	case "name":
		img.Name, err = optString(nil)
	case "disk_format":
		img.DiskFormat, err = optString(diskFormats)
	case "container_format":
		img.ContainerFormat, err = optString(containerFormats)
	case "visibility":
		var v *string
		if v, err = optString(visibilities); err == nil {
			if v == nil {
				return badRequest("Invalid value for visibility: null is not one of %s.", strings.Join(visibilities, ", "))
			}
			if *v == VisibilityPublic && !c.IsAdmin() && img.Visibility != VisibilityPublic {
				return errf(http.StatusForbidden, "Only an admin may make an image public; visibility %q is forbidden for project %s.", *v, c.ProjectID)
			}
			img.Visibility = *v
		}
	case "owner":
		var v *string
		if v, err = optString(nil); err == nil {
			owner := ""
			if v != nil {
				owner = *v
			}
			if owner != c.ProjectID && !c.IsAdmin() {
				return errf(http.StatusForbidden, "Only an admin may give an image to another project; owner %q is forbidden for project %s.", owner, c.ProjectID)
			}
			img.Owner = owner
		}
	case "min_disk":
		img.MinDisk, err = nonNegInt()
	case "min_ram":
		img.MinRAM, err = nonNegInt()
	case "protected":
		img.Protected, err = boolean()
	case "os_hidden":
		img.Hidden, err = boolean()
	case "tags":
		var tags []string
		if e := json.Unmarshal(raw, &tags); e != nil || isNull {
			return badRequest("Invalid value for tags: %s is not a list of strings.", clip(raw))
		}
		out := []string{}
		for _, t := range tags {
			if len(t) > 255 {
				return badRequest("Invalid value for tags: tag %q is longer than 255 characters.", t[:40]+"...")
			}
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
		img.Tags = out
	default:
		if key == "" || len(key) > 255 {
			return badRequest("Invalid property name %q: want 1 to 255 characters.", key)
		}
		var v string
		if e := json.Unmarshal(raw, &v); e != nil || isNull {
			return badRequest("Invalid value for property %s: %s is not a string; extra image properties are strings.", key, clip(raw))
		}
		if len(v) > 65535 {
			return badRequest("Invalid value for property %s: longer than 65535 characters.", key)
		}
		if img.Properties == nil {
			img.Properties = map[string]string{}
		}
		img.Properties[key] = v
	}
	return err
}

// removeAttr applies a JSON-patch remove of one attribute.
func removeAttr(img *Image, key string) error {
	switch key {
	case "name":
		img.Name = nil
	case "disk_format":
		img.DiskFormat = nil
	case "container_format":
		img.ContainerFormat = nil
	case "tags":
		img.Tags = []string{}
	case "id", "visibility", "owner", "min_disk", "min_ram", "protected", "os_hidden":
		return errf(http.StatusForbidden, "Attribute '%s' cannot be removed; replace it instead.", key)
	default:
		if readOnly[key] {
			return errf(http.StatusForbidden, "Attribute '%s' is read-only.", key)
		}
		if _, ok := img.Properties[key]; !ok {
			return errf(http.StatusConflict, "Property %s does not exist.", key)
		}
		delete(img.Properties, key)
	}
	return nil
}

// isCore reports whether key is a core attribute (present on every image).
func isCore(key string) bool {
	switch key {
	case "id", "name", "disk_format", "container_format", "visibility", "owner", "min_disk", "min_ram",
		"protected", "os_hidden", "tags":
		return true
	}
	return readOnly[key]
}

func (s *Service) showImage(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	o, err := s.visible(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o.Value.wire())
	return nil
}

// listParams are query parameters that are not filters.
var listParams = map[string]bool{"limit": true, "marker": true, "sort": true, "sort_key": true, "sort_dir": true, "member_status": true}

func (s *Service) listImages(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	q := r.URL.Query()
	vis := q.Get("visibility")
	if vis != "" && vis != "all" && !slices.Contains(visibilities, vis) {
		return badRequest("Invalid visibility value: %q; want one of %s, all.", vis, strings.Join(visibilities, ", "))
	}
	limit := -1
	if ls := q.Get("limit"); ls != "" {
		n, err := strconv.Atoi(ls)
		if err != nil || n < 0 {
			return badRequest("limit param must be an integer >= 0, got %q.", ls)
		}
		limit = n
	}
	objs, _, err := store.List[Image](r.Context(), s.st, "images/")
	if err != nil {
		return err
	}
	imgs := make([]Image, 0, len(objs))
	for _, o := range objs {
		img := o.Value
		if !canSee(c, &img) || !matches(c, &img, q, vis) {
			continue
		}
		imgs = append(imgs, img)
	}
	sort.Slice(imgs, func(i, j int) bool {
		if imgs[i].CreatedAt != imgs[j].CreatedAt {
			return imgs[i].CreatedAt > imgs[j].CreatedAt
		}
		return imgs[i].ID > imgs[j].ID
	})
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(imgs, func(img Image) bool { return img.ID == m })
		if i < 0 {
			return badRequest("Invalid marker. Image %s could not be found.", m)
		}
		imgs = imgs[i+1:]
	}
	resp := map[string]any{"first": "/v2/images", "schema": "/v2/schemas/images"}
	if limit >= 0 && len(imgs) > limit {
		imgs = imgs[:limit]
		if limit > 0 {
			nq := url.Values{}
			for k, v := range q {
				nq[k] = v
			}
			nq.Set("marker", imgs[limit-1].ID)
			resp["next"] = "/v2/images?" + nq.Encode()
		}
	}
	out := make([]map[string]any, len(imgs))
	for i := range imgs {
		out[i] = imgs[i].wire()
	}
	resp["images"] = out
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// matches applies the list filters: core attributes by name, anything else as an extra property.
func matches(c *auth.Context, img *Image, q url.Values, vis string) bool {
	switch vis {
	case "":
		// as in Glance, community images of other projects are listed only when asked for
		if img.Visibility == VisibilityCommunity && img.Owner != c.ProjectID {
			return false
		}
	case "all":
	default:
		if img.Visibility != vis {
			return false
		}
	}
	for k, vs := range q {
		if listParams[k] || k == "visibility" {
			continue
		}
		var got string
		switch k {
		case "name":
			if img.Name == nil {
				return false
			}
			got = *img.Name
		case "status":
			got = img.Status
		case "owner":
			got = img.Owner
		case "disk_format":
			if img.DiskFormat != nil {
				got = *img.DiskFormat
			}
		case "container_format":
			if img.ContainerFormat != nil {
				got = *img.ContainerFormat
			}
		case "protected":
			got = strconv.FormatBool(img.Protected)
		case "os_hidden":
			got = strconv.FormatBool(img.Hidden)
		case "tag":
			for _, t := range vs {
				if !slices.Contains(img.Tags, t) {
					return false
				}
			}
			continue
		default:
			v, ok := img.Properties[k]
			if !ok {
				return false
			}
			got = v
		}
		if !slices.Contains(vs, got) {
			return false
		}
	}
	return true
}

// patchOp is one operation of an application/openstack-images-v2.1-json-patch body.
type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

func (s *Service) patchImage(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	switch strings.TrimSpace(ct) {
	case "application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch":
	default:
		return errf(http.StatusUnsupportedMediaType, "Unsupported Content-Type %q; use application/openstack-images-v2.1-json-patch.", ct)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	var ops []patchOp
	if err := json.Unmarshal(b, &ops); err != nil {
		return badRequest("The request body must be a JSON list of patch operations, e.g. [{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"cirros\"}].")
	}
	keys := make([]string, len(ops))
	for i, op := range ops {
		switch op.Op {
		case "add", "replace", "remove":
		default:
			return badRequest("Invalid operation %q: want add, replace or remove.", op.Op)
		}
		if !strings.HasPrefix(op.Path, "/") || strings.Count(op.Path, "/") != 1 {
			return badRequest("Invalid JSON pointer %q: want /ATTRIBUTE.", op.Path)
		}
		keys[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(op.Path[1:])
		if op.Op != "remove" && op.Value == nil {
			return badRequest("Operation %s %s needs a value.", op.Op, op.Path)
		}
	}
	id := r.PathValue("id")
	var out Image
	err = retry(r.Context(), func() error {
		o, err := s.visible(r.Context(), c, id)
		if err != nil {
			return err
		}
		if !canModify(c, &o.Value) {
			return errf(http.StatusForbidden, "You are not permitted to modify image %s: it belongs to project %s.", id, o.Value.Owner)
		}
		img := o.Value
		img.Properties = make(map[string]string, len(o.Value.Properties))
		for k, v := range o.Value.Properties {
			img.Properties[k] = v
		}
		img.Tags = slices.Clone(o.Value.Tags)
		for i, op := range ops {
			k := keys[i]
			switch op.Op {
			case "remove":
				err = removeAttr(&img, k)
			case "replace":
				if _, ok := img.Properties[k]; !ok && !isCore(k) {
					return errf(http.StatusConflict, "Property %s does not exist; use add to create it.", k)
				}
				err = setAttr(c, &img, k, op.Value)
			case "add":
				err = setAttr(c, &img, k, op.Value)
			}
			if err != nil {
				return err
			}
		}
		img.UpdatedAt = s.now()
		if _, err := store.Update(r.Context(), s.st, imageKey(id), img, o.ModRevision); err != nil {
			return err
		}
		out = img
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out.wire())
	return nil
}

func (s *Service) deleteImage(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	id := r.PathValue("id")
	err := retry(r.Context(), func() error {
		o, err := s.visible(r.Context(), c, id)
		if err != nil {
			return err
		}
		if !canModify(c, &o.Value) {
			return errf(http.StatusForbidden, "You are not permitted to delete image %s: it belongs to project %s.", id, o.Value.Owner)
		}
		if o.Value.Protected {
			return errf(http.StatusForbidden, "Image %s is protected and cannot be deleted; set protected to false first.", id)
		}
		_, err = s.st.Delete(r.Context(), imageKey(id), o.ModRevision)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// uploadImage accepts image data once: it records the size and checksums and discards the bytes
// (vflink images are metadata; the host agent boots from the location property).
func (s *Service) uploadImage(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	id := r.PathValue("id")
	o, err := s.visible(r.Context(), c, id)
	if err != nil {
		return err
	}
	if !canModify(c, &o.Value) {
		return errf(http.StatusForbidden, "You are not permitted to upload data to image %s: it belongs to project %s.", id, o.Value.Owner)
	}
	if o.Value.Size != nil {
		return errf(http.StatusConflict, "Image %s already has data; create a new image instead.", id)
	}
	m, sh := md5.New(), sha512.New()
	n, err := io.Copy(io.MultiWriter(m, sh), r.Body)
	if err != nil {
		return err
	}
	sum, hash, algo := hex.EncodeToString(m.Sum(nil)), hex.EncodeToString(sh.Sum(nil)), "sha512"
	err = retry(r.Context(), func() error {
		o, err := s.visible(r.Context(), c, id)
		if err != nil {
			return err
		}
		if o.Value.Size != nil {
			return errf(http.StatusConflict, "Image %s already has data; create a new image instead.", id)
		}
		img := o.Value
		img.Size, img.Checksum, img.OSHashAlgo, img.OSHashValue = &n, &sum, &algo, &hash
		img.UpdatedAt = s.now()
		_, err = store.Update(r.Context(), s.st, imageKey(id), img, o.ModRevision)
		return err
	})
	if err != nil {
		return fmt.Errorf("upload image %s: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
