package effect

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// fakeCatalog is an in-memory catalog with the semantics of the calls
// CatalogStore makes, recording the writes.
type fakeCatalog struct {
	nodes map[string]*fakeNode
	agent map[string]bool // services of the local agent
	calls []string
	reads []string // NodeServices and NodeChecks calls
	// failTxn, when set, is what every Txn returns, applying nothing.
	failTxn error
}

type fakeNode struct {
	node     api.Node
	services map[string]*api.AgentService
	checks   map[string]*api.HealthCheck
}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{nodes: map[string]*fakeNode{}, agent: map[string]bool{}}
}

func (f *fakeCatalog) NodeServices(_ context.Context, node string) (*api.CatalogNodeServiceList, error) {
	f.reads = append(f.reads, "services")
	n, ok := f.nodes[node]
	if !ok {
		return nil, nil
	}
	l := &api.CatalogNodeServiceList{Node: &n.node, Services: []*api.AgentService{}}
	for _, id := range slices.Sorted(maps.Keys(n.services)) {
		l.Services = append(l.Services, n.services[id])
	}
	return l, nil
}

func (f *fakeCatalog) NodeChecks(_ context.Context, node string) (api.HealthChecks, error) {
	f.reads = append(f.reads, "checks")
	var out api.HealthChecks
	if n, ok := f.nodes[node]; ok {
		for _, id := range slices.Sorted(maps.Keys(n.checks)) {
			out = append(out, n.checks[id])
		}
	}
	return out, nil
}

// Txn applies node, service and check operations all or nothing, as
// Consul does: a service or check on a missing node rolls it back.
func (f *fakeCatalog) Txn(_ context.Context, _ string, ops api.TxnOps) error {
	kinds := make([]string, len(ops))
	for i, op := range ops {
		switch {
		case op.Node != nil && op.Node.Verb == api.NodeDelete:
			kinds[i] = "delete node " + op.Node.Node.Node
		case op.Service != nil && op.Service.Verb == api.ServiceDelete:
			kinds[i] = "delete service " + op.Service.Service.ID
		case op.Node != nil:
			kinds[i] = "node"
		case op.Service != nil:
			kinds[i] = "service"
		case op.Check != nil && op.Check.Verb == api.CheckDelete:
			kinds[i] = "delete check " + op.Check.Check.CheckID
		case op.Check != nil:
			kinds[i] = "check"
		}
	}
	f.calls = append(f.calls, "txn "+strings.Join(kinds, ","))
	if f.failTxn != nil {
		return f.failTxn
	}
	nodes := map[string]*fakeNode{}
	for k, n := range f.nodes {
		nodes[k] = &fakeNode{node: n.node, services: maps.Clone(n.services), checks: maps.Clone(n.checks)}
	}
	var errs []*api.TxnError
	for i, op := range ops {
		if op.Service != nil && op.Service.Service.Service == "" {
			// Consul checks the name's ACL on every service operation.
			errs = append(errs, &api.TxnError{OpIndex: i, What: "Must provide service name (Service.Service) when service ID is provided"})
			continue
		}
		// existing is the node a service or check is set on; Consul rolls
		// the transaction back when it is missing.
		existing := func(name string) (*fakeNode, bool) {
			n, ok := nodes[name]
			if !ok {
				errs = append(errs, &api.TxnError{OpIndex: i, What: "Missing node registration"})
			}
			return n, ok
		}
		switch {
		case op.Node != nil && op.Node.Verb == api.NodeSet:
			n, ok := nodes[op.Node.Node.Node]
			if !ok {
				n = &fakeNode{services: map[string]*api.AgentService{}, checks: map[string]*api.HealthCheck{}}
				nodes[op.Node.Node.Node] = n
			}
			n.node = op.Node.Node
		case op.Service != nil && op.Service.Verb == api.ServiceSet:
			if n, ok := existing(op.Service.Node); ok {
				svc := op.Service.Service
				n.services[svc.ID] = &svc
			}
		case op.Check != nil && op.Check.Verb == api.CheckSet:
			if n, ok := existing(op.Check.Check.Node); ok {
				ch := op.Check.Check
				if ch.ServiceID != "" && n.services[ch.ServiceID] == nil {
					errs = append(errs, &api.TxnError{OpIndex: i, What: "Missing service registration"})
					continue
				}
				n.checks[ch.CheckID] = &ch
			}
		case op.Check != nil && op.Check.Verb == api.CheckDelete:
			if n, ok := nodes[op.Check.Check.Node]; ok {
				delete(n.checks, op.Check.Check.CheckID)
			}
		case op.Node != nil && op.Node.Verb == api.NodeDelete:
			delete(nodes, op.Node.Node.Node)
		case op.Service != nil && op.Service.Verb == api.ServiceDelete:
			if n, ok := nodes[op.Service.Node]; ok {
				delete(n.services, op.Service.Service.ID)
				for id, ch := range n.checks {
					if ch.ServiceID == op.Service.Service.ID {
						delete(n.checks, id)
					}
				}
			}
		default:
			return fmt.Errorf("fake catalog: op %d not supported", i)
		}
	}
	if len(errs) > 0 {
		return &backend.TxnRolledBack{Errors: errs}
	}
	f.nodes = nodes
	return nil
}

func (f *fakeCatalog) ServiceNames(context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	for _, n := range f.nodes {
		for _, s := range n.services {
			out[s.Service] = append(out[s.Service], s.Tags...)
		}
	}
	return out, nil
}

func (f *fakeCatalog) HealthService(_ context.Context, name, tag string) ([]*api.ServiceEntry, error) {
	var out []*api.ServiceEntry
	for _, n := range f.nodes {
		for _, s := range n.services {
			if s.Service != name || !slices.Contains(s.Tags, tag) {
				continue
			}
			e := &api.ServiceEntry{Node: &n.node, Service: s}
			for _, ch := range n.checks {
				e.Checks = append(e.Checks, ch)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeCatalog) NodesWithMeta(_ context.Context, meta map[string]string) ([]*api.Node, error) {
	var out []*api.Node
	for _, n := range f.nodes {
		match := true
		for k, v := range meta {
			match = match && n.node.Meta[k] == v
		}
		if match {
			out = append(out, &n.node)
		}
	}
	return out, nil
}

func (f *fakeCatalog) Service(_ context.Context, id string) (*api.AgentService, []*api.AgentCheck, error) {
	if !f.agent[id] {
		return nil, nil, nil
	}
	return &api.AgentService{ID: id}, nil, nil
}

func (f *fakeCatalog) Deregister(_ context.Context, id string) error {
	f.calls = append(f.calls, "agent deregister "+id)
	delete(f.agent, id)
	return nil
}

func desired(t *testing.T, n uuid.UUID, seq int64, health string) *Desired {
	t.Helper()
	d, err := Build(n, seq, "dev", payload(func(p *pipeline.ConsulRegisterPayload) {
		p.ServiceID, p.NodeID, p.Health = "onex-effect-"+n.String(), ptr(n.String()), health
	}))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The catalog mode's writes: a register puts node, service and liveness
// check in one call and clears checks added by hand; a deregistration
// removes the node with its only service in one call, only the service
// when the node holds more, and looks when it could not count; a service
// on an agent's node goes through the agent; List reports this fleet's
// empty nodes.
func TestCatalogStoreWrites(t *testing.T) {
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	f := newFakeCatalog()
	s := NewCatalogStore(f, "dev", nil)

	d := desired(t, a, 1, pipeline.HealthWarning)
	if err := s.Put(ctx, nil, d); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.calls) != "[txn node,service,check]" {
		t.Fatalf("first write: %v", f.calls)
	}
	cur, err := s.Get(ctx, a, d.Reg.ID)
	if err != nil || cur == nil {
		t.Fatalf("Get after Put: %v, %v", cur, err)
	}
	if !s.Same(cur, d) || cur.NodeServices != 1 || !cur.External || cur.Node != CatalogNode(a) ||
		cur.NodeMeta[NodeMetaExternalProbe] != "false" || cur.NodeMeta[MetaEnv] != "dev" || cur.NodeMeta[MetaNodeID] != a.String() {
		t.Fatalf("registered: %+v", cur)
	}
	if cur.Checks[0].Status != api.HealthWarning || cur.Checks[0].ID != LivenessCheckID(d.Reg.ID) {
		t.Fatalf("liveness check %+v", cur.Checks)
	}

	// A check added by hand goes with the next write.
	f.nodes[CatalogNode(a)].checks["by-hand"] = &api.HealthCheck{CheckID: "by-hand", ServiceID: d.Reg.ID, Status: api.HealthCritical}
	cur, _ = s.Get(ctx, a, d.Reg.ID)
	if s.Same(cur, d) {
		t.Fatal("a check added by hand is a difference")
	}
	// The ack: a newer sequence and passing. The service is as asked, so
	// only the node (carrying the sequence) and the check are written.
	up := desired(t, a, 2, pipeline.HealthPassing)
	f.calls = nil
	if err := s.Put(ctx, cur, up); err != nil {
		t.Fatal(err)
	}
	if want := "[txn node,check,delete check by-hand]"; fmt.Sprint(f.calls) != want {
		t.Fatalf("update: %v, want %s", f.calls, want)
	}
	if cur, _ = s.Get(ctx, a, d.Reg.ID); !s.Same(cur, up) {
		t.Fatalf("after the update: %+v", cur.Checks)
	}
	if seq, ok := cur.Sequence(); !ok || seq != 2 {
		t.Fatalf("sequence after the update %d, %v; want 2 (the node's)", seq, ok)
	}
	if svcSeq, _ := Sequence(cur.Service); svcSeq != 1 {
		t.Fatalf("the service was rewritten (sequence %d)", svcSeq)
	}
	// A new sequence alone writes the node only; a changed service
	// writes the service.
	f.calls = nil
	again := desired(t, a, 3, pipeline.HealthPassing)
	if err := s.Put(ctx, cur, again); err != nil || fmt.Sprint(f.calls) != "[txn node]" {
		t.Fatalf("new sequence: %v, %v", f.calls, err)
	}
	cur, _ = s.Get(ctx, a, d.Reg.ID)
	moved := desired(t, a, 4, pipeline.HealthPassing)
	moved.Reg.Port = 9999
	f.calls = nil
	if err := s.Put(ctx, cur, moved); err != nil || fmt.Sprint(f.calls) != "[txn node,service]" {
		t.Fatalf("changed port: %v, %v", f.calls, err)
	}
	if cur, _ = s.Get(ctx, a, d.Reg.ID); !s.Same(cur, moved) {
		t.Fatalf("after the port change: %+v", cur)
	}

	// The only service of its node: one call removes both.
	f.calls = nil
	if err := s.Delete(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.calls) != "[txn delete node "+CatalogNode(a)+"]" || f.nodes[CatalogNode(a)] != nil {
		t.Fatalf("calls %v, nodes %v", f.calls, f.nodes)
	}

	// Two services on a node (the node's type changed): only the service.
	db := desired(t, b, 1, "")
	other := desired(t, b, 1, "")
	other.Reg.ID = "onex-compute-" + b.String()
	for _, x := range []*Desired{db, other} {
		if err := s.Put(ctx, nil, x); err != nil {
			t.Fatal(err)
		}
	}
	cur, _ = s.Get(ctx, b, other.Reg.ID)
	f.calls = nil
	if err := s.Delete(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.calls) != "[txn delete service "+other.Reg.ID+"]" {
		t.Fatalf("calls %v", f.calls)
	}
	// Listed (count unknown): the service, then the node once it is empty.
	listed, err := s.List(ctx)
	if err != nil || len(listed) != 1 || listed[0].Service.ID != db.Reg.ID || listed[0].NodeServices != 0 {
		t.Fatalf("List: %v, %v", listed, err)
	}
	f.calls = nil
	if err := s.Delete(ctx, listed[0]); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.calls) != "[txn delete service "+db.Reg.ID+" txn delete node "+CatalogNode(b)+"]" {
		t.Fatalf("calls %v", f.calls)
	}

	// An empty node of this fleet is listed (and removed); another
	// fleet's is not listed.
	f.nodes["onex-node-empty"] = &fakeNode{node: api.Node{Node: "onex-node-empty", Meta: map[string]string{NodeMetaExternal: "true", MetaEnv: "dev"}},
		services: map[string]*api.AgentService{}, checks: map[string]*api.HealthCheck{}}
	f.nodes["onex-node-foreign"] = &fakeNode{node: api.Node{Node: "onex-node-foreign", Meta: map[string]string{NodeMetaExternal: "true", MetaEnv: "prod"}},
		services: map[string]*api.AgentService{}, checks: map[string]*api.HealthCheck{}}
	listed, _ = s.List(ctx)
	if len(listed) != 1 || listed[0].Service != nil || listed[0].Node != "onex-node-empty" {
		t.Fatalf("List: %+v", listed)
	}
	f.calls = nil
	if err := s.Delete(ctx, listed[0]); err != nil || fmt.Sprint(f.calls) != "[txn delete node onex-node-empty]" {
		t.Fatalf("calls %v, %v", f.calls, err)
	}

	// A service on the local agent's node goes through the agent; one of
	// another agent cannot be removed from here.
	f.calls = nil
	f.agent["onex-effect-x"] = true
	agentSvc := &Current{Service: &api.AgentService{ID: "onex-effect-x"}, Node: "consul-server-1"}
	if err := s.Delete(ctx, agentSvc); err != nil || fmt.Sprint(f.calls) != "[agent deregister onex-effect-x]" {
		t.Fatalf("calls %v, %v", f.calls, err)
	}
	f.calls = nil
	elsewhere := &Current{Service: &api.AgentService{ID: "onex-effect-y"}, Node: "consul-client-7"}
	if err := s.Delete(ctx, elsewhere); !isKind(err, infraerr.KindRequestRejected) || len(f.calls) != 0 {
		t.Fatalf("another agent's service: calls %v, %v", f.calls, err)
	}
}

func isKind(err error, k infraerr.Kind) bool {
	got, ok := infraerr.KindOf(err)
	return ok && got == k
}
