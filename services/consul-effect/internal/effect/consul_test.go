package effect

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// The catalog mode's writes on a real Consul: writes that share a
// transaction land together, and one Consul refuses fails alone, with the
// operation Consul named numbered within its write; an ack writes the node
// and the check and leaves the service as it was.
func TestCatalogWritesOnConsul(t *testing.T) {
	ctx, addr, c, store := catalogOnConsul(t)
	a, b, missing := uuid.New(), uuid.New(), uuid.New()
	t.Cleanup(func() {
		for _, n := range []uuid.UUID{a, b, missing} {
			_ = store.writes.write(context.Background(), api.TxnOps{{Node: &api.NodeTxnOp{Verb: api.NodeDelete, Node: api.Node{Node: CatalogNode(n)}}}})
		}
	})
	da, db := desired(t, a, 1, pipeline.HealthWarning), desired(t, b, 1, pipeline.HealthWarning)
	// A check on a node nobody registered: Consul rolls the transaction
	// back for it.
	bad := api.TxnOps{
		{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{Node: CatalogNode(missing), CheckID: "orphan-check", Name: "x", Status: api.HealthPassing}}},
	}
	errs := store.writes.commit(ctx, []*pendingWrite{{ops: putOps(nil, da)}, {ops: bad}, {ops: putOps(nil, db)}})
	var rb *backend.TxnRolledBack
	if errs[0] != nil || errs[2] != nil || !errors.As(errs[1], &rb) || !isKind(errs[1], infraerr.KindRequestRejected) {
		t.Fatalf("errors %v", errs)
	}
	if len(rb.Errors) != 1 || rb.Errors[0].OpIndex != 0 {
		t.Fatalf("the refused write's errors %+v, want its operation 0", rb.Errors)
	}
	for _, d := range []*Desired{da, db} {
		cur, err := store.Get(ctx, d.NodeID, d.Reg.ID)
		if err != nil || !store.Same(cur, d) {
			t.Fatalf("%s after the shared transaction: %+v, %v", d.Reg.ID, cur, err)
		}
		if diff := currentDiff(store.AfterPut(nil, d), cur); diff != "" {
			t.Fatalf("%s: predicted and read differ: %s", d.Reg.ID, diff)
		}
	}
	if l, err := c.NodeServices(ctx, CatalogNode(missing)); err != nil || l != nil {
		t.Fatalf("the refused write landed: %+v, %v", l, err)
	}

	// The ack: passing at a newer sequence.
	cur, _ := store.Get(ctx, a, da.Reg.ID)
	before := cur.Service.ModifyIndex
	up := desired(t, a, 2, pipeline.HealthPassing)
	if err := store.Put(ctx, cur, up); err != nil {
		t.Fatal(err)
	}
	predicted := store.AfterPut(cur, up)
	cur, err := store.Get(ctx, a, da.Reg.ID)
	if err != nil || !store.Same(cur, up) {
		t.Fatalf("after the ack: %+v, %v", cur, err)
	}
	if diff := currentDiff(predicted, cur); diff != "" {
		t.Fatalf("after the ack, predicted and read differ: %s", diff)
	}
	if seq, _ := cur.Sequence(); seq != 2 || cur.Service.ModifyIndex != before {
		t.Fatalf("after the ack: sequence %d (want 2), service index %d → %d (want unchanged)", seq, before, cur.Service.ModifyIndex)
	}
	h, _, err := consulAPI(t, addr).Health().Service(da.Reg.Name, "", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range h {
		found = found || e.Service.ID == da.Reg.ID
	}
	if !found {
		t.Fatalf("%s is not among the passing instances after the ack", da.Reg.ID)
	}
}

// catalogOnConsul returns a context bounding the test, the test Consul's
// address, a client of it and a catalog store over that client.
func catalogOnConsul(t *testing.T) (context.Context, string, *backend.Client, *CatalogStore) {
	t.Helper()
	addr := testkit.ConsulAddr(t)
	s := backend.DefaultSettings()
	s.Addr = addr
	c, err := backend.New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, addr, c, NewCatalogStore(c, "", nil)
}

func consulAPI(t *testing.T, addr string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// On a real Consul, the ack's write computed from the written state is
// refused when the service was removed behind the fleet's back (Consul
// refuses a check of a service its node does not hold), and the registrar
// redoes it from a read.
func TestWrittenStateOnConsul(t *testing.T) {
	ctx, addr, _, store := catalogOnConsul(t)
	preg := prometheus.NewRegistry()
	r := NewRegistrar(store, "", preg)
	node := uuid.New()
	t.Cleanup(func() {
		_ = store.writes.write(context.Background(), api.TxnOps{{Node: &api.NodeTxnOp{Verb: api.NodeDelete, Node: api.Node{Node: CatalogNode(node)}}}})
	})
	intro := desired(t, node, 1, pipeline.HealthWarning)
	if res := r.Register(ctx, intro); res.Outcome != Applied {
		t.Fatalf("introspection's register: %+v", res)
	}
	if _, err := consulAPI(t, addr).Catalog().Deregister(&api.CatalogDeregistration{Node: CatalogNode(node), ServiceID: intro.Reg.ID}, nil); err != nil {
		t.Fatal(err)
	}
	ack := desired(t, node, 2, pipeline.HealthPassing)
	if res := r.Register(ctx, ack); res.Outcome != Applied {
		t.Fatalf("ack's register: %+v", res)
	}
	for outcome, want := range map[string]float64{"used": 1, "stale": 1} {
		if v := testkit.Metric(t, preg, "onex_consul_written_state_total", map[string]string{"outcome": outcome}); v != want {
			t.Fatalf("onex_consul_written_state_total{outcome=%q} = %v, want %v", outcome, v, want)
		}
	}
	if cur, err := store.Get(ctx, node, ack.Reg.ID); err != nil || !store.Same(cur, ack) {
		t.Fatalf("Consul after the ack: %+v, %v", cur, err)
	}
}
