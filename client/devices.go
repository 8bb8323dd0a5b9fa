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
