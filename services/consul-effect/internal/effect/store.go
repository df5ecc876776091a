package effect

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
)

// Mode is how the effect registers nodes in Consul
// (ONEX_CONSUL_REGISTRATION_MODE).
type Mode string

const (
	// ModeCatalog registers every node as an external service through the
	// catalog API, on a catalog node of its own, with a check whose status
	// the fleet writes (CatalogStore). The default: no agent holds the
	// fleet's services, so a registration costs the same with 10 or 10,000
	// nodes registered (docs/consul-effect.md, "Why catalog").
	ModeCatalog Mode = "catalog"
	// ModeAgent registers every node as a service of the one agent the
	// effect talks to, with an HTTP check that agent runs (AgentStore): the
	// Python runtime's way, for small installations.
	ModeAgent Mode = "agent"
)

// ParseMode reads a registration mode; "" is the default, ModeCatalog.
func ParseMode(s string) (Mode, error) {
	switch Mode(strings.ToLower(strings.TrimSpace(s))) {
	case "", ModeCatalog:
		return ModeCatalog, nil
	case ModeAgent:
		return ModeAgent, nil
	}
	return "", fmt.Errorf("registration mode %q: want %q or %q", s, ModeCatalog, ModeAgent)
}

// Check is one health check of a service as Consul reports it.
type Check struct {
	ID, Name, Type, Status, Output string
}

// Current is one service as Consul holds it, in either mode.
type Current struct {
	// Service is the service; nil for an empty catalog node of this fleet
	// (in a Store's List only).
	Service *api.AgentService
	// Checks are the service's checks.
	Checks []Check
	// Node is the catalog node that holds the service: "" in agent mode
	// (the agent's own node).
	Node string
	// NodeAddress and NodeMeta are the catalog node's (catalog mode).
	NodeAddress string
	NodeMeta    map[string]string
	// External reports a node marked as an external node (NodeMeta
	// external-node), i.e. not an agent's.
	External bool
	// NodeServices is how many services Node holds, this one included; 0
	// when the read did not tell.
	NodeServices int
}

// NodeID reads the onex-node-id of the service, or of its catalog node when
// the node is empty.
func (c *Current) NodeID() (uuid.UUID, bool) {
	if c.Service != nil {
		return NodeOf(c.Service)
	}
	id, err := uuid.Parse(c.NodeMeta[MetaNodeID])
	return id, err == nil
}

// Sequence is the sequence that last wrote the service: its onex-sequence
// meta, or in catalog mode its catalog node's when that is newer (a write
// that changes only the node and the check carries the sequence on the
// node, catalogstore.go). ok is false when neither has one.
func (c *Current) Sequence() (seq int64, ok bool) {
	seq, ok = Sequence(c.Service)
	if v, err := strconv.ParseInt(c.NodeMeta[MetaSequence], 10, 64); err == nil && (!ok || v > seq) {
		seq, ok = v, true
	}
	return seq, ok
}

// Env reads the onex-env of the service, or of its catalog node when the
// node is empty; ok is false when there is none.
func (c *Current) Env() (env string, ok bool) {
	meta := c.NodeMeta
	if c.Service != nil {
		meta = c.Service.Meta
	}
	env, ok = meta[MetaEnv]
	return env, ok && env != ""
}

// ID names the service (or the empty node) for logs and metrics.
func (c *Current) ID() string {
	if c.Service != nil {
		return c.Service.ID
	}
	return "node:" + c.Node
}

// Store is where the registrar keeps the fleet's services: the agent's own
// services (AgentStore) or the catalog (CatalogStore). Every call is one or
// a few Consul calls through the backend's breaker; errors are classified
// *infraerr.Error values. A Store holds no state of its own.
type Store interface {
	// Mode is the registration mode the store implements.
	Mode() Mode
	// Get returns the service serviceID of ONEX node node where this mode
	// keeps it, or nil when it is not there.
	Get(ctx context.Context, node uuid.UUID, serviceID string) (*Current, error)
	// Put writes d (registering or replacing it); cur is what Get returned
	// for it (nil when absent), so that a write can also remove what d does
	// not have.
	Put(ctx context.Context, cur *Current, d *Desired) error
	// Delete removes a service Get or List returned (with its catalog node
	// when the node holds nothing else). What is already gone counts as
	// removed.
	Delete(ctx context.Context, cur *Current) error
	// List returns every onex-tagged service this mode sees, and in
	// catalog mode this fleet's empty catalog nodes (Service nil).
	List(ctx context.Context) ([]*Current, error)
	// Same reports whether cur already is what d asks for, the sequence
	// meta aside.
	Same(cur *Current, d *Desired) bool
	// Holds reports whether cur is where this mode keeps ONEX node node's
	// service (in catalog mode: on the node's own catalog node).
	Holds(cur *Current, node uuid.UUID) bool
}

// Predictor is a Store that can tell, without reading Consul, what Consul
// holds after a successful Put. The registrar remembers that state per node
// and uses it in place of the node's next Get (Registrar.Register).
// CatalogStore is one; AgentStore is not (the agent rewrites what it is
// given: its own node, check definitions it does not report back).
type Predictor interface {
	// AfterPut returns what Put(cur, d) left in Consul when it succeeded.
	AfterPut(cur *Current, d *Desired) *Current
}
