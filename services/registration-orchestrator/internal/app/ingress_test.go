package app

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/fixtures"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/ingress"
)

// TestIngress: the Python records (the current package's and the older
// fixtures) become reducer inputs keyed by their node_id; 1,000 malformed
// records of every kind in the catalogue, built from both sets, land in the
// DLQ with a failure_reason naming what was wrong, while the valid records
// interleaved with them, among them records with fields the fleet does not
// know, are all forwarded and their unknown fields counted; the service
// starts by requesting re-introspection.
func TestIngress(t *testing.T) {
	h := newHarness(t)
	old, err := fixtures.LoadSet()
	if err != nil {
		t.Fatal(err)
	}
	cur, err := fixtures.LoadGoldenSet()
	if err != nil {
		t.Fatal(err)
	}
	sets := []*fixtures.Set{cur, old}
	reducerInput := h.topic(topics.ReducerInput)
	h.watch(reducerInput)
	h.watch(h.dlqTopic)
	h.watch(h.topic(topics.RequestIntrospection))
	in := h.start(h.settings())

	t.Run("requests re-introspection at start", func(t *testing.T) {
		got := h.waitRecords(h.topic(topics.RequestIntrospection), 1, 10*time.Second, "re-introspection request", nil)
		req, err := registration.DecodeRequestIntrospection(got[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		if req.EventType == nil || *req.EventType != "REQUEST_INTROSPECTION" || req.Reason == nil || *req.Reason != "registry_startup" ||
			req.CorrelationID == nil || req.Timestamp == nil || req.TargetNodeID != nil {
			t.Fatalf("request %s", got[0].Value)
		}
	})

	for _, s := range sets {
		t.Run("Python introspection, "+s.Name, func(t *testing.T) {
			r := s.Introspection()
			before := time.Now()
			h.produce(h.topic(topics.NodeIntrospection), "", r.Value) // unkeyed, as a Python node sends it
			got := h.waitRecords(reducerInput, 1, 20*time.Second, "reducer input of the record", keyIs(r.NodeID.String()))
			ri, err := pipeline.DecodeReducerInput(got[0].Headers, got[0].Value)
			if err != nil {
				t.Fatal(err)
			}
			if ri.Topic != topics.NodeIntrospection {
				t.Errorf("topic %q", ri.Topic)
			}
			if string(ri.Value) != string(r.Value) {
				t.Error("value not forwarded byte for byte")
			}
			if ri.ReceivedAt.Before(before.Add(-time.Second)) || ri.ReceivedAt.After(time.Now()) {
				t.Errorf("received_at %s is not the receive time", ri.ReceivedAt)
			}
		})
	}

	t.Run("1000 malformed interleaved with valid records", func(t *testing.T) {
		kinds := fixtures.MalformedKinds(300 << 10)
		if len(kinds) < 25 {
			t.Fatalf("%d kinds", len(kinds))
		}
		type planned struct {
			rec  fixtures.Record
			kind *fixtures.Malformed
		}
		var plan []planned
		for i := 0; i < 1000; i++ {
			k := &kinds[i%len(kinds)]
			plan = append(plan, planned{rec: k.Make(sets[i/len(kinds)%2]), kind: k})
		}
		valid := map[string]string{} // node id → topic
		for i := 0; i < 150; i++ {
			set := sets[i%2]
			var r fixtures.Record
			switch i % 3 {
			case 0:
				r = set.Introspection()
			case 1:
				r = set.Heartbeat()
			default:
				r = set.Ack()
			}
			valid[r.NodeID.String()] = r.Topic
			plan = append(plan, planned{rec: r})
		}
		// Records with fields the fleet does not know are valid: forwarded,
		// their unknown fields counted under their paths.
		wantUnknown := map[[2]string]float64{} // (topic, field) → count
		for i := 0; i < 4; i++ {
			for _, k := range fixtures.UnknownFieldKinds() {
				r := k.Make(sets[i%2])
				valid[r.NodeID.String()] = r.Topic
				plan = append(plan, planned{rec: r})
				for _, f := range k.Fields {
					wantUnknown[[2]string{r.Topic, f}]++
				}
			}
		}
		// Records of a node type the registry does not register
		// (runtime_host) are valid: forwarded, for the reducer to answer.
		for i := 0; i < 4; i++ {
			for _, k := range fixtures.UnregistrableKinds() {
				r := k.Make(sets[i%2])
				valid[r.NodeID.String()] = r.Topic
				plan = append(plan, planned{rec: r})
			}
		}
		rand.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })

		type loc struct {
			topic string
			p     int32
			o     int64
		}
		expect := map[loc]*fixtures.Malformed{}
		// Sent in batches (unkeyed, spread over the partitions), so the
		// service sees them interleaved on every partition.
		for start := 0; start < len(plan); start += 50 {
			var msgs []*sarama.ProducerMessage
			for _, p := range plan[start:min(start+50, len(plan))] {
				m := &sarama.ProducerMessage{Topic: h.topic(p.rec.Topic), Metadata: p.kind}
				if p.rec.Value != nil {
					m.Value = sarama.ByteEncoder(p.rec.Value)
				}
				if p.rec.Topic == topics.NodeRegistrationAcked && p.kind == nil {
					m.Key = sarama.StringEncoder(p.rec.NodeID.String()) // acks are keyed
				}
				msgs = append(msgs, m)
			}
			if err := h.prod.SendMessages(msgs); err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if k, _ := m.Metadata.(*fixtures.Malformed); k != nil {
					expect[loc{m.Topic, m.Partition, m.Offset}] = k
				}
			}
		}

		got := h.waitRecords(h.dlqTopic, 1000, 120*time.Second, "1000 DLQ records", nil)
		seen := map[loc]bool{}
		perKind := map[string]int{}
		for _, m := range got {
			rec, err := dlq.Decode(m.Value)
			if err != nil {
				t.Fatalf("DLQ record: %v", err)
			}
			l := loc{rec.OriginalTopic, *rec.OriginalMessage.Partition, *rec.OriginalMessage.Offset}
			k := expect[l]
			if k == nil {
				t.Fatalf("unexpected DLQ record for %v: %s", l, rec.FailureReason)
			}
			if seen[l] {
				t.Errorf("record %v dead-lettered twice", l)
			}
			seen[l] = true
			perKind[k.Kind]++
			for _, w := range k.Want {
				if !strings.Contains(rec.FailureReason, w) {
					t.Errorf("%s: failure_reason %q does not contain %q", k.Kind, rec.FailureReason, w)
				}
			}
			if rec.FailureType != dlq.FailureTypeContent || rec.FailureClass != dlq.ClassPublisherMalformed {
				t.Errorf("%s: failure_type %q class %q", k.Kind, rec.FailureType, rec.FailureClass)
			}
			if string(m.Headers[0].Key) == "" {
				t.Errorf("DLQ record without headers")
			}
		}
		if len(seen) != 1000 {
			t.Fatalf("%d distinct records dead-lettered, want 1000", len(seen))
		}
		for _, k := range kinds {
			if perKind[k.Kind] == 0 {
				t.Errorf("kind %s never dead-lettered", k.Kind)
			}
		}

		forwarded := h.waitRecords(reducerInput, len(valid), 60*time.Second, fmt.Sprintf("%d valid records forwarded", len(valid)),
			func(m *sarama.ConsumerMessage) bool { _, ok := valid[string(m.Key)]; return ok })
		for _, m := range forwarded {
			ri, err := pipeline.DecodeReducerInput(m.Headers, m.Value)
			if err != nil {
				t.Fatal(err)
			}
			if want := valid[string(m.Key)]; ri.Topic != want {
				t.Errorf("node %s: reducer input topic %q, want %q", m.Key, ri.Topic, want)
			}
		}
		if n := len(forwarded); n != len(valid) {
			t.Errorf("%d valid records forwarded, want %d (no duplicates expected without failures)", n, len(valid))
		}

		// The ingress metric counts every rejection under its reason.
		total := 0.0
		for _, r := range []string{topics.NodeIntrospection, topics.NodeHeartbeat, topics.NodeRegistrationAcked} {
			for _, reason := range ingress.Reasons {
				total += testutil.ToFloat64(in.app.ingm.Messages.WithLabelValues(r, "rejected", reason))
			}
		}
		if total != 1000 {
			t.Errorf("rejected counter total %v, want 1000", total)
		}
		for k, want := range wantUnknown {
			if got := testutil.ToFloat64(in.app.ingm.UnknownFields.WithLabelValues(k[0], k[1])); got != want {
				t.Errorf("onex_unknown_fields_total{topic=%q,field=%q} = %v, want %v", k[0], k[1], got, want)
			}
		}
	})
}
