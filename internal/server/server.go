// Package server wires the store, the OpenStack faces and the HTTP plumbing (auth, body limits,
// metrics, health, panics) into `vflink server`.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/store"
)

// MaxBodyBytes bounds every request body (413 beyond).
const MaxBodyBytes = 1 << 20

// Config is everything `vflink server` is told on its command line.
type Config struct {
	Listen        string
	DataDir       string
	EtcdEndpoints []string
	EtcdCert      string
	EtcdKey       string
	EtcdCA        string
	Auth          string // "none" (keystone arrives with the OpenStack-compatibility work)
	VLANRanges    string
	BaseMAC       string
	Logger        *slog.Logger
	// Ready, if set, receives the bound address once the server listens.
	Ready func(addr string)
}

// Run serves until ctx ends, then shuts down in order: HTTP first, then the store.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ranges, err := neutron.ParseVLANRanges(cfg.VLANRanges)
	if err != nil {
		return err
	}
	base, err := neutron.ParseBaseMAC(cfg.BaseMAC)
	if err != nil {
		return err
	}
	var authn auth.Authenticator
	switch cfg.Auth {
	case "none":
		if !isLoopback(cfg.Listen) {
			return fmt.Errorf("--auth none serves everyone as admin, so it listens on loopback only; --listen %s is not a loopback address (use 127.0.0.1:PORT)", cfg.Listen)
		}
		log.Warn("authentication is off (--auth none): every request is an admin's; loopback only")
		authn = auth.NoAuth{DefaultProject: "default"}
	default:
		return fmt.Errorf("--auth %q is not available; allowed: none (Keystone v3 authentication is not built yet)", cfg.Auth)
	}
	st, err := store.Open(ctx, store.Options{
		DataDir: cfg.DataDir, Endpoints: cfg.EtcdEndpoints,
		CertFile: cfg.EtcdCert, KeyFile: cfg.EtcdKey, CAFile: cfg.EtcdCA, Logger: log,
	})
	if err != nil {
		return err
	}
	defer st.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	h := Handler(st, authn, neutron.Config{VLANRanges: ranges, BaseMAC: base, Logger: log}, log)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Info("vflink server listening", "addr", ln.Addr().String(), "physnets", ranges.String())
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("vflink server stopped")
	return nil
}

func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler builds the whole HTTP API over a store.
func Handler(st *store.Store, authn auth.Authenticator, ncfg neutron.Config, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := newMetrics(reg)

	mux := http.NewServeMux()
	nsvc := neutron.New(st, ncfg)
	nsvc.Register(mux, "/v2.0")
	nsvc.Register(mux, "/network/v2.0")
	mux.HandleFunc("GET /{$}", neutronVersions("/v2.0/"))
	mux.HandleFunc("GET /network/{$}", neutronVersions("/network/v2.0/"))
	mux.HandleFunc("GET /network", neutronVersions("/network/v2.0/"))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := st.Status(r.Context()); err != nil {
			http.Error(w, "store: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "HTTPNotFound", fmt.Sprintf("The resource %s %s could not be found.", r.Method, r.URL.Path))
	})
	return m.wrap(recoverer(log, authenticate(authn, recordRoute(mux))))
}

func neutronVersions(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSONBody(w, http.StatusOK, map[string]any{"versions": []map[string]any{{
			"id": "v2.0", "status": "CURRENT",
			"links": []map[string]string{{"rel": "self", "href": baseURL(r) + path}},
		}}})
	}
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// authenticate attaches the caller to every API request; health, metrics and version documents
// are open.
func authenticate(a auth.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		switch r.URL.Path {
		case "/", "/healthz", "/metrics", "/network", "/network/":
			next.ServeHTTP(w, r)
			return
		}
		c, err := a.Authenticate(r)
		if err != nil {
			if errors.Is(err, auth.ErrUnauthenticated) {
				writeErr(w, http.StatusUnauthorized, "HTTPUnauthorized", "Authentication required")
				return
			}
			writeErr(w, http.StatusInternalServerError, "HTTPInternalServerError", "authentication failed")
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.With(r.Context(), c)))
	})
}

func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeErr(w, http.StatusInternalServerError, "HTTPInternalServerError", "Request failed: internal server error while processing your request.")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeErr(w http.ResponseWriter, status int, typ, msg string) {
	writeJSONBody(w, status, api.ErrorBody{NeutronError: api.NeutronError{Type: typ, Message: msg}})
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vflink_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vflink_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(c int) {
	if s.code == 0 {
		s.code = c
	}
	s.ResponseWriter.WriteHeader(c)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (m *metrics) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var route string
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), routeKey{}, &route)))
		if route == "" {
			route = "unmatched"
		} else if _, p, ok := strings.Cut(route, " "); ok {
			route = p
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(code)).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

type routeKey struct{}

// recordRoute reports the pattern the mux matched to the metrics middleware further out (the
// requests in between are copies, so r.Pattern does not travel back by itself).
func recordRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if p, ok := r.Context().Value(routeKey{}).(*string); ok {
			*p = r.Pattern
		}
	})
}
