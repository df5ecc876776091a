package catalog

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

func nodeRecord(t testing.TB, id uuid.UUID, pubs, subs []string) []byte {
	t.Helper()
	b, err := pipeline.EncodeNodeTopics(pipeline.NodeTopics{NodeID: id, NodeType: "effect", PublishTopics: pubs, SubscribeTopics: subs, Sequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNodeViewApply: the latest record of a key wins, a tombstone deletes,
// the counts follow; a record that does not decode, or names another node,
// leaves its key declaring nothing (as a replica starting after compaction
// would read it); invalid topic names are left out; the generation and the
// change signal move only when the counts do.
func TestNodeViewApply(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	key := func(id uuid.UUID) []byte { return []byte(id.String()) }
	type step struct {
		key, value []byte
		outcome    string
		err        string // substring of the error; "" for none
		changed    bool
	}
	cases := []struct {
		name       string
		steps      []step
		pubs, subs map[string]int
		nodes      int
	}{
		{"two nodes, counted per topic", []step{
			{key(a), nodeRecord(t, a, []string{"t1", "t2"}, []string{"t3"}), RecordApplied, "", true},
			{key(b), nodeRecord(t, b, []string{"t1"}, nil), RecordApplied, "", true},
		}, map[string]int{"t1": 2, "t2": 1}, map[string]int{"t3": 1}, 2},
		{"latest record wins, repeats counted once", []step{
			{key(a), nodeRecord(t, a, []string{"t1"}, nil), RecordApplied, "", true},
			{key(a), nodeRecord(t, a, []string{"t2", "t2"}, []string{"t1"}), RecordApplied, "", true},
		}, map[string]int{"t2": 1}, map[string]int{"t1": 1}, 1},
		{"the same record again changes nothing", []step{
			{key(a), nodeRecord(t, a, []string{"t1"}, nil), RecordApplied, "", true},
			{key(a), nodeRecord(t, a, []string{"t1"}, nil), RecordApplied, "", false},
		}, map[string]int{"t1": 1}, map[string]int{}, 1},
		{"tombstone deletes", []step{
			{key(a), nodeRecord(t, a, []string{"t1"}, nil), RecordApplied, "", true},
			{key(b), nodeRecord(t, b, []string{"t1"}, nil), RecordApplied, "", true},
			{key(a), nil, RecordDeleted, "", true},
		}, map[string]int{"t1": 1}, map[string]int{}, 1},
		{"tombstone of an unknown node", []step{
			{key(a), nil, RecordDeleted, "", false},
		}, map[string]int{}, map[string]int{}, 0},
		{"no topics left is no node", []step{
			{key(a), nodeRecord(t, a, []string{"t1"}, nil), RecordApplied, "", true},
			{key(a), nodeRecord(t, a, nil, nil), RecordApplied, "", true},
		}, map[string]int{}, map[string]int{}, 0},
		{"a marker tombstone is skipped", []step{
			{key(a), nodeRecord(t, a, []string{"t1"}, nil), RecordApplied, "", true},
			{[]byte("__restore_marker__.0.1"), nil, RecordSkipped, "", false},
		}, map[string]int{"t1": 1}, map[string]int{}, 1},
		{"undecodable value: the key declares nothing", []step{
			{key(a), nodeRecord(t, a, []string{"t1"}, nil), RecordApplied, "", true},
			{key(a), []byte(`{"node_id": 7}`), RecordInvalid, "node topics", true},
		}, map[string]int{}, map[string]int{}, 0},
		{"value of another node", []step{
			{key(a), nodeRecord(t, b, []string{"t1"}, nil), RecordInvalid, "node_id", false},
		}, map[string]int{}, map[string]int{}, 0},
		{"value under a key that is no node id", []step{
			{[]byte("nope"), nodeRecord(t, a, []string{"t1"}, nil), RecordInvalid, "key", false},
		}, map[string]int{}, map[string]int{}, 0},
		{"invalid names left out, the rest counted", []step{
			{key(a), nodeRecord(t, a, []string{"ok.topic", "", "has space", strings.Repeat("x", 250), ".."}, []string{"ü"}),
				RecordApplied, "5 names", true},
		}, map[string]int{"ok.topic": 1}, map[string]int{}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := NewNodeView(NodeViewConfig{Topic: "t"})
			for i, s := range tc.steps {
				gen := v.Generation()
				outcome, err := v.Apply(s.key, s.value)
				if outcome != s.outcome {
					t.Errorf("step %d: outcome %s, want %s", i, outcome, s.outcome)
				}
				if (err == nil) != (s.err == "") || (err != nil && !strings.Contains(err.Error(), s.err)) {
					t.Errorf("step %d: error %v, want one containing %q", i, err, s.err)
				}
				if changed := v.Generation() != gen; changed != s.changed {
					t.Errorf("step %d: changed %v, want %v", i, changed, s.changed)
				}
				select {
				case <-v.Changes():
					if !s.changed {
						t.Errorf("step %d: change signalled without a change", i)
					}
				default:
					if s.changed {
						t.Errorf("step %d: change not signalled", i)
					}
				}
			}
			u := v.Usage()
			if !maps.Equal(u.Pubs, tc.pubs) || !maps.Equal(u.Subs, tc.subs) || u.Nodes != tc.nodes || u.Complete {
				t.Errorf("usage %+v, want pubs %v subs %v nodes %d, incomplete", u, tc.pubs, tc.subs, tc.nodes)
			}
		})
	}
}

// TestNodeViewFollowsKafka: against the real broker, on a compacted topic
// written in transactions as the reducer writes it: the view restores the
// committed records (an aborted transaction does not count, the commit
// markers at the end of the partitions do not keep it from being ready),
// then follows new records and tombstones, signalling each change, and
// stops with its context.
func TestNodeViewFollowsKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (real broker); skipped with -short")
	}
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.snapshot.n" + testkit.Unique() + ".node-topics.v1"
	compact := "compact"
	testkit.CreateTopic(t, brokers, topic, 3, map[string]*string{"cleanup.policy": &compact})

	pcfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "node-view-test-writer"})
	if err != nil {
		t.Fatal(err)
	}
	pcfg.Producer.Transaction.ID = "node-view-test-" + testkit.Unique()
	prod, err := sarama.NewSyncProducer(brokers, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	type rec struct {
		key   string
		value []byte
	}
	txn := func(commit bool, recs ...rec) {
		t.Helper()
		if err := prod.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key)}
			if r.value != nil {
				m.Value = sarama.ByteEncoder(r.value)
			}
			if _, _, err := prod.SendMessage(m); err != nil {
				t.Fatal(err)
			}
		}
		if commit {
			err = prod.CommitTxn()
		} else {
			err = prod.AbortTxn()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b, c, d, e := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	// Before the view starts: a and b stay, c comes and goes, d is aborted,
	// e is garbage.
	txn(true, rec{a.String(), nodeRecord(t, a, []string{"onex.evt.acme.orders.v1"}, []string{"onex.cmd.acme.ship.v1"})},
		rec{b.String(), nodeRecord(t, b, []string{"onex.evt.acme.orders.v1"}, nil)},
		rec{c.String(), nodeRecord(t, c, []string{"onex.evt.acme.gone.v1"}, nil)})
	txn(true, rec{c.String(), nil}, rec{e.String(), []byte("not json")})
	txn(false, rec{d.String(), nodeRecord(t, d, []string{"onex.evt.acme.aborted.v1"}, nil)})
	txn(true, rec{"__restore_marker__.0.0", nil})

	ccfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "node-view-test"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(brokers, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	v := NewNodeView(NodeViewConfig{Topic: topic, CatchUpIdle: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); v.Run(ctx, client) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the view did not stop with its context")
		}
	}()

	select {
	case <-v.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("the view never caught up")
	}
	u := v.Usage()
	if !u.Complete || u.Nodes != 2 || !maps.Equal(u.Pubs, map[string]int{"onex.evt.acme.orders.v1": 2}) ||
		!maps.Equal(u.Subs, map[string]int{"onex.cmd.acme.ship.v1": 1}) {
		t.Fatalf("restored usage %+v", u)
	}
	if n := testutil.ToFloat64(v.records.WithLabelValues(RecordInvalid)); n != 1 {
		t.Errorf("invalid records %v, want 1 (the garbage)", n)
	}
	if n := testutil.ToFloat64(v.records.WithLabelValues(RecordDeleted)); n != 1 {
		t.Errorf("deleted records %v, want 1 (c's tombstone)", n)
	}
	if n := testutil.ToFloat64(v.records.WithLabelValues(RecordSkipped)); n != 1 {
		t.Errorf("skipped records %v, want 1 (the marker)", n)
	}

	// Following: a leaves (tombstone), b changes its topics, f arrives.
	for len(v.Changes()) > 0 {
		<-v.Changes()
	}
	f := uuid.New()
	txn(true, rec{a.String(), nil}, rec{b.String(), nodeRecord(t, b, []string{"onex.evt.acme.orders.v1"}, []string{"onex.evt.acme.stock.v1"})},
		rec{f.String(), nodeRecord(t, f, nil, []string{"onex.evt.acme.orders.v1"})})
	select {
	case <-v.Changes():
	case <-time.After(20 * time.Second):
		t.Fatal("no change signalled")
	}
	want := NodeUsage{Usage: Usage{Pubs: map[string]int{"onex.evt.acme.orders.v1": 1},
		Subs: map[string]int{"onex.evt.acme.stock.v1": 1, "onex.evt.acme.orders.v1": 1}}, Nodes: 2}
	deadline := time.Now().Add(20 * time.Second)
	for {
		u = v.Usage()
		if u.Nodes == want.Nodes && maps.Equal(u.Pubs, want.Pubs) && maps.Equal(u.Subs, want.Subs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage %+v, want %+v", u, want)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The last node's tombstone empties the table.
	txn(true, rec{b.String(), nil}, rec{f.String(), nil})
	deadline = time.Now().Add(20 * time.Second)
	for u = v.Usage(); u.Nodes != 0 || len(u.Pubs)+len(u.Subs) != 0; u = v.Usage() {
		if time.Now().After(deadline) {
			t.Fatalf("usage %+v after the tombstones, want empty", u)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
