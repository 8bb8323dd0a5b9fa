package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/vflink/vflink/api"
)

// CreateDevice registers a switch; fields are the create body (credentials are write-only).
func (c *Client) CreateDevice(ctx context.Context, fields map[string]any) (*api.Device, error) {
	var out struct {
		Device api.Device `json:"device"`
	}
	err := c.v1(ctx, http.MethodPost, "/devices", nil, map[string]any{"device": fields}, &out)
	return &out.Device, err
}

// Devices lists the registered switches.
func (c *Client) Devices(ctx context.Context) ([]api.Device, error) {
	var out struct {
		Devices []api.Device `json:"devices"`
	}
	err := c.v1(ctx, http.MethodGet, "/devices", nil, nil, &out)
	return out.Devices, err
}

// Device shows one switch.
func (c *Client) Device(ctx context.Context, name string) (*api.Device, error) {
	var out struct {
		Device api.Device `json:"device"`
	}
	err := c.v1(ctx, http.MethodGet, "/devices/"+url.PathEscape(name), nil, nil, &out)
	return &out.Device, err
}

// DeleteDevice removes a switch from vflink (nothing is changed on the switch itself).
func (c *Client) DeleteDevice(ctx context.Context, name string) error {
	return c.v1(ctx, http.MethodDelete, "/devices/"+url.PathEscape(name), nil, nil, nil)
}

// UpdateDevice changes a switch; fields are the update body (credentials are replaced as a whole).
func (c *Client) UpdateDevice(ctx context.Context, name string, fields map[string]any) (*api.Device, error) {
	var out struct {
		Device api.Device `json:"device"`
	}
	err := c.v1(ctx, http.MethodPatch, "/devices/"+url.PathEscape(name), nil, map[string]any{"device": fields}, &out)
	return &out.Device, err
}

// DeviceConfig reads the vflink configuration a switch runs now (canonical lines: set format for
// junos), through the server's device manager.
func (c *Client) DeviceConfig(ctx context.Context, name string) ([]string, error) {
	var out struct {
		Lines []string `json:"lines"`
	}
	err := c.v1(ctx, http.MethodGet, "/devices/"+url.PathEscape(name)+"/config", nil, nil, &out)
	return out.Lines, err
}
