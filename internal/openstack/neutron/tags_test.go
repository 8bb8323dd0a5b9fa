package neutron_test

import (
	"encoding/json"
	"testing"
)

func TestTags(t *testing.T) {
	e := newEnv(t)
	n := e.network("n", nil)
	nid := str(n, "id")
	sn := e.subnet(nid, "10.0.0.0/24", nil)
	p := e.port(nid, nil).obj("port")
	sg := e.must(201, "POST", "/security-groups", map[string]any{"security_group": map[string]any{"name": "g"}}).obj("security_group")
	for _, res := range []struct{ coll, id, singular string }{
		{"networks", nid, "network"}, {"subnets", str(sn, "id"), "subnet"}, {"ports", str(p, "id"), "port"}, {"security-groups", str(sg, "id"), "security_group"},
	} {
		base := "/" + res.coll + "/" + res.id + "/tags"
		e.must(201, "PUT", base+"/red", nil)
		e.must(201, "PUT", base+"/red", nil) // again: still one
		e.must(204, "GET", base+"/red", nil)
		if r := e.do("GET", base+"/blue", nil); r.code != 404 || r.errType() != "TagNotFound" {
			t.Errorf("%s: missing tag: got %d %s", res.coll, r.code, r.raw)
		}
		r := e.must(200, "PUT", base, map[string]any{"tags": []string{"b", "a", "c"}})
		if got, _ := json.Marshal(r.body["tags"]); string(got) != `["b","a","c"]` {
			t.Errorf("%s: PUT all answered %s", res.coll, got)
		}
		if got, _ := json.Marshal(e.must(200, "GET", base, nil).body["tags"]); string(got) != `["a","b","c"]` {
			t.Errorf("%s: tags %s", res.coll, got)
		}
		show := e.must(200, "GET", "/"+res.coll+"/"+res.id, nil).obj(res.singular)
		if got, _ := json.Marshal(show["tags"]); string(got) != `["a","b","c"]` {
			t.Errorf("%s: shown tags %s", res.coll, got)
		}
		e.must(204, "DELETE", base+"/a", nil)
		if r := e.do("DELETE", base+"/a", nil); r.code != 404 || r.errType() != "TagNotFound" {
			t.Errorf("%s: delete missing tag: got %d %s", res.coll, r.code, r.raw)
		}
		for _, c := range []struct {
			body any
			code int
		}{{map[string]any{"tags": []string{"x", "x"}}, 400}, {map[string]any{"tag": []string{}}, 400}, {map[string]any{"tags": "x"}, 400}} {
			if r := e.do("PUT", base, c.body); r.code != c.code || r.errType() != "InvalidInput" {
				t.Errorf("%s: PUT %v: got %d %s", res.coll, c.body, r.code, r.raw)
			}
		}
		if r := e.do("GET", base, nil, "X-Project-Id", "other", "X-Roles", "member"); r.code != 404 || r.errType() != "TagResourceNotFound" {
			t.Errorf("%s: other project: got %d %s", res.coll, r.code, r.raw)
		}
	}
	// list filters over networks
	n2 := e.network("n2", nil)
	e.must(200, "PUT", "/networks/"+str(n2, "id")+"/tags", map[string]any{"tags": []string{"b", "d"}})
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"tags=b,c", []string{"n"}},
		{"tags=b&tags=d", []string{"n2"}},
		{"tags-any=c,d", []string{"n", "n2"}},
		{"not-tags=b,c", []string{"n2"}},
		{"not-tags-any=c", []string{"n2"}},
		{"tags=b&not-tags-any=d", []string{"n"}},
	} {
		l, _ := e.must(200, "GET", "/networks?"+c.q, nil).body["networks"].([]any)
		var got []string
		for _, x := range l {
			got = append(got, str(x.(map[string]any), "name"))
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.q, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] && len(got) == 1 {
				t.Errorf("%s: got %v, want %v", c.q, got, c.want)
			}
		}
	}
	e.must(204, "DELETE", "/networks/"+nid+"/tags", nil)
	if got, _ := json.Marshal(e.must(200, "GET", "/networks/"+nid+"/tags", nil).body["tags"]); string(got) != `[]` {
		t.Errorf("after delete all: %s", got)
	}
}
