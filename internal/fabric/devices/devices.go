// Package devices is the fabric API's device registry (/v1/devices): the switches vflink
// configures, matched to LLDP neighbors by system name, chassis MAC or management address.
// Credentials are write-only: stored apart from the device (device-secrets/<name>), never
// returned in a response and never logged. Status fields belong to the device manager.
//
// Keys below the store prefix:
//
//	devices/<name>         api.Device (without credentials)
//	device-secrets/<name>  api.DeviceCredentials
//	device-status/<name>   api.DeviceStatus (written by the device manager only; merged into
//	                       the device in every answer)
package devices

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/store"
	"github.com/vflink/vflink/internal/vflinkapi"
)

// Drivers vflink has for devices.
var Drivers = []string{"junos", "ovs"}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Service serves /v1/devices.
type Service struct {
	st  *store.Store
	log *slog.Logger
	now func() time.Time
	// Config reads the vflink configuration a device runs (the device manager's Running).
	Config func(ctx context.Context, name string) ([]string, error)
}

// New returns the device registry.
func New(st *store.Store, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Service{st: st, log: log.With("component", "devices"), now: time.Now}
}

func devKey(name string) string    { return "devices/" + name }
func secretKey(name string) string { return "device-secrets/" + name }
func statusKey(name string) string { return "device-status/" + name }

// withStatus fills in the device manager's status of each device.
func (s *Service) withStatus(ctx context.Context, devs []api.Device) error {
	sts, _, err := store.List[api.DeviceStatus](ctx, s.st, "device-status/")
	if err != nil {
		return err
	}
	by := map[string]api.DeviceStatus{}
	for _, o := range sts {
		by[strings.TrimPrefix(o.Key, "device-status/")] = o.Value
	}
	for i := range devs {
		devs[i].Status = by[devs[i].Name]
	}
	return nil
}

// Register mounts the registry under prefix ("/v1"). Every route needs the admin role.
func (s *Service) Register(mux *http.ServeMux, prefix string) {
	h := func(pattern string, f func(http.ResponseWriter, *http.Request) error) {
		vflinkapi.HandleAdmin(mux, s.log, prefix, pattern, f)
	}
	h("POST /devices", s.create)
	h("GET /devices", s.list)
	h("GET /devices/{name}", s.show)
	h("PATCH /devices/{name}", s.update)
	h("DELETE /devices/{name}", s.remove)
	h("GET /devices/{name}/config", s.config)
}

// config answers the vflink configuration the device runs, read from the device now.
func (s *Service) config(w http.ResponseWriter, r *http.Request) error {
	o, err := s.get(r)
	if err != nil {
		return err
	}
	if s.Config == nil {
		return vflinkapi.Errorf(http.StatusNotImplemented, "this server runs no device manager")
	}
	lines, err := s.Config(r.Context(), o.Value.Name)
	if err != nil {
		return vflinkapi.Errorf(http.StatusBadGateway, "read the configuration of device %s: %v", o.Value.Name, err)
	}
	if lines == nil {
		lines = []string{}
	}
	vflinkapi.WriteJSON(w, http.StatusOK, map[string]any{"device": o.Value.Name, "driver": o.Value.Driver, "lines": lines})
	return nil
}

// request is a create or update body.
type request struct {
	Name              *string                `json:"name"`
	Driver            *string                `json:"driver"`
	ManagementAddress *string                `json:"management_address"`
	ChassisMAC        *string                `json:"chassis_mac"`
	ASN               *int64                 `json:"asn"`
	PortNameRewrite   *api.PortRewrite       `json:"port_name_rewrite"`
	Description       *string                `json:"description"`
	Credentials       *api.DeviceCredentials `json:"credentials"`
}

func decode(r *http.Request) (request, error) {
	var body struct {
		Device *request `json:"device"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return request{}, vflinkapi.Errorf(http.StatusBadRequest, "malformed body: %v (want {\"device\": {...}})", err)
	}
	if body.Device == nil {
		return request{}, vflinkapi.Errorf(http.StatusBadRequest, "want {\"device\": {...}}")
	}
	return *body.Device, nil
}

// apply validates req onto d; every error names the field and value.
func apply(d *api.Device, req request) error {
	if req.Driver != nil {
		ok := false
		for _, v := range Drivers {
			ok = ok || v == *req.Driver
		}
		if !ok {
			return vflinkapi.Errorf(http.StatusBadRequest, "driver %q is not known; allowed: junos, ovs", *req.Driver)
		}
		d.Driver = *req.Driver
	}
	if req.ManagementAddress != nil {
		host, port, err := net.SplitHostPort(*req.ManagementAddress)
		if err != nil || host == "" {
			return vflinkapi.Errorf(http.StatusBadRequest, "management_address %q is not host:port (e.g. 192.0.2.10:830)", *req.ManagementAddress)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return vflinkapi.Errorf(http.StatusBadRequest, "management_address %q: port %q is not 1-65535", *req.ManagementAddress, port)
		}
		d.ManagementAddress = *req.ManagementAddress
	}
	if req.ChassisMAC != nil {
		if *req.ChassisMAC == "" {
			d.ChassisMAC = ""
		} else if hw, err := net.ParseMAC(*req.ChassisMAC); err != nil || len(hw) != 6 {
			return vflinkapi.Errorf(http.StatusBadRequest, "chassis_mac %q is not a MAC address like 00:11:22:33:44:55", *req.ChassisMAC)
		} else {
			d.ChassisMAC = hw.String()
		}
	}
	if req.ASN != nil {
		if *req.ASN < 1 || *req.ASN > 4294967295 {
			return vflinkapi.Errorf(http.StatusBadRequest, "asn %d is out of range 1-4294967295", *req.ASN)
		}
		d.ASN = uint32(*req.ASN)
	}
	if req.PortNameRewrite != nil {
		if req.PortNameRewrite.Regex == "" {
			d.PortNameRewrite = nil
		} else if _, err := regexp.Compile(req.PortNameRewrite.Regex); err != nil {
			return vflinkapi.Errorf(http.StatusBadRequest, "port_name_rewrite.regex %q does not compile: %v", req.PortNameRewrite.Regex, err)
		} else {
			pr := *req.PortNameRewrite
			d.PortNameRewrite = &pr
		}
	}
	if req.Description != nil {
		if len(*req.Description) > 255 {
			return vflinkapi.Errorf(http.StatusBadRequest, "description is %d bytes; at most 255", len(*req.Description))
		}
		d.Description = *req.Description
	}
	if req.Credentials != nil && req.Credentials.Username == "" {
		return vflinkapi.Errorf(http.StatusBadRequest, "credentials.username is required")
	}
	return nil
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) error {
	req, err := decode(r)
	if err != nil {
		return err
	}
	if req.Name == nil || !nameRE.MatchString(*req.Name) {
		n := ""
		if req.Name != nil {
			n = *req.Name
		}
		return vflinkapi.Errorf(http.StatusBadRequest, "name %q is not valid: want letters, digits, '.', '_', '-' (1-63), e.g. leaf1", n)
	}
	if req.Driver == nil || req.ManagementAddress == nil {
		return vflinkapi.Errorf(http.StatusBadRequest, "a device needs driver (junos, ovs) and management_address")
	}
	now := s.now().UTC().Format(time.RFC3339)
	d := api.Device{Name: *req.Name, CreatedAt: now, UpdatedAt: now}
	if err := apply(&d, req); err != nil {
		return err
	}
	d.HasCredentials = req.Credentials != nil
	t := s.st.Txn()
	t.Create(devKey(d.Name), d)
	if req.Credentials != nil {
		t.Put(secretKey(d.Name), *req.Credentials)
	}
	_, err = t.Commit(r.Context())
	var ce *store.ConflictError
	if errors.As(err, &ce) && ce.Reason == store.Exists {
		return vflinkapi.Errorf(http.StatusConflict, "device %s exists", d.Name)
	}
	if err != nil {
		return err
	}
	s.log.Info("device created", "device", d.Name, "driver", d.Driver, "address", d.ManagementAddress)
	vflinkapi.WriteJSON(w, http.StatusCreated, map[string]any{"device": d})
	return nil
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) error {
	objs, _, err := store.List[api.Device](r.Context(), s.st, "devices/")
	if err != nil {
		return err
	}
	out := make([]api.Device, len(objs))
	for i, o := range objs {
		out[i] = o.Value
	}
	if err := s.withStatus(r.Context(), out); err != nil {
		return err
	}
	vflinkapi.WriteJSON(w, http.StatusOK, map[string]any{"devices": out})
	return nil
}

func (s *Service) get(r *http.Request) (store.Object[api.Device], error) {
	name := r.PathValue("name")
	o, err := store.Get[api.Device](r.Context(), s.st, devKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return o, vflinkapi.Errorf(http.StatusNotFound, "device %s does not exist", name)
	}
	return o, err
}

func (s *Service) show(w http.ResponseWriter, r *http.Request) error {
	o, err := s.get(r)
	if err != nil {
		return err
	}
	out := []api.Device{o.Value}
	if err := s.withStatus(r.Context(), out); err != nil {
		return err
	}
	vflinkapi.WriteJSON(w, http.StatusOK, map[string]any{"device": out[0]})
	return nil
}

func (s *Service) update(w http.ResponseWriter, r *http.Request) error {
	req, err := decode(r)
	if err != nil {
		return err
	}
	if req.Name != nil && *req.Name != r.PathValue("name") {
		return vflinkapi.Errorf(http.StatusBadRequest, "a device cannot be renamed (%q → %q); delete and create it", r.PathValue("name"), *req.Name)
	}
	var out api.Device
	err = store.Retry(r.Context(), 16, func(int) error {
		o, err := s.get(r)
		if err != nil {
			return err
		}
		d := o.Value
		if err := apply(&d, req); err != nil {
			return err
		}
		d.UpdatedAt = s.now().UTC().Format(time.RFC3339)
		t := s.st.Txn()
		if req.Credentials != nil {
			d.HasCredentials = true
			t.Put(secretKey(d.Name), *req.Credentials)
		}
		t.Update(devKey(d.Name), d, o.ModRevision)
		_, err = t.Commit(r.Context())
		out = d
		return err
	})
	if errors.Is(err, store.ErrContention) {
		return vflinkapi.Errorf(http.StatusConflict, "device %s changed concurrently too often; retry", r.PathValue("name"))
	}
	if err != nil {
		return err
	}
	vflinkapi.WriteJSON(w, http.StatusOK, map[string]any{"device": out})
	return nil
}

func (s *Service) remove(w http.ResponseWriter, r *http.Request) error {
	o, err := s.get(r)
	if err != nil {
		return err
	}
	t := s.st.Txn()
	t.Delete(devKey(o.Value.Name), o.ModRevision)
	t.Remove(secretKey(o.Value.Name))
	t.Remove(statusKey(o.Value.Name))
	if _, err := t.Commit(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
