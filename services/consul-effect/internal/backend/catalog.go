package backend

import (
	"context"
	"errors"
	"net/http"

	"github.com/hashicorp/consul/api"
)

// The catalog API calls of the catalog mode. Like the agent calls they go
// through the breaker with the call timeout, and each is labelled in
// onex_consul_requests_total by the same logical operation as its agent
// counterpart (get_service, list_checks, register, deregister,
// list_services), so dashboards and alerts read the same in both modes.

// NodeServices returns a catalog node with its services, or nil when the
// catalog has no such node.
func (c *Client) NodeServices(ctx context.Context, node string) (*api.CatalogNodeServiceList, error) {
	var out *api.CatalogNodeServiceList
	err := c.do(ctx, "get_service", func(q *api.QueryOptions) error {
		l, _, err := c.api.Catalog().NodeServiceList(node, q)
		var se api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return nil
		}
		if err == nil && l != nil && l.Node != nil {
			out = l
		}
		return err
	})
	return out, err
}

// NodeChecks returns the health checks of a catalog node (its own and its
// services').
func (c *Client) NodeChecks(ctx context.Context, node string) (api.HealthChecks, error) {
	var out api.HealthChecks
	err := c.do(ctx, "list_checks", func(q *api.QueryOptions) error {
		var err error
		out, _, err = c.api.Health().Node(node, q)
		return err
	})
	return out, err
}

// ServiceNames returns the catalog's service names with the union of the
// tags their instances carry.
func (c *Client) ServiceNames(ctx context.Context) (map[string][]string, error) {
	var out map[string][]string
	err := c.do(ctx, "list_services", func(q *api.QueryOptions) error {
		var err error
		out, _, err = c.api.Catalog().Services(q)
		return err
	})
	return out, err
}

// HealthService returns every instance of a service carrying tag, whatever
// its health, each with its node and the checks of node and service.
func (c *Client) HealthService(ctx context.Context, name, tag string) ([]*api.ServiceEntry, error) {
	var out []*api.ServiceEntry
	err := c.do(ctx, "list_services", func(q *api.QueryOptions) error {
		var err error
		out, _, err = c.api.Health().Service(name, tag, false, q)
		return err
	})
	return out, err
}

// NodesWithMeta returns the catalog nodes whose meta has every key of meta
// with its value.
func (c *Client) NodesWithMeta(ctx context.Context, meta map[string]string) ([]*api.Node, error) {
	var out []*api.Node
	err := c.do(ctx, "list_nodes", func(q *api.QueryOptions) error {
		q.NodeMeta = meta
		var err error
		out, _, err = c.api.Catalog().Nodes(q)
		return err
	})
	return out, err
}

// writeOptions carries the call's context (and so its timeout) to a write.
func writeOptions(q *api.QueryOptions) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(q.Context())
}
