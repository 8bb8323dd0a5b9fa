// Package vflinkapi is the plumbing of vflink's own API (/v1: hosts, devices): admin-only routes
// whose handlers return errors, and one place that turns an error into
// {"error": {"code", "message"}} with the right status.
package vflinkapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// Error is an API error with its HTTP status.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// HTTPStatus is the status the error answers with.
func (e *Error) HTTPStatus() int { return e.Code }

// Errorf builds an *Error.
func Errorf(code int, format string, args ...any) error {
	return &Error{code, fmt.Sprintf(format, args...)}
}

// WriteJSON answers v with code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// WriteError answers err: its own status when it has one (HTTPStatus() int), 499 for a caller
// that went away, 503 for a store outage, else 500 (logged; the caller only learns "internal").
func WriteError(w http.ResponseWriter, log *slog.Logger, err error) {
	var st interface {
		error
		HTTPStatus() int
	}
	code, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.As(err, &st):
		// the message of the error that carries the status, not the wrapping context
		code, msg = st.HTTPStatus(), st.Error()
	case errors.Is(err, context.Canceled):
		code, msg = 499, "the client went away"
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		code, msg = http.StatusServiceUnavailable, "the store is unavailable; retry later"
	default:
		log.Error("internal error", "err", err)
	}
	WriteJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// HandleAdmin mounts f at "METHOD /path" below prefix; only callers with the admin role reach it.
func HandleAdmin(mux *http.ServeMux, log *slog.Logger, prefix, pattern string, f func(http.ResponseWriter, *http.Request) error) {
	method, path, _ := strings.Cut(pattern, " ")
	mux.HandleFunc(method+" "+prefix+path, func(w http.ResponseWriter, r *http.Request) {
		if c := auth.From(r.Context()); c == nil || !c.IsAdmin() {
			WriteError(w, log, Errorf(http.StatusForbidden, "%s %s needs the admin role", method, prefix+path))
			return
		}
		if err := f(w, r); err != nil {
			WriteError(w, log, err)
		}
	})
}
