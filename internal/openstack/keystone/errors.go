package keystone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/vflink/vflink/internal/store"
)

// Error is an API error with its HTTP status.
type Error struct {
	Status     int
	Message    string
	RetryAfter int // seconds, for 429
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

func errf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// msgUnauthenticated is the one answer to every failed login, whatever part of it was wrong.
const msgUnauthenticated = "The request you have made requires authentication."

var errUnauthorized = &Error{Status: http.StatusUnauthorized, Message: msgUnauthenticated}

func invalid(field string, format string, args ...any) *Error {
	return errf(http.StatusBadRequest, "Invalid input for field '%s': %s", field, fmt.Sprintf(format, args...))
}

func notFound(kind, id string) *Error {
	return errf(http.StatusNotFound, "Could not find %s: %s.", kind, id)
}

func forbidden(action string) *Error {
	return errf(http.StatusForbidden, "You are not authorized to perform the requested action: identity:%s.", action)
}

func duplicate(kind, name, domainID string) *Error {
	if domainID == "" {
		return errf(http.StatusConflict, "Conflict occurred attempting to store %s - Duplicate entry found with name %s.", kind, name)
	}
	return errf(http.StatusConflict, "Conflict occurred attempting to store %s - Duplicate entry found with name %s at domain ID %s.", kind, name, domainID)
}

func tooManyFailures(wait time.Duration) *Error {
	secs := int(math.Ceil(wait.Seconds()))
	return &Error{Status: http.StatusTooManyRequests, RetryAfter: secs, Message: fmt.Sprintf(
		"Too many failed authentication attempts for this user; retry in %d seconds.", secs)}
}

// errContention is returned when a write lost its compare-and-swap too many times in a row.
var errContention = errf(http.StatusConflict, "The object changed concurrently too many times; retry the request.")

var titles = map[int]string{
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
	409: "Conflict", 413: "Request Entity Too Large", 429: "Too Many Requests", 499: "Client Closed Request",
	500: "Internal Server Error", 503: "Service Unavailable",
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    int    `json:"code"`
	Title   string `json:"title"`
	Message string `json:"message"`
}

// writeError is the one place that turns an error into an HTTP answer.
func (s *Service) writeError(w http.ResponseWriter, err error) {
	var e *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &mbe):
		e = errf(http.StatusRequestEntityTooLarge, "The request body is larger than the limit of %d bytes.", mbe.Limit)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("store unavailable", "err", err)
		e = errf(http.StatusServiceUnavailable, "The store is unavailable; retry later.")
	case errors.Is(err, context.Canceled):
		e = errf(499, "The client closed the request.")
	default:
		s.log.Error("internal error", "err", err)
		e = errf(http.StatusInternalServerError, "An unexpected error prevented the server from fulfilling your request.")
	}
	switch e.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Keystone uri="`+s.cfg.PublicURL+`/v3"`)
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	title := titles[e.Status]
	if title == "" {
		title = http.StatusText(e.Status)
	}
	writeJSON(w, e.Status, errorBody{errorDetail{Code: e.Status, Title: title, Message: e.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
