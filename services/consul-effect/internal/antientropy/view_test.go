package antientropy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/consulservice"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/snapshottest"
)

// rec is one snapshot record: key, value, reducer state header.
type rec struct {
	key   uuid.UUID
	value []byte
	state []byte
	bad   bool
}

// node is an effect node listening on 127.0.0.1:8085.
func node(id uuid.UUID, state string, seq int64) snapshottest.Node {
	return snapshottest.Node{ID: id, State: state, Sequence: seq, Endpoints: map[string]string{"api": "http://127.0.0.1:8085/api"}}
}

// snap returns the node's snapshot record as the reducer writes it; without
// consul, a bare model without any reducer state.
func snap(t *testing.T, id uuid.UUID, state string, seq int64, consul bool) rec {
	t.Helper()
	value, header, err := snapshottest.Record(node(id, state, seq), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !consul {
		return rec{key: id, value: value}
	}
	return rec{key: id, value: value, state: header}
}

func TestViewApply(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	tests := []struct {
		name    string
		records func(t *testing.T) []rec
		desired []uuid.UUID
		present []uuid.UUID
	}{
		{name: "active and awaiting_ack with consul are desired", records: func(t *testing.T) []rec {
			return []rec{snap(t, a, "active", 3, true), snap(t, b, "awaiting_ack", 2, true)}
		}, desired: []uuid.UUID{a, b}, present: []uuid.UUID{a, b}},
		{name: "expired and timed out are not desired", records: func(t *testing.T) []rec {
			return []rec{snap(t, a, "liveness_expired", 5, true), snap(t, b, "ack_timed_out", 4, true)}
		}, present: []uuid.UUID{a, b}},
		{name: "active without a consul derivation is not desired", records: func(t *testing.T) []rec {
			return []rec{snap(t, a, "active", 3, false)}
		}, present: []uuid.UUID{a}},
		{name: "tombstone removes", records: func(t *testing.T) []rec {
			return []rec{snap(t, a, "active", 3, true), {key: a, value: nil}}
		}},
		{name: "older snapshot does not replace newer", records: func(t *testing.T) []rec {
			return []rec{snap(t, a, "liveness_expired", 9, true), snap(t, a, "active", 4, true)}
		}, present: []uuid.UUID{a}},
		{name: "newer snapshot replaces", records: func(t *testing.T) []rec {
			return []rec{snap(t, a, "active", 4, true), snap(t, a, "liveness_expired", 9, true)}
		}, present: []uuid.UUID{a}},
		{name: "garbage is ignored", records: func(t *testing.T) []rec {
			return []rec{{key: a, value: []byte("{nope"), bad: true}, {key: b, value: []byte(`{"entity_id":"` + b.String() + `"}`), bad: true},
				snap(t, a, "active", 1, true)}
		}, desired: []uuid.UUID{a}, present: []uuid.UUID{a}},
		{name: "a reducer state that does not decode is ignored", records: func(t *testing.T) []rec {
			good, broken := snap(t, a, "active", 3, true), snap(t, b, "active", 3, true)
			broken.state, broken.bad = []byte(`{"node_id":"`+a.String()+`"}`), true // another node's
			return []rec{good, broken}
		}, desired: []uuid.UUID{a}, present: []uuid.UUID{a}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewView(nil)
			for _, r := range tt.records(t) {
				err := v.Apply([]byte(r.key.String()), r.value, r.state)
				if (err != nil) != r.bad {
					t.Fatalf("Apply: %v (bad=%v)", err, r.bad)
				}
			}
			got := map[uuid.UUID]bool{}
			for _, e := range v.Desired() {
				got[e.NodeID] = true
			}
			if len(got) != len(tt.desired) {
				t.Fatalf("desired = %v, want %v", got, tt.desired)
			}
			for _, id := range tt.desired {
				if !got[id] {
					t.Fatalf("%v not desired", id)
				}
			}
			for _, id := range tt.present {
				if _, ok := v.Get(id); !ok {
					t.Fatalf("%v missing from view", id)
				}
			}
			if v.len() != len(tt.present) {
				t.Fatalf("view has %d nodes, want %d", v.len(), len(tt.present))
			}
		})
	}
}

// TestViewTombstoneKeys: the reducer's restore markers (tombstones whose key
// names no node) are skipped quietly, any other tombstone key that is no
// node id is reported.
func TestViewTombstoneKeys(t *testing.T) {
	id := uuid.New()
	tests := []struct {
		key  string
		bad  bool
		kept bool
	}{
		{key: "__restore_marker__.3.17", kept: true},
		{key: "__restore_marker__.", kept: true},
		{key: "__restore_marker_3", bad: true, kept: true},
		{key: "not-a-node", bad: true, kept: true},
		{key: id.String()},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			v := NewView(nil)
			r := snap(t, id, "active", 3, true)
			if err := v.Apply([]byte(r.key.String()), r.value, r.state); err != nil {
				t.Fatal(err)
			}
			if err := v.Apply([]byte(tt.key), nil, nil); (err != nil) != tt.bad {
				t.Fatalf("Apply(tombstone %q) = %v, want bad=%v", tt.key, err, tt.bad)
			}
			if got := testutil.ToFloat64(v.bad); got != map[bool]float64{true: 1, false: 0}[tt.bad] {
				t.Fatalf("invalid records counted %v", got)
			}
			if _, ok := v.Get(id); ok != tt.kept {
				t.Fatalf("node kept = %v, want %v", ok, tt.kept)
			}
		})
	}
}

// The view's Consul service is the reducer's derivation from the record's
// reducer state, from its header or, in a record written before the header,
// from its value.
func TestViewDerivesConsul(t *testing.T) {
	id := uuid.New()
	n := node(id, "active", 7)
	n.CorrelationID = uuid.New()
	value, header, err := snapshottest.Record(n, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg := consulservice.Derive(id, "effect", consulservice.EndpointMap(n.Endpoints), nil)
	reg.Health = consulservice.Health(registration.StateActive)
	want := consulservice.Payload(reg, id, n.CorrelationID)
	c, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	legacy := strings.TrimSuffix(string(value), "}") + `,"consul":` + string(c) + `,"reducer_state":` + string(header) + `}`
	for name, r := range map[string]rec{"header": {value: value, state: header}, "state in the value": {value: []byte(legacy)}} {
		v := NewView(nil)
		if err := v.Apply([]byte(id.String()), r.value, r.state); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		e, ok := v.Get(id)
		if !ok || !e.Desired() || e.Sequence != 7 || e.State != "active" || !reflect.DeepEqual(e.Consul, &want) {
			t.Errorf("%s: entry %+v, consul %+v, want %+v", name, e, e.Consul, want)
		}
		if *e.Consul.Port != 8085 || *e.Consul.Address != "127.0.0.1" || e.Consul.ServiceID != "onex-effect-"+id.String() {
			t.Errorf("%s: consul %+v", name, e.Consul)
		}
	}
}

// One snapshot record into the view, as every heartbeat's snapshot arrives:
// the value decoded, the Consul service derived from the reducer state.
func BenchmarkViewApply(b *testing.B) {
	id := uuid.New()
	n := node(id, "active", 7)
	n.Capabilities = json.RawMessage(`{"postgres":false,"read":true,"write":false,"database":false,"transactions":false,` +
		`"processing":false,"batch_size":null,"max_batch":null,"supported_types":["simulated"],"routing":false,` +
		`"feature":false,"config":{},"feature_flags":{"flags":{},"flag_metadata":{},"default_enabled":false},"mcp":null}`)
	n.Endpoints["health"] = "http://127.0.0.1:8085/health"
	value, header, err := snapshottest.Record(n, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	v, key := NewView(nil), []byte(id.String())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := v.Apply(key, value, header); err != nil {
			b.Fatal(err)
		}
	}
}

// TestViewFollowsKafka: the view reads the snapshot topic as the reducer
// writes it, in transactions, so it is caught up although the last offsets
// of every partition are commit markers; it skips the aborted snapshot and
// the restore marker, and goes on following.
func TestViewFollowsKafka(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.snapshot.antientropytest" + testkit.Unique() + ".registration-snapshots.v1"
	compact := "compact"
	testkit.CreateTopic(t, brokers, topic, 2, map[string]*string{"cleanup.policy": &compact})
	prod := testkit.TransactionalProducer(t, brokers, topic+"-reducer")
	msg := func(r rec) *sarama.ProducerMessage {
		m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key.String())}
		if r.value != nil {
			m.Value = sarama.ByteEncoder(r.value)
			m.Headers = []sarama.RecordHeader{{Key: []byte(pipeline.HeaderReducerState), Value: r.state}}
		}
		return m
	}
	txn := func(commit bool, msgs ...*sarama.ProducerMessage) {
		t.Helper()
		testkit.WriteTxn(t, prod, commit, msgs...)
	}
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	txn(true, msg(snap(t, a, "active", 3, true)), msg(snap(t, b, "awaiting_ack", 2, true)))
	txn(false, msg(snap(t, c, "active", 4, true)))
	txn(true, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("__restore_marker__.0.0")})

	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "antientropy-view-test"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	v := NewView(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- v.Follow(ctx, client, topic, 100*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	select {
	case <-v.Ready():
	case err := <-done:
		t.Fatalf("follow ended before catching up: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the view never caught up")
	}
	if _, ok := v.Get(c); ok || len(v.Desired()) != 2 || testutil.ToFloat64(v.bad) != 0 {
		t.Fatalf("caught up with desired %v, c present %v, %v invalid", v.Desired(), ok, testutil.ToFloat64(v.bad))
	}

	txn(true, msg(rec{key: a}))
	deadline := time.Now().Add(20 * time.Second)
	for _, ok := v.Get(a); ok; _, ok = v.Get(a) {
		if time.Now().After(deadline) {
			t.Fatal("a's tombstone not followed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("follow ended with %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("follow did not stop with its context")
	}
}
