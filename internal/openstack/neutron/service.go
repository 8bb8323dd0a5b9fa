package neutron

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/ipam"
	"github.com/vflink/vflink/internal/store"
)

// VLANRange is an inclusive range of VLAN IDs a physical network hands out automatically.
type VLANRange struct{ Min, Max int }

// VLANRanges maps each known physical network to its ranges (possibly none: explicit VLANs only).
type VLANRanges map[string][]VLANRange

// ParseVLANRanges parses Neutron's network_vlan_ranges form: "sriov:2:4094,physnet2,physnet3:100:199".
func ParseVLANRanges(s string) (VLANRanges, error) {
	out := VLANRanges{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ":")
		name := parts[0]
		if name == "" {
			return nil, fmt.Errorf("network VLAN range %q has no physical network name; want NAME or NAME:MIN:MAX", item)
		}
		if _, ok := out[name]; !ok {
			out[name] = nil
		}
		switch len(parts) {
		case 1:
		case 3:
			lo, err1 := strconv.Atoi(parts[1])
			hi, err2 := strconv.Atoi(parts[2])
			if err1 != nil || err2 != nil || lo < 1 || hi > 4094 || lo > hi {
				return nil, fmt.Errorf("network VLAN range %q: want NAME:MIN:MAX with 1 <= MIN <= MAX <= 4094", item)
			}
			out[name] = append(out[name], VLANRange{lo, hi})
		default:
			return nil, fmt.Errorf("network VLAN range %q: want NAME or NAME:MIN:MAX", item)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no physical network in the network VLAN ranges; want e.g. sriov:2:4094")
	}
	return out, nil
}

func (v VLANRanges) names() []string {
	n := make([]string, 0, len(v))
	for k := range v {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func (v VLANRanges) String() string {
	var parts []string
	for _, n := range v.names() {
		if len(v[n]) == 0 {
			parts = append(parts, n)
		}
		for _, r := range v[n] {
			parts = append(parts, fmt.Sprintf("%s:%d:%d", n, r.Min, r.Max))
		}
	}
	return strings.Join(parts, ",")
}

// BaseMAC is the prefix generated MACs share: the leading octets that are fixed.
type BaseMAC struct {
	prefix []byte
}

// ParseBaseMAC parses a base MAC such as fa:16:3e:00:00:00. As in Neutron, the first three octets
// are kept, and the fourth too when it is not zero; the rest is random.
func ParseBaseMAC(s string) (BaseMAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return BaseMAC{}, fmt.Errorf("base MAC %q is not a MAC address like fa:16:3e:00:00:00", s)
	}
	if hw[0]&1 == 1 {
		return BaseMAC{}, fmt.Errorf("base MAC %q is a multicast address; the first octet must be even", s)
	}
	n := 3
	if hw[3] != 0 {
		n = 4
	}
	return BaseMAC{prefix: append([]byte(nil), hw[:n]...)}, nil
}

func (b BaseMAC) generate() string {
	mac := make([]byte, 6)
	copy(mac, b.prefix)
	rand.Read(mac[len(b.prefix):])
	return net.HardwareAddr(mac).String()
}

// Config configures the Neutron face.
type Config struct {
	VLANRanges VLANRanges
	BaseMAC    BaseMAC
	// DefaultQuotas are the limits of a project without its own (ParseQuotas; a missing
	// resource is unlimited).
	DefaultQuotas Quotas
	// DefaultMTU of new networks (default 1500).
	DefaultMTU int
	Logger     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service implements the Neutron v2.0 subset over a store.
type Service struct {
	st   *store.Store
	cfg  Config
	log  *slog.Logger
	auth auth.Authenticator

	mu      sync.Mutex
	cursors map[string]*subnetCursor // subnet ID → IP candidate hint
}

type subnetCursor struct {
	modRev int64
	cur    *ipam.Cursor
}

// New returns the Neutron service.
func New(st *store.Store, cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultMTU == 0 {
		cfg.DefaultMTU = 1500
	}
	if cfg.BaseMAC.prefix == nil {
		cfg.BaseMAC, _ = ParseBaseMAC("fa:16:3e:00:00:00")
	}
	if cfg.VLANRanges == nil {
		cfg.VLANRanges = VLANRanges{"sriov": {{1, 4094}}}
	}
	return &Service{st: st, cfg: cfg, log: cfg.Logger.With("component", "neutron"), cursors: map[string]*subnetCursor{}}
}

func (s *Service) now() string { return s.cfg.Now().UTC().Format("2006-01-02T15:04:05Z") }

// retry runs one optimistic write (store.Retry) with Neutron's answer when it keeps losing.
func retry(ctx context.Context, fn func(attempt int) error) error {
	err := store.Retry(ctx, 64, fn)
	if errors.Is(err, store.ErrContention) {
		return errContention
	}
	return err
}

// canWrite is Neutron's default policy for writes: admin or member (a reader only reads).
func canWrite(c *auth.Context) bool {
	return c.IsAdmin() || slices.Contains(c.Roles, "member")
}

// caller returns the authenticated caller of a request.
func caller(r *http.Request) *auth.Context {
	if c := auth.From(r.Context()); c != nil {
		return c
	}
	return &auth.Context{}
}

// Register mounts the API under prefix (e.g. "/v2.0" or "/network/v2.0").
func (s *Service) Register(mux *http.ServeMux, prefix string) {
	h := func(pattern string, f func(http.ResponseWriter, *http.Request) error) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.HandleFunc(method+" "+prefix+path, func(w http.ResponseWriter, r *http.Request) {
			if method != http.MethodGet && !canWrite(caller(r)) {
				writeError(w, s.log, errf(http.StatusForbidden, "PolicyNotAuthorized",
					"%s %s is disallowed by policy: the reader role may only read; writes need the member or admin role.", method, r.URL.Path))
				return
			}
			if err := f(w, r); err != nil {
				writeError(w, s.log, err)
			}
		})
	}
	h("GET /{$}", s.versionDoc)
	mux.HandleFunc("GET "+prefix, func(w http.ResponseWriter, r *http.Request) { s.versionDoc(w, r) })
	h("GET /extensions", s.listExtensions)
	h("GET /extensions/{alias}", s.showExtension)

	h("POST /networks", s.createNetwork)
	h("GET /networks", s.listNetworks)
	h("GET /networks/{id}", s.showNetwork)
	h("PUT /networks/{id}", s.updateNetwork)
	h("DELETE /networks/{id}", s.deleteNetwork)

	h("POST /subnets", s.createSubnet)
	h("GET /subnets", s.listSubnets)
	h("GET /subnets/{id}", s.showSubnet)
	h("PUT /subnets/{id}", s.updateSubnet)
	h("DELETE /subnets/{id}", s.deleteSubnet)

	h("POST /ports", s.createPort)
	h("GET /ports", s.listPorts)
	h("GET /ports/{id}", s.showPort)
	h("PUT /ports/{id}", s.updatePort)
	h("DELETE /ports/{id}", s.deletePort)
	h("GET /ports/{id}/bindings", s.listBindings)
	h("POST /ports/{id}/bindings", s.createBinding)
	h("GET /ports/{id}/bindings/{host}", s.showBinding)
	h("PUT /ports/{id}/bindings/{host}", s.updateBinding)
	h("DELETE /ports/{id}/bindings/{host}", s.deleteBinding)
	h("PUT /ports/{id}/bindings/{host}/activate", s.activateBinding)

	h("GET /agents", s.listAgents)
	h("GET /agents/{id}", s.showAgent)
	h("PUT /agents/{id}", s.updateAgent)
	h("DELETE /agents/{id}", s.deleteAgent)
	h("GET /routers", s.listRouters)
	h("GET /service-providers", s.listServiceProviders)
	s.registerSubnetPools(h)

	s.registerTrunks(h)
	s.registerSecurityGroups(h) // and tags, allowed address pairs, extra DHCP options (secgroup.go, tags.go, portext.go)
	s.registerQuotas(h)
}

// ifMatch parses "If-Match: revision_number=N" (several comma-separated constraints allowed).
func ifMatch(r *http.Request) (int64, bool, error) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return 0, false, nil
	}
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || strings.TrimSpace(k) != "revision_number" {
			return 0, false, badRequest("If-Match header %q: want revision_number=N", h)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return 0, false, badRequest("If-Match header %q: revision number %q is not a non-negative integer", h, v)
		}
		return n, true, nil
	}
	return 0, false, nil
}

func checkRevision(want int64, ok bool, current int64) error {
	if ok && want != current {
		return errf(http.StatusPreconditionFailed, "RevisionNumberConstraintFailed",
			"Constrained to %d, but current revision is %d", want, current)
	}
	return nil
}
