// Package server wires the store, the OpenStack faces and the HTTP plumbing (auth, body limits,
// metrics, health, panics, and the admission that lets host agents' writes go first) into
// `vflink server`.
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
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/fabric/binder"
	"github.com/vflink/vflink/internal/fabric/devicemgr"
	"github.com/vflink/vflink/internal/fabric/devices"
	"github.com/vflink/vflink/internal/hosts"
	"github.com/vflink/vflink/internal/openstack/glance"
	"github.com/vflink/vflink/internal/openstack/keystone"
	"github.com/vflink/vflink/internal/openstack/keystoneclient"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/openstack/nova"
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
	Auth          string // "keystone" or "none"
	VLANRanges    string
	BaseMAC       string
	// DefaultQuotas are the per-project limits without a project's own (neutron.ParseQuotas).
	DefaultQuotas string
	// PublicURL is how clients reach this server (Keystone catalog); default http://<listen>.
	PublicURL string
	// BootstrapPasswordFile holds the admin password used when the admin user is first created;
	// without it a password is generated into DataDir/admin-password.
	BootstrapPasswordFile string
	Logger                *slog.Logger
	// DeviceResync is how often the device manager reads each device for drift (default 30 s).
	DeviceResync time.Duration
	// External, when its KeystoneURL is set, makes vflink the network service of a real
	// OpenStack: tokens validated at that Keystone, Nova notified of port events.
	External External
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
	quotas, err := neutron.ParseQuotas(cfg.DefaultQuotas)
	if err != nil {
		return fmt.Errorf("--default-quotas: %w", err)
	}
	if cfg.Auth == "none" && !isLoopback(cfg.Listen) {
		return fmt.Errorf("--auth none serves everyone as admin, so it listens on loopback only; --listen %s is not a loopback address (use 127.0.0.1:PORT)", cfg.Listen)
	}
	if cfg.Auth != "none" && cfg.Auth != "keystone" {
		return fmt.Errorf("--auth %q is not known; allowed: keystone, none", cfg.Auth)
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + cfg.Listen
	}
	if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--public-url %q is not a URL like http://127.0.0.1:9696", cfg.PublicURL)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	st, err := store.Open(ctx, store.Options{
		DataDir: cfg.DataDir, Endpoints: cfg.EtcdEndpoints,
		CertFile: cfg.EtcdCert, KeyFile: cfg.EtcdKey, CAFile: cfg.EtcdCA, Logger: log,
	})
	if err != nil {
		return err
	}
	defer st.Close()
	var authn auth.Authenticator
	var sess *keystoneclient.Session
	if cfg.External.KeystoneURL != "" {
		if cfg.Auth != "keystone" {
			return fmt.Errorf("--keystone-url validates tokens at a Keystone; it cannot go with --auth %s", cfg.Auth)
		}
		if sess, err = externalSession(cfg.External, log); err != nil {
			return err
		}
		ttl := cfg.External.TokenCacheTTL // 0: no cache (every request asks Keystone)
		if authn, err = keystoneclient.NewValidator(sess, keystoneclient.ValidatorConfig{CacheTTL: ttl, Logger: log}); err != nil {
			return err
		}
		log.Info("tokens are validated at an external Keystone", "url", cfg.External.KeystoneURL, "cache_ttl", ttl)
	} else if cfg.Auth == "none" {
		log.Warn("authentication is off (--auth none): every request is an admin's; loopback only")
		authn = auth.NoAuth{DefaultProject: "default"}
	} else {
		ks := keystone.New(st, keystone.Config{PublicURL: cfg.PublicURL, Logger: log})
		if err := bootstrap(ctx, ks, cfg, log); err != nil {
			return err
		}
		authn = ks
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	ncfg := neutron.Config{VLANRanges: ranges, BaseMAC: base, DefaultQuotas: quotas, Logger: log}
	reg := newRegistry()
	h := handler(st, authn, ncfg, log, reg)
	// the binder and the device manager run until the HTTP server has stopped, and stop before
	// the store closes
	bctx, stopBinder := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		binder.NewController(st, neutron.New(st, ncfg), log).Run(bctx)
	}()
	go func() {
		defer bg.Done()
		devicemgr.New(st, devicemgr.Options{Dial: devicemgr.DialWithLog(log), Conditions: neutron.New(st, ncfg).SetCondition,
			Resync: cfg.DeviceResync, Log: log}).Run(bctx)
	}()
	if cfg.External.NovaNotify && (sess != nil || cfg.External.NovaEndpoint != "") {
		bg.Add(1)
		go func() {
			defer bg.Done()
			runNotifier(bctx, st, neutron.New(st, ncfg), sess, cfg.External, reg, log)
		}()
	}
	defer func() { stopBinder(); bg.Wait() }()
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

// Handler builds the whole HTTP API over a store. When authn is the Keystone service, its identity
// API is mounted too.
func Handler(st *store.Store, authn auth.Authenticator, ncfg neutron.Config, log *slog.Logger) http.Handler {
	return handler(st, authn, ncfg, log, newRegistry())
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// handler is Handler with its metrics on reg (which the server's background parts share).
func handler(st *store.Store, authn auth.Authenticator, ncfg neutron.Config, log *slog.Logger, reg *prometheus.Registry) http.Handler {
	m := newMetrics(reg)

	mux := http.NewServeMux()
	nsvc := neutron.New(st, ncfg)
	nsvc.Register(mux, "/v2.0")
	nsvc.Register(mux, "/network/v2.0")
	img := glance.New(st, glance.Config{Logger: log})
	img.Register(mux, "/image")
	cmp := nova.New(st, nsvc, img, nova.NewStoreScheduler(st), nova.Config{Logger: log})
	cmp.Register(mux, "/compute")
	hosts.New(st, nsvc, cmp, log).Register(mux, "/v1")
	dsvc := devices.New(st, log)
	dsvc.Config = devicemgr.New(st, devicemgr.Options{Dial: devicemgr.DialWithLog(log), Log: log}).Running
	dsvc.Register(mux, "/v1")
	if ks, ok := authn.(*keystone.Service); ok {
		ks.Register(mux)
	}
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
	adm := newAdmission(max(2, runtime.GOMAXPROCS(0)), agentWindow, reg)
	return m.wrap(recoverer(log, authenticate(authn, adm.wrap(neutronFormat(recordRoute(mux))))))
}

// neutronFormat drops the ".json" format suffix Neutron accepts on every URL
// (/v2.0/networks.json, /v2.0/quotas/<p>/details.json), the only format it serves.
func neutronFormat(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasSuffix(p, ".json") && (strings.HasPrefix(p, "/v2.0/") || strings.HasPrefix(p, "/network/v2.0/")) {
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimSuffix(p, ".json")
			r2.URL.RawPath = ""
			next.ServeHTTP(w, r2)
			return
		}
		next.ServeHTTP(w, r)
	})
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

// openRoutes answer without a token: version documents, health, metrics, and Keystone's login.
var openRoutes = map[string]bool{
	"GET /": true, "GET /healthz": true, "GET /metrics": true,
	"GET /network": true, "GET /network/": true,
	"GET /v3": true, "GET /v3/": true, "POST /v3/auth/tokens": true, "GET /identity/": true,
	"GET /compute": true, "GET /compute/": true, "GET /compute/v2.1": true, "GET /compute/v2.1/": true,
	"GET /image": true, "GET /image/": true, "GET /image/versions": true,
}

// authenticate attaches the caller to every request but the open routes; a request without a
// valid token gets keystonemiddleware's 401 body, as every OpenStack service answers.
func authenticate(a auth.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		if openRoutes[r.Method+" "+r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		c, err := a.Authenticate(r)
		if err != nil {
			if errors.Is(err, auth.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Keystone uri="`+baseURL(r)+`/v3"`)
				writeJSONBody(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
					"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})
				return
			}
			if errors.Is(err, keystoneclient.ErrUnavailable) {
				writeErr(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The identity service cannot validate the token now; retry later.")
				return
			}
			if errors.Is(err, store.ErrUnavailable) {
				writeErr(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The store is unavailable; retry later.")
				return
			}
			writeErr(w, http.StatusInternalServerError, "HTTPInternalServerError", "authentication failed")
			return
		}
		// the services need a project-scoped token; Keystone itself also takes unscoped ones
		if c.ProjectID == "" && !strings.HasPrefix(r.URL.Path, "/v3/") && !strings.HasPrefix(r.URL.Path, "/identity/v3/") {
			w.Header().Set("WWW-Authenticate", `Keystone uri="`+baseURL(r)+`/v3"`)
			writeJSONBody(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
				"code": 401, "title": "Unauthorized", "message": "The request you have made requires a project-scoped token."}})
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
