package wire

import (
	"testing"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// The decided introspection carries the payload's reason and timestamp
// (the producer's clock): restarts, updates in place, shutdowns and the
// ordering of a node's introspections depend on them.
func TestIntrospectionCarriesReasonAndTimestamp(t *testing.T) {
	id, enc := newerNode(t)
	for _, reason := range []registration.IntrospectionReason{registration.ReasonStartup, "shutdown", "capability_change", "heartbeat"} {
		sent := now.Add(-1500 * 1e6)
		rec, err := enc.Introspection(id.Introspection(reason, uuid.New(), sent))
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := Decode(pipeline.ReducerInput{Topic: topics.NodeIntrospection, ReceivedAt: pipeline.T(now), Value: rec.Value})
		if err != nil {
			t.Fatal(err)
		}
		if in := got.Introspection; in.Reason != string(reason) || !in.Timestamp.Equal(sent) {
			t.Errorf("reason %q timestamp %v, want %q %v", in.Reason, in.Timestamp, reason, sent)
		}
	}
}
