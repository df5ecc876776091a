package effect

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// TxnAPI is the Consul transaction call the catalog mode writes through.
type TxnAPI interface {
	Txn(ctx context.Context, op string, ops api.TxnOps) error
}

var _ TxnAPI = (*backend.Client)(nil)

// DefaultTxnsInFlight is how many catalog transactions the effect has in
// flight at once. Consul applies writes one after another through Raft
// whatever arrives, so more in flight would not write faster; fewer
// commits gather more registrations each, and one operation in a shared
// transaction costs Consul a fraction of a call of its own
// (docs/consul-effect.md, "Writes: one transaction for many nodes").
const DefaultTxnsInFlight = 1

// groupCommit gathers the catalog writes of concurrent callers into
// Consul transactions (group commit). A caller queues its write and waits;
// while fewer than inFlight transactions run, a waiting caller takes what
// is queued, up to backend.MaxTxnOps operations, and commits it for
// everyone in it. Alone, a write goes out at once in a transaction of its
// own; under load, the writes that arrive while a transaction runs share
// the next one. No goroutine of its own: the callers do the committing,
// and each returns once its own write is settled.
//
// A write is all its operations or nothing, like a call of its own: a
// rolled-back transaction fails the writes whose operations Consul named
// with the reason it gave, and commits the others again without them.
type groupCommit struct {
	api      TxnAPI
	inFlight int
	// writes observes how many writes each transaction carried.
	writes prometheus.Histogram

	mu      sync.Mutex
	settled *sync.Cond // broadcast when a transaction ends
	queue   []*pendingWrite
	running int
}

type pendingWrite struct {
	ops  api.TxnOps
	done bool
	err  error
}

func newGroupCommit(a TxnAPI, inFlight int) *groupCommit {
	if inFlight < 1 {
		inFlight = DefaultTxnsInFlight
	}
	g := &groupCommit{api: a, inFlight: inFlight,
		writes: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onex_consul_txn_writes",
			Help:    "Writes (a node's registration, deregistration or repair) per Consul transaction of the catalog mode.",
			Buckets: []float64{1, 2, 4, 8, 16, 32}})}
	g.settled = sync.NewCond(&g.mu)
	return g
}

// write applies ops (at most backend.MaxTxnOps) atomically, in a
// transaction it may share with other callers' writes. The transaction is
// not cancelled with ctx: it may carry other callers' writes, and a write
// a caller abandoned could still land after the caller's next one; the
// backend's call timeout bounds it. The error is classified (backend).
func (g *groupCommit) write(ctx context.Context, ops api.TxnOps) error {
	w := &pendingWrite{ops: ops}
	ctx = context.WithoutCancel(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.queue = append(g.queue, w)
	for !w.done {
		if g.running >= g.inFlight || len(g.queue) == 0 {
			g.settled.Wait()
			continue
		}
		batch := g.take()
		g.running++
		g.mu.Unlock()
		errs := g.commit(ctx, batch)
		g.mu.Lock()
		g.running--
		for i, p := range batch {
			p.done, p.err = true, errs[i]
		}
		g.settled.Broadcast()
	}
	return w.err
}

// take removes the queued writes that fit one transaction, oldest first.
// A write alone is never more than a transaction holds (write's contract),
// so the first always fits.
func (g *groupCommit) take() []*pendingWrite {
	n, ops := 0, 0
	for n < len(g.queue) && (n == 0 || ops+len(g.queue[n].ops) <= backend.MaxTxnOps) {
		ops += len(g.queue[n].ops)
		n++
	}
	batch := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	return batch
}

// commit writes batch in one transaction and returns each write's error.
// When Consul rolls it back and names the operations that failed, their
// writes fail with Consul's reasons and the rest are committed again; a
// rollback that names no write of several commits each on its own.
func (g *groupCommit) commit(ctx context.Context, batch []*pendingWrite) []error {
	var ops api.TxnOps
	owner := make([]int, 0, len(batch)*3) // op index → write
	first := make([]int, len(batch))      // write → index of its first op
	for i, w := range batch {
		first[i] = len(ops)
		ops = append(ops, w.ops...)
		for range w.ops {
			owner = append(owner, i)
		}
	}
	errs := make([]error, len(batch))
	g.writes.Observe(float64(len(batch)))
	err := g.api.Txn(ctx, "txn", ops)
	var rolled *backend.TxnRolledBack
	if err == nil || len(batch) == 1 || !errors.As(err, &rolled) {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	failed := map[int][]*api.TxnError{}
	for _, te := range rolled.Errors {
		if te.OpIndex >= 0 && te.OpIndex < len(owner) {
			i := owner[te.OpIndex]
			// Numbered within the write, as a call of its own would be.
			failed[i] = append(failed[i], &api.TxnError{OpIndex: te.OpIndex - first[i], What: te.What})
		}
	}
	var rest []int
	for i := range batch {
		if te, ok := failed[i]; ok {
			errs[i] = backend.Classify("txn", &backend.TxnRolledBack{Errors: te})
		} else {
			rest = append(rest, i)
		}
	}
	if len(failed) == 0 {
		for i, w := range batch {
			errs[i] = g.commit(ctx, []*pendingWrite{w})[0]
		}
		return errs
	}
	if len(rest) > 0 {
		again := make([]*pendingWrite, len(rest))
		for j, i := range rest {
			again[j] = batch[i]
		}
		for j, e := range g.commit(ctx, again) {
			errs[rest[j]] = e
		}
	}
	return errs
}
