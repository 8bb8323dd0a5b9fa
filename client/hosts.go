package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/vflink/vflink/api"
)

// root is the server's root URL (the host agent API lives at <root>/v1).
func (c *Client) root() string {
	u, err := url.Parse(c.base)
	if err != nil {
		return c.base
	}
	return u.Scheme + "://" + u.Host
}

func (c *Client) v1(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return c.send(ctx, method, c.root()+"/v1"+path, query, body, nil, out)
}

// RegisterHost registers or refreshes a host and its SR-IOV inventory (a heartbeat).
func (c *Client) RegisterHost(ctx context.Context, h api.Host) error {
	return c.v1(ctx, http.MethodPut, "/hosts/"+url.PathEscape(h.Name), nil, map[string]any{"host": h}, nil)
}

// Hosts lists the registered hosts.
func (c *Client) Hosts(ctx context.Context) ([]api.Host, error) {
	var out struct {
		Hosts []api.Host `json:"hosts"`
	}
	err := c.v1(ctx, http.MethodGet, "/hosts", nil, nil, &out)
	return out.Hosts, err
}

// HostWork returns the desired state of host; with wait > 0 it blocks (up to the server's limit)
// until something changed after revision wait.
func (c *Client) HostWork(ctx context.Context, host string, wait int64) (api.HostWork, error) {
	var q url.Values
	if wait > 0 {
		q = url.Values{"wait": {strconv.FormatInt(wait, 10)}}
	}
	var out api.HostWork
	err := c.v1(ctx, http.MethodGet, "/hosts/"+url.PathEscape(host)+"/work", q, nil, &out)
	return out, err
}

// ClaimVF gives the VF at a.PCIAddress of host to a.PortID; a 409 means another port holds it.
func (c *Client) ClaimVF(ctx context.Context, host string, a api.VFAllocation) error {
	return c.v1(ctx, http.MethodPut, "/hosts/"+url.PathEscape(host)+"/vfs/"+a.PCIAddress, nil, a, nil)
}

// ReleaseVF frees a VF of host held by port.
func (c *Client) ReleaseVF(ctx context.Context, host, pci, port string) error {
	return c.v1(ctx, http.MethodDelete, "/hosts/"+url.PathEscape(host)+"/vfs/"+pci, url.Values{"port_id": {port}}, nil, nil)
}

// ReportPortStatus records what host's agent says about a port.
func (c *Client) ReportPortStatus(ctx context.Context, host, port string, st api.PortStatus) error {
	return c.v1(ctx, http.MethodPut, "/hosts/"+url.PathEscape(host)+"/ports/"+url.PathEscape(port)+"/status", nil, st, nil)
}

// HostWorkChanges long-polls what changed in host's desired state after cursor (HostWork.Cursor
// or the last answer's Cursor); the answer is empty when nothing changed within the server's wait
// (or timeout, when > 0). An unusable cursor is answered with the whole state (Full).
func (c *Client) HostWorkChanges(ctx context.Context, host, cursor string, timeout time.Duration) (api.HostWorkChanges, error) {
	q := url.Values{"cursor": {cursor}}
	if timeout > 0 {
		q.Set("timeout", strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
	}
	var out api.HostWorkChanges
	err := c.v1(ctx, http.MethodGet, "/hosts/"+url.PathEscape(host)+"/changes", q, nil, &out)
	return out, err
}

// HostBatch sends one round trip of releases, claims, serves and reports for host; the answer
// holds the outcome of each item (a failed item is not an error).
func (c *Client) HostBatch(ctx context.Context, host string, b api.HostBatch) (api.HostBatchResult, error) {
	var out api.HostBatchResult
	err := c.v1(ctx, http.MethodPost, "/hosts/"+url.PathEscape(host)+"/batch", nil, b, &out)
	return out, err
}
