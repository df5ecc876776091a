package app

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
)

// snapshotValues returns the snapshot records of n ACTIVE nodes as the
// reducer writes them after an introspection and an ack (the shape of a
// simulated node: declared capabilities, an api endpoint, a Consul service).
func snapshotValues(tb testing.TB, n int) [][]byte {
	tb.Helper()
	caps := json.RawMessage(`{"postgres":false,"read":true,"write":false,"database":false,"transactions":false,` +
		`"processing":false,"batch_size":null,"max_batch":null,"supported_types":["simulated"],"routing":false,` +
		`"feature":false,"config":{},"feature_flags":{"flags":{},"flag_metadata":{},"default_enabled":false},"mcp":null}`)
	now := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	p := decide.DefaultParams()
	out := make([][]byte, n)
	for i := range out {
		id := uuid.NewSHA1(uuid.Nil, []byte(fmt.Sprint("restore", i)))
		name := fmt.Sprintf("sim_effect_%d", i)
		in := decide.Introspection{NodeID: id, NodeType: "effect", NodeName: &name, NodeVersion: "1.0.0", Capabilities: caps,
			Endpoints:     map[string]string{"api": "http://127.0.0.1:9/nodes/" + id.String()},
			CorrelationID: uuid.NewSHA1(id, []byte("c")), HandlerCorrelationID: uuid.NewSHA1(id, []byte("c"))}
		d := decide.DecideIntrospection(nil, in, now, p)
		a := decide.DecideAck(d.State, decide.Ack{NodeID: id, CommandID: uuid.NewSHA1(id, []byte("a"))}, now.Add(time.Second), p)
		rec, err := wire.Snapshot(a.State, now)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = rec.Value
	}
	return out
}

func restorePartition(tb testing.TB, values [][]byte) *state.Partition {
	part := state.NewPartition(0)
	for _, v := range values {
		st, err := wire.RestoreState(v)
		if err != nil {
			tb.Fatal(err)
		}
		part.Put(st)
	}
	return part
}

// Restoring 100,000 nodes from their snapshot records without the broker:
// the decoding and indexing half of a restart's restore (ns/node, on one
// core), and the restored partition's live heap (B/node), the reducer's
// memory per node. docs/performance.md compares both with the targets.
func BenchmarkRestore100k(b *testing.B) {
	const n = 100_000
	values := snapshotValues(b, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if p := restorePartition(b, values); p.Len() != n {
			b.Fatalf("restored %d nodes, want %d", p.Len(), n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/node")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := restorePartition(b, values)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "B/node")
	runtime.KeepAlive(p)
	runtime.KeepAlive(values) // measured in both readings, so not in the difference
}
