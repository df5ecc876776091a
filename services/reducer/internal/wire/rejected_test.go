package wire

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// wantRejected is the exact value of the rejected event for rejectedInput:
// an envelope (as every lifecycle event but the accepted one) whose payload
// is ModelNodeRegistrationRejected. Checked with the pinned omnibase-infra's
// consumer path (interop/python/validate_records.py, see
// ONEX_WRITE_REJECTED_RECORDS below): validated 1, failed 0.
const wantRejected = `{"payload": {"entity_id": "7d3e9c1a-2b4f-4c5d-8e6f-0a1b2c3d4e5f", "node_id": "7d3e9c1a-2b4f-4c5d-8e6f-0a1b2c3d4e5f", ` +
	`"correlation_id": "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5", "causation_id": "b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d", ` +
	`"emitted_at": "2026-03-02T14:05:07.401122Z", ` +
	`"rejection_reason": "node type runtime_host is not registered by this registry: it is not projectable (the registration projection accepts only effect, ` +
	`compute, reducer, orchestrator nodes)"}, "envelope_id": "fcbc771e-e6e4-56f9-a088-53c2f5e169e1", ` +
	`"envelope_timestamp": "2026-03-02T14:05:07.401122Z", "correlation_id": "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5", ` +
	`"parent_envelope_id": null, "source_tool": null, "target_tool": null, "metadata": {"trace_id": null, "span_id": null, ` +
	`"parent_span_id": null, "request_id": null, "headers": {}, ` +
	`"tags": {"causation_id": "b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d", "message_category": "event"}}, ` +
	`"security_context": null, "event_type": "platform.node-registration-rejected", "payload_type": null, ` +
	`"payload_schema_version": null, "priority": 5, "timeout_seconds": null, "retry_count": 0, "request_id": null, ` +
	`"trace_id": null, "span_id": null, "tenant_id": null, "producer": null, "onex_version": {"major": 1, "minor": 0, ` +
	`"patch": 0, "prerelease": null, "build": null}, "envelope_version": {"major": 2, "minor": 3, "patch": 0, ` +
	`"prerelease": null, "build": null}}`

func rejectedInput() decide.Introspection {
	name := "infra-host-1"
	return decide.Introspection{
		NodeID: uuid.MustParse("7d3e9c1a-2b4f-4c5d-8e6f-0a1b2c3d4e5f"), NodeType: "runtime_host", NodeName: &name, NodeVersion: "1.0.0",
		Capabilities:         json.RawMessage(`{"read":true}`),
		CorrelationID:        uuid.MustParse("b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"),
		HandlerCorrelationID: uuid.MustParse("0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"),
	}
}

// A runtime_host introspection: one rejected event (an envelope of the
// bare ModelNodeRegistrationRejected, keyed by node_id, with the ONEX
// headers), no intent, and a snapshot that restores to the rejected state.
func TestRejectedEventPinnedBytes(t *testing.T) {
	in := rejectedInput()
	d := decide.DecideIntrospection(nil, in, now, decide.DefaultParams())
	recs, err := Decision(d, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records, want the rejected event only (no intent)", len(recs))
	}
	rec := recs[0]
	if rec.Kind != "event" || rec.Topic != topics.NodeRegistrationRejected || rec.Key != in.NodeID.String() || rec.CorrelationID != in.HandlerCorrelationID {
		t.Fatalf("rejected record %s %s key %s correlation %s", rec.Kind, rec.Topic, rec.Key, rec.CorrelationID)
	}
	if string(rec.Value) != wantRejected {
		t.Fatalf("rejected value\n got %s\nwant %s", rec.Value, wantRejected)
	}
	env, err := envelope.Decode(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if want := envelope.DeterministicID(in.HandlerCorrelationID, "ModelNodeRegistrationRejected", 0); env.EnvelopeID != want {
		t.Fatalf("envelope id %s, want %s (deterministic)", env.EnvelopeID, want)
	}
	m, err := envelope.DecodePayload(env, registration.DecodeRegistrationRejected)
	if err != nil {
		t.Fatal(err)
	}
	if m.EntityID != in.NodeID || m.NodeID != in.NodeID || m.CausationID != in.CorrelationID || m.RejectionReason != decide.RejectionReason("runtime_host") {
		t.Fatalf("decoded %+v", m)
	}
	again, _ := Decision(decide.DecideIntrospection(d.State, in, now, decide.DefaultParams()), now)
	if len(again) != 1 || string(again[0].Value) != string(rec.Value) {
		t.Fatal("a duplicated introspection is not answered with the same bytes")
	}

	snap, err := Snapshot(d.State, now)
	if err != nil {
		t.Fatal(err)
	}
	msg := snap.ProducerMessage("test")
	st, err := RestoreState(snap.Value, pipeline.SnapshotState([]*sarama.RecordHeader{&msg.Headers[0]}))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != decide.Rejected || st.NodeType != "runtime_host" || st.Sequence != 1 || !st.RegisteredAt.IsZero() || st.AckDeadline != nil {
		t.Fatalf("restored %+v", st)
	}
	if s, err := pipeline.DecodeSnapshot(snap.Value); err != nil || s.CurrentState != "rejected" || s.SnapshotVersion != 1 || *s.NodeType != "runtime_host" {
		t.Fatalf("snapshot value %s: %v", snap.Value, err)
	}

	// ONEX_WRITE_REJECTED_RECORDS=file writes both records as the input of
	// interop/python/validate_records.py.
	if out := os.Getenv("ONEX_WRITE_REJECTED_RECORDS"); out != "" {
		var lines []byte
		for i, m := range []*sarama.ProducerMessage{rec.ProducerMessage("onex-reducer"), msg} {
			v, _ := m.Value.Encode()
			hs := map[string]string{}
			for _, h := range m.Headers {
				hs[string(h.Key)] = string(h.Value)
			}
			line, _ := json.Marshal(map[string]any{"topic": m.Topic, "partition": 0, "offset": i, "key": in.NodeID.String(),
				"value_b64": base64.StdEncoding.EncodeToString(v), "headers": hs})
			lines = append(append(lines, line...), '\n')
		}
		if err := os.WriteFile(out, lines, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
