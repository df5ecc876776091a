package effect

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// An upsert carries the introspection's unknown members
// (data.introspection_extras) into the write; one without them (a record
// of an older reducer, or a node the fleet fully knows) writes none; a
// value that is not an object is the intent's fault.
func TestDecodeIntrospectionExtras(t *testing.T) {
	node, attempt, corr := uuid.New(), uuid.New(), uuid.New()
	now := pipeline.T(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))
	in := pipeline.Intent{IntentID: uuid.New(), IntentType: pipeline.PostgresUpsert, Target: "postgres://node_registrations/" + node.String(),
		NodeID: node, Sequence: 1, RegistrationAttemptID: attempt, Priority: 1}
	for _, tt := range []struct {
		extras  json.RawMessage
		want    string
		refused bool
	}{
		{json.RawMessage(`{"flow_window":{"max_in_flight":8}}`), `{"flow_window":{"max_in_flight":8}}`, false},
		{nil, "", false},
		{json.RawMessage(`[1]`), "", true},
		{json.RawMessage(`"x"`), "", true},
	} {
		p := pipeline.PostgresUpsertPayload{IntentType: pipeline.PostgresUpsert, CorrelationID: corr,
			Record: pipeline.ProjectionRecord{EntityID: node, CurrentState: "awaiting_ack", Domain: "registration", NodeType: "effect",
				Data: pipeline.ProjectionData{NodeVersion: "1.2.0", Capabilities: json.RawMessage(`{}`), IntrospectionExtras: tt.extras,
					LastAppliedEventID: attempt, RegisteredAt: now, UpdatedAt: now, CorrelationID: corr}}}
		it := Decode(record(t, in, p, corr))
		if tt.refused {
			if it.Err == nil || !infraerr.IsContent(it.Err) {
				t.Errorf("extras %s: accepted (%v), want a content error", tt.extras, it.Err)
			}
			continue
		}
		got := it.Write.IntrospectionExtras
		if len(got) > 0 {
			var b bytes.Buffer // the envelope writes its payload Python style
			if err := json.Compact(&b, got); err != nil {
				t.Fatal(err)
			}
			got = b.Bytes()
		}
		if it.Err != nil || string(got) != tt.want {
			t.Errorf("extras %s: write has %q (%v), want %q", tt.extras, it.Write.IntrospectionExtras, it.Err, tt.want)
		}
	}
}
