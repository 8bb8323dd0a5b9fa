package neutron

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/store"
)

// Error is an API error with its HTTP status and Neutron error type.
type Error struct {
	Status  int
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// HTTPStatus is the status the error answers with (for callers outside this face).
func (e *Error) HTTPStatus() int { return e.Status }

func errf(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return errf(http.StatusBadRequest, "HTTPBadRequest", format, args...)
}

func invalidInput(format string, args ...any) *Error {
	return errf(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: "+format, args...)
}

func notFound(kind, id string) *Error {
	var typ string
	switch kind {
	case "network":
		typ = "NetworkNotFound"
	case "subnet":
		typ = "SubnetNotFound"
	case "port":
		typ = "PortNotFound"
	case "trunk":
		typ = "TrunkNotFound"
	default:
		typ = "HTTPNotFound"
	}
	return errf(http.StatusNotFound, typ, "%s %s could not be found.", capitalize(kind), id)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	if b[0] >= 'a' && b[0] <= 'z' {
		b[0] -= 'a' - 'A'
	}
	return string(b)
}

// errContention is returned when a write lost its compare-and-swap too many times in a row.
var errContention = errf(http.StatusConflict, "Conflict", "the object changed concurrently too many times; retry the request")

// writeError is the one place that turns an error into an HTTP answer.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	var e *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &mbe):
		e = errf(http.StatusRequestEntityTooLarge, "HTTPRequestEntityTooLarge",
			"Request body is larger than the limit of %d bytes.", mbe.Limit)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		log.Warn("store unavailable", "err", err)
		e = errf(http.StatusServiceUnavailable, "ServiceUnavailable", "The store is unavailable; retry later.")
	case errors.Is(err, context.Canceled):
		e = errf(499, "ClientClosedRequest", "The client closed the request.")
	default:
		log.Error("internal error", "err", err)
		e = errf(http.StatusInternalServerError, "HTTPInternalServerError", "Request failed: internal server error while processing your request.")
	}
	writeJSON(w, e.Status, api.ErrorBody{NeutronError: api.NeutronError{Type: e.Type, Message: e.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// streamed: a list of 10,000 ports is never held twice in memory
	json.NewEncoder(w).Encode(v)
}
