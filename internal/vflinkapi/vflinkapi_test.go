package vflinkapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
	"github.com/vflink/vflink/internal/vflinkapi"
)

func TestErrorsAndAdminRoutes(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		err  error
		code int
		msg  string
	}{
		{vflinkapi.Errorf(409, "VF %s taken", "0000:83:10.1"), 409, "VF 0000:83:10.1 taken"},
		{fmt.Errorf("wrapped: %w", vflinkapi.Errorf(404, "gone")), 404, `"message":"gone"`},
		{context.Canceled, 499, "the client went away"},
		{fmt.Errorf("commit: %w", store.ErrUnavailable), 503, "the store is unavailable; retry later"},
		{errors.New("secret detail"), 500, "internal error"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		vflinkapi.WriteError(rec, log, c.err)
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.msg) {
			t.Errorf("%v: got %d %s, want %d %q", c.err, rec.Code, rec.Body, c.code, c.msg)
		}
	}
	mux := http.NewServeMux()
	vflinkapi.HandleAdmin(mux, log, "/v1", "GET /things", func(w http.ResponseWriter, r *http.Request) error {
		vflinkapi.WriteJSON(w, 200, map[string]string{"ok": "yes"})
		return nil
	})
	for _, tc := range []struct {
		roles []string
		code  int
	}{{[]string{"admin"}, 200}, {[]string{"member"}, 403}, {nil, 403}} {
		req := httptest.NewRequest("GET", "/v1/things", nil)
		if tc.roles != nil {
			req = req.WithContext(auth.With(req.Context(), &auth.Context{Roles: tc.roles}))
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("roles %v: got %d, want %d", tc.roles, rec.Code, tc.code)
		}
	}
}
