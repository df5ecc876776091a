package ceiling

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
)

// ConsulCatalogRegistration returns the catalog registration the consul
// effect's catalog mode writes for a node of nodeType (docs/consul-effect.md,
// "What a registration looks like"): an external catalog node of its own,
// the service with the agent mode's id, name, tags and meta, and the
// liveness check whose status the fleet writes. The catalog ceiling
// registers exactly this shape.
func ConsulCatalogRegistration(nodeID uuid.UUID, nodeType, env string, seq int64) *api.CatalogRegistration {
	svc := ConsulService(nodeID, nodeType, env, "", seq)
	node := "onex-node-" + nodeID.String()
	return &api.CatalogRegistration{
		Node: node, Address: svc.Address,
		NodeMeta: map[string]string{"external-node": "true", "external-probe": "false", "onex-env": env, "onex-node-id": nodeID.String(),
			"onex-sequence": fmt.Sprint(seq)},
		Service: &api.AgentService{ID: svc.ID, Service: svc.Name, Tags: svc.Tags, Address: svc.Address, Port: svc.Port, Meta: svc.Meta,
			Weights: api.AgentWeights{Passing: 1, Warning: 1}},
		Checks: api.HealthChecks{{
			Node: node, CheckID: "onex-liveness:" + svc.ID, Name: "ONEX liveness", Status: api.HealthPassing,
			Output: "ACTIVE in the ONEX registry: the node heartbeats", ServiceID: svc.ID, ServiceName: svc.Name,
		}},
	}
}

// ConsulCatalog measures raw registrations per second through the catalog
// API: concurrency workers register fresh external nodes of the catalog
// mode's shape (ConsulCatalogRegistration) for duration, one PUT each (the
// effect adds two reads before its write). It returns the rate of the
// registrations that completed after warmup and the catalog nodes it
// wrote, which the caller removes with DeleteCatalogNodes.
func ConsulCatalog(ctx context.Context, client *api.Client, concurrency int, warmup, duration time.Duration, env string) (Rate, []string, error) {
	return registerFor(ctx, concurrency, warmup, duration, func(ctx context.Context) (string, error) {
		reg := ConsulCatalogRegistration(uuid.New(), "effect", env, 1)
		_, err := client.Catalog().Register(reg, (&api.WriteOptions{}).WithContext(ctx))
		return reg.Node, err
	})
}

// txnOps is Consul's limit of operations per transaction.
const txnOps = 64

// FillCatalog registers n nodes of the catalog mode's shape through the
// transaction API, 21 nodes (63 operations) per transaction and four
// transactions at a time: one PUT per node, as the fleet and the ceiling
// write, would take a minute at 10,000. It returns the node names.
func FillCatalog(ctx context.Context, client *api.Client, n int, env string) ([]string, error) {
	var batches []api.TxnOps
	var nodes []string
	var ops api.TxnOps
	for range n {
		r := ConsulCatalogRegistration(uuid.New(), "effect", env, 1)
		if len(ops)+3 > txnOps {
			batches, ops = append(batches, ops), nil
		}
		ops = append(ops,
			&api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: api.Node{Node: r.Node, Address: r.Address, Meta: r.NodeMeta}}},
			&api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: r.Node, Service: *r.Service}},
			&api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: *r.Checks[0]}})
		nodes = append(nodes, r.Node)
	}
	if len(ops) > 0 {
		batches = append(batches, ops)
	}
	return nodes, txns(ctx, client, batches)
}

// DeleteCatalogNodes removes catalog nodes with their services and checks,
// 64 per transaction.
func DeleteCatalogNodes(ctx context.Context, client *api.Client, nodes []string) error {
	var batches []api.TxnOps
	for i := 0; i < len(nodes); i += txnOps {
		var ops api.TxnOps
		for _, n := range nodes[i:min(i+txnOps, len(nodes))] {
			ops = append(ops, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeDelete, Node: api.Node{Node: n}}})
		}
		batches = append(batches, ops)
	}
	return txns(ctx, client, batches)
}

// txns runs transactions four at a time and returns the first failure.
func txns(ctx context.Context, client *api.Client, batches []api.TxnOps) error {
	work := make(chan api.TxnOps)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 4 {
		wg.Go(func() {
			for ops := range work {
				ok, resp, _, err := client.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
				if err == nil && !ok {
					err = fmt.Errorf("transaction rolled back: %v", resp.Errors)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("consul transaction: %w", err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, b := range batches {
		select {
		case work <- b:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// FillAgent makes an agent hold n services of the agent mode's shape as its
// own, registering them through the agent API, concurrency at a time. It is
// the slow part of the agent ceiling (minutes at 10,000: each registration
// costs more the more the agent holds, which is what that ceiling measures),
// and the only quick-looking alternatives are not quicker: services loaded
// from a config file, at start or on a reload, are sent to the catalog one
// by one by the agent's sync all the same (measured: 171 s for 10,000 from
// a config file at start; 41 s of catalog writes plus 175 s of sync after
// a reload), and the transaction API cannot write the tagged addresses the
// agent adds, so the agent sends everything again after a bulk write.
func FillAgent(ctx context.Context, client *api.Client, concurrency, n int, env string) error {
	work := make(chan struct{})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range concurrency {
		wg.Go(func() {
			for range work {
				reg := ConsulService(uuid.New(), "effect", env, "", 1)
				if err := client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for range n {
		select {
		case work <- struct{}{}:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if first != nil {
		return fmt.Errorf("consul: fill the agent: %w", first)
	}
	return ctx.Err()
}
