package glance_test

import (
	"fmt"
	"slices"
	"testing"
)

// jsonType is the JSON schema type name of a decoded JSON value.
func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func schemaTypes(p map[string]any) []string {
	switch t := p["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			out = append(out, e.(string))
		}
		return out
	}
	return nil
}

// python-glanceclient validates every image it reads against /v2/schemas/image: each attribute
// vflink returns must be described with its JSON type (and an enum that holds its value), and
// the list schema must describe a list of those.
func TestSchemasDescribeWhatImagesCarry(t *testing.T) {
	e := newEnv(t)
	sch := e.must(200, "GET", "/image/v2/schemas/image", nil).body
	if sch["name"] != "image" {
		t.Fatalf("schema name %v", sch["name"])
	}
	props := sch["properties"].(map[string]any)
	if ap, _ := sch["additionalProperties"].(map[string]any); ap["type"] != "string" {
		t.Fatalf("additionalProperties %v, want strings (user properties)", sch["additionalProperties"])
	}
	bare := e.must(201, "POST", "/image/v2/images", map[string]any{"name": "b"}).body
	full := e.must(201, "POST", "/image/v2/images", map[string]any{"name": "f", "disk_format": "raw",
		"container_format": "bare", "tags": []string{"x"}, "min_ram": 64, "location": "file:///images/vm.raw"}).body
	for _, img := range []map[string]any{bare, full} {
		for k, v := range img {
			p, ok := props[k].(map[string]any)
			if !ok {
				if _, isStr := v.(string); !isStr {
					t.Errorf("attribute %s=%v is not in the schema and not a string (additionalProperties)", k, v)
				}
				continue
			}
			if !slices.Contains(schemaTypes(p), jsonType(v)) {
				t.Errorf("attribute %s=%v is a %s; the schema says %v", k, v, jsonType(v), p["type"])
			}
			if enum, ok := p["enum"].([]any); ok && !slices.Contains(enum, v) {
				t.Errorf("attribute %s=%v is not in the schema's enum %v", k, v, enum)
			}
		}
	}
	list := e.must(200, "GET", "/image/v2/schemas/images", nil).body
	lp := list["properties"].(map[string]any)
	items := lp["images"].(map[string]any)["items"].(map[string]any)
	if items["name"] != "image" || len(items["properties"].(map[string]any)) != len(props) {
		t.Fatalf("images schema does not list image schemas: %v", items["name"])
	}
}
