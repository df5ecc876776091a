package app

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// corruptIntent says protobuf (its content type) but is not one: its first
// byte starts a field tag that never ends.
var corruptIntent = []byte{0xff, 0xff, 0xff}

// TestRoutingKeepsNodeOrderInBatches: a backlog of intents — heartbeat
// updates (batched), registration attempts (tracked) and bad records (an
// unrouted type, a record that is no envelope, corrupt protobuf) in the
// middle, in both forms (protobuf, and the JSON envelope of records
// written before it) — is routed in batches with every node's records in
// the order the reducer wrote them, each once and in its own form; the bad
// records are dead-lettered and the records after them still routed.
func TestRoutingKeepsNodeOrderInBatches(t *testing.T) {
	h := newHarness(t)
	pg, consul := h.topic(topics.PostgresIntents), h.topic(topics.ConsulIntents)
	for _, tp := range []string{pg, consul, h.dlqTopic} {
		h.watch(tp)
	}
	const nodes = 40
	var attempts []*attempt
	want := map[string][]int64{} // node → postgres sequences in order
	var backlog []*sarama.ProducerMessage
	protobuf := map[string]bool{} // intent id → written in protobuf
	add := func(a *attempt, in pipeline.Intent) {
		if len(backlog)%2 == 0 {
			protobuf[in.IntentID.String()] = true
			backlog = append(backlog, h.protoIntentRecord(a, in))
			return
		}
		backlog = append(backlog, h.intentRecord(a, in))
	}
	update := func(a *attempt, seq int64) pipeline.Intent {
		return a.intent(pipeline.PostgresUpdate, seq, map[string]any{"intent_type": pipeline.PostgresUpdate})
	}
	for i := 0; i < nodes; i++ {
		attempts = append(attempts, newAttempt())
	}
	// Round by round, so each partition's batches interleave nodes.
	for round := int64(0); round < 8; round++ {
		for _, a := range attempts {
			node := a.node.String()
			switch round {
			case 2:
				// upsert has sequence 1 and register 2 in newAttempt; the
				// updates around them use their own sequences, so the check
				// is on the order of arrival, not on sequence values.
				add(a, a.upsert)
				want[node] = append(want[node], a.upsert.Sequence)
				add(a, a.register)
			default:
				u := update(a, 100+round)
				add(a, u)
				want[node] = append(want[node], u.Sequence)
			}
		}
		if round == 4 {
			bad := attempts[0]
			add(bad, bad.intent("vault.write", 50, map[string]any{"intent_type": "vault.write"}))
			backlog = append(backlog, &sarama.ProducerMessage{Topic: h.topic(topics.RegistrationIntents),
				Key: sarama.StringEncoder(bad.node.String()), Value: sarama.StringEncoder("not an envelope")})
			// A record that says protobuf but is none: a content error, and
			// its bytes survive in the DLQ (base64, with its content type).
			backlog = append(backlog, &sarama.ProducerMessage{Topic: h.topic(topics.RegistrationIntents),
				Key: sarama.StringEncoder(bad.node.String()), Value: sarama.ByteEncoder(corruptIntent),
				Headers: []sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.IntentContentType)}}})
		}
	}
	h.sendBacklog(backlog)
	h.start(h.settings())

	total := 0
	for _, seqs := range want {
		total += len(seqs)
	}
	h.waitRecords(pg, total, 60*time.Second, fmt.Sprintf("%d postgres intents routed", total), nil)
	h.waitRecords(consul, nodes, 60*time.Second, "consul registrations routed", nil)
	dl := h.waitRecords(h.dlqTopic, 3, 30*time.Second, "three bad intents dead-lettered", nil)
	time.Sleep(time.Second) // a duplicate would show up now

	got := map[string][]int64{}
	for _, m := range h.seen(pg, nil) {
		in := routedIntent(t, m)
		if string(m.Key) != in.NodeID.String() {
			t.Fatalf("record keyed %s carries node %s", m.Key, in.NodeID)
		}
		if pb := pipeline.ContentType(m.Headers) == pipeline.IntentContentType; pb != protobuf[in.IntentID.String()] || pb != (in.Update != nil) && in.IntentType == pipeline.PostgresUpdate {
			t.Fatalf("intent %s routed as %q", in.IntentID, pipeline.ContentType(m.Headers))
		}
		got[in.NodeID.String()] = append(got[in.NodeID.String()], in.Sequence)
	}
	for node, seqs := range want {
		if !slices.Equal(got[node], seqs) {
			t.Errorf("node %s: postgres intents routed as %v, want %v", node, got[node], seqs)
		}
	}
	if n := len(h.seen(consul, nil)); n != nodes {
		t.Errorf("%d consul intents routed, want %d", n, nodes)
	}
	reasons := map[string]bool{}
	restored := false
	for _, m := range dl {
		rec, err := dlq.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		reasons[rec.ErrorType] = true
		header := func(k string) (string, bool) {
			for _, hd := range m.Headers {
				if string(hd.Key) == k {
					return string(hd.Value), true
				}
			}
			return "", false
		}
		if enc, _ := header(dlq.HeaderValueEncoding); enc == dlq.EncodingBase64 {
			b, ct, err := dlq.RestoreValue(rec.OriginalMessage.Value, header)
			restored = err == nil && bytes.Equal(b, corruptIntent) && ct == pipeline.IntentContentType
		}
	}
	if len(dl) != 3 || !reasons["ProtocolConfigurationError"] {
		t.Errorf("DLQ error types %v (%d records), want the unrouted intent and the two broken records", reasons, len(dl))
	}
	if !restored {
		t.Error("the corrupt protobuf intent's DLQ record does not restore its bytes and content type")
	}
}
