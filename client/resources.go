package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/vflink/vflink/api"
)

// CreateNetwork sends POST /v2.0/networks with {"network": fields}.
func (c *Client) CreateNetwork(ctx context.Context, fields map[string]any) (*api.Network, error) {
	return create[api.Network](ctx, c, networks, fields)
}

// GetNetwork sends GET /v2.0/networks/{id}.
func (c *Client) GetNetwork(ctx context.Context, id string) (*api.Network, error) {
	return get[api.Network](ctx, c, networks, id)
}

// ListNetworks sends GET /v2.0/networks with filters as the query (e.g. name=net1); nil lists all.
func (c *Client) ListNetworks(ctx context.Context, filters url.Values) ([]api.Network, error) {
	return list[api.Network](ctx, c, networks, filters)
}

// UpdateNetwork sends PUT /v2.0/networks/{id} with {"network": fields}.
func (c *Client) UpdateNetwork(ctx context.Context, id string, fields map[string]any, opts ...UpdateOption) (*api.Network, error) {
	return update[api.Network](ctx, c, networks, id, fields, opts)
}

// DeleteNetwork sends DELETE /v2.0/networks/{id}.
func (c *Client) DeleteNetwork(ctx context.Context, id string) error {
	return c.delete(ctx, networks, id)
}

// FindNetwork returns the network with ID nameOrID or else the only one named nameOrID.
func (c *Client) FindNetwork(ctx context.Context, nameOrID string) (*api.Network, error) {
	return find(ctx, c, networks, nameOrID, func(n *api.Network) string { return n.ID })
}

// CreateSubnet sends POST /v2.0/subnets with {"subnet": fields}.
func (c *Client) CreateSubnet(ctx context.Context, fields map[string]any) (*api.Subnet, error) {
	return create[api.Subnet](ctx, c, subnets, fields)
}

// GetSubnet sends GET /v2.0/subnets/{id}.
func (c *Client) GetSubnet(ctx context.Context, id string) (*api.Subnet, error) {
	return get[api.Subnet](ctx, c, subnets, id)
}

// ListSubnets sends GET /v2.0/subnets with filters as the query; nil lists all.
func (c *Client) ListSubnets(ctx context.Context, filters url.Values) ([]api.Subnet, error) {
	return list[api.Subnet](ctx, c, subnets, filters)
}

// UpdateSubnet sends PUT /v2.0/subnets/{id} with {"subnet": fields}.
func (c *Client) UpdateSubnet(ctx context.Context, id string, fields map[string]any, opts ...UpdateOption) (*api.Subnet, error) {
	return update[api.Subnet](ctx, c, subnets, id, fields, opts)
}

// DeleteSubnet sends DELETE /v2.0/subnets/{id}.
func (c *Client) DeleteSubnet(ctx context.Context, id string) error {
	return c.delete(ctx, subnets, id)
}

// FindSubnet returns the subnet with ID nameOrID or else the only one named nameOrID.
func (c *Client) FindSubnet(ctx context.Context, nameOrID string) (*api.Subnet, error) {
	return find(ctx, c, subnets, nameOrID, func(s *api.Subnet) string { return s.ID })
}

// CreatePort sends POST /v2.0/ports with {"port": fields}.
func (c *Client) CreatePort(ctx context.Context, fields map[string]any) (*api.Port, error) {
	return create[api.Port](ctx, c, ports, fields)
}

// CreatePorts sends one native bulk create, POST /v2.0/ports {"ports": [...]}: all of them are
// created, or none.
func (c *Client) CreatePorts(ctx context.Context, items []map[string]any) ([]api.Port, error) {
	body := make([]map[string]any, len(items))
	for i, f := range items {
		body[i] = c.withProject(f)
	}
	var out struct {
		Ports []api.Port `json:"ports"`
	}
	if err := c.do(ctx, http.MethodPost, "/ports", nil, map[string]any{"ports": body}, nil, &out); err != nil {
		return nil, fmt.Errorf("bulk create of %d ports: %w", len(items), err)
	}
	if len(out.Ports) != len(items) {
		return nil, fmt.Errorf("bulk create of %d ports: the answer holds %d", len(items), len(out.Ports))
	}
	return out.Ports, nil
}

// GetPort sends GET /v2.0/ports/{id}.
func (c *Client) GetPort(ctx context.Context, id string) (*api.Port, error) {
	return get[api.Port](ctx, c, ports, id)
}

// ListPorts sends GET /v2.0/ports with filters as the query (e.g. network_id, device_id); nil
// lists all.
func (c *Client) ListPorts(ctx context.Context, filters url.Values) ([]api.Port, error) {
	return list[api.Port](ctx, c, ports, filters)
}

// UpdatePort sends PUT /v2.0/ports/{id} with {"port": fields}.
func (c *Client) UpdatePort(ctx context.Context, id string, fields map[string]any, opts ...UpdateOption) (*api.Port, error) {
	return update[api.Port](ctx, c, ports, id, fields, opts)
}

// DeletePort sends DELETE /v2.0/ports/{id}.
func (c *Client) DeletePort(ctx context.Context, id string) error {
	return c.delete(ctx, ports, id)
}

// FindPort returns the port with ID nameOrID or else the only one named nameOrID.
func (c *Client) FindPort(ctx context.Context, nameOrID string) (*api.Port, error) {
	return find(ctx, c, ports, nameOrID, func(p *api.Port) string { return p.ID })
}
