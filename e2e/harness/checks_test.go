package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

func acceptedRecord(t *testing.T, node, corr uuid.UUID, emitted, deadline time.Time) Record {
	t.Helper()
	b, err := registration.RegistrationAccepted{
		LifecycleHeader: registration.LifecycleHeader{EntityID: node, NodeID: node, CorrelationID: corr, CausationID: uuid.New(),
			EmittedAt: envelope.Time{Time: emitted}},
		AckDeadline: envelope.Time{Time: deadline},
	}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return Record{Topic: topics.NodeRegistrationAccepted, Key: node.String(), Value: b}
}

// The copies of an attempt's accepted event group into one attempt; a copy
// that disagrees on the deadline, names another node, or is not the bare
// model is an error.
func TestAcceptedAttempts(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	node, first, second := uuid.New(), uuid.New(), uuid.New()
	recs := []Record{
		acceptedRecord(t, node, first, t0, t0.Add(30*time.Second)),
		acceptedRecord(t, node, first, t0.Add(3*time.Second), t0.Add(30*time.Second)),
		acceptedRecord(t, node, second, t0.Add(time.Minute), t0.Add(90*time.Second)),
		acceptedRecord(t, node, first, t0.Add(7*time.Second), t0.Add(30*time.Second)),
	}
	a, err := AcceptedAttempts(recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 2 || a[0].CorrelationID != first || a[0].Copies != 3 || !a[0].First.Equal(t0) || !a[0].Last.Equal(t0.Add(7*time.Second)) ||
		a[1].CorrelationID != second || a[1].Copies != 1 || !a[1].AckDeadline.Equal(t0.Add(90*time.Second)) {
		t.Fatalf("attempts %+v", a)
	}
	other := acceptedRecord(t, node, first, t0, t0.Add(30*time.Second))
	other.Key = uuid.NewString()
	env, err := envelope.New(map[string]string{"node_id": node.String()})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, _ := env.Encode()
	for name, bad := range map[string]Record{
		"another deadline": acceptedRecord(t, node, first, t0.Add(time.Second), t0.Add(31*time.Second)),
		"another node":     other,
		"an envelope":      {Topic: topics.NodeRegistrationAccepted, Key: node.String(), Value: wrapped},
	} {
		if _, err := AcceptedAttempts(append(recs[:1:1], bad)); err == nil || !strings.Contains(err.Error(), "accepted") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}
