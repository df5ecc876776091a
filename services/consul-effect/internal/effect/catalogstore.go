package effect

import (
	"context"
	"maps"
	"slices"
	"strconv"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// Node meta of the catalog nodes the catalog mode registers: Consul's
// marks of an external node (a node no agent runs on, whose checks nobody
// but its registrant updates; consul-esm would probe it unless
// external-probe is false), plus the fleet's own onex-env and onex-node-id.
const (
	NodeMetaExternal      = "external-node"
	NodeMetaExternalProbe = "external-probe"
)

// NoAddress is the catalog node address of a node that announced no
// endpoint with a host: the catalog refuses a node without one, and a name
// in the reserved .invalid domain never resolves, so a DNS client fails
// instead of reaching a wrong host.
const NoAddress = "unknown.invalid"

// LivenessCheckName is the name of the check the catalog mode writes on
// every service.
const LivenessCheckName = "ONEX liveness"

// livenessOutput is the liveness check's output per status: what the
// registry knows of the node, for an operator reading Consul.
var livenessOutput = map[string]string{
	pipeline.HealthPassing:  "ACTIVE in the ONEX registry: the node heartbeats",
	pipeline.HealthWarning:  "accepted by the ONEX registry, not yet ACTIVE (awaiting the node's ack)",
	pipeline.HealthCritical: "liveness expired in the ONEX registry",
}

// livenessNotes explain the check to whoever reads it in Consul.
const livenessNotes = "Status written by the ONEX consul effect from the registry's liveness (heartbeats); no agent runs this check."

// CatalogNode is the catalog node that holds ONEX node node's service.
func CatalogNode(node uuid.UUID) string { return "onex-node-" + node.String() }

// LivenessCheckID is the id of the liveness check on service serviceID.
func LivenessCheckID(serviceID string) string { return "onex-liveness:" + serviceID }

// CatalogAPI is the part of the Consul client the catalog mode uses.
type CatalogAPI interface {
	NodeServices(ctx context.Context, node string) (*api.CatalogNodeServiceList, error)
	NodeChecks(ctx context.Context, node string) (api.HealthChecks, error)
	// Txn applies operations in one transaction (groupCommit).
	Txn(ctx context.Context, op string, ops api.TxnOps) error
	ServiceNames(ctx context.Context) (map[string][]string, error)
	HealthService(ctx context.Context, name, tag string) ([]*api.ServiceEntry, error)
	NodesWithMeta(ctx context.Context, meta map[string]string) ([]*api.Node, error)
	// Service and Deregister read and remove a service of the local agent
	// (agent API).
	Service(ctx context.Context, id string) (*api.AgentService, []*api.AgentCheck, error)
	Deregister(ctx context.Context, id string) error
}

var _ CatalogAPI = (*backend.Client)(nil)

// CatalogStore keeps each ONEX node's service in the catalog, as an
// external service on a catalog node of its own (CatalogNode) marked
// external-node, with one check, LivenessCheckID, whose status the effect
// writes from the registry's view of the node (Desired.Health). No agent
// holds these services, so none re-syncs, health-checks or reaps them: the
// fleet is their only writer, and anti-entropy repairs them.
type CatalogStore struct {
	api    CatalogAPI
	env    string
	writes *groupCommit
}

var _ Store = (*CatalogStore)(nil)

// NewCatalogStore returns the catalog mode's store for the fleet of
// environment env (the onex-env its nodes carry, which scopes the empty
// nodes List reports). Its histogram onex_consul_txn_writes is registered
// on reg (nil: not registered).
func NewCatalogStore(a CatalogAPI, env string, reg prometheus.Registerer) *CatalogStore {
	s := &CatalogStore{api: a, env: env, writes: newGroupCommit(a, DefaultTxnsInFlight)}
	if reg != nil {
		reg.MustRegister(s.writes.writes)
	}
	return s
}

// Mode is ModeCatalog.
func (s *CatalogStore) Mode() Mode { return ModeCatalog }

// Get reads node's catalog node and, when it holds serviceID, that
// service's checks: two reads, the second skipped when the service is not
// there.
func (s *CatalogStore) Get(ctx context.Context, node uuid.UUID, serviceID string) (*Current, error) {
	name := CatalogNode(node)
	l, err := s.api.NodeServices(ctx, name)
	if err != nil || l == nil {
		return nil, err
	}
	i := slices.IndexFunc(l.Services, func(svc *api.AgentService) bool { return svc.ID == serviceID })
	if i < 0 {
		return nil, nil
	}
	checks, err := s.api.NodeChecks(ctx, name)
	if err != nil {
		return nil, err
	}
	c := catalogCurrent(l.Node, l.Services[i], checks)
	c.NodeServices = len(l.Services)
	return c, nil
}

// Put writes what of node, service and liveness check differs from cur,
// and removes any other check of the service (one added by hand would
// otherwise decide the service's health), in one transaction it may share
// with other nodes' writes (groupCommit). A node with more stray checks
// than a transaction holds has the rest removed in further transactions.
func (s *CatalogStore) Put(ctx context.Context, cur *Current, d *Desired) error {
	ops := putOps(cur, d)
	for len(ops) > 0 {
		n := min(len(ops), backend.MaxTxnOps)
		if err := s.writes.write(ctx, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// putOps are the transaction operations of writing d over cur (nil:
// absent). The catalog node is written whenever it differs, which it does
// at every new sequence: its onex-sequence meta carries the guard
// (Current.Sequence). The service is written only when it differs
// otherwise, the liveness check when its status or output does. So a
// node's ack, which changes its sequence and its check's status, writes
// neither the service nor its meta: Consul counts every instance of a
// service name on each commit that writes a service of that name
// (docs/consul-effect.md, "Writes"), and that count is most of what a
// registration costs it once the name has thousands of instances.
func putOps(cur *Current, d *Desired) api.TxnOps {
	reg := registration(d)
	same := cur != nil && cur.Node == reg.Node && cur.External
	var ops api.TxnOps
	if !same || cur.NodeAddress != reg.Address || !maps.Equal(cur.NodeMeta, reg.NodeMeta) {
		ops = append(ops, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: api.Node{Node: reg.Node, Address: reg.Address, Meta: reg.NodeMeta}}})
	}
	if !same || !sameService(cur.Service, d) {
		ops = append(ops, &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: reg.Node, Service: *reg.Service}})
	}
	want := reg.Checks[0]
	if !same || !slices.ContainsFunc(cur.Checks, func(c Check) bool {
		return c.ID == want.CheckID && c.Status == want.Status && c.Output == want.Output && c.Name == want.Name
	}) {
		ops = append(ops, &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: *want}})
	}
	if cur == nil || cur.Node != reg.Node {
		return ops
	}
	for _, ch := range cur.Checks {
		if ch.ID != want.CheckID {
			ops = append(ops, &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckDelete, Check: api.HealthCheck{Node: reg.Node, CheckID: ch.ID}}})
		}
	}
	return ops
}

// AfterPut is what Consul holds for d's service after Put(cur, d)
// succeeded: putOps's result, computed rather than read back. The node and
// its meta are d's; the service is cur's when putOps left it alone (it
// keeps its older onex-sequence meta) and d's otherwise; the liveness
// check is the only check. NodeServices is cur's count when the service
// stayed on the same node, else unknown (0).
func (s *CatalogStore) AfterPut(cur *Current, d *Desired) *Current {
	reg := registration(d)
	out := &Current{Service: reg.Service, Node: reg.Node, NodeAddress: reg.Address, NodeMeta: reg.NodeMeta, External: true}
	if cur != nil && cur.Node == reg.Node && cur.External {
		out.NodeServices = cur.NodeServices
		if sameService(cur.Service, d) {
			out.Service = cur.Service
		}
	}
	want := reg.Checks[0]
	out.Checks = []Check{{ID: want.CheckID, Name: want.Name, Status: want.Status, Output: want.Output}}
	return out
}

// Delete removes a service and, when its external node holds nothing else,
// the node: in one operation when Get counted the node's services, else by
// looking after the service is gone. The removals go through the group
// commit as registrations do (a fleet's expiry deregisters many nodes at
// once, and each commit that removes a service costs Consul a count of
// the service name's instances). A service on an agent's node (left by the
// agent mode) is deregistered through the local agent, which would
// otherwise register it again; one the local agent does not have belongs
// to another agent, is out of reach, and is an error (it stays).
func (s *CatalogStore) Delete(ctx context.Context, cur *Current) error {
	node := &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeDelete, Node: api.Node{Node: cur.Node}}}
	switch {
	case cur.Service == nil:
		return s.writes.write(ctx, api.TxnOps{node})
	case !cur.External:
		local, _, err := s.api.Service(ctx, cur.Service.ID)
		if err != nil {
			return err
		}
		if local == nil {
			return infraerr.New(infraerr.KindRequestRejected, infraerr.Context{Transport: infraerr.TransportConsul, Operation: "deregister", Target: backend.Name},
				"service "+cur.Service.ID+" of agent node "+cur.Node+": not the local agent's, remove it through that agent", nil)
		}
		return s.api.Deregister(ctx, cur.Service.ID)
	case cur.NodeServices == 1:
		return s.writes.write(ctx, api.TxnOps{node})
	}
	svc := &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceDelete, Node: cur.Node, Service: api.AgentService{ID: cur.Service.ID, Service: cur.Service.Service}}}
	if err := s.writes.write(ctx, api.TxnOps{svc}); err != nil {
		return err
	}
	if cur.NodeServices > 1 {
		return nil
	}
	l, err := s.api.NodeServices(ctx, cur.Node)
	if err != nil || l == nil || len(l.Services) > 0 {
		return err
	}
	return s.writes.write(ctx, api.TxnOps{node})
}

// List returns every onex-tagged service in the catalog, on any node (a
// service of this fleet left on an agent's node is an orphan here), each
// with its own checks, and this fleet's external nodes that hold no
// service. One call for the service names, one per onex service name, one
// for this fleet's nodes, and one per node not seen with a service.
func (s *CatalogStore) List(ctx context.Context) ([]*Current, error) {
	names, err := s.api.ServiceNames(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Current
	seen := map[string]bool{}
	for name, tags := range names {
		if !slices.Contains(tags, Tag) {
			continue
		}
		entries, err := s.api.HealthService(ctx, name, Tag)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Node == nil || e.Service == nil {
				continue
			}
			out = append(out, catalogCurrent(e.Node, e.Service, e.Checks))
			seen[e.Node.Node] = true
		}
	}
	if s.env == "" {
		return out, nil
	}
	nodes, err := s.api.NodesWithMeta(ctx, map[string]string{NodeMetaExternal: "true", MetaEnv: s.env})
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if seen[n.Node] {
			continue
		}
		l, err := s.api.NodeServices(ctx, n.Node)
		if err != nil {
			return nil, err
		}
		if l != nil && len(l.Services) == 0 {
			out = append(out, &Current{Node: n.Node, NodeAddress: n.Address, NodeMeta: n.Meta, External: true})
		}
	}
	return out, nil
}

// Same: the service as asked, on its own external node with the node's
// address and meta, carrying exactly the liveness check with the desired
// status and output. The HTTP check of d is the agent mode's and not
// compared.
func (s *CatalogStore) Same(cur *Current, d *Desired) bool {
	if cur == nil || !sameService(cur.Service, d) || !cur.External || cur.Node != CatalogNode(d.NodeID) ||
		cur.NodeAddress != nodeAddress(d) || !maps.Equal(withoutSequence(cur.NodeMeta), withoutSequence(nodeMeta(d))) {
		return false
	}
	return len(cur.Checks) == 1 && cur.Checks[0].ID == LivenessCheckID(d.Reg.ID) &&
		cur.Checks[0].Status == d.Health && cur.Checks[0].Output == livenessOutput[d.Health]
}

// Holds reports whether cur is on node's own catalog node.
func (s *CatalogStore) Holds(cur *Current, node uuid.UUID) bool { return cur.Node == CatalogNode(node) }

// registration is the catalog registration of d: its node, its service
// and its liveness check.
func registration(d *Desired) *api.CatalogRegistration {
	node := CatalogNode(d.NodeID)
	r := d.Reg
	return &api.CatalogRegistration{
		Node: node, Address: nodeAddress(d), NodeMeta: nodeMeta(d),
		Service: &api.AgentService{ID: r.ID, Service: r.Name, Tags: slices.Clone(r.Tags), Address: r.Address, Port: r.Port,
			Meta: maps.Clone(r.Meta)},
		Checks: api.HealthChecks{{
			Node: node, CheckID: LivenessCheckID(r.ID), Name: LivenessCheckName, Status: d.Health,
			Output: livenessOutput[d.Health], Notes: livenessNotes, ServiceID: r.ID, ServiceName: r.Name,
		}},
	}
}

func nodeAddress(d *Desired) string {
	if d.Reg.Address == "" {
		return NoAddress
	}
	return d.Reg.Address
}

func nodeMeta(d *Desired) map[string]string {
	m := map[string]string{NodeMetaExternal: "true", NodeMetaExternalProbe: "false", MetaNodeID: d.NodeID.String(),
		MetaSequence: strconv.FormatInt(d.Sequence, 10)}
	if env := d.Reg.Meta[MetaEnv]; env != "" {
		m[MetaEnv] = env
	}
	return m
}

// catalogCurrent builds a Current from a catalog node, one of its services
// and checks, keeping the service's own checks only.
func catalogCurrent(n *api.Node, svc *api.AgentService, checks api.HealthChecks) *Current {
	c := &Current{Service: svc, Node: n.Node, NodeAddress: n.Address, NodeMeta: n.Meta, External: n.Meta[NodeMetaExternal] == "true"}
	for _, ch := range checks {
		if ch.ServiceID == svc.ID {
			c.Checks = append(c.Checks, Check{ID: ch.CheckID, Name: ch.Name, Type: ch.Type, Status: ch.Status, Output: ch.Output})
		}
	}
	return c
}
