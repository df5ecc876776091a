package effect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	dto "github.com/prometheus/client_model/go"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// txnFunc is a TxnAPI of a function, recording every transaction's
// operations (by node name) and the most transactions seen at once.
type txnFunc struct {
	fn func(ops api.TxnOps) error

	mu      sync.Mutex
	txns    [][]string
	running atomic.Int32
	most    atomic.Int32
}

func (f *txnFunc) Txn(_ context.Context, _ string, ops api.TxnOps) error {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for m := f.most.Load(); n > m && !f.most.CompareAndSwap(m, n); m = f.most.Load() {
	}
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = op.Node.Node.Node
	}
	f.mu.Lock()
	f.txns = append(f.txns, names)
	f.mu.Unlock()
	return f.fn(ops)
}

// ops is a write of k operations, each naming the write.
func ops(name string, k int) api.TxnOps {
	out := make(api.TxnOps, k)
	for i := range out {
		out[i] = &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: api.Node{Node: name}}}
	}
	return out
}

// Writes that arrive while transactions are in flight share the next
// ones: every write is committed exactly once, no transaction holds more
// than Consul's limit or splits a write, and no more than inFlight run
// at once.
func TestGroupCommitGathers(t *testing.T) {
	release := make(chan struct{})
	f := &txnFunc{fn: func(api.TxnOps) error { <-release; return nil }}
	g := newGroupCommit(f, 2)
	const writers = 60
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() { errs[i] = g.write(context.Background(), ops(fmt.Sprintf("w%d", i), 1+i%3)) })
	}
	// Two transactions run (and wait) while the other writes queue.
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		waiting := len(g.queue)
		g.mu.Unlock()
		if waiting == writers-2 && f.running.Load() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, %d transactions running", waiting, f.running.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	seen := map[string]int{}
	for _, tx := range f.txns {
		if len(tx) > backend.MaxTxnOps {
			t.Fatalf("a transaction of %d operations", len(tx))
		}
		for _, name := range slices.Compact(slices.Clone(tx)) {
			seen[name]++
		}
	}
	for i := range writers {
		name := fmt.Sprintf("w%d", i)
		if seen[name] != 1 {
			t.Fatalf("write %s committed %d times (transactions %v)", name, seen[name], f.txns)
		}
	}
	// Two of one write each, then the 58 others (about 116 operations)
	// in as few transactions as the limit allows.
	if len(f.txns) > 5 {
		t.Fatalf("%d transactions for %d writes: not gathered", len(f.txns), writers)
	}
	if m := f.most.Load(); m > 2 {
		t.Fatalf("%d transactions at once, want at most 2", m)
	}
	var m dto.Metric
	if err := g.writes.Write(&m); err != nil {
		t.Fatal(err)
	}
	if h := m.GetHistogram(); h.GetSampleCount() != uint64(len(f.txns)) || h.GetSampleSum() != writers {
		t.Fatalf("onex_consul_txn_writes: %d transactions, %v writes; want %d, %d", h.GetSampleCount(), h.GetSampleSum(), len(f.txns), writers)
	}
}

// A rolled-back transaction fails only the writes Consul named, each with
// its own operations' reasons numbered within the write; the others are
// committed again without them. A refusal for the token is an
// authentication failure, anything else is rejected; a failure of the
// call itself fails every write in it.
func TestGroupCommitFailures(t *testing.T) {
	unavailable := backend.Classify("register", api.StatusError{Code: 503, Body: "no leader"})
	tests := []struct {
		name string
		// reject says why Consul refuses an operation of a write ("" = it
		// does not).
		reject func(write string) string
		// callErr fails the call itself.
		callErr error
		want    map[string]infraerr.Kind // failed writes; the rest succeed
	}{
		{name: "one bad write", reject: func(w string) string {
			if w == "w2" {
				return "Invalid service address"
			}
			return ""
		}, want: map[string]infraerr.Kind{"w2": infraerr.KindRequestRejected}},
		{name: "refused for the token", reject: func(w string) string {
			if w == "w1" || w == "w3" {
				return `Permission denied: token with AccessorID 'x' lacks permission 'service:write' on "onex-effect"`
			}
			return ""
		}, want: map[string]infraerr.Kind{"w1": infraerr.KindAuthentication, "w3": infraerr.KindAuthentication}},
		{name: "call fails", callErr: unavailable, want: map[string]infraerr.Kind{
			"w0": infraerr.KindUnavailable, "w1": infraerr.KindUnavailable, "w2": infraerr.KindUnavailable, "w3": infraerr.KindUnavailable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &txnFunc{fn: func(ops api.TxnOps) error {
				if tt.callErr != nil {
					return tt.callErr
				}
				var errs []*api.TxnError
				for i, op := range ops {
					if why := tt.reject(op.Node.Node.Node); why != "" {
						errs = append(errs, &api.TxnError{OpIndex: i, What: why})
					}
				}
				if errs != nil {
					return backend.Classify("register", &backend.TxnRolledBack{Errors: errs})
				}
				return nil
			}}
			g := newGroupCommit(f, 1)
			batch := []*pendingWrite{{ops: ops("w0", 3)}, {ops: ops("w1", 3)}, {ops: ops("w2", 2)}, {ops: ops("w3", 3)}}
			errs := g.commit(context.Background(), batch)
			for i, err := range errs {
				name := fmt.Sprintf("w%d", i)
				kind, failed := tt.want[name]
				switch {
				case !failed && err != nil:
					t.Fatalf("%s: %v", name, err)
				case failed && !isKind(err, kind):
					t.Fatalf("%s: %v, want %s", name, err, kind)
				}
				var rb *backend.TxnRolledBack
				if failed && errors.As(err, &rb) && tt.callErr == nil {
					// Numbered within the write: operations 0..len-1.
					if len(rb.Errors) != len(batch[i].ops) || rb.Errors[len(rb.Errors)-1].OpIndex != len(batch[i].ops)-1 {
						t.Fatalf("%s: %v", name, rb)
					}
				}
			}
			// Every write that succeeded was in a transaction that was
			// applied: the last one, which holds exactly them.
			last := f.txns[len(f.txns)-1]
			for i := range batch {
				name := fmt.Sprintf("w%d", i)
				if _, failed := tt.want[name]; !failed && !slices.Contains(last, name) {
					t.Fatalf("%s succeeded but is not in the last transaction %v", name, last)
				}
			}
			for name := range tt.want {
				if tt.callErr == nil && slices.Contains(last, name) {
					t.Fatalf("failed write %s is in the committed transaction %v", name, last)
				}
			}
		})
	}
}

// A rollback that names no operation (no reason Consul gave) commits each
// write of the transaction on its own.
func TestGroupCommitUnattributedRollback(t *testing.T) {
	f := &txnFunc{fn: func(ops api.TxnOps) error {
		if len(ops) > 3 {
			return backend.Classify("register", &backend.TxnRolledBack{})
		}
		return nil
	}}
	g := newGroupCommit(f, 1)
	errs := g.commit(context.Background(), []*pendingWrite{{ops: ops("a", 3)}, {ops: ops("b", 3)}})
	if errs[0] != nil || errs[1] != nil || len(f.txns) != 3 {
		t.Fatalf("errors %v after %d transactions %v", errs, len(f.txns), f.txns)
	}
}
