package effect

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// fakeCatalog is an in-memory catalog with the semantics of the calls
// CatalogStore makes, recording the writes.
type fakeCatalog struct {
	nodes map[string]*fakeNode
	agent map[string]bool // services of the local agent
	calls []string
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
	var out api.HealthChecks
	if n, ok := f.nodes[node]; ok {
		for _, id := range slices.Sorted(maps.Keys(n.checks)) {
			out = append(out, n.checks[id])
		}
	}
	return out, nil
}

func (f *fakeCatalog) CatalogRegister(_ context.Context, reg *api.CatalogRegistration) error {
	f.calls = append(f.calls, "register "+reg.Node)
	n, ok := f.nodes[reg.Node]
	if !ok {
		n = &fakeNode{services: map[string]*api.AgentService{}, checks: map[string]*api.HealthCheck{}}
		f.nodes[reg.Node] = n
	}
	n.node = api.Node{Node: reg.Node, Address: reg.Address, Meta: reg.NodeMeta}
	if reg.Service != nil {
		n.services[reg.Service.ID] = reg.Service
	}
	for _, ch := range reg.Checks {
		n.checks[ch.CheckID] = ch
	}
	return nil
}

func (f *fakeCatalog) CatalogDeregister(_ context.Context, d *api.CatalogDeregistration) error {
	n, ok := f.nodes[d.Node]
	switch {
	case d.CheckID != "":
		f.calls = append(f.calls, "deregister check "+d.CheckID)
		if ok {
			delete(n.checks, d.CheckID)
		}
	case d.ServiceID != "":
		f.calls = append(f.calls, "deregister service "+d.ServiceID)
		if ok {
			delete(n.services, d.ServiceID)
			for id, ch := range n.checks {
				if ch.ServiceID == d.ServiceID {
					delete(n.checks, id)
				}
			}
		}
	default:
		f.calls = append(f.calls, "deregister node "+d.Node)
		delete(f.nodes, d.Node)
	}
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
	s := NewCatalogStore(f, "dev")

	d := desired(t, a, 1, pipeline.HealthWarning)
	if err := s.Put(ctx, nil, d); err != nil {
		t.Fatal(err)
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
	up := desired(t, a, 2, pipeline.HealthPassing)
	if err := s.Put(ctx, cur, up); err != nil {
		t.Fatal(err)
	}
	if cur, _ = s.Get(ctx, a, d.Reg.ID); !s.Same(cur, up) {
		t.Fatalf("after the update: %+v", cur.Checks)
	}

	// The only service of its node: one call removes both.
	f.calls = nil
	if err := s.Delete(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.calls) != "[deregister node "+CatalogNode(a)+"]" || f.nodes[CatalogNode(a)] != nil {
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
	if fmt.Sprint(f.calls) != "[deregister service "+other.Reg.ID+"]" {
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
	if fmt.Sprint(f.calls) != "[deregister service "+db.Reg.ID+" deregister node "+CatalogNode(b)+"]" {
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
	if err := s.Delete(ctx, listed[0]); err != nil || fmt.Sprint(f.calls) != "[deregister node onex-node-empty]" {
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
