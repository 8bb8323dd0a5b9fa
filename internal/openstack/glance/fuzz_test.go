package glance

import (
	"encoding/json"
	"testing"

	"github.com/vflink/vflink/internal/auth"
)

// FuzzSetAttr feeds arbitrary attributes to the create/patch validator: it must accept or answer
// with an *Error, never panic, and never let a core attribute leak into the extra properties.
func FuzzSetAttr(f *testing.F) {
	for _, s := range [][2]string{{"name", `"cirros"`}, {"min_ram", `64`}, {"min_disk", `"1"`}, {"tags", `["a","a"]`},
		{"visibility", `"public"`}, {"location", `"/x"`}, {"protected", `null`}, {"owner", `"p2"`}, {"status", `1`}} {
		f.Add(s[0], s[1])
	}
	c := &auth.Context{ProjectID: "p1", Roles: []string{"member"}}
	f.Fuzz(func(t *testing.T, key, value string) {
		if !json.Valid([]byte(value)) {
			return
		}
		img := Image{Visibility: VisibilityPrivate, Owner: "p1", Properties: map[string]string{}}
		if err := setAttr(c, &img, key, json.RawMessage(value)); err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("setAttr(%q, %s): error %T %v is not an *Error", key, value, err, err)
			}
			return
		}
		if _, ok := img.Properties[key]; ok && isCore(key) {
			t.Fatalf("core attribute %q stored as an extra property", key)
		}
		if img.Visibility == VisibilityPublic || img.Owner != "p1" {
			t.Fatalf("a member set visibility %q owner %q", img.Visibility, img.Owner)
		}
	})
}
