package devices_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/fabric/devices"
	"github.com/vflink/vflink/internal/store"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestDevicesCredentialsAreWriteOnly(t *testing.T) {
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs := &syncBuf{}
	mux := http.NewServeMux()
	devices.New(st, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))).Register(mux, "/v1")
	role := "admin"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(auth.With(r.Context(), &auth.Context{ProjectID: "p", Roles: []string{role}})))
	}))
	defer srv.Close()
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const secret = "Sw1tch-s3cret"
	code, body := do("POST", "/v1/devices", `{"device": {"name": "leaf1", "driver": "junos", "management_address": "127.0.0.1:8300",
		"chassis_mac": "00:11:22:33:44:55", "asn": 64512, "port_name_rewrite": {"regex": "^(\\d+)$", "replacement": "xe-0/0/$1"},
		"credentials": {"username": "vflink", "password": "`+secret+`"}}}`)
	if code != 201 || strings.Contains(body, secret) {
		t.Fatalf("create: %d %s", code, body)
	}
	var d struct {
		Device struct {
			HasCredentials bool `json:"has_credentials"`
		} `json:"device"`
	}
	json.Unmarshal([]byte(body), &d)
	if !d.Device.HasCredentials {
		t.Fatalf("has_credentials false after create: %s", body)
	}
	for _, p := range []string{"/v1/devices", "/v1/devices/leaf1"} {
		if code, body := do("GET", p, ""); code != 200 || strings.Contains(body, secret) || strings.Contains(body, "password") {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
	}
	if code, _ := do("POST", "/v1/devices", `{"device": {"name": "leaf1", "driver": "junos", "management_address": "127.0.0.1:8300"}}`); code != 409 {
		t.Fatalf("duplicate: got %d, want 409", code)
	}
	cases := []struct{ body, want string }{
		{`{"device": {"name": "leaf 2", "driver": "junos", "management_address": "127.0.0.1:1"}}`, `"leaf 2"`},
		{`{"device": {"name": "leaf2", "driver": "eos", "management_address": "127.0.0.1:1"}}`, `"eos"`},
		{`{"device": {"name": "leaf2", "driver": "junos", "management_address": "nohost"}}`, `"nohost"`},
		{`{"device": {"name": "leaf2", "driver": "junos", "management_address": "h:99999"}}`, `99999`},
		{`{"device": {"name": "leaf2", "driver": "junos", "management_address": "h:830", "chassis_mac": "zz"}}`, `"zz"`},
		{`{"device": {"name": "leaf2", "driver": "junos", "management_address": "h:830", "asn": 0}}`, `asn 0`},
		{`{"device": {"name": "leaf2", "driver": "junos", "management_address": "h:830", "port_name_rewrite": {"regex": "(", "replacement": ""}}}`, `does not compile`},
		{`{"device": {"name": "leaf2", "driver": "junos", "management_address": "h:830", "colour": "red"}}`, `colour`},
	}
	for _, c := range cases {
		code, body := do("POST", "/v1/devices", c.body)
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		json.Unmarshal([]byte(body), &e)
		if code != 400 || !strings.Contains(e.Error.Message, c.want) {
			t.Errorf("%s: got %d %s, want 400 naming %s", c.body, code, body, c.want)
		}
	}
	if code, body := do("PATCH", "/v1/devices/leaf1", `{"device": {"asn": 65000, "credentials": {"username": "u2", "password": "`+secret+`2"}}}`); code != 200 || strings.Contains(body, secret) {
		t.Fatalf("patch: %d %s", code, body)
	}
	sec, err := store.Get[map[string]string](context.Background(), st, "device-secrets/leaf1")
	if err != nil || sec.Value["username"] != "u2" {
		t.Fatalf("stored credentials: %v %v", sec.Value["username"], err)
	}
	role = "member"
	if code, _ := do("GET", "/v1/devices", ""); code != 403 {
		t.Fatalf("member lists devices: got %d, want 403", code)
	}
	role = "admin"
	if code, _ := do("DELETE", "/v1/devices/leaf1", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if _, err := store.Get[map[string]string](context.Background(), st, "device-secrets/leaf1"); err == nil {
		t.Fatal("credentials survive the device")
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("a credential reached the log: %s", logs.String())
	}
}
