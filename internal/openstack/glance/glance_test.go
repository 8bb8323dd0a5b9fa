package glance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/glance"
	"github.com/vflink/vflink/internal/store"
)

type env struct {
	t   *testing.T
	url string
	svc *glance.Service
}

// withCaller puts the test caller into the context: project from X-Project-Id (default p1),
// roles from X-Roles (default admin).
func withCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		roles := r.Header.Get("X-Roles")
		if roles == "" {
			roles = "admin"
		}
		p := r.Header.Get("X-Project-Id")
		if p == "" {
			p = "p1"
		}
		c := &auth.Context{UserID: "u-" + p, ProjectID: p, Roles: strings.Split(roles, ",")}
		next.ServeHTTP(w, r.WithContext(auth.With(r.Context(), c)))
	})
}

func newEnv(t *testing.T) *env {
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc := glance.New(st, glance.Config{})
	svc.Register(mux, "/image")
	srv := httptest.NewServer(withCaller(mux))
	t.Cleanup(func() { srv.Close(); st.Close() })
	return &env{t: t, url: srv.URL, svc: svc}
}

type resp struct {
	code int
	body map[string]any
	raw  string
}

func (e *env) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if method == "PATCH" {
		req.Header.Set("Content-Type", "application/openstack-images-v2.1-json-patch")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	out := resp{code: r.StatusCode, raw: string(b)}
	json.Unmarshal(b, &out.body)
	return out
}

func (e *env) must(code int, method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	r := e.do(method, path, body, hdr...)
	if r.code != code {
		e.t.Fatalf("%s %s: got %d %s, want %d", method, path, r.code, r.raw, code)
	}
	return r
}

func member(p string) []string { return []string{"X-Project-Id", p, "X-Roles", "member"} }

func (e *env) names(path string, hdr ...string) string {
	e.t.Helper()
	var out []string
	for _, v := range e.must(200, "GET", path, nil, hdr...).body["images"].([]any) {
		n, _ := v.(map[string]any)["name"].(string)
		out = append(out, n)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestVersions(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/image", "/image/"} {
		r := e.must(300, "GET", p, nil)
		vs := r.body["versions"].([]any)
		v := vs[0].(map[string]any)
		if v["id"] != "v2.15" || v["status"] != "CURRENT" {
			t.Errorf("GET %s: first version %v, want v2.15 CURRENT", p, v)
		}
		if href := v["links"].([]any)[0].(map[string]any)["href"]; href != e.url+"/image/v2/" {
			t.Errorf("GET %s: href %v, want %s", p, href, e.url+"/image/v2/")
		}
		if last := vs[len(vs)-1].(map[string]any); last["id"] != "v2.0" || last["status"] != "SUPPORTED" {
			t.Errorf("GET %s: last version %v", p, last)
		}
	}
}

func TestImages(t *testing.T) {
	e := newEnv(t)
	// what openstacksdk sends for `openstack image create --property location=... cirros`
	img := e.must(201, "POST", "/image/v2/images", map[string]any{
		"name": "cirros", "disk_format": "qcow2", "container_format": "bare", "min_ram": 64,
		"owner_specified.openstack.md5": "", "owner_specified.openstack.object": "images/cirros",
		"location": "/var/lib/vflink/cirros.qcow2", "tags": []string{"a", "a", "b"}}).body
	id, _ := img["id"].(string)
	for k, want := range map[string]any{"name": "cirros", "status": "active", "disk_format": "qcow2",
		"container_format": "bare", "visibility": "private", "owner": "p1", "min_ram": 64.0, "min_disk": 0.0,
		"protected": false, "size": nil, "virtual_size": nil, "checksum": nil, "os_hash_algo": nil,
		"os_hash_value": nil, "self": "/v2/images/" + id, "file": "/v2/images/" + id + "/file",
		"schema": "/v2/schemas/image", "location": "/var/lib/vflink/cirros.qcow2",
		"owner_specified.openstack.object": "images/cirros"} {
		if img[k] != want {
			t.Errorf("image %s: got %#v, want %#v", k, img[k], want)
		}
	}
	if tags, _ := img["tags"].([]any); len(tags) != 2 {
		t.Errorf("tags: got %v, want [a b]", img["tags"])
	}
	if _, ok := img["properties"]; ok {
		t.Error("properties are nested; want them at the top level")
	}
	fixed := "8a2ea42d-06b5-42c2-a54d-97105420f2bb"
	e.must(201, "POST", "/image/v2/images", map[string]any{"id": fixed, "name": "ubuntu", "visibility": "public"})
	e.must(409, "POST", "/image/v2/images", map[string]any{"id": fixed, "name": "again"})
	e.must(201, "POST", "/image/v2/images", map[string]any{"name": "comm", "visibility": "community"}, member("p2")...)
	e.must(201, "POST", "/image/v2/images", map[string]any{"name": "p2-private"}, member("p2")...)

	for _, c := range []struct {
		body map[string]any
		code int
		want string
	}{
		{map[string]any{"disk_format": "exe"}, 400, "disk_format"},
		{map[string]any{"container_format": 3}, 400, "container_format"},
		{map[string]any{"visibility": "everyone"}, 400, "everyone"},
		{map[string]any{"min_ram": -1}, 400, "min_ram"},
		{map[string]any{"min_disk": "1"}, 400, "min_disk"},
		{map[string]any{"protected": "yes"}, 400, "protected"},
		{map[string]any{"tags": "a"}, 400, "tags"},
		{map[string]any{"hw_vif_model": 1}, 400, "hw_vif_model"},
		{map[string]any{"id": "nope"}, 400, "nope"},
		{map[string]any{"status": "queued"}, 403, "status"},
		{map[string]any{"deleted": "x"}, 403, "deleted"},
	} {
		r := e.must(c.code, "POST", "/image/v2/images", c.body)
		if msg, _ := r.body["message"].(string); !strings.Contains(msg, c.want) {
			t.Errorf("%v: message %q should name %q", c.body, msg, c.want)
		}
		if code, _ := r.body["code"].(string); !strings.HasPrefix(code, "40") {
			t.Errorf("%v: code %q", c.body, code)
		}
	}
	r := e.must(403, "POST", "/image/v2/images", map[string]any{"name": "x", "visibility": "public"}, member("p2")...)
	if !strings.Contains(r.raw, "public") {
		t.Errorf("member public: got %s", r.raw)
	}

	// visibility: own + public (+ community when asked); others' private images are 404
	if got := e.names("/image/v2/images", member("p1")...); got != "cirros,ubuntu" {
		t.Errorf("p1 list: got %q", got)
	}
	if got := e.names("/image/v2/images", member("p2")...); got != "comm,p2-private,ubuntu" {
		t.Errorf("p2 list: got %q", got)
	}
	if got := e.names("/image/v2/images?visibility=community", member("p1")...); got != "comm" {
		t.Errorf("p1 community list: got %q", got)
	}
	if got := e.names("/image/v2/images?name=cirros"); got != "cirros" {
		t.Errorf("?name=cirros: got %q", got)
	}
	if got := e.names("/image/v2/images?name=nope"); got != "" {
		t.Errorf("?name=nope: got %q", got)
	}
	if got := e.names("/image/v2/images?visibility=private&status=active", member("p1")...); got != "cirros" {
		t.Errorf("?visibility=private: got %q", got)
	}
	if got := e.names("/image/v2/images?location=/var/lib/vflink/cirros.qcow2"); got != "cirros" {
		t.Errorf("?location=: got %q", got)
	}
	e.must(400, "GET", "/image/v2/images?visibility=everyone", nil)
	list := e.must(200, "GET", "/image/v2/images?limit=1", nil).body
	if list["first"] != "/v2/images" || list["schema"] != "/v2/schemas/images" || list["next"] == nil {
		t.Errorf("list envelope: got first %v schema %v next %v", list["first"], list["schema"], list["next"])
	}
	e.must(404, "GET", "/image/v2/images/"+id, nil, member("p2")...)
	e.must(200, "GET", "/image/v2/images/"+fixed, nil, member("p2")...)
	if got, err := e.svc.Image(context.Background(), &auth.Context{ProjectID: "p2"}, id); !errors.Is(err, glance.ErrNotFound) {
		t.Errorf("Image of another project's private image: got %v %v, want ErrNotFound", got.ID, err)
	}
	if got, err := e.svc.Image(context.Background(), &auth.Context{ProjectID: "p1"}, id); err != nil || got.Properties["location"] != "/var/lib/vflink/cirros.qcow2" {
		t.Errorf("Image: got %+v %v", got, err)
	}
	r = e.must(404, "GET", "/image/v2/images/cirros", nil)
	if r.body["code"] != "404 Not Found" || r.body["title"] != "Not Found" || r.body["message"] != "No image found with ID cirros" {
		t.Errorf("404 body: got %s", r.raw)
	}

	// patch
	p := e.must(200, "PATCH", "/image/v2/images/"+id, []map[string]any{
		{"op": "replace", "path": "/name", "value": "cirros2"},
		{"op": "add", "path": "/hw_vif_model", "value": "virtio"},
		{"op": "replace", "path": "/location", "value": "/srv/cirros.qcow2"},
		{"op": "remove", "path": "/owner_specified.openstack.md5"},
		{"op": "replace", "path": "/protected", "value": true},
	}).body
	if p["name"] != "cirros2" || p["hw_vif_model"] != "virtio" || p["location"] != "/srv/cirros.qcow2" || p["protected"] != true {
		t.Errorf("patched: got %v", p)
	}
	if _, ok := p["owner_specified.openstack.md5"]; ok {
		t.Error("removed property is still there")
	}
	for _, c := range []struct {
		ops  []map[string]any
		code int
	}{
		{[]map[string]any{{"op": "replace", "path": "/status", "value": "killed"}}, 403},
		{[]map[string]any{{"op": "replace", "path": "/id", "value": fixed}}, 403},
		{[]map[string]any{{"op": "replace", "path": "/visibility", "value": "public"}}, 200},
		{[]map[string]any{{"op": "replace", "path": "/disk_format", "value": "exe"}}, 400},
		{[]map[string]any{{"op": "replace", "path": "/missing", "value": "x"}}, 409},
		{[]map[string]any{{"op": "remove", "path": "/missing"}}, 409},
		{[]map[string]any{{"op": "move", "path": "/name", "from": "/x"}}, 400},
	} {
		e.must(c.code, "PATCH", "/image/v2/images/"+id, c.ops)
	}
	e.must(403, "PATCH", "/image/v2/images/"+fixed, []map[string]any{{"op": "replace", "path": "/name", "value": "x"}}, member("p2")...)
	e.must(415, "PATCH", "/image/v2/images/"+id, `[]`, "Content-Type", "application/json")

	// upload: size and checksums are recorded once
	e.must(204, "PUT", "/image/v2/images/"+fixed+"/file", "hello", "Content-Type", "application/octet-stream")
	got := e.must(200, "GET", "/image/v2/images/"+fixed, nil).body
	if got["size"] != 5.0 || got["checksum"] != "5d41402abc4b2a76b9719d911017c592" || got["os_hash_algo"] != "sha512" || got["status"] != "active" {
		t.Errorf("after upload: size %v checksum %v algo %v status %v", got["size"], got["checksum"], got["os_hash_algo"], got["status"])
	}
	e.must(409, "PUT", "/image/v2/images/"+fixed+"/file", "again", "Content-Type", "application/octet-stream")

	// delete
	e.must(403, "DELETE", "/image/v2/images/"+id, nil) // protected
	e.must(200, "PATCH", "/image/v2/images/"+id, []map[string]any{{"op": "replace", "path": "/protected", "value": false}})
	e.must(403, "DELETE", "/image/v2/images/"+fixed, nil, member("p2")...)
	e.must(204, "DELETE", "/image/v2/images/"+id, nil)
	e.must(404, "GET", "/image/v2/images/"+id, nil)
	e.must(404, "DELETE", "/image/v2/images/"+id, nil)
}
