package glance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// ErrNotFound is wrapped by the error of a lookup of an image that does not exist or that the caller
// may not see.
var ErrNotFound = errors.New("image not found")

// Config configures the Glance face.
type Config struct {
	// Logger (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service implements the Image v2 subset over a store.
type Service struct {
	st  *store.Store
	cfg Config
	log *slog.Logger
}

// New returns the Glance service.
func New(st *store.Store, cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{st: st, cfg: cfg, log: cfg.Logger.With("component", "glance")}
}

func (s *Service) now() string { return s.cfg.Now().UTC().Format("2006-01-02T15:04:05Z") }

// Register mounts the API under prefix (e.g. "/image"): the version list at prefix and prefix/,
// the API at prefix/v2/.
func (s *Service) Register(mux *http.ServeMux, prefix string) {
	h := func(pattern string, f func(http.ResponseWriter, *http.Request) error) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.HandleFunc(method+" "+prefix+path, func(w http.ResponseWriter, r *http.Request) {
			if err := f(w, r); err != nil {
				writeError(w, s.log, err)
			}
		})
	}
	mux.HandleFunc("GET "+prefix, s.versions)
	mux.HandleFunc("GET "+prefix+"/{$}", s.versions)

	h("POST /v2/images", s.authed(s.createImage))
	h("GET /v2/images", s.authed(s.listImages))
	h("GET /v2/images/{id}", s.authed(s.showImage))
	h("PATCH /v2/images/{id}", s.authed(s.patchImage))
	h("DELETE /v2/images/{id}", s.authed(s.deleteImage))
	h("PUT /v2/images/{id}/file", s.authed(s.uploadImage))
	h("GET /v2/schemas/image", s.showImageSchema)
	h("GET /v2/schemas/images", s.showImagesSchema)
}

type handler func(w http.ResponseWriter, r *http.Request, c *auth.Context) error

// authed passes the caller to f, or answers 401 when the request carries none.
func (s *Service) authed(f handler) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		c := auth.From(r.Context())
		if c == nil {
			return errf(http.StatusUnauthorized, "This server could not verify that you are authorized to access the document you requested.")
		}
		return f(w, r, c)
	}
}

// versions answers the version list the clients discover the API with (300 Multiple Choices).
func (s *Service) versions(w http.ResponseWriter, r *http.Request) {
	href := baseURL(r) + strings.TrimSuffix(r.URL.Path, "/") + "/v2/"
	type link struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	}
	type version struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Links  []link `json:"links"`
	}
	var vs []version
	for minor := 15; minor >= 0; minor-- {
		status := "SUPPORTED"
		if minor == 15 {
			status = "CURRENT"
		}
		vs = append(vs, version{ID: fmt.Sprintf("v2.%d", minor), Status: status, Links: []link{{"self", href}}})
	}
	writeJSON(w, http.StatusMultipleChoices, map[string]any{"versions": vs})
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Error is an API error with its HTTP status.
type Error struct {
	Status  int
	Message string
	err     error // what errors.Is sees (ErrNotFound for a 404 on an image)
}

func (e *Error) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrNotFound) true for a missing image.
func (e *Error) Unwrap() error { return e.err }

func errf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return errf(http.StatusBadRequest, format, args...)
}

func notFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("No image found with ID %s", id), err: ErrNotFound}
}

// retry runs one optimistic write (store.Retry) with Glance's answer when it keeps losing.
func retry(ctx context.Context, fn func() error) error {
	err := store.Retry(ctx, 32, func(int) error { return fn() })
	if errors.Is(err, store.ErrContention) {
		return errf(http.StatusConflict, "The image changed concurrently too many times; retry the request.")
	}
	return err
}

// writeError is the one place that turns an error into an HTTP answer, in the shape of Glance's
// WSGI layer: {"code": "404 Not Found", "title": "Not Found", "message": "..."}.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	var e *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &mbe):
		e = errf(http.StatusRequestEntityTooLarge, "Request body is larger than the limit of %d bytes.", mbe.Limit)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		log.Warn("store unavailable", "err", err)
		e = errf(http.StatusServiceUnavailable, "The store is unavailable; retry later.")
	case errors.Is(err, context.Canceled):
		e = errf(499, "The client closed the request.")
	default:
		log.Error("internal error", "err", err)
		e = errf(http.StatusInternalServerError, "The server has either erred or is incapable of performing the requested operation.")
	}
	title := http.StatusText(e.Status)
	if title == "" {
		title = "Error"
	}
	writeJSON(w, e.Status, map[string]string{
		"code":    fmt.Sprintf("%d %s", e.Status, title),
		"title":   title,
		"message": e.Message,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
