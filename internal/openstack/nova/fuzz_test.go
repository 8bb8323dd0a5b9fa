package nova

import (
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to the server and flavor decoders: they must answer with a
// value or an *Error, never panic.
func FuzzDecode(f *testing.F) {
	f.Add(`{"server": {"name": "vm", "imageRef": "i", "flavorRef": 1, "min_count": "1", "networks": [{"port": "p"}]}}`)
	f.Add(`{"server": {"name": "vm", "networks": "auto"}}`)
	f.Add(`{"flavor": {"name": "f", "ram": "512", "vcpus": 1, "disk": 0, "id": null, "rxtx_factor": "1.5", "os-flavor-access:is_public": "yes"}}`)
	f.Add(`{"flavor": {"name": " ", "ram": 1e40}}`)
	f.Fuzz(func(t *testing.T, body string) {
		if fs, err := decodeBody(strings.NewReader(body), "server"); err == nil {
			if _, err := decodeServer(fs); err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("decodeServer(%q): error %T %v is not an *Error", body, err, err)
				}
			}
		}
		if fs, err := decodeBody(strings.NewReader(body), "flavor"); err == nil {
			if _, err := decodeFlavor(fs); err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("decodeFlavor(%q): error %T %v is not an *Error", body, err, err)
				}
			}
		}
	})
}
