package effect

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

// The registrar compares a node's next register with the state it last
// wrote instead of reading Consul, redoes from a read a write Consul
// refuses, confirms a redelivery by a read, and reads again after anything
// that may have changed Consul behind it: a revocation, an anti-entropy
// write, a deregistration, a failed write.
func TestRegistrarWrittenState(t *testing.T) {
	ctx := context.Background()
	unavailable := infraerr.New(infraerr.KindUnavailable, infraerr.Context{Transport: infraerr.TransportConsul, Operation: "txn"}, "consul down", nil)
	for _, tc := range []struct {
		name string
		// between runs after the introspection's register (warning, sequence
		// 1) and before the ack's (passing, sequence 2).
		between   func(f *fakeCatalog, r *Registrar, node uuid.UUID, d *Desired)
		outcome   Outcome
		reads     string // the ack's reads
		calls     string // the ack's transactions
		used      float64
		stale     float64
		nextReads string // the reads of a later register at sequence 3
	}{
		{name: "the ack compares with what the introspection wrote",
			outcome: Applied, reads: "[]", calls: "[txn node,check]", used: 1, nextReads: "[]"},
		{name: "service removed by hand: refused, read, written whole",
			between: func(f *fakeCatalog, _ *Registrar, node uuid.UUID, d *Desired) {
				n := f.nodes[CatalogNode(node)]
				delete(n.services, d.Reg.ID)
				delete(n.checks, LivenessCheckID(d.Reg.ID))
			},
			outcome: Applied, reads: "[services]", calls: "[txn node,check txn node,service,check]", used: 1, stale: 1, nextReads: "[]"},
		{name: "Consul lost the node: refused, read, written whole",
			between: func(f *fakeCatalog, _ *Registrar, node uuid.UUID, _ *Desired) { delete(f.nodes, CatalogNode(node)) },
			outcome: Applied, reads: "[services]", calls: "[txn node,check txn node,service,check]", used: 1, stale: 1, nextReads: "[]"},
		{name: "partitions revoked: read",
			between: func(_ *fakeCatalog, r *Registrar, _ uuid.UUID, _ *Desired) { r.Forget() },
			outcome: Applied, reads: "[services checks]", calls: "[txn node,check]", nextReads: "[]"},
		{name: "anti-entropy wrote the node: read",
			between: func(f *fakeCatalog, r *Registrar, node uuid.UUID, d *Desired) {
				cur, _ := r.Store().Get(ctx, node, d.Reg.ID)
				f.reads = nil
				if err := r.Ensure(ctx, cur, d); err != nil {
					t.Fatal(err)
				}
			},
			outcome: Applied, reads: "[services checks]", calls: "[txn node,check]", nextReads: "[]"},
		{name: "deregistered at sequence 1: read",
			between: func(f *fakeCatalog, r *Registrar, node uuid.UUID, d *Desired) {
				if res := r.Deregister(ctx, node, 1, d.Reg.ID); res.Outcome != Applied {
					t.Fatalf("deregister: %+v", res)
				}
				f.reads = nil
			},
			outcome: Applied, reads: "[services]", calls: "[txn node,service,check]", nextReads: "[]"},
		{name: "Consul down: failed, not redone, read next time",
			between: func(f *fakeCatalog, _ *Registrar, _ uuid.UUID, _ *Desired) { f.failTxn = unavailable },
			outcome: Failed, reads: "[]", calls: "[txn node,check]", used: 1, nextReads: "[services checks]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCatalog()
			reg := prometheus.NewRegistry()
			r := NewRegistrar(NewCatalogStore(f, "dev", nil), "dev", reg)
			node := uuid.New()
			intro := desired(t, node, 1, pipeline.HealthWarning)
			if res := r.Register(ctx, intro); res.Outcome != Applied || fmt.Sprint(f.reads) != "[services]" {
				t.Fatalf("introspection's register: %+v, reads %v", res, f.reads)
			}
			if tc.between != nil {
				tc.between(f, r, node, intro)
			}
			f.reads, f.calls = nil, nil
			ack := desired(t, node, 2, pipeline.HealthPassing)
			if res := r.Register(ctx, ack); res.Outcome != tc.outcome {
				t.Fatalf("ack's register: %+v, want %s", res, tc.outcome)
			}
			if fmt.Sprint(f.reads) != tc.reads || fmt.Sprint(f.calls) != tc.calls {
				t.Fatalf("ack's register: reads %v, calls %v; want %s, %s", f.reads, f.calls, tc.reads, tc.calls)
			}
			metric := func(outcome string) float64 {
				return testkit.Metric(t, reg, "onex_consul_written_state_total", map[string]string{"outcome": outcome})
			}
			if metric("used") != tc.used || metric("stale") != tc.stale {
				t.Fatalf("written state used %v, stale %v; want %v, %v", metric("used"), metric("stale"), tc.used, tc.stale)
			}
			if tc.outcome == Applied {
				cur, err := r.Store().Get(ctx, node, ack.Reg.ID)
				if err != nil || !r.Store().Same(cur, ack) {
					t.Fatalf("Consul after the ack: %+v, %v", cur, err)
				}
				// The same intent again (a redelivery) is confirmed by a read.
				f.reads, f.calls = nil, nil
				if res := r.Register(ctx, ack); res.Outcome != Unchanged || fmt.Sprint(f.reads) != "[services checks]" || len(f.calls) != 0 {
					t.Fatalf("redelivered ack: %+v, reads %v, calls %v", res, f.reads, f.calls)
				}
			}
			f.failTxn, f.reads = nil, nil
			if res := r.Register(ctx, desired(t, node, 3, pipeline.HealthPassing)); res.Outcome != Applied || fmt.Sprint(f.reads) != tc.nextReads {
				t.Fatalf("register at sequence 3: %+v, reads %v, want %s", res, f.reads, tc.nextReads)
			}
			if seq, _ := mustGet(t, r, node, ack.Reg.ID).Sequence(); seq != 3 {
				t.Fatalf("sequence in Consul %d, want 3", seq)
			}
		})
	}
}

// A register older than what the registrar wrote is stale without a read.
func TestRegistrarWrittenStateGuardsSequence(t *testing.T) {
	ctx := context.Background()
	f := newFakeCatalog()
	r := NewRegistrar(NewCatalogStore(f, "dev", nil), "dev", nil)
	node := uuid.New()
	if res := r.Register(ctx, desired(t, node, 5, pipeline.HealthPassing)); res.Outcome != Applied {
		t.Fatalf("register: %+v", res)
	}
	f.reads, f.calls = nil, nil
	if res := r.Register(ctx, desired(t, node, 4, pipeline.HealthWarning)); res.Outcome != Stale || len(f.reads)+len(f.calls) != 0 {
		t.Fatalf("older register: %+v, reads %v, calls %v", res, f.reads, f.calls)
	}
}

// AfterPut is what a read after the Put returns, in every case putOps
// distinguishes.
func TestAfterPutMatchesRead(t *testing.T) {
	ctx := context.Background()
	node := uuid.New()
	for _, tc := range []struct {
		name  string
		setup func(f *fakeCatalog, s *CatalogStore) // what Consul holds before
		d     *Desired
	}{
		{name: "absent", d: desired(t, node, 1, pipeline.HealthWarning)},
		{name: "ack: node and check only", setup: func(_ *fakeCatalog, s *CatalogStore) {
			_ = s.Put(ctx, nil, desired(t, node, 1, pipeline.HealthWarning))
		}, d: desired(t, node, 2, pipeline.HealthPassing)},
		{name: "changed port", setup: func(_ *fakeCatalog, s *CatalogStore) {
			_ = s.Put(ctx, nil, desired(t, node, 1, pipeline.HealthPassing))
		}, d: func() *Desired { d := desired(t, node, 2, pipeline.HealthPassing); d.Reg.Port = 9999; return d }()},
		{name: "stray check", setup: func(f *fakeCatalog, s *CatalogStore) {
			d := desired(t, node, 1, pipeline.HealthPassing)
			_ = s.Put(ctx, nil, d)
			f.nodes[CatalogNode(node)].checks["by-hand"] = &api.HealthCheck{CheckID: "by-hand", ServiceID: d.Reg.ID, Status: api.HealthCritical}
		}, d: desired(t, node, 2, pipeline.HealthPassing)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCatalog()
			s := NewCatalogStore(f, "dev", nil)
			if tc.setup != nil {
				tc.setup(f, s)
			}
			cur, err := s.Get(ctx, node, tc.d.Reg.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, cur, tc.d); err != nil {
				t.Fatal(err)
			}
			read, err := s.Get(ctx, node, tc.d.Reg.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := currentDiff(s.AfterPut(cur, tc.d), read); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

func mustGet(t *testing.T, r *Registrar, node uuid.UUID, serviceID string) *Current {
	t.Helper()
	cur, err := r.Store().Get(context.Background(), node, serviceID)
	if err != nil || cur == nil {
		t.Fatalf("Get: %v, %v", cur, err)
	}
	return cur
}

// currentDiff compares what the registrar compares of two Currents: the
// node, its address and meta, the service's fields sameService reads and
// its sequence, and the checks. A predicted NodeServices of 0 (unknown)
// matches any count.
func currentDiff(predicted, read *Current) string {
	p, r := predicted, read
	switch {
	case p.Node != r.Node || p.NodeAddress != r.NodeAddress || p.External != r.External:
		return fmt.Sprintf("node %s %s %v, read %s %s %v", p.Node, p.NodeAddress, p.External, r.Node, r.NodeAddress, r.External)
	case fmt.Sprint(p.NodeMeta) != fmt.Sprint(r.NodeMeta):
		return fmt.Sprintf("node meta %v, read %v", p.NodeMeta, r.NodeMeta)
	case p.NodeServices != 0 && p.NodeServices != r.NodeServices:
		return fmt.Sprintf("node services %d, read %d", p.NodeServices, r.NodeServices)
	case (p.Service == nil) != (r.Service == nil):
		return fmt.Sprintf("service %v, read %v", p.Service, r.Service)
	case p.Service != nil && (p.Service.ID != r.Service.ID || p.Service.Service != r.Service.Service || p.Service.Address != r.Service.Address ||
		p.Service.Port != r.Service.Port || fmt.Sprint(nonNil(p.Service.Tags)) != fmt.Sprint(nonNil(r.Service.Tags)) ||
		fmt.Sprint(p.Service.Meta) != fmt.Sprint(r.Service.Meta)):
		return fmt.Sprintf("service %+v, read %+v", p.Service, r.Service)
	case fmt.Sprint(p.Checks) != fmt.Sprint(r.Checks):
		return fmt.Sprintf("checks %+v, read %+v", p.Checks, r.Checks)
	}
	return ""
}
