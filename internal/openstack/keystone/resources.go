package keystone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/vflink/vflink/internal/store"
)

// A doc is a resource Keystone keeps with free-form extra attributes (regions, services,
// endpoints, endpoint groups, policies, credentials, OAuth consumers): its stored JSON is the API's,
// so the view is the stored object plus its links.
type doc = map[string]any

// docSpec describes one such resource kind; docHandlers serve its CRUD from it.
type docSpec struct {
	member, collection string // JSON keys: "region", "regions"
	path               string // URL below /v3, e.g. "regions" or "OS-EP-FILTER/endpoint_groups"
	prefix             string // store prefix, e.g. "keystone/regions/"
	// readAnyone lets every authenticated user get and list (Keystone's "" rule); otherwise
	// admin only, like every write.
	readAnyone bool
	// filters are the query parameters a list matches exactly on string attributes.
	filters []string
	// prepare validates a create (old == nil) or an update, returning the object to store. For a
	// create it may set "id"; when it does not, a new ID is given.
	prepare func(ctx context.Context, in, old doc) (doc, error)
	// hide lists attributes kept in the store but never shown (e.g. a secret's hash).
	hide []string
	// deleted runs in the delete's retry loop, to refuse the delete or add cascades to t.
	deleted func(ctx context.Context, t *store.Txn, d doc) error
}

func (sp *docSpec) key(id string) string { return sp.prefix + id }

func (s *Service) docView(sp *docSpec, d doc) doc {
	v := make(doc, len(d)+1)
	for k, x := range d {
		v[k] = x
	}
	for _, k := range sp.hide {
		delete(v, k)
	}
	v["links"] = map[string]any{"self": s.link(sp.path, str(d, "id"))}
	return v
}

// parseDoc decodes {"<member>": {...}} into a map, refusing the read-only "links".
func parseDoc(b []byte, member string) (doc, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errf(http.StatusBadRequest, "The request body is empty; expected {\"%s\": {...}}.", member)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil || env == nil {
		return nil, errf(http.StatusBadRequest, "The request body is not a JSON object like {\"%s\": {...}}: %s", member, jsonErr(err, b))
	}
	raw, ok := env[member]
	if !ok || len(env) != 1 {
		return nil, errf(http.StatusBadRequest, "The request body must hold exactly one key %q, got %s.", member, quoteKeys(env))
	}
	var d doc
	if err := json.Unmarshal(raw, &d); err != nil || d == nil {
		return nil, invalid(member, "%s is not an object.", clip(raw))
	}
	delete(d, "links")
	return d, nil
}

func str(d doc, k string) string {
	s, _ := d[k].(string)
	return s
}

// docString checks that attribute k, when present, is a string of at most max characters (0: no
// limit); null is allowed when nullable.
func docString(d doc, member, k string, max int, nullable bool) error {
	v, ok := d[k]
	if !ok {
		return nil
	}
	if v == nil {
		if nullable {
			return nil
		}
		return invalid(member+"."+k, "null is not a string.")
	}
	s, isStr := v.(string)
	if !isStr {
		return invalid(member+"."+k, "%s is not a string.", jsonClip(v))
	}
	if n := utf8.RuneCountInString(s); max > 0 && n > max {
		return invalid(member+"."+k, "%q is %d characters long; the limit is %d.", clip([]byte(s)), n, max)
	}
	return nil
}

// docName checks a name: a string of 1..255 characters with a visible one.
func docName(d doc, member, k string) error {
	if err := docString(d, member, k, 255, false); err != nil {
		return err
	}
	if s, ok := d[k].(string); ok && strings.TrimSpace(s) == "" {
		return invalid(member+"."+k, "%q is empty; a name needs at least one visible character.", s)
	}
	return nil
}

func docBool(d doc, member, k string) error {
	if v, ok := d[k]; ok {
		if _, isBool := v.(bool); !isBool {
			return invalid(member+"."+k, "%s is not a boolean (true or false).", jsonClip(v))
		}
	}
	return nil
}

func docRequire(d doc, member string, keys ...string) error {
	for _, k := range keys {
		if _, ok := d[k]; !ok {
			return invalid(member, "'%s' is a required property.", k)
		}
	}
	return nil
}

func jsonClip(v any) string {
	b, _ := json.Marshal(v)
	return clip(b)
}

// merge returns old with the attributes of in set over it.
func merge(old, in doc) doc {
	out := make(doc, len(old)+len(in))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range in {
		out[k] = v
	}
	return out
}

func (s *Service) getDoc(ctx context.Context, sp *docSpec, id string) (store.Object[doc], error) {
	if !validID(id) {
		return store.Object[doc]{}, notFound(sp.member, id)
	}
	return getOr404[doc](ctx, s.st, sp.key(id), sp.member, id)
}

func (s *Service) listDocs(ctx context.Context, sp *docSpec) ([]doc, error) {
	l, _, err := store.List[doc](ctx, s.st, sp.prefix)
	if err != nil {
		return nil, err
	}
	out := make([]doc, 0, len(l))
	for _, o := range l {
		out = append(out, o.Value)
	}
	return out, nil
}

// registerDocs mounts the CRUD routes of sp.
func (s *Service) registerDocs(h func(string, func(http.ResponseWriter, *http.Request) error), sp *docSpec) {
	base := "/v3/" + sp.path
	h("POST "+base, func(w http.ResponseWriter, r *http.Request) error { return s.createDoc(w, r, sp) })
	h("GET "+base, func(w http.ResponseWriter, r *http.Request) error { return s.listDocsHandler(w, r, sp) })
	h("GET "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.showDoc(w, r, sp) })
	h("HEAD "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.showDoc(w, r, sp) })
	h("PATCH "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.updateDoc(w, r, sp) })
	h("DELETE "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.deleteDoc(w, r, sp) })
}

func (s *Service) readDocAllowed(r *http.Request, sp *docSpec, action string) error {
	if sp.readAnyone {
		_, err := caller(r)
		return err
	}
	_, err := requireAdmin(r, action)
	return err
}

func (s *Service) createDoc(w http.ResponseWriter, r *http.Request, sp *docSpec) error {
	if _, err := requireAdmin(r, "create_"+sp.member); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseDoc(b, sp.member)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if id := r.PathValue("id"); id != "" { // PUT .../{id}
		if v, ok := in["id"]; ok && v != id {
			return invalid(sp.member+".id", "%s differs from the ID %q in the URL.", jsonClip(v), id)
		}
		in["id"] = id
	}
	d, err := sp.prepare(ctx, in, nil)
	if err != nil {
		return err
	}
	if str(d, "id") == "" {
		d["id"] = newID()
	}
	id := str(d, "id")
	if !validID(id) {
		return invalid(sp.member+".id", "%q is not a usable ID: 1 to 64 characters without '/'.", clip([]byte(id)))
	}
	t := s.st.Txn()
	t.Create(sp.key(id), d)
	if _, err := t.Commit(ctx); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == sp.key(id) {
			return errf(http.StatusConflict, "Conflict occurred attempting to store %s - Duplicate ID, %s.", sp.member, id)
		}
		return err
	}
	s.log.Info(sp.member+" created", sp.member, id)
	writeJSON(w, http.StatusCreated, map[string]any{sp.member: s.docView(sp, d)})
	return nil
}

func (s *Service) listDocsHandler(w http.ResponseWriter, r *http.Request, sp *docSpec) error {
	if err := s.readDocAllowed(r, sp, "list_"+sp.collection); err != nil {
		return err
	}
	l, err := s.listDocs(r.Context(), sp)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	out := make([]doc, 0, len(l))
	for _, d := range l {
		keep := true
		for _, f := range sp.filters {
			if q.Has(f) && fmt.Sprint(d[f]) != q.Get(f) {
				keep = false
			}
		}
		if keep {
			out = append(out, s.docView(sp, d))
		}
	}
	sort.Slice(out, func(i, j int) bool { return str(out[i], "id") < str(out[j], "id") })
	writeJSON(w, http.StatusOK, map[string]any{sp.collection: out, "links": s.listLinks(r, sp.path)})
	return nil
}

func (s *Service) showDoc(w http.ResponseWriter, r *http.Request, sp *docSpec) error {
	if err := s.readDocAllowed(r, sp, "get_"+sp.member); err != nil {
		return err
	}
	o, err := s.getDoc(r.Context(), sp, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{sp.member: s.docView(sp, o.Value)})
	return nil
}

func (s *Service) updateDoc(w http.ResponseWriter, r *http.Request, sp *docSpec) error {
	if _, err := requireAdmin(r, "update_"+sp.member); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseDoc(b, sp.member)
	if err != nil {
		return err
	}
	if len(in) == 0 {
		return invalid(sp.member, "the update is empty; give at least one attribute.")
	}
	ctx := r.Context()
	id := r.PathValue("id")
	if v, ok := in["id"]; ok && v != id {
		return invalid(sp.member+".id", "%s: the ID cannot be changed (it is %q).", jsonClip(v), id)
	}
	var d doc
	err = retry(ctx, func() error {
		o, err := s.getDoc(ctx, sp, id)
		if err != nil {
			return err
		}
		if d, err = sp.prepare(ctx, in, o.Value); err != nil {
			return err
		}
		d["id"] = id
		t := s.st.Txn()
		t.Update(sp.key(id), d, o.ModRevision)
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info(sp.member+" updated", sp.member, id)
	writeJSON(w, http.StatusOK, map[string]any{sp.member: s.docView(sp, d)})
	return nil
}

func (s *Service) deleteDoc(w http.ResponseWriter, r *http.Request, sp *docSpec) error {
	if _, err := requireAdmin(r, "delete_"+sp.member); err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	err := retry(ctx, func() error {
		o, err := s.getDoc(ctx, sp, id)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Delete(sp.key(id), o.ModRevision)
		if sp.deleted != nil {
			if err := sp.deleted(ctx, t, o.Value); err != nil {
				return err
			}
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info(sp.member+" deleted", sp.member, id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
