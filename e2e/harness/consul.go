package harness

import (
	"fmt"
	"slices"

	consul "github.com/hashicorp/consul/api"
)

// The fleet's Consul services as the consul effect's catalog mode keeps
// them (the e2e fleet runs in it, see NewFleet): each ONEX node's service
// on a catalog node of its own marked external-node, with a liveness check
// whose status the fleet writes. No agent holds them, so they are read from
// the catalog and health endpoints, never from an agent's services.

// onexTag is the tag every ONEX service carries.
const onexTag = "onex"

// livenessCheckPrefix starts the id of the catalog mode's liveness check
// ("onex-liveness:<service id>").
const livenessCheckPrefix = "onex-liveness:"

// ConsulEntry is one ONEX service in the catalog with its node and the
// status of its liveness check ("" when it has none, as in agent mode).
type ConsulEntry struct {
	Service  *consul.AgentService
	Node     string
	External bool
	Health   string
}

// ConsulEntries returns every onex-tagged service in the catalog, whatever
// its health, by node id (service meta onex-node-id). A node with a
// service on an external node and a copy elsewhere (an agent's, left by
// the agent mode) is given by the external one.
func ConsulEntries(addr string) (map[string]ConsulEntry, error) {
	c, err := consulClient(addr)
	if err != nil {
		return nil, err
	}
	return ConsulEntriesOf(c)
}

// ConsulEntriesOf is ConsulEntries through a client of the caller's (an
// agent with ACLs and TLS).
func ConsulEntriesOf(c *consul.Client) (map[string]ConsulEntry, error) {
	names, _, err := c.Catalog().Services(nil)
	if err != nil {
		return nil, fmt.Errorf("consul: catalog services: %w", err)
	}
	out := map[string]ConsulEntry{}
	for name, tags := range names {
		if !slices.Contains(tags, onexTag) {
			continue
		}
		entries, _, err := c.Health().Service(name, onexTag, false, nil)
		if err != nil {
			return nil, fmt.Errorf("consul: health of %s: %w", name, err)
		}
		for _, e := range entries {
			id := e.Service.Meta["onex-node-id"]
			if id == "" {
				continue
			}
			ent := ConsulEntry{Service: e.Service, Node: e.Node.Node, External: e.Node.Meta["external-node"] == "true"}
			for _, ch := range e.Checks {
				if ch.ServiceID == e.Service.ID && ch.CheckID == livenessCheckPrefix+e.Service.ID {
					ent.Health = ch.Status
				}
			}
			if have, ok := out[id]; ok && have.External && !ent.External {
				continue
			}
			out[id] = ent
		}
	}
	return out, nil
}
