package app

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
	"github.com/omninode/onex-fleet/services/reducer/snapshot"
)

// snapshotRecords returns the snapshot records of n ACTIVE nodes as the
// reducer writes them after an introspection and an ack (the shape of a
// simulated node: declared capabilities, an api endpoint, a Consul service):
// the value and the headers a consumer receives. With stateInValue, in the
// layout written before the reducer state moved into a header: the state
// and the Consul derivation in the value, no header.
func snapshotRecords(tb testing.TB, n int, stateInValue bool) []*sarama.ConsumerMessage {
	tb.Helper()
	caps := json.RawMessage(`{"postgres":false,"read":true,"write":false,"database":false,"transactions":false,` +
		`"processing":false,"batch_size":null,"max_batch":null,"supported_types":["simulated"],"routing":false,` +
		`"feature":false,"config":{},"feature_flags":{"flags":{},"flag_metadata":{},"default_enabled":false},"mcp":null}`)
	now := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	p := decide.DefaultParams()
	out := make([]*sarama.ConsumerMessage, n)
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
		m := &sarama.ConsumerMessage{Key: []byte(rec.Key), Value: rec.Value}
		for _, h := range rec.Headers {
			m.Headers = append(m.Headers, &sarama.RecordHeader{Key: h.Key, Value: h.Value})
		}
		if stateInValue {
			c, err := json.Marshal(snapshot.ConsulPayload(a.State.ConsulRegistration(), id, a.State.CorrelationID))
			if err != nil {
				tb.Fatal(err)
			}
			v := append(rec.Value[:len(rec.Value)-1:len(rec.Value)-1], `,"consul":`...)
			v = append(append(append(v, c...), `,"reducer_state":`...), pipeline.SnapshotState(m.Headers)...)
			m.Value, m.Headers = append(v, '}'), nil
		}
		out[i] = m
	}
	return out
}

// restorePartition decodes records as restore does.
func restorePartition(tb testing.TB, records []*sarama.ConsumerMessage) *state.Partition {
	part := state.NewPartition(0)
	for _, m := range records {
		st, err := wire.RestoreState(m.Value, pipeline.SnapshotState(m.Headers))
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
func BenchmarkRestore100k(b *testing.B) { benchmarkRestore(b, false) }

// The same from records in the layout written before the reducer state
// moved into a header (the fallback a compacted topic needs until every
// node has written a snapshot since).
func BenchmarkRestore100kStateInValue(b *testing.B) { benchmarkRestore(b, true) }

func benchmarkRestore(b *testing.B, stateInValue bool) {
	const n = 100_000
	records := snapshotRecords(b, n, stateInValue)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if p := restorePartition(b, records); p.Len() != n {
			b.Fatalf("restored %d nodes, want %d", p.Len(), n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/node")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := restorePartition(b, records)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "B/node")
	runtime.KeepAlive(p)
	runtime.KeepAlive(records) // measured in both readings, so not in the difference
}
